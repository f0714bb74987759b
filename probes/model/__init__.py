"""One model in the toolkit's standard view: loading, the backend protocol and its implementations.

* :mod:`~probes.model.loading`: ``load_model`` for hub ids, folders, GGUF files and built-in rungs;
* :mod:`~probes.model.specs`: what a user's model string names, and the registry of model sources;
* :mod:`~probes.model.hooked`: :class:`HookedModel`, what every analysis asks of a model;
* :mod:`~probes.model.backend`: the :class:`Backend` protocol and the registry of backends, one
  subpackage each: :mod:`~probes.model.bridge` (TransformerLens) and :mod:`~probes.model.nnsight`;
* :mod:`~probes.model.readers`: the residual readers a backend gives the lens;
* :mod:`~probes.model.output_transform`, :mod:`~probes.model.placement`, :mod:`~probes.model.gpu`:
  logit transforms from configs, devices and device maps, batch sizes on a GPU.
"""
