"""One model in the toolkit's standard view: the one door every analysis goes through.

:class:`HookedModel` offers the sizes (layers, heads, ``d_model``, context length), the
hook points of the residual stream and of attention, MLP and head outputs, residuals at
chosen layers and positions (the forward pass stops after the last one), logits, hooked
forward passes, generation, the final norm and the unembedding. It asks its
:class:`~probes.model.backend.Backend` for all of them, so per-architecture differences live in
one place; :mod:`probes.model.loading` loads models into this view.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch
from jaxtyping import Float, Int

from probes.errors import InvalidItemError, UnsupportedModelError
from probes.model import backend as backend_module
from probes.model.backend import Backend, HookFunction
from probes.model.readers import ResidualReader

if TYPE_CHECKING:
    from transformers import PreTrainedModel

    from probes.model.specs import ModelSpec


@dataclass
class HookedModel:
    """One model in the toolkit's standard view: the one door every analysis goes through.

    Layer ``0`` of the residual stream is the embedding output (the input of the
    first block); layer ``l`` is the output of block ``l - 1``; so a model has
    ``n_layers + 1`` readable layers. Everything that depends on how the model is
    run, hooked or normed is asked of its :class:`~probes.model.backend.Backend`.
    """

    spec: ModelSpec
    backend: Backend
    tokenizer: Any  # transformers.PreTrainedTokenizerBase
    #: Parameters of the model as loaded, counted before bridging: the bridge adds split
    #: copies of fused weights (GPT-NeoX's qkv as q, k and v), which must not count twice.
    n_parameters: int = 0
    #: The parameters as loaded, in the model's order, before any wrapper added copies: what
    #: names this model's weights (:func:`probes.lenses.tuned.access.model_fingerprint`) whichever
    #: backend runs it. Empty where the loader kept none (then the backend's parameters stand in).
    weights: tuple[torch.nn.Parameter, ...] = field(default=(), repr=False, compare=False)

    @property
    def name(self) -> str:
        """The label under which results of this model are stored."""
        return self.spec.label

    @property
    def bridge(self) -> Any:
        """The TransformerLens bridge, for users' own experiments (the toolkit never uses it).

        Raises:
            UnsupportedModelError: The model runs with another backend (``--backend auto`` falls
                back to nnsight where the bridge cannot take a model).
        """
        bridge = getattr(self.backend, "bridge", None)
        if bridge is None:
            raise UnsupportedModelError(
                f"{self.name} runs with the {getattr(self.backend, 'kind', 'nnsight')} backend, which has no "
                "TransformerLens bridge; load it with backend='bridge' (--backend bridge) where the bridge "
                "can take the model (docs/models.md)."
            )
        return bridge

    @property
    def hf_model(self) -> PreTrainedModel:
        """The wrapped Hugging Face model, for users' own experiments (the toolkit never uses it)."""
        return self.backend.hf_model

    @property
    def blocks(self) -> list[torch.nn.Module]:
        """The transformer blocks, first to last."""
        return list(self.backend.blocks)

    def mlps(self) -> list[torch.nn.Module]:
        """Each block's MLP, as the forward pass runs it (for ``torch.compile``)."""
        return self.backend.mlps()

    @property
    def n_layers(self) -> int:
        """Number of transformer blocks."""
        return self.backend.n_layers

    @property
    def d_model(self) -> int:
        """Width of the residual stream."""
        return self.backend.d_model

    @property
    def n_ctx(self) -> int:
        """Longest sequence (prompt plus answer) the model accepts."""
        return self.backend.n_ctx

    @property
    def n_heads(self) -> int:
        """Attention heads per block."""
        return self.backend.n_heads

    @property
    def final_norm(self) -> torch.nn.Module | None:
        """The norm applied to the last residual stream before unembedding, if any."""
        return getattr(self.backend, "final_norm", None)

    @property
    def resid_hook_names(self) -> list[str]:
        """Hook points of the readable layers of the residual stream, layer 0 first."""
        return [self.resid_hook(layer) for layer in range(self.n_layers + 1)]

    def resid_hook(self, layer: int) -> str:
        """Hook point of residual layer ``layer`` (0 = embeddings, ``n_layers`` = the last block's output)."""
        return backend_module.resid_hook(layer, self.n_layers)

    def head_hook(self, layer: int) -> str:
        """Hook point of block ``layer``'s per-head attention outputs (``z``: batch pos head d_head)."""
        return backend_module.head_hook(layer)

    def attn_out_hook(self, layer: int) -> str:
        """Hook point of block ``layer``'s attention output (every head plus the output bias)."""
        return backend_module.attn_out_hook(layer)

    def mlp_out_hook(self, layer: int) -> str:
        """Hook point of block ``layer``'s MLP output."""
        return backend_module.mlp_out_hook(layer)

    @property
    def final_norm_scale_hook(self) -> str:
        """Hook point of the final norm's per-position scale (``batch pos 1``)."""
        return backend_module.FINAL_NORM_SCALE_HOOK

    def hook_points(self) -> set[str]:
        """Every hook point :meth:`run_with_hooks` accepts."""
        return self.backend.hook_points()

    def residual_reader(self, layers: Sequence[int]) -> contextlib.AbstractContextManager[ResidualReader]:
        """A context that reads residual ``layers`` at chosen positions, batch by batch.

        Only the asked-for positions are kept and the forward pass stops after the
        last asked-for layer; use it around a loop of batches.
        """
        return self.backend.residual_reader(layers)

    def residuals_at(
        self,
        input_ids: Int[torch.Tensor, "batch pos"],
        attention_mask: Int[torch.Tensor, "batch pos"],
        layers: Sequence[int],
        batch_index: Int[torch.Tensor, " row"],
        position_index: Int[torch.Tensor, " row"],
    ) -> Float[torch.Tensor, "layer row d_model"]:
        """Residual vectors of ``layers`` (sorted) at ``(batch_index[row], position_index[row])``."""
        with self.residual_reader(layers) as reader:
            return reader.run(input_ids, attention_mask, batch_index, position_index)

    def logits(
        self,
        input_ids: Int[torch.Tensor, "batch pos"],
        attention_mask: Int[torch.Tensor, "batch pos"] | None = None,
    ) -> Float[torch.Tensor, "batch pos vocab"]:
        """The model's output logits of a plain forward pass."""
        return self.backend.logits(input_ids, attention_mask)

    def run_with_hooks(
        self,
        input_ids: Int[torch.Tensor, "batch pos"],
        attention_mask: Int[torch.Tensor, "batch pos"],
        hooks: Sequence[tuple[str, HookFunction]] = (),
    ) -> Float[torch.Tensor, "batch pos vocab"]:
        """Output logits with ``(hook point, function)`` hooks that may read or replace activations."""
        return self.backend.run_with_hooks(input_ids, attention_mask, hooks)

    def generate(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        """Prompts plus continuations (keyword arguments as Hugging Face ``generate`` takes them)."""
        return self.backend.generate(input_ids, attention_mask, **kwargs)

    def log_probs(
        self,
        resid: Float[torch.Tensor, "*shape d_model"],
        targets: Int[torch.Tensor, "*shape"],
        chunk_size: int = 256,
    ) -> Float[torch.Tensor, "*shape"]:
        """Log-prob of each target token read from each residual vector (final norm, unembedding)."""
        self._check_targets(targets)
        return self.backend.log_probs(resid, targets, chunk_size)

    def log_probs_at(
        self,
        resid: Float[torch.Tensor, "*lead vector d_model"],
        vector: Int[torch.Tensor, " read"],
        targets: Int[torch.Tensor, " read"],
        chunk_size: int = 256,
    ) -> Float[torch.Tensor, "*lead read"]:
        """Log-prob of ``targets[r]`` read from ``resid[..., vector[r], :]``, each vector's
        log-softmax computed once however many targets are read from it (a backend without
        ``log_probs_at`` reads the vectors repeated through :meth:`log_probs`: same numbers)."""
        self._check_targets(targets)
        at = getattr(self.backend, "log_probs_at", None)
        if at is not None:
            return at(resid, vector, targets, chunk_size)
        lead = resid.shape[:-2]
        return self.backend.log_probs(resid[..., vector, :], targets.expand(*lead, -1), chunk_size)

    def _check_targets(self, targets: Int[torch.Tensor, "*shape"]) -> None:
        """A target id outside the unembedding is a tokenizer that does not match the model: a
        clear error, not an index error from deep in torch or (read in vocabulary blocks) a
        log-prob read from memory no block wrote."""
        if targets.numel() == 0:
            return
        vocab = int(self.unembedding_weights.shape[-1])
        low, high = int(targets.min()), int(targets.max())
        if low < 0 or high >= vocab:
            raise InvalidItemError(
                f"token id {low if low < 0 else high} is outside {self.name}'s unembedding of {vocab} "
                "tokens: the tokenizer has ids that the model cannot read out; load the model with "
                "its own tokenizer."
            )

    def apply_final_norm(
        self, resid: Float[torch.Tensor, "*shape d_model"]
    ) -> Float[torch.Tensor, "*shape d_model"]:
        """The final norm with its statistics computed per vector."""
        return self.backend.apply_final_norm(resid)

    def unembed(self, normed: Float[torch.Tensor, "*shape d_model"]) -> Float[torch.Tensor, "*shape vocab"]:
        """Logits of vectors already through the final norm."""
        return self.backend.unembed(normed)

    def frozen_final_norm(
        self, vectors: Float[torch.Tensor, "*shape d_model"], scale: Float[torch.Tensor, "*shape 1"]
    ) -> Float[torch.Tensor, "*shape d_model"]:
        """The final norm's linear part with its scale frozen at ``scale`` (the bias apart)."""
        return self.backend.frozen_final_norm(vectors, scale)

    @property
    def final_norm_bias(self) -> Float[torch.Tensor, " d_model"] | None:
        """The final norm's bias, if it has one."""
        return self.backend.final_norm_bias

    @property
    def head_output_weights(self) -> Float[torch.Tensor, "layer head d_head d_model"]:
        """Each head's output matrix ``W_O``."""
        return self.backend.head_output_weights

    @property
    def unembedding_weights(self) -> Float[torch.Tensor, "d_model vocab"]:
        """The unembedding matrix ``W_U``."""
        return self.backend.unembedding_weights

    @property
    def unembedding_bias(self) -> Float[torch.Tensor, " vocab"] | None:
        """The unembedding bias ``b_U``, if the model has one."""
        return self.backend.unembedding_bias

    @property
    def parameters(self) -> int:
        """Total parameter count of the model as loaded (tied embeddings counted once)."""
        return self.n_parameters or sum(p.numel() for p in self.backend.parameters())

    @property
    def device(self) -> torch.device:
        """Where inputs go: the backend's say (a remote model's inputs stay here), else the device
        of the model's first parameter."""
        device = getattr(self.backend, "device", None)
        return device if isinstance(device, torch.device) else next(self.backend.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        """dtype of the model's first floating-point parameter."""
        return next(p.dtype for p in self.backend.parameters() if p.is_floating_point())

    def describe(self) -> dict[str, Any]:
        """What results need to say about this model (for manifests and rows)."""
        return {
            "model": self.name,
            "model_name": self.spec.name,
            "revision": self.spec.revision,
            "source": self.spec.source,
            "architecture": self.backend.architecture,
            "backend": getattr(self.backend, "kind", "bridge"),
            "parameters": self.parameters,
            "n_layers": self.n_layers,
            "d_model": self.d_model,
            "n_ctx": self.n_ctx,
            "dtype": str(self.dtype).removeprefix("torch."),
            "device": str(self.device),
        }


def loaded_weights(hf_model: PreTrainedModel) -> dict[str, Any]:
    """The :class:`HookedModel` fields taken from the weights as loaded, before any backend wraps
    them: the parameters in the model's order and their count."""
    weights = tuple(hf_model.parameters())
    return {"weights": weights, "n_parameters": sum(p.numel() for p in weights)}
