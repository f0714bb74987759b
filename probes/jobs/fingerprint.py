"""A shard's fingerprint: the hash of everything that sets its numbers, and whether a shard is current.

Everything that changes a number goes in: the model, the items, the lens and its weights, the
layers read (``--layers -1`` and ``--layers N`` naming the same layer hash alike), the dtype,
the command's own settings, and the run's settings that move numbers only by float rounding
(batch size, kind of device, backend). Nothing else does, so adding a task, a model or a kind
of table to a run resumes it instead of refusing it. A shard is current for a run when it
verifies against its checksum and carries the run's fingerprint (:func:`is_finished`).
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Mapping
from typing import Any

from probes.analysis.scoring import SCORING
from probes.errors import DamagedShardError
from probes.jobs.options import RunOptions
from probes.jobs.units import Unit, canonical_layers, shard_path
from probes.jobs.validation import device_kind
from probes.store.store import LENS, Store


def fingerprint(
    unit: Unit, dtype: str, n_layers: int | None = None, run: Mapping[str, Any] | None = None
) -> str:
    """Hash of everything that determines a unit's numbers (and nothing else, so adding a task,
    a model or a kind of table to a run resumes it instead of refusing it).

    ``run`` holds the run's settings that move numbers by float rounding (:func:`run_settings`:
    batch size, device kind, backend).
    """
    payload: dict[str, Any] = {
        "model": unit.model.label,
        "items": [item.to_dict() for item in unit.items],
        "dtype": dtype,
        **unit.settings,
        **(run or {}),
    }
    if unit.kind == LENS:
        payload["lens"] = unit.lens
        payload["layers"] = canonical_layers(unit.layers, n_layers)
        payload["scoring"] = SCORING
    else:
        payload["kind"] = unit.kind
    if unit.lens_weights is not None:
        payload["lens_weights"] = unit.lens_weights
    if unit.twins:
        payload["twins"] = [twin.to_dict() for twin in unit.twins]
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def run_settings(options: RunOptions) -> dict[str, Any]:
    """The run's settings that change numbers only by float rounding, yet change them.

    Batches of other sizes pad and reduce differently (log-probs moved by ~1e-5 on the built-in
    ladder between --batch-size 1, 3 and 8; a rationale's greedy token can flip), and so do
    other kinds of device, and other backends. Device indices (cuda:0 vs cuda:1) do not count.
    """
    kind = device_kind(options.device)
    return {"batch_size": options.batch_size, "device_kind": kind, **backend_setting(options)}


def backend_setting(options: Any) -> dict[str, str]:
    """The backend, for a run's fingerprint: another way of running a model rounds differently.
    Named only when it is not the default (``auto``, which runs the bridge wherever the bridge
    can take the model, or the bridge itself; the manifest's ``backend`` says which ran)."""
    backend = getattr(options, "backend", "auto")
    if backend in ("auto", "bridge"):
        return {}
    return {"backend": backend + (" remote" if getattr(options, "remote", False) else "")}


def unit_fingerprint(unit: Unit, options: RunOptions, n_layers: int | None) -> str:
    """The fingerprint of a unit as this run computes it (:func:`fingerprint` with the run's settings)."""
    return fingerprint(unit, options.dtype, n_layers, run_settings(options))


def is_finished(store: Store, unit: Unit, print_: str, options: RunOptions, warn: bool = True) -> bool:
    """Whether the unit's shard is written, verifies and carries the fingerprint ``print_``.

    A damaged shard is not finished: it is named on stderr (``warn``: once per run, not on the
    re-check after claiming) and computed again.

    Raises:
        StoreError: The shard holds other inputs (and not ``options.overwrite``).
    """
    try:
        return store.finished_at(shard_path(store, unit), print_, replace=options.overwrite)
    except DamagedShardError as err:
        if warn:
            print(f"probes: warning: {err}; computing it again.", file=sys.stderr)
        return False
