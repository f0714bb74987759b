"""What a Hugging Face causal LM's forward does to its unembedding's output before returning the
logits, from its config: a scale (Granite divides by ``logits_scaling``, HyperCLOVA X multiplies
by it, Cohere multiplies by ``logit_scale``, Falcon-H1 by ``lm_head_multiplier``) and a soft cap
(Gemma-2 and every family with ``final_logit_softcapping``: ``cap * tanh(logits / cap)``).

The scales are looked up by ``model_type``, not by field: the same field means the opposite in
Granite and HyperCLOVA X, and MPT's config carries a ``logit_scale`` its forward never applies.
The nnsight backend reads the model's modules, not its forward, so without this its readout
would miss the transform (a Granite model's last layer read 7 nats off its own log-probs). The
bridge backend gets the same transform from TransformerLens's adapter.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from jaxtyping import Float

Transform = Callable[[Float[torch.Tensor, "*shape vocab"]], Float[torch.Tensor, "*shape vocab"]]

_DIVIDES_BY_LOGITS_SCALING = ("logits_scaling", -1)
#: model_type -> (config field, power): the forward multiplies the logits by ``field ** power``
#: (transformers 5.x's modeling files; MiniCPM3 divides the hidden state before its bias-free
#: unembedding, which is the same)
SCALES: dict[str, tuple[str, int]] = {
    "granite": _DIVIDES_BY_LOGITS_SCALING,
    "granitemoe": _DIVIDES_BY_LOGITS_SCALING,
    "granitemoeshared": _DIVIDES_BY_LOGITS_SCALING,
    "granitemoehybrid": _DIVIDES_BY_LOGITS_SCALING,
    "granite_swa": _DIVIDES_BY_LOGITS_SCALING,
    "granitemoe_swa": _DIVIDES_BY_LOGITS_SCALING,
    "minicpm3": _DIVIDES_BY_LOGITS_SCALING,
    "hyperclovax": ("logits_scaling", 1),
    "cohere": ("logit_scale", 1),
    "cohere2": ("logit_scale", 1),
    "falcon_h1": ("lm_head_multiplier", 1),
}


def output_transform(config: Any) -> Transform | None:
    """The transform of a model with this config, applied to each logit alone; ``None`` if its
    forward returns the unembedding's output as it is."""
    field, power = SCALES.get(getattr(config, "model_type", ""), ("", 1))
    value = getattr(config, field, None) if field else None
    scale = float(value) ** power if value is not None else 1.0
    cap = getattr(config, "final_logit_softcapping", None)
    if scale == 1.0 and not cap:
        return None

    def transform(logits: Float[torch.Tensor, "*shape vocab"]) -> Float[torch.Tensor, "*shape vocab"]:
        if scale != 1.0:
            logits = logits * scale
        if cap:
            logits = torch.tanh(logits / cap) * cap
        return logits

    return transform
