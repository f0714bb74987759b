"""What the tuned lens needs of a model: residuals at chosen positions, and full-vocabulary readouts.

Kept in one place so the lens asks the model's own door for these and nothing else.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import torch
from jaxtyping import Float, Int

from probes.model.loading import HookedModel


def residuals_at(
    model: HookedModel,
    input_ids: Int[torch.Tensor, "batch pos"],
    attention_mask: Int[torch.Tensor, "batch pos"],
    layers: Sequence[int],
    batch_index: Int[torch.Tensor, " row"],
    position_index: Int[torch.Tensor, " row"],
) -> Float[torch.Tensor, "layer row d_model"]:
    """Residual vectors of ``layers`` (sorted) at ``(batch_index[row], position_index[row])``."""
    return model.residuals_at(input_ids, attention_mask, layers, batch_index, position_index)


def full_log_probs(
    model: HookedModel, resid: Float[torch.Tensor, "row d_model"]
) -> Float[torch.Tensor, "row vocab"]:
    """Log-probs over the whole vocabulary through the model's final norm and unembedding.

    Differentiable with respect to ``resid`` (the model's own weights are not trained).
    """
    return model.unembed(model.apply_final_norm(resid)).float().log_softmax(-1)


def model_fingerprint(model: HookedModel) -> str:
    """A sha256 that names one model's weights, cheap even for billions of parameters.

    It hashes the model's shape (layers, width, architecture) and, for every parameter it was
    loaded with (:attr:`HookedModel.weights`: not the copies the bridge makes when it splits a
    fused weight, so the bridge and nnsight backends name one model alike), its position, shape and
    up to 4096 evenly strided values rounded to bfloat16 (so the same weights loaded as float32 or
    bfloat16 give the same fingerprint). Any training of any tensor changes it; a lens is refused
    on a model whose fingerprint differs.
    """
    return _fingerprint(model, model.weights or tuple(model.backend.parameters()))


def _fingerprint(model: HookedModel, parameters: Sequence[torch.nn.Parameter]) -> str:
    digest = hashlib.sha256()
    digest.update(f"{model.describe()['architecture']}|{model.n_layers}|{model.d_model}".encode())
    for name, parameter in enumerate(parameters):
        flat = parameter.detach().reshape(-1)
        stride = max(1, flat.numel() // 4096)
        sample = flat[::stride][:4096].to("cpu", torch.bfloat16).view(torch.int16)
        digest.update(f"{name}|{tuple(parameter.shape)}|".encode())
        digest.update(sample.numpy().tobytes())
    return digest.hexdigest()
