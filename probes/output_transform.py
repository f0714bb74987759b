"""What a Hugging Face causal LM's forward does to its unembedding's output before returning the
logits, read from its config: a scale (Granite divides by ``logits_scaling``, Cohere multiplies
by ``logit_scale``, Falcon-H1 by ``lm_head_multiplier``) and a soft cap (Gemma-2,
``final_logit_softcapping``: ``cap * tanh(logits / cap)``).

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

#: config field -> how it scales the logits (the families whose forward applies one)
SCALES: dict[str, Callable[[float], float]] = {
    "logits_scaling": lambda value: 1.0 / value,  # Granite
    "logit_scale": lambda value: value,  # Cohere
    "lm_head_multiplier": lambda value: value,  # Falcon-H1
}


def output_transform(config: Any) -> Transform | None:
    """The transform of a model with this config, applied to each logit alone; ``None`` if its
    forward returns the unembedding's output as it is."""
    scale = 1.0
    for field, factor in SCALES.items():
        value = getattr(config, field, None)
        if isinstance(value, int | float) and not isinstance(value, bool):
            scale *= factor(float(value))
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
