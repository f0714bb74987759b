"""The run layer: every command's options, units of work, fingerprints and the one loop.

* :mod:`~probes.run.runner`: plan units, skip finished ones, load each model once, compute, write;
* :mod:`~probes.run.options`, :mod:`~probes.run.validation`: options as dataclasses, checked early;
* :mod:`~probes.run.fingerprint`: what sets a shard's numbers, and whether a shard is current;
* :mod:`~probes.run.resume`, :mod:`~probes.run.ray_executor`, :mod:`~probes.run.resources`:
  resuming, Ray, what a unit asks a cluster for;
* the commands built on it: :mod:`~probes.run.sweep` (``probes run``), :mod:`~probes.run.perplexity`,
  :mod:`~probes.run.lens_training` (``probes lens train``), :mod:`~probes.run.cot`;
* :mod:`~probes.run.model_rows`, :mod:`~probes.run.progress`: rows from a loaded model; the progress bar.
"""

import sys
from types import ModuleType
from typing import Any


class _CallablePackage(ModuleType):
    """``probes.run`` is this package *and* the public sweep function ``probes.run(...)``.

    Importing any ``probes.run.*`` module binds the package to the name ``run`` on ``probes``,
    over the function :mod:`probes` exports lazily; calling the package runs the function, so
    ``probes.run(ladder=...)`` works whatever was imported before.
    """

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        from probes.run.sweep import run

        return run(*args, **kwargs)


sys.modules[__name__].__class__ = _CallablePackage
