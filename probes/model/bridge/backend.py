"""The bridge backend: a TransformerLens ``TransformerBridge`` and the Hugging Face model it wraps.

:class:`BridgeBackend` implements :class:`~probes.model.backend.Backend`: the bridge gives the
hook points, the weights and the logit readout; the Hugging Face model it wraps runs plain
forward passes, generation and the early-stopping residual hooks of
:mod:`probes.model.bridge.residual_catcher`. Per-family differences stay inside TransformerLens's
adapters and the norm's ``normalization_type``. :func:`wrap` boots the bridge around a loaded model.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import torch
from jaxtyping import Float, Int

from probes.errors import UnsupportedModelError
from probes.model.backend import HookFunction
from probes.model.bridge.plain_modules import cache_by_old_name, plain, plain_modules
from probes.model.bridge.residual_catcher import ResidualCatcher
from probes.model.hooked import HookedModel, loaded_weights

if TYPE_CHECKING:
    from transformers import PreTrainedModel

    from probes.model.specs import ModelSpec

__all__ = ["BridgeBackend", "wrap"]


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

    def mlps(self) -> list[torch.nn.Module]:
        """Each Hugging Face block's MLP (the module behind the bridge's MLP component)."""
        found = (getattr(block, "mlp", None) for block in self.bridge.blocks)
        return [plain(mlp) for mlp in found if isinstance(mlp, torch.nn.Module)]

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
        in float32 whatever the model's dtype, through any ``project_out``
        (:mod:`probes.model.bridge.readout`)."""
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


def wrap(spec: ModelSpec, hf_model: PreTrainedModel, tokenizer: Any, model_name: str) -> HookedModel:
    """A loaded transformers model behind a ``TransformerBridge`` (``model_name``: a hub id, or a
    name that resolves to nothing on the hub, so TransformerLens looks nothing up).

    Raises:
        UnsupportedModelError: TransformerLens has no adapter for the model's family, or its
            adapter cannot run it (one token through the hooked forward and the readout is tried
            here); the model is left as transformers built it.
    """
    from transformer_lens.model_bridge import TransformerBridge

    # The bridge sets missing special tokens on the tokenizer it is given: give it our own copy,
    # so a caller's tokenizer (saved or reused later) is never changed behind its back.
    tokenizer = copy.deepcopy(tokenizer)
    loaded = loaded_weights(hf_model)  # before the bridge adds its split copies of fused weights
    name_architecture(hf_model)
    architecture = type(hf_model).__name__
    try:
        bridge = TransformerBridge.boot_transformers(
            model_name, hf_model=hf_model, tokenizer=tokenizer, device=str(next(hf_model.parameters()).device)
        )
        bridge.eval()
        backend = BridgeBackend(bridge)
        _try_bridge(backend)
    except UnsupportedModelError as err:
        unbridge(hf_model)
        raise UnsupportedModelError(f"{architecture}: {err} Try --backend nnsight.") from None
    except (ValueError, AttributeError, KeyError, TypeError, NotImplementedError, RuntimeError) as err:
        unbridge(hf_model)
        first_line = str(err).splitlines()[0] if str(err) else type(err).__name__
        if "Could not determine supported architecture" in first_line:
            first_line = "TransformerLens has no adapter for it"
        raise UnsupportedModelError(
            f"TransformerLens's bridge cannot run {architecture} ({first_line[:200]}); use --backend "
            "nnsight, or leave --backend out (auto: the bridge where it can, else nnsight)."
        ) from None
    return HookedModel(spec=spec, backend=backend, tokenizer=tokenizer, **loaded)


def _try_bridge(backend: BridgeBackend) -> None:
    """One token through the bridge's hooked forward and its readout: a family whose adapter
    wraps the model but cannot run it (CodeGen's under transformers 5.x) fails here, at load."""
    ids = torch.zeros(1, 1, dtype=torch.long, device=backend.unembedding_device)
    with torch.inference_mode():
        backend.run_with_hooks(ids, torch.ones_like(ids), ())
        backend.log_probs(torch.zeros(1, backend.d_model, device=ids.device), ids[0], 1)


def unbridge(hf_model: PreTrainedModel) -> None:
    """Put back, for good, every Hugging Face module a bridge replaced by its component (after a
    bridge that failed half way), so another backend gets the model transformers built."""

    def visit(parent: torch.nn.Module) -> None:
        for name, child in list(parent._modules.items()):
            if child is None:
                continue
            module = plain(child)
            parent._modules[name] = module
            visit(module)

    visit(hf_model)


def name_architecture(hf_model: PreTrainedModel) -> None:
    """Name the model's class in its config's ``architectures`` where the config names none.

    TransformerLens picks its adapter from ``config.architectures``, else from a table of
    ``model_type``s that lacks many families it has adapters for (Falcon, OLMo, Granite, Cohere
    ...). A config built in memory or read from a GGUF file names no architecture; the loaded
    class (``FalconForCausalLM``) is the one the config would name, so the bridge is told that.
    """
    config = hf_model.config
    if not getattr(config, "architectures", None):
        config.architectures = [type(hf_model).__name__]
