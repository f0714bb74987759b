"""The one door to a model's internals: a small :class:`Backend` protocol and its bridge implementation.

Every analysis (lens, chain-of-thought, perplexity, attribution, ablation, patching) asks
:class:`~probes.model.loading.HookedModel` for what it needs, and the model asks its backend. The
backend is the only place that knows how the model is run and hooked, what its hook points
are called and how its final norm works; nothing else in ``probes`` reaches the Hugging Face
model or the TransformerLens bridge, or branches on an architecture.

:class:`BridgeBackend`, the first implementation, drives a TransformerLens
``TransformerBridge`` (hook points, weights, the logit readout) and the Hugging Face model
it wraps (plain forward passes, generation, and the early-stopping residual hooks of
:mod:`probes.model.bridge.residual_catcher`). Per-family
differences stay inside TransformerLens's adapters and the norm's ``normalization_type``.

Hook points are named as TransformerLens names them; :func:`head_hook`, :func:`attn_out_hook`,
:func:`mlp_out_hook` and :func:`resid_hook` are the one place that spells them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol

import torch
from jaxtyping import Float, Int

from probes.model.bridge.plain_modules import cache_by_old_name, plain, plain_modules
from probes.model.bridge.residual_catcher import ResidualCatcher
from probes.model.readers import ContinuingReader, PromptCache, ResidualReader, SharingReader

__all__ = [
    "FINAL_NORM_SCALE_HOOK",
    "Backend",
    "BridgeBackend",
    "ContinuingReader",
    "SharingReader",
    "HookFunction",
    "PromptCache",
    "ResidualReader",
    "attn_out_hook",
    "head_hook",
    "mlp_out_hook",
    "resid_hook",
]

#: A forward hook: (activation, hook point) -> replacement, or ``None`` to leave it.
HookFunction = Callable[[torch.Tensor, Any], torch.Tensor | None]

#: Hook point of the final norm's scale (the per-vector divisor) at every position.
FINAL_NORM_SCALE_HOOK = "ln_final.hook_scale"


def head_hook(layer: int) -> str:
    """The hook point of the per-head attention outputs (``z``) of block ``layer``."""
    return f"blocks.{layer}.attn.hook_z"


def attn_out_hook(layer: int) -> str:
    """The hook point of block ``layer``'s attention output (every head plus the output bias)."""
    return f"blocks.{layer}.hook_attn_out"


def mlp_out_hook(layer: int) -> str:
    """The hook point of block ``layer``'s MLP output."""
    return f"blocks.{layer}.hook_mlp_out"


def resid_hook(layer: int, n_layers: int) -> str:
    """The hook point of layer ``layer`` of the residual stream (0 = embeddings, ``n_layers`` = last)."""
    return f"blocks.{layer}.hook_resid_pre" if layer < n_layers else f"blocks.{n_layers - 1}.hook_resid_post"


class Backend(Protocol):
    """What the toolkit needs of a loaded model; one implementation per way of running models."""

    n_layers: int
    d_model: int
    n_ctx: int
    n_heads: int
    #: Class name of the underlying model (e.g. ``LlamaForCausalLM``), for provenance.
    architecture: str

    def parameters(self) -> Iterator[torch.nn.Parameter]:
        """The model's parameters as loaded."""
        ...

    def hook_points(self) -> set[str]:
        """Every hook point :meth:`run_with_hooks` accepts."""
        ...

    def residual_reader(self, layers: Sequence[int]) -> contextlib.AbstractContextManager[ResidualReader]:
        """A reader of the given residual layers that stops the forward pass after the last one."""
        ...

    def logits(
        self, input_ids: Int[torch.Tensor, "batch pos"], attention_mask: Int[torch.Tensor, "batch pos"] | None
    ) -> Float[torch.Tensor, "batch pos vocab"]:
        """The model's own output logits."""
        ...

    def run_with_hooks(
        self,
        input_ids: Int[torch.Tensor, "batch pos"],
        attention_mask: Int[torch.Tensor, "batch pos"],
        hooks: Sequence[tuple[str, HookFunction]],
    ) -> Float[torch.Tensor, "batch pos vocab"]:
        """Output logits of a forward pass with ``hooks`` applied at their hook points."""
        ...

    def generate(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        """Token ids of prompts plus continuations (Hugging Face ``generate`` arguments)."""
        ...

    def log_probs(
        self,
        resid: Float[torch.Tensor, "*shape d_model"],
        targets: Int[torch.Tensor, "*shape"],
        chunk_size: int,
    ) -> Float[torch.Tensor, "*shape"]:
        """Log-prob of each target read from each residual vector through final norm and unembedding."""
        ...

    def apply_final_norm(
        self, resid: Float[torch.Tensor, "*shape d_model"]
    ) -> Float[torch.Tensor, "*shape d_model"]:
        """The final norm, with its statistics computed per vector."""
        ...

    def unembed(self, normed: Float[torch.Tensor, "*shape d_model"]) -> Float[torch.Tensor, "*shape vocab"]:
        """Logits of already normed vectors."""
        ...

    def frozen_final_norm(
        self, vectors: Float[torch.Tensor, "*shape d_model"], scale: Float[torch.Tensor, "*shape 1"]
    ) -> Float[torch.Tensor, "*shape d_model"]:
        """The final norm's linear part with its scale fixed at ``scale`` (no bias)."""
        ...

    @property
    def final_norm_bias(self) -> Float[torch.Tensor, " d_model"] | None:
        """The final norm's bias, if it has one."""
        ...

    @property
    def head_output_weights(self) -> Float[torch.Tensor, "layer head d_head d_model"]:
        """Each head's output matrix ``W_O``."""
        ...

    @property
    def unembedding_weights(self) -> Float[torch.Tensor, "d_model vocab"]:
        """The unembedding matrix ``W_U``."""
        ...

    @property
    def unembedding_bias(self) -> Float[torch.Tensor, " vocab"] | None:
        """The unembedding bias ``b_U``, if any."""
        ...


class BridgeBackend:
    """A TransformerLens ``TransformerBridge`` and the Hugging Face model it wraps."""

    #: The backend's name in result manifests.
    kind = "bridge"

    def __init__(self, bridge: Any) -> None:
        self.bridge = bridge

    @property
    def hf_model(self) -> Any:
        """The wrapped Hugging Face model (its submodules are the bridge's components)."""
        return self.bridge.original_model

    @property
    def n_layers(self) -> int:
        """Number of transformer blocks."""
        return int(self.bridge.cfg.n_layers)

    @property
    def d_model(self) -> int:
        """Width of the residual stream."""
        return int(self.bridge.cfg.d_model)

    @property
    def n_ctx(self) -> int:
        """Longest sequence the model accepts."""
        return int(self.bridge.cfg.n_ctx)

    @property
    def n_heads(self) -> int:
        """Attention heads per block."""
        return int(self.bridge.cfg.n_heads)

    @property
    def architecture(self) -> str:
        """Class name of the wrapped Hugging Face model."""
        return type(self.hf_model).__name__

    @property
    def blocks(self) -> list[torch.nn.Module]:
        """The Hugging Face blocks, first to last (behind the bridge's block components: hooks on
        them fire in the lens's plain runs and in the bridge's, :mod:`probes.model.bridge.plain_modules`)."""
        return [plain(block) for block in self.bridge.blocks]

    @property
    def final_norm(self) -> torch.nn.Module | None:
        """The norm applied to the last residual stream before unembedding, if any."""
        return getattr(self.bridge, "ln_final", None)

    def parameters(self) -> Iterator[torch.nn.Parameter]:
        """The Hugging Face model's parameters."""
        return self.hf_model.parameters()

    def hook_points(self) -> set[str]:
        """Every TransformerLens hook point of the bridge."""
        return set(self.bridge.hook_dict)

    def residual_reader(self, layers: Sequence[int]) -> ResidualCatcher:
        """Early-stopping hooks on the plain Hugging Face blocks (layer 0 = the first block's input)."""
        return ResidualCatcher(self.hf_model, self.blocks, layers, device=self.unembedding_device)

    @property
    def unembedding_device(self) -> torch.device | None:
        """Where the unembedding lives: kept vectors go there (a device map may put blocks elsewhere)."""
        weight = getattr(self.hf_model.get_output_embeddings(), "weight", None)
        return None if weight is None else weight.device

    def logits(
        self, input_ids: Int[torch.Tensor, "batch pos"], attention_mask: Int[torch.Tensor, "batch pos"] | None
    ) -> Float[torch.Tensor, "batch pos vocab"]:
        """A plain Hugging Face forward pass (the modules the bridge wraps; no hooks)."""
        with plain_modules(self.hf_model):
            return self.hf_model(input_ids=input_ids, attention_mask=attention_mask).logits

    def run_with_hooks(
        self,
        input_ids: Int[torch.Tensor, "batch pos"],
        attention_mask: Int[torch.Tensor, "batch pos"],
        hooks: Sequence[tuple[str, HookFunction]],
    ) -> Float[torch.Tensor, "batch pos vocab"]:
        """The bridge's forward pass with TransformerLens hooks."""
        return self.bridge.run_with_hooks(input_ids, attention_mask=attention_mask, fwd_hooks=list(hooks))

    def generate(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        """Hugging Face ``generate`` on the wrapped model, its key/value cache handed to the bridge's
        attention under the name it reads: transformers 5.x passes it as ``cache``, and without this
        the attention neither fills nor reads it (each new token attends to itself alone)."""
        handles = [
            block.attn.register_forward_pre_hook(cache_by_old_name, with_kwargs=True)
            for block in self.bridge.blocks
            if isinstance(getattr(block, "attn", None), torch.nn.Module)
        ]
        try:
            return self.hf_model.generate(input_ids=input_ids, attention_mask=attention_mask, **kwargs)
        finally:
            for handle in handles:
                handle.remove()

    def log_probs(
        self,
        resid: Float[torch.Tensor, "*shape d_model"],
        targets: Int[torch.Tensor, "*shape"],
        chunk_size: int,
    ) -> Float[torch.Tensor, "*shape"]:
        """TransformerLens's ``logit_readout``: ``ln_final`` per vector, ``W_U``, ``b_U``, any transform;
        in float32 whatever the model's dtype, through any ``project_out`` (:mod:`probes.model.bridge.readout`)."""
        from probes.model.bridge.readout import bridge_log_probs

        return bridge_log_probs(self.bridge, resid, targets, chunk_size)

    def log_probs_at(
        self,
        resid: Float[torch.Tensor, "*lead vector d_model"],
        vector: Int[torch.Tensor, " read"],
        targets: Int[torch.Tensor, " read"],
        chunk_size: int,
    ) -> Float[torch.Tensor, "*lead read"]:
        """:meth:`log_probs` of several targets per vector, one log-softmax per vector
        (:func:`probes.model.bridge.readout.bridge_log_probs_at`)."""
        from probes.model.bridge.readout import bridge_log_probs_at

        return bridge_log_probs_at(self.bridge, resid, vector, targets, chunk_size)

    def apply_final_norm(
        self, resid: Float[torch.Tensor, "*shape d_model"]
    ) -> Float[torch.Tensor, "*shape d_model"]:
        """``ln_final`` with statistics per vector (the identity for a model without one)."""
        norm = self.final_norm
        if norm is None:
            return resid
        flat = resid.reshape(1, -1, resid.shape[-1])  # norm components contract on [batch, pos, d_model]
        return norm(flat).reshape(resid.shape)

    def unembed(self, normed: Float[torch.Tensor, "*shape d_model"]) -> Float[torch.Tensor, "*shape vocab"]:
        """``normed @ W_U + b_U`` (any ``project_out`` folded in), then the adapter's output transform."""
        logits = normed @ self.unembedding_weights.to(normed.dtype)
        if self.unembedding_bias is not None:
            logits = logits + self.unembedding_bias
        transform = getattr(getattr(self.bridge, "adapter", None), "apply_output_logits_transform", None)
        return transform(logits) if callable(transform) else logits

    def _final_norm_parts(self) -> tuple[bool, torch.Tensor | None, torch.Tensor | None]:
        norm = self.final_norm
        if norm is None:
            from probes.errors import ProbesError

            raise ProbesError("this model has no final norm (ln_final); a frozen final norm needs one.")
        original = getattr(norm, "original_component", norm)
        centres = str(self.bridge.cfg.normalization_type).upper().startswith("LN")  # LayerNorm, not RMSNorm
        return centres, getattr(original, "weight", None), getattr(original, "bias", None)

    def frozen_final_norm(
        self, vectors: Float[torch.Tensor, "*shape d_model"], scale: Float[torch.Tensor, "*shape 1"]
    ) -> Float[torch.Tensor, "*shape d_model"]:
        """Centred (LayerNorm) or not (RMSNorm), divided by ``scale``, times the norm's weight."""
        centres, weight, _ = self._final_norm_parts()
        normed = vectors - vectors.mean(-1, keepdim=True) if centres else vectors
        if weight is not None:
            normed = normed * weight.float()
        return normed / scale

    @property
    def final_norm_bias(self) -> Float[torch.Tensor, " d_model"] | None:
        """``ln_final``'s bias (``None`` for RMSNorm)."""
        return self._final_norm_parts()[2]

    @property
    def head_output_weights(self) -> Float[torch.Tensor, "layer head d_head d_model"]:
        """The bridge's ``W_O``."""
        return self.bridge.W_O

    @property
    def unembedding_weights(self) -> Float[torch.Tensor, "d_model vocab"]:
        """The bridge's ``W_U``; with a ``project_out`` (OPT-350m), ``P^T W_U`` in float32, as wide as
        the residual stream (:mod:`probes.model.bridge.readout`)."""
        if "project_out" in self.bridge._modules:
            from probes.model.bridge.readout import readout_view

            return readout_view(self.bridge).W_U
        return self.bridge.W_U

    @property
    def unembedding_bias(self) -> Float[torch.Tensor, " vocab"] | None:
        """The bridge's ``b_U``, if it has one (with a ``project_out``'s bias folded in)."""
        if "project_out" in self.bridge._modules:
            from probes.model.bridge.readout import readout_view

            return readout_view(self.bridge).b_U
        return getattr(self.bridge, "b_U", None)
