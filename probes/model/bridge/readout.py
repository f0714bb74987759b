"""The bridge backend's readout: final norm, unembedding and log-softmax in float32, exactly.

Part of the backend (:mod:`probes.model.bridge.backend`): the only other module that knows the bridge's
readout path. TransformerLens's ``logit_readout`` computes in the unembedding's dtype; a
bfloat16 model would round two answers' log-probs to the same value often, and a tie that the
rounding made is no reading of the model. So the readout reads a *view* of the bridge whose
final norm and unembedding are float32 copies (the model's own forward pass is untouched).
The view also folds a ``project_out`` (OPT-350m) into the unembedding.
"""

from __future__ import annotations

import copy
import weakref
from typing import Any

import torch
from jaxtyping import Float, Int

from probes.errors import UnsupportedModelError


def bridge_log_probs(
    bridge: Any,
    resid: Float[torch.Tensor, "*shape d_model"],
    targets: Int[torch.Tensor, "*shape"],
    chunk_size: int,
) -> Float[torch.Tensor, "*shape"]:
    """TransformerLens's ``logit_readout`` of each target's log-prob, in float32 (see the module)."""
    from transformer_lens.tools.analysis import logit_readout

    view = readout_view(bridge)
    readout = logit_readout(
        view,
        resid.float(),
        apply_ln=getattr(view, "apply_ln", True),
        targets=targets,
        return_type="log_probs",
        chunk_size=chunk_size,
    )
    return readout.values[..., 0]


def bridge_log_probs_at(
    bridge: Any,
    resid: Float[torch.Tensor, "*lead vector d_model"],
    vector: Int[torch.Tensor, " read"],
    targets: Int[torch.Tensor, " read"],
    chunk_size: int,
) -> Float[torch.Tensor, "*lead read"]:
    """Log-prob of ``targets[r]`` read from ``resid[..., vector[r], :]``: each vector's log-softmax
    is computed once, however many targets are read from it.

    The same readout as :func:`bridge_log_probs` (TransformerLens's final norm, unembedding,
    output transform and log-softmax, through the float32 view), without what ``logit_readout``
    also computes per vector and the lens never uses (entropy, target ranks).
    """
    from transformer_lens.tools.analysis.logit_lens import _final_norm, _run_ln_final

    view = readout_view(bridge)
    ln_final = _final_norm(view) if getattr(view, "apply_ln", True) else None
    lead, n_vectors = resid.shape[:-2], resid.shape[-2]
    if n_vectors == 0 or vector.numel() == 0:
        return resid.new_zeros(*lead, vector.shape[0], dtype=torch.float32)
    flat = resid.reshape(-1, resid.shape[-1]).to(device=view.W_U.device, dtype=view.W_U.dtype)
    vector, targets = vector.to(flat.device), targets.to(flat.device)
    n_lead = flat.shape[0] // n_vectors
    rows = (torch.arange(n_lead, device=flat.device)[:, None] * n_vectors + vector).reshape(-1)
    wanted = targets.repeat(n_lead)
    out = torch.empty(rows.shape[0], dtype=torch.float32, device=flat.device)
    bias = None if _zero_bias(view) else view.b_U  # no vocabulary-wide copy of a zero bias
    for start in range(0, flat.shape[0], chunk_size):
        chunk = flat[start : start + chunk_size]
        if ln_final is not None:
            chunk = _run_ln_final(ln_final, chunk)
        here = (rows >= start) & (rows < start + chunk.shape[0])
        out[here] = _log_softmax_at(view, bias, chunk, rows[here] - start, wanted[here])
    return out.reshape(*lead, vector.shape[0])


#: Vocabulary columns per block of a readout on the CPU. A block of a chunk's logits (256 vectors
#: x 1024 x 4 bytes = 1 MB) stays in cache while its normaliser is taken, and no vocabulary-wide
#: tensor is allocated, faulted in and read back per chunk (benchmarks/README.md has the figures).
#: Elsewhere (CUDA) the whole vocabulary is one block.
CPU_VOCAB_BLOCK = 1024


def _log_softmax_at(
    view: Any,
    bias: Float[torch.Tensor, " vocab"] | None,
    normed: Float[torch.Tensor, "vector d_model"],
    vector: Int[torch.Tensor, " read"],
    targets: Int[torch.Tensor, " read"],
) -> Float[torch.Tensor, " read"]:
    """``log_softmax(transform(normed @ W_U + b_U))[vector, targets]`` without a whole row of
    log-probs, the vocabulary in blocks.

    As ``log_softmax`` does, each log-prob is the target's logit less the row's largest, less the
    log of the row's sum of ``exp(logit - largest)``, so a near-certain token keeps its digits.
    The sum runs block by block, which is also more accurate than the CPU's ``log_softmax``: that
    one adds ~V/8 float32 terms per lane and is off by up to 4e-5 at SmolLM2's 49152 tokens and
    2e-4 at Qwen2.5's 151936 when one token dominates; this readout stays within 1e-5 of a
    float64 log-softmax of the same logits (7e-6 on SmolLM2's weights, ~3e-7 on random logits;
    tests/model/test_readout_blocks.py). The output transform (a soft cap or a scale in
    every TransformerLens adapter) acts on each logit alone, so it applies block by block."""
    from transformer_lens.tools.analysis.logit_lens import _apply_output_transform

    unembed, vocab = view.W_U, view.W_U.shape[1]
    block = CPU_VOCAB_BLOCK if normed.device.type == "cpu" else vocab
    target_logits = normed.new_empty(targets.shape[0], dtype=torch.float32)
    largest, sums = [], []
    for begin in range(0, vocab, block):
        logits = normed @ unembed[:, begin : begin + block]
        if bias is not None:
            logits += bias[begin : begin + block]
        logits = _apply_output_transform(view, logits)[0].float()
        if block >= vocab:  # one block: a plain gather, no mask to wait for on a device
            target_logits = logits[vector, targets]
        else:
            here = (targets >= begin) & (targets < begin + block)
            target_logits[here] = logits[vector[here], targets[here] - begin]
        block_largest = logits.amax(dim=-1, keepdim=True)
        largest.append(block_largest)
        sums.append(torch.exp(logits - _shift(block_largest)).sum(dim=-1, keepdim=True))
    block_largest = torch.cat(largest, dim=-1)
    row_largest = _shift(block_largest.amax(dim=-1, keepdim=True))
    log_sum = (torch.cat(sums, dim=-1) * (block_largest - row_largest).exp()).sum(dim=-1).log()
    return target_logits - row_largest[vector, 0] - log_sum[vector]


def _shift(largest: Float[torch.Tensor, "vector 1"]) -> Float[torch.Tensor, "vector 1"]:
    """The largest logits as the shift of their exps, 0 where it is ``-inf`` (a block or row of
    masked tokens, where ``-inf - -inf`` would make NaN), as ``torch.logsumexp`` does."""
    return largest.masked_fill(largest == float("-inf"), 0.0)


_ZERO_BIAS: weakref.WeakKeyDictionary[Any, bool] = weakref.WeakKeyDictionary()


def _zero_bias(view: Any) -> bool:
    """Whether the view's unembedding bias is all zeros (checked once per view: a device sync)."""
    if view not in _ZERO_BIAS:
        _ZERO_BIAS[view] = not bool(view.b_U.any())
    return _ZERO_BIAS[view]


class _ReadoutView:
    """A bridge as ``logit_readout`` sees it: final norm and unembedding in float32, and a
    ``project_out`` (OPT-350m: decoder output 1024 → 512 before the tied unembedding) folded
    into the unembedding, ``W_U' = P^T W_U`` and ``b_U' = b_P W_U + b_U``, which is exactly the
    model's readout path ``unembed(project_out(ln_final(x)))``.

    Everything else (config, adapter, blocks, modes) is the bridge's own; the model's forward
    pass is untouched. Holds the bridge weakly so that the cache below does not keep it alive.
    """

    def __init__(self, bridge: Any) -> None:
        self._bridge = weakref.ref(bridge)
        unembed, bias = bridge.W_U.detach().float(), bridge.b_U.detach().float()
        modules = dict(bridge._modules)
        project = modules.pop("project_out", None)
        if project is not None:
            linear = project.original_component
            if linear.bias is not None:
                bias = bias + linear.bias.detach().float() @ unembed
            unembed = linear.weight.detach().float().T @ unembed
        self._modules = modules
        self.W_U, self.b_U = unembed, bias
        has_norm = isinstance(getattr(bridge, "ln_final", None), torch.nn.Module)
        #: Post-LN OPT (OPT-350m) has no final norm: the last block's output goes to project_out.
        self.apply_ln = has_norm or project is None
        if has_norm:
            self.ln_final = copy.deepcopy(bridge.ln_final).float()
        elif project is not None and getattr(bridge.original_model.config, "do_layer_norm_before", True):
            raise UnsupportedModelError(
                f"{bridge.cfg.model_name}: a pre-LN model with project_out whose final norm the "
                "bridge does not expose; the lens cannot reproduce its readout. Post-LN OPT "
                "(opt-350m) and OPT without project_out are supported."
            )

    def __getattr__(self, name: str) -> Any:
        return getattr(self._bridge(), name)


_READOUT_VIEWS: weakref.WeakKeyDictionary[Any, _ReadoutView] = weakref.WeakKeyDictionary()


def readout_view(bridge: Any) -> Any:
    """The bridge itself when its unembedding is float32 and reads the residual stream directly,
    else a :class:`_ReadoutView` of it (made once per bridge and cached)."""
    if bridge.W_U.dtype == torch.float32 and "project_out" not in bridge._modules:
        return bridge
    if bridge not in _READOUT_VIEWS:
        _READOUT_VIEWS[bridge] = _ReadoutView(bridge)
    return _READOUT_VIEWS[bridge]
