"""The nnsight backend: the Hugging Face model traced by nnsight, locally or on NDIF.

:mod:`~probes.model.nnsight.backend` implements the protocol; :mod:`~probes.model.nnsight.layout`
finds a model's blocks, norm and unembedding; :mod:`~probes.model.nnsight.hooks` maps hook points
onto the trace; :mod:`~probes.model.nnsight.remote` loads models that run on NDIF.
"""
