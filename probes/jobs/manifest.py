"""What every shard and result row says of its origin: the manifest record and the rows' provenance."""

from __future__ import annotations

import datetime
import platform
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from probes.jobs.units import PlannedModel
from probes.model.hooked import HookedModel
from probes.version import __version__, package_versions


def provenance(model: HookedModel, lens: str) -> dict[str, Any]:
    """What every result row says of its origin: model, revision, lens and toolkit version."""
    return {
        "model": model.name,
        "revision": model.spec.revision or "",
        "lens": lens,
        "toolkit_version": __version__,
    }


def manifest_record(
    model: HookedModel, spec: str | PlannedModel, task: str, variant: str, options: Any, **fields: Any
) -> dict[str, Any]:
    """What produced one shard: the model and its rung, the task, the options, versions and time.

    A :class:`PlannedModel` from a ladder gets the rung metadata of the ladder it was planned from
    (its :class:`~probes.model.specs.ModelSpec` carries ladder and rung); a plain string is looked up.

    ``options`` is the run's options dataclass (its ``seed`` and ``batch_size`` are copied out);
    ``fields`` (a ``fingerprint``, ``n_items`` ...) are added as they are.
    """
    from probes.ladders import rung_metadata

    return {
        **model.describe(),
        **rung_metadata(spec.spec if isinstance(spec, PlannedModel) else spec),
        "spec": spec.text if isinstance(spec, PlannedModel) else spec,
        "task": task,
        "variant": variant,
        "seed": getattr(options, "seed", None),
        "batch_size": options.batch_size,
        **fields,
        "toolkit_version": __version__,
        "packages": package_versions(),
        "python": platform.python_version(),
        "torch_threads": torch.get_num_threads(),
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "options": {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(options).items()},
    }
