"""The nnsight backend (``--backend nnsight``): the Hugging Face model traced by nnsight, here or on NDIF.

:mod:`~probes.model.nnsight.backend` implements the protocol; :mod:`~probes.model.nnsight.layout`
finds a model's blocks, norm and unembedding; :mod:`~probes.model.nnsight.hooks` maps hook points
onto the trace; :mod:`~probes.model.nnsight.remote` loads models that run on NDIF (``--remote``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from probes.model.backend import BackendKind

if TYPE_CHECKING:
    from transformers import PreTrainedModel

    from probes.model.hooked import HookedModel
    from probes.model.specs import ModelSpec


def _wrap(spec: ModelSpec, hf_model: PreTrainedModel, tokenizer: Any, model_name: str) -> HookedModel:
    from probes.model.hooked import HookedModel, loaded_weights
    from probes.model.nnsight.backend import NNsightBackend, nnsight_model

    loaded = loaded_weights(hf_model)
    return HookedModel(
        spec=spec, backend=NNsightBackend(nnsight_model(hf_model, tokenizer)), tokenizer=tokenizer, **loaded
    )


def _load_remote(spec: ModelSpec, dtype: torch.dtype) -> HookedModel:
    from probes.model.nnsight.remote import remote_model

    return remote_model(spec, dtype)


BACKEND = BackendKind(
    name="nnsight",
    summary="nnsight's tracing of the Hugging Face model, here or on NDIF (--remote)",
    wrap=_wrap,
    requires="nnsight",
    install="pip install 'probes[nnsight]'",
    load_remote=_load_remote,
    auto_rank=1,
)
