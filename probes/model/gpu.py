"""Running the lens on a GPU: batch size from free memory, optional ``torch.compile``.

The model may run in bfloat16 (``load_model(..., device="cuda", dtype="bfloat16")``); the lens's
readout is float32 whatever the model's dtype (:mod:`probes.model.bridge.readout`), so its numbers are the
model's own forward pass read exactly. What is left for a GPU is choosing how many prompts to run
at once, and optionally compiling the blocks' MLPs (the hooks that keep the residual vectors and
stop the forward pass sit on the blocks themselves, outside what is compiled).

Nothing here is measured on this project's CPU machines; ``benchmarks/bench_gpu.py`` measures
tokens/s of the lens against the bare forward pass where CUDA is present.
"""

from __future__ import annotations

from typing import Any

import torch

from probes.errors import InvalidOptionError
from probes.model.hooked import HookedModel

#: Per token of a row, the activations a forward pass holds at once, in multiples of d_model
#: (residual stream, attention q/k/v/output, the MLP's 4x hidden and its activation, norms).
ACTIVATION_WIDTHS = 16


def row_bytes(model: HookedModel, tokens: int, keep_cache: bool = True) -> int:
    """Memory one row of ``tokens`` tokens needs during a lens pass (an estimate, not a bound).

    The activations of one block at a time (the forward pass frees each block's after it)
    plus, when the prompt's cache is kept for its options' continuations, keys and values of
    every block run.
    """
    element = torch.finfo(model.dtype).bits // 8
    per_token = ACTIVATION_WIDTHS * model.d_model
    if keep_cache:
        per_token += 2 * model.n_layers * model.d_model
    return tokens * per_token * element


def readout_bytes(model: HookedModel, chunk_size: int = 256) -> int:
    """Memory of the float32 readout on a GPU (the whole vocabulary in one block): a chunk of
    logits and their shifted exps, plus the float32 unembedding copy of a lower-precision model."""
    vocab = int(model.unembedding_weights.shape[-1])
    copy = vocab * model.d_model * 4 if model.dtype != torch.float32 else 0
    return 2 * chunk_size * vocab * 4 + copy


def batch_size_for(
    model: HookedModel,
    tokens: int,
    fraction: float = 0.8,
    largest: int = 512,
    free_bytes: int | None = None,
) -> int:
    """How many rows of ``tokens`` tokens fit in ``fraction`` of the device's free memory.

    ``free_bytes`` defaults to what CUDA reports free on the model's device now
    (``torch.cuda.mem_get_info``); at least 1, at most ``largest``.
    """
    if free_bytes is None:
        if model.device.type != "cuda":
            raise InvalidOptionError(
                f"batch_size_for measures free GPU memory, and {model.name} is on {model.device}; "
                "pass free_bytes=... or load the model with device='cuda'."
            )
        free_bytes, _ = torch.cuda.mem_get_info(model.device)
    room = fraction * free_bytes - readout_bytes(model)
    return max(1, min(largest, int(room // row_bytes(model, tokens))))


def compile_mlps(model: HookedModel, **options: Any) -> int:
    """Compile every block's MLP in place with ``torch.compile(**options)``; returns how many.

    Only the MLPs: their shapes change with the batch (``dynamic=True`` by default) but their
    code does not, and no hook of the lens sits inside them.
    """
    options.setdefault("dynamic", True)
    mlps = model.mlps()
    for mlp in mlps:
        mlp.compile(**options)
    return len(mlps)
