"""Lenses: what is read at every layer, and the engine that reads it.

* :mod:`~probes.lenses.base`: the :class:`Lens` protocol;
* :mod:`~probes.lenses.logit`: the logit lens; :mod:`~probes.lenses.tuned`: the tuned lens;
* :mod:`~probes.lenses.registry`: lens names (``--lens``) and how each is built;
* :mod:`~probes.lenses.reading`: per-layer readouts of every option of every item;
* :mod:`~probes.lenses.passes`: the forward passes that read them (one prompt pass per item).
"""
