"""Where and how a model runs: one device or accelerate's device map, and which backend.

``--device-map auto`` loads a model too large for one GPU across every GPU (then CPU memory, then
disk), through accelerate's dispatch hooks, which move each block's inputs to that block's
device. An explicit map, ``{"module": "cpu" | "cuda:1" | "disk", ...}``, places modules by name;
``"disk"`` offloads them to a temporary folder, removed when the process ends. The residual
readers move each layer's kept vectors to the unembedding's device, where the lens reads them.
"""

from __future__ import annotations

import atexit
import functools
import json
import shutil
import tempfile
from dataclasses import dataclass
from typing import Any

from probes.errors import InvalidOptionError

#: accelerate's named placements.
NAMED_MAPS = ("auto", "balanced", "balanced_low_0", "sequential")


def device_map_of(value: str | dict[str, Any] | None) -> str | dict[str, Any] | None:
    """A device map from the command line: a named placement, or a JSON ``{module: device}`` map."""
    if value is None or isinstance(value, dict):
        return value
    if value in NAMED_MAPS:
        return value
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError:
        parsed = None
    if not isinstance(parsed, dict) or not parsed:
        raise InvalidOptionError(
            f"--device-map {value!r} is neither one of {list(NAMED_MAPS)} nor a JSON map of module "
            'names to devices, e.g. \'{"model.embed_tokens": 0, "model.layers": 1, "lm_head": "cpu"}\'.'
        )
    return parsed


@functools.cache
def _offload_folder() -> str:
    folder = tempfile.mkdtemp(prefix="probes-offload-")
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder


@dataclass(frozen=True)
class Placement:
    """One device for the whole model, or a device map (which then decides alone)."""

    device: str = "cpu"
    device_map: str | dict[str, Any] | None = None

    def load_options(self) -> dict[str, Any]:
        """Keyword arguments of ``from_pretrained`` that place the weights as they load."""
        if self.device_map is None:
            return {}
        options: dict[str, Any] = {"device_map": self.device_map}
        if isinstance(self.device_map, str) or "disk" in self.device_map.values():
            options["offload_folder"] = _offload_folder()
        return options

    def place(self, model: Any) -> Any:
        """The loaded model on its device (left where the device map put it), in eval mode."""
        return (model if self.device_map is not None else model.to(self.device)).eval()


def backend_options(options: Any) -> dict[str, Any]:
    """The :func:`~probes.model.loading.load_model` arguments of a run's ``--backend``, ``--device-map``,
    ``--remote`` and ``--no-memory-check``."""
    return {
        "backend": getattr(options, "backend", "auto"),
        "device_map": getattr(options, "device_map", None),
        "remote": getattr(options, "remote", False),
        "memory_check": getattr(options, "memory_check", True),
    }
