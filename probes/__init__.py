"""probes: per-layer, per-size probing of true vs distractor tasks across model ladders.

Quick start::

    import probes
    table = probes.run()                      # the built-in ladder, its probe items
    table = probes.run(models=["EleutherAI/pythia-160m"], tasks=["items.jsonl"])
"""

from probes.errors import ProbesError
from probes.lens import LogitLens, read_options
from probes.models import HookedModel, from_hf_model, load_model
from probes.sweep import SweepOptions, run
from probes.tasks import Item, read_items, write_items
from probes.version import __version__

__all__ = [
    "HookedModel",
    "Item",
    "LogitLens",
    "ProbesError",
    "SweepOptions",
    "__version__",
    "from_hf_model",
    "load_model",
    "read_items",
    "read_options",
    "run",
    "write_items",
]
