"""probes: per-layer, per-size probing of true vs distractor tasks across model ladders.

Quick start::

    import probes
    table = probes.run()                      # the built-in ladder, its probe items
    table = probes.run(models=["EleutherAI/pythia-160m"], tasks=["items.jsonl"])

The names below are imported on first use (PEP 562), so that importing one module of the
package (``probes.model.loading``, ``probes.ladders``) loads only what that module needs.
"""

from __future__ import annotations

import warnings
from importlib import import_module
from typing import TYPE_CHECKING, Any

from probes.errors import ProbesError
from probes.version import __version__

# huggingface_hub and transformers import tqdm.auto, which in a notebook without ipywidgets warns
# "IProgress not found" and falls back to text bars; the text bars work (probes/progress_bar.py
# draws them there on purpose), so that one message is noise. Nothing else is hidden.
warnings.filterwarnings("ignore", message="IProgress not found", module="tqdm")

if TYPE_CHECKING:
    from probes.analysis.shape import ScalingShape, scaling_shape
    from probes.jobs.model_rows import read_layers
    from probes.jobs.sweep import SweepOptions, run
    from probes.lenses.logit import LogitLens
    from probes.lenses.reading import read_options
    from probes.model.loading import HookedModel, from_hf_model, load_model
    from probes.tasks import Item, read_items, write_items

#: Public name -> the module that defines it.
_LAZY = {
    "LogitLens": "probes.lenses.logit",
    "read_options": "probes.lenses.reading",
    "HookedModel": "probes.model.loading",
    "from_hf_model": "probes.model.loading",
    "load_model": "probes.model.loading",
    "read_layers": "probes.jobs.model_rows",
    "ScalingShape": "probes.analysis.shape",
    "scaling_shape": "probes.analysis.shape",
    "SweepOptions": "probes.jobs.sweep",
    "run": "probes.jobs.sweep",
    "Item": "probes.tasks",
    "read_items": "probes.tasks",
    "write_items": "probes.tasks",
}

__all__ = [
    "HookedModel",
    "Item",
    "LogitLens",
    "ProbesError",
    "ScalingShape",
    "SweepOptions",
    "__version__",
    "from_hf_model",
    "load_model",
    "read_items",
    "read_layers",
    "read_options",
    "run",
    "scaling_shape",
    "write_items",
]


def __getattr__(name: str) -> Any:
    """The public name ``name``, imported from its module on first use."""
    if name not in _LAZY:
        raise AttributeError(f"module 'probes' has no attribute {name!r}")
    value = getattr(import_module(_LAZY[name]), name)
    globals()[name] = value
    return value
