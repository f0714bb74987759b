"""Models that run on NDIF (the National Deep Inference Fabric) through nnsight.

``probes run --backend nnsight --remote --models meta-llama/Llama-3.1-70B`` never loads the
weights here: :func:`remote_model` builds the model from its config on the meta device
(nnsight's ``TransformersModel`` without dispatch), and every trace of the backend is
serialized and run by NDIF, which sends back only what was saved (the residual vectors at the
read positions, the output logits). The few modules the lens and attribution apply here (the final
norm, the unembedding and, for attribution, the attention output projections) are fetched once
from the server by :func:`probes.model.nnsight.backend.fetch_module`. The API key comes from ``NDIF_API_KEY``.
"""

from __future__ import annotations

import os

import torch

from probes.errors import ProbesError
from probes.model.hooked import HookedModel
from probes.model.nnsight.backend import NNsightBackend
from probes.model.specs import ModelSpec

#: Where a user gets an NDIF API key.
NDIF_LOGIN = "https://login.ndif.us"


def api_key() -> str:
    """The NDIF API key: ``NDIF_API_KEY`` from the environment, or nnsight's own configuration."""
    from nnsight import CONFIG

    key = os.environ.get("NDIF_API_KEY") or CONFIG.API.APIKEY
    if not key:
        raise ProbesError(
            f"--remote runs the model on NDIF, which needs an API key: get one at {NDIF_LOGIN} and "
            "export NDIF_API_KEY=<key> (or drop --remote to run the model here)."
        )
    CONFIG.API.APIKEY = key  # the environment wins over a key nnsight read at import time
    return key


def remote_model(spec: ModelSpec, dtype: torch.dtype) -> HookedModel:
    """A hub model that runs on NDIF: config and tokenizer here, weights on the server."""
    api_key()
    try:
        from nnsight import TransformersModel
    except ImportError as err:
        raise ProbesError(f"--remote needs nnsight: pip install 'probes[nnsight]' ({err}).") from None
    try:
        model = TransformersModel(spec.name, revision=spec.revision, task="text-generation", dtype=dtype)
    except (OSError, ValueError) as err:
        raise ProbesError(
            f"could not read the config and tokenizer of {spec.label!r} from the hub ({err}); NDIF runs "
            "hub models only: check the id, your connection, and HF_HUB_OFFLINE."
        ) from err
    backend = NNsightBackend(model, remote=True)
    n_parameters = sum(p.numel() for p in model._module.parameters())
    return HookedModel(spec=spec, backend=backend, tokenizer=model.tokenizer, n_parameters=n_parameters)
