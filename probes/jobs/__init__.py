"""The run layer: every command's options, units of work, fingerprints and the one loop.

* :mod:`~probes.jobs.runner`: plan units, skip finished ones, load each model once, compute, write;
* :mod:`~probes.jobs.options`, :mod:`~probes.jobs.validation`: options as dataclasses, checked early;
* :mod:`~probes.jobs.fingerprint`: what sets a shard's numbers, and whether a shard is current;
* :mod:`~probes.jobs.resume`, :mod:`~probes.jobs.ray_executor`, :mod:`~probes.jobs.resources`:
  resuming, Ray, what a unit asks a cluster for;
* the commands built on it: :mod:`~probes.jobs.sweep` (``probes run``), :mod:`~probes.jobs.perplexity`,
  :mod:`~probes.jobs.lens_training` (``probes lens train``), :mod:`~probes.jobs.cot`;
* :mod:`~probes.jobs.model_rows`, :mod:`~probes.jobs.progress`: rows from a loaded model; the progress bar.
"""
