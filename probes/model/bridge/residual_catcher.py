"""Reading the residual stream out of a Hugging Face model with plain forward hooks.

:class:`ResidualCatcher` is :class:`~probes.model.bridge.backend.BridgeBackend`'s residual reader:
hooks on the
blocks copy out the residual stream at chosen positions of chosen layers and stop the forward
pass after the last of them, so a lens over the first layers costs only those layers (the
vocabulary head is never run). It can also keep the prompts' key/value cache and read option
tokens as continuations of it (:meth:`ResidualCatcher.run_prompts`,
:meth:`ResidualCatcher.run_continuations`), so an item's prompt runs once whatever its options,
and it can pack several continuations of a prompt in one row (a 4D attention mask that lets each
token see the prompt and its own continuation only), so the cache is copied once per item.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import sys
from collections.abc import Sequence
from typing import Any

import torch
from jaxtyping import Bool, Float, Int

from probes.errors import ProbesError
from probes.model.bridge.plain_modules import plain_modules
from probes.model.readers import PromptCache


@functools.cache
def _kept_layer() -> type:
    """transformers' ``DynamicLayer``, but keeping its first keys and values as given.

    ``DynamicLayer`` concatenates even its first update onto an empty tensor: a copy of the
    whole prompt's keys and values per layer. The lens's caches are read once or grown by
    concatenation, which leaves the first tensors untouched, so they need no copy. A tensor that
    is a view into a larger buffer (GPT-NeoX's values are a chunk of the fused qkv projection) is
    copied, so that the cache does not keep the whole buffer alive.
    """
    from transformers.cache_utils import DynamicLayer

    def owned(tensor: torch.Tensor) -> torch.Tensor:
        whole = tensor.untyped_storage().nbytes() == tensor.numel() * tensor.element_size()
        return tensor if whole else tensor.clone()

    class KeptLayer(DynamicLayer):
        def update(self, key_states: Any, value_states: Any, *args: Any, **kwargs: Any) -> Any:
            if self.is_initialized:
                return super().update(key_states, value_states, *args, **kwargs)
            self.lazy_initialization(key_states, value_states)
            self.keys, self.values = owned(key_states), owned(value_states)
            return self.keys, self.values

    return KeptLayer


def _new_cache() -> Any:
    """An empty key/value cache of :func:`_kept_layer` layers."""
    from transformers.cache_utils import Cache

    return Cache(layer_class_to_replicate=_kept_layer())


class _StopForward(Exception):
    """Raised from the last needed block's hook to end the forward pass early."""


class ResidualCatcher:
    """Forward hooks on the Hugging Face blocks that copy out the residual stream at chosen
    positions of chosen layers, stopping the forward pass after the last of them.

    ``blocks`` are the plain Hugging Face blocks; each pass runs the model on its plain modules
    (:func:`probes.model.bridge.plain_modules.plain_modules`), not a bridge's components."""

    def __init__(
        self,
        hf_model: Any,
        blocks: Sequence[torch.nn.Module],
        layers: Sequence[int],
        device: torch.device | None = None,
    ) -> None:
        self.hf_model = hf_model
        #: Where kept vectors go: the unembedding's device (blocks may sit elsewhere under a device map).
        self.device = device
        self.blocks = list(blocks)
        self.layers = sorted(set(layers))
        self.batch_index: torch.Tensor | None = None
        self.position_index: torch.Tensor | None = None
        self.caught: dict[int, torch.Tensor] = {}
        self.handles: list[Any] = []

    @property
    def _cache_argument(self) -> str | None:
        """What the model's forward calls its key/value cache (``cache`` since transformers 5.x)."""
        parameters = inspect.signature(self.hf_model.forward).parameters
        return next((name for name in ("cache", "past_key_values") if name in parameters), None)

    @property
    def continues(self) -> bool:
        """Whether the model takes a cache and explicit positions, and every block has a full cache.

        Sliding-window and recurrent layers, and a read of the embeddings alone, fall back to
        whole rows.
        """
        parameters = inspect.signature(self.hf_model.forward).parameters
        config = self.hf_model.config
        layer_types = set(getattr(config, "layer_types", None) or ["full_attention"])
        # GPT-Neo's local layers window by cache column, which padding and packing shift
        local = "local" in set(getattr(config, "attention_layers", None) or [])
        return (
            self._cache_argument is not None
            and "position_ids" in parameters
            and not getattr(config, "is_encoder_decoder", False)
            and layer_types == {"full_attention"}
            and not getattr(config, "sliding_window", None)
            and not local
            and not getattr(config, "window_size", None)
            and self.layers[-1] > 0
        )

    @property
    def packs(self) -> bool:
        """Whether continuations can be packed in a row: the model builds its masks with
        transformers' masking utilities (which take a ready 4D mask as it is), attends through
        sdpa or eager attention (whose mask formats :meth:`_packed_mask` writes) and has no
        position bias computed from the 2D mask (ALiBi)."""
        module = sys.modules.get(type(self.hf_model).__module__)
        return (
            self.continues
            and getattr(module, "create_causal_mask", None) is not None
            and self.hf_model.config._attn_implementation in ("sdpa", "eager")
            and not getattr(self.hf_model.config, "alibi", False)
        )

    def _packed_mask(
        self,
        prompt_mask: Int[torch.Tensor, "batch prompt"],
        attention_mask: Int[torch.Tensor, "batch pos"],
        offsets: Int[torch.Tensor, "batch pos"],
    ) -> Bool[torch.Tensor, "batch 1 pos key"] | Float[torch.Tensor, "batch 1 pos key"]:
        """The 4D mask ``[batch, 1, pos, prompt + pos]`` of rows that pack several continuations:
        each token sees its prompt's tokens and the earlier tokens of its own continuation (those
        whose start, position less offset, is its own). Boolean for sdpa, additive for eager."""
        here = torch.arange(offsets.shape[1], device=offsets.device)
        start = here - offsets
        own = (start[:, :, None] == start[:, None, :]) & (here[:, None] >= here[None, :])
        own &= attention_mask.bool()[:, None, :]
        seen = prompt_mask.bool()[:, None, :].expand(-1, offsets.shape[1], -1)
        allowed = torch.cat([seen, own], dim=-1)[:, None]
        if self.hf_model.config._attn_implementation == "sdpa":
            return allowed
        dtype = self.hf_model.dtype
        return torch.zeros(allowed.shape, dtype=dtype, device=allowed.device).masked_fill(
            ~allowed, torch.finfo(dtype).min
        )

    def _keep(self, layer: int, hidden: torch.Tensor) -> None:
        assert self.batch_index is not None and self.position_index is not None
        rows, positions = self.batch_index.to(hidden.device), self.position_index.to(hidden.device)
        self.caught[layer] = hidden[rows, positions].detach().to(self.device or hidden.device)

    def __enter__(self) -> ResidualCatcher:
        # Attention weights are not needed here: transformers' fused attention where it has one.
        self.attention = self.hf_model.config._attn_implementation
        with contextlib.suppress(ValueError, ImportError):  # no SDPA path: keep its own
            self.hf_model.set_attn_implementation("sdpa")
        last = self.layers[-1]
        if 0 in self.layers:

            def embed_hook(module: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
                hidden = args[0] if args else kwargs["hidden_states"]
                self._keep(0, hidden)
                if last == 0:
                    raise _StopForward

            self.handles.append(self.blocks[0].register_forward_pre_hook(embed_hook, with_kwargs=True))
        for layer in self.layers:
            if layer == 0:
                continue

            def block_hook(module: Any, args: Any, output: Any, layer: int = layer) -> None:
                self._keep(layer, output[0] if isinstance(output, tuple) else output)
                if layer == last:
                    raise _StopForward

            self.handles.append(self.blocks[layer - 1].register_forward_hook(block_hook))
        return self

    def __exit__(self, *exc: object) -> None:
        for handle in self.handles:
            handle.remove()
        self.handles.clear()
        if self.hf_model.config._attn_implementation != self.attention:
            self.hf_model.set_attn_implementation(self.attention)

    def run(
        self,
        input_ids: Int[torch.Tensor, "batch pos"],
        attention_mask: Int[torch.Tensor, "batch pos"],
        batch_index: Int[torch.Tensor, " row"],
        position_index: Int[torch.Tensor, " row"],
    ) -> Float[torch.Tensor, "layer row d_model"]:
        """Run the model on a batch; return the kept vectors, layers in sorted order."""
        return self._catch(batch_index, position_index, input_ids=input_ids, attention_mask=attention_mask)

    def _catch(
        self,
        batch_index: Int[torch.Tensor, " row"],
        position_index: Int[torch.Tensor, " row"],
        **forward: Any,
    ) -> Float[torch.Tensor, "layer row d_model"]:
        """One forward pass with ``forward``'s arguments (cache off unless they pass one), stopped after
        the last kept layer; the vectors kept at (``batch_index``, ``position_index``), layers sorted."""
        self.batch_index, self.position_index = batch_index, position_index
        self.caught = {}
        # The plain modules, not a bridge's components, for the pass only (probes.model.bridge.plain_modules):
        # the readout between passes sees the bridge as it is.
        with contextlib.suppress(_StopForward), plain_modules(self.hf_model):
            self.hf_model(**{"use_cache": False, **forward})
        return torch.stack([self.caught[layer] for layer in self.layers])

    def run_prompts(
        self,
        input_ids: Int[torch.Tensor, "batch pos"],
        attention_mask: Int[torch.Tensor, "batch pos"],
        batch_index: Int[torch.Tensor, " row"],
        position_index: Int[torch.Tensor, " row"],
    ) -> tuple[Float[torch.Tensor, "layer row d_model"], PromptCache | None]:
        """:meth:`run` keeping the key/value cache of the blocks that ran (``None`` if a block kept none)."""
        past = _new_cache()
        resid = self._catch(
            batch_index,
            position_index,
            input_ids=input_ids,
            attention_mask=attention_mask,
            use_cache=True,
            **{str(self._cache_argument): past},
        )
        return resid, self._kept(past, attention_mask)

    def run_continuations(
        self,
        prompts: PromptCache,
        prompt_rows: Int[torch.Tensor, " batch"],
        input_ids: Int[torch.Tensor, "batch pos"],
        attention_mask: Int[torch.Tensor, "batch pos"],
        batch_index: Int[torch.Tensor, " row"],
        position_index: Int[torch.Tensor, " row"],
        offsets: Int[torch.Tensor, "batch pos"] | None = None,
    ) -> Float[torch.Tensor, "layer row d_model"]:
        """Tokens that follow each row's prompt, on its cache rows (copied only where they are not
        every prompt row in order).

        The prompts are right-padded, so the cache has padding between a short prompt and its
        continuation: the attention mask hides it and the positions are given explicitly
        (prompt length plus ``offsets``), so each row computes what its unpadded sequence would.
        ``offsets`` that restart within a row pack several continuations there (:attr:`packs`).
        """
        return self._continue(
            prompts, prompt_rows, input_ids, attention_mask, batch_index, position_index, offsets
        )[0]

    def continue_prompts(
        self,
        prompts: PromptCache,
        prompt_rows: Int[torch.Tensor, " batch"],
        input_ids: Int[torch.Tensor, "batch pos"],
        attention_mask: Int[torch.Tensor, "batch pos"],
        batch_index: Int[torch.Tensor, " row"],
        position_index: Int[torch.Tensor, " row"],
    ) -> tuple[Float[torch.Tensor, "layer row d_model"], PromptCache | None]:
        """:meth:`run_continuations` that keeps the grown cache (prompt + continuation), so the
        rows can be continued in turn (prompts that share a start: the start, then each rest)."""
        return self._continue(prompts, prompt_rows, input_ids, attention_mask, batch_index, position_index)

    def _continue(
        self,
        prompts: PromptCache,
        prompt_rows: Int[torch.Tensor, " batch"],
        input_ids: Int[torch.Tensor, "batch pos"],
        attention_mask: Int[torch.Tensor, "batch pos"],
        batch_index: Int[torch.Tensor, " row"],
        position_index: Int[torch.Tensor, " row"],
        offsets: Int[torch.Tensor, "batch pos"] | None = None,
    ) -> tuple[Float[torch.Tensor, "layer row d_model"], PromptCache | None]:
        past = _new_cache()
        every_row = torch.arange(prompts.attention_mask.shape[0], device=prompt_rows.device)
        rows = None if torch.equal(prompt_rows, every_row) else prompt_rows  # None: the cache as it is
        for layer_index, layer in enumerate(prompts.past.layers):
            if getattr(layer, "is_initialized", False):
                keys, values = layer.keys, layer.values
                if rows is not None:  # blocks may sit on several devices (a device map)
                    keys, values = keys[rows.to(keys.device)], values[rows.to(values.device)]
                past.update(keys, values, layer_index)
        prompt_mask = prompts.attention_mask[prompt_rows]
        straight = torch.arange(input_ids.shape[1], device=input_ids.device).expand_as(input_ids)
        offsets = straight if offsets is None else offsets.to(input_ids.device)
        packed = not torch.equal(offsets, straight)
        position_ids = prompt_mask.sum(-1, keepdim=True) + offsets
        if packed:
            if not self.packs:
                raise ProbesError(
                    f"{type(self.hf_model).__name__} cannot read continuations packed in a row "
                    "(ResidualCatcher.packs is False): pass offsets=None, one continuation per row."
                )
            mask = self._packed_mask(prompt_mask, attention_mask, offsets)
        else:
            mask = torch.cat([prompt_mask, attention_mask], dim=-1)
        resid = self._catch(
            batch_index,
            position_index,
            input_ids=input_ids,
            attention_mask=mask,
            position_ids=position_ids,
            use_cache=True,
            **{str(self._cache_argument): past},
        )
        return resid, None if packed else self._kept(past, mask)

    def _kept(self, past: Any, attention_mask: Int[torch.Tensor, "batch pos"]) -> PromptCache | None:
        """The pass's cache (``attention_mask`` wide), or ``None`` where a block that ran kept none."""
        filled = [getattr(layer, "is_initialized", False) for layer in past.layers]
        if len(filled) < self.layers[-1] or not all(filled[: self.layers[-1]]):
            return None  # some block kept no cache: continuations would be wrong
        if past.get_seq_length() != attention_mask.shape[1]:
            return None
        return PromptCache(past, attention_mask)
