"""The second implementation of the :class:`~probes.model.bridge.backend.Backend` protocol: nnsight tracing.

:class:`NNsightBackend` runs a Hugging Face causal LM through nnsight's ``TransformersModel``
(the text-generation model ``LanguageModel`` names, without its deprecation): the residual stream,
attention heads, attention and MLP outputs and the final norm's scale are read and replaced
inside ``model.trace(...)`` blocks (``.input``/``.output``, ``.save()``, assignment), so the same
code runs on a local model and, with ``remote=True``, on a model hosted by NDIF (the API key from
``NDIF_API_KEY``; nnsight reads it). ``remote="local"`` is nnsight's local simulation of a remote
request: the trace is serialized and deserialized as a server would, then run here.

Hook points keep the TransformerLens names the bridge uses (:mod:`probes.model.bridge.backend`), so every
analysis runs unchanged; :class:`~probes.model.nnsight.layout.Layout` says which module each one is.
The final norm and unembedding are read in float32 from the model's own modules, as the bridge's
readout does. The residual reader stops the trace after the last asked-for layer and keeps only
the asked-for positions; it keeps no key/value cache, so the lens reads options as whole rows.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Sequence
from typing import Any

import torch
from jaxtyping import Float, Int

from probes.errors import ProbesError
from probes.model.backend import (
    FINAL_NORM_SCALE_HOOK,
    HookFunction,
    attn_out_hook,
    head_hook,
    mlp_out_hook,
    resid_hook,
)
from probes.model.nnsight.hooks import apply_hooks, plan_hooks
from probes.model.nnsight.layout import Layout, resolve
from probes.model.output_transform import output_transform

__all__ = ["NNsightBackend", "NNsightReader", "nnsight_model"]


def nnsight_model(hf_model: Any, tokenizer: Any) -> Any:
    """nnsight's text-generation wrapper around an already loaded Hugging Face model."""
    try:
        from nnsight import TransformersModel
    except ImportError as err:
        raise ProbesError(
            f"--backend nnsight needs nnsight: pip install 'probes[nnsight]' ({err})."
        ) from None
    return TransformersModel(hf_model, task="text-generation", tokenizer=tokenizer)


class NNsightReader:
    """Reads residual layers at chosen rows and positions in one trace that stops after the last."""

    #: No key/value cache is kept across traces: the lens reads options as whole rows.
    continues = False
    packs = False

    def __init__(self, backend: NNsightBackend, layers: Sequence[int]) -> None:
        self.backend = backend
        self.layers = sorted(set(layers))

    def __enter__(self) -> NNsightReader:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def run(
        self,
        input_ids: Int[torch.Tensor, "batch pos"],
        attention_mask: Int[torch.Tensor, "batch pos"],
        batch_index: Int[torch.Tensor, " row"],
        position_index: Int[torch.Tensor, " row"],
    ) -> Float[torch.Tensor, "layer row d_model"]:
        """The kept vectors of one batch, layers in sorted order, on the unembedding's device."""
        model, blocks, layers = (
            self.backend.model,
            self.backend.layout.blocks(self.backend.model),
            self.layers,
        )
        inputs = {"input_ids": input_ids, "attention_mask": attention_mask}
        with model.trace(inputs, use_cache=False, **self.backend.trace_options) as tracer:
            kept = []
            for layer in layers:
                hidden = blocks[0].input if layer == 0 else blocks[layer - 1].output
                hidden = hidden[0] if isinstance(hidden, tuple) else hidden
                rows = batch_index.to(hidden.device)
                kept.append(hidden[rows, position_index.to(hidden.device)].detach())
            kept = kept.save()
            tracer.stop()
        device = self.backend.unembedding_device
        return torch.stack([vectors.to(device) for vectors in kept])


class NNsightBackend:
    """A Hugging Face causal LM driven through nnsight's tracing (locally, or on NDIF)."""

    def __init__(self, model: Any, remote: bool | str = False) -> None:
        #: The backend's name in result manifests.
        self.kind = "nnsight remote" if remote is True else "nnsight"
        self.model = model
        self.remote = remote
        self.layout = Layout.of(model._module)
        #: Local copies of remote modules' weights (and the float32 readout), by path.
        self._fetched: dict[str, Any] = {}

    @property
    def remote(self) -> bool | str:
        """``True``: traces run on NDIF; ``"local"``: nnsight's local simulation of that; else here."""
        return self._remote

    @remote.setter
    def remote(self, remote: bool | str) -> None:
        if remote:
            from nnsight import register

            # The hooks and helpers a trace calls are ours: ship their source with the request.
            register("probes")
        self._remote = remote

    @property
    def hf_model(self) -> Any:
        """The Hugging Face model nnsight wraps."""
        return self.model._module

    @property
    def trace_options(self) -> dict[str, Any]:
        """Keyword arguments of every trace: ``remote`` when the model runs on NDIF."""
        return {"remote": self.remote} if self.remote else {}

    @property
    def config(self) -> Any:
        return self.hf_model.config

    @property
    def n_layers(self) -> int:
        """Number of transformer blocks."""
        return len(self.layout.blocks(self.hf_model))

    @property
    def d_model(self) -> int:
        """Width of the residual stream."""
        return int(self.config.hidden_size)

    @property
    def n_ctx(self) -> int:
        """Longest sequence the model accepts."""
        return int(getattr(self.config, "max_position_embeddings", None) or self.config.n_positions)

    @property
    def n_heads(self) -> int:
        """Attention heads per block."""
        return int(self.config.num_attention_heads)

    @property
    def architecture(self) -> str:
        """Class name of the wrapped Hugging Face model."""
        return type(self.hf_model).__name__

    @property
    def blocks(self) -> list[torch.nn.Module]:
        """The transformer blocks, first to last."""
        return list(self.layout.blocks(self.hf_model))

    def mlps(self) -> list[torch.nn.Module]:
        """Each block's MLP (the layout's ``mlp_path`` in every block)."""
        return [resolve(block, self.layout.mlp_path) for block in self.blocks]

    @property
    def final_norm(self) -> torch.nn.Module | None:
        """The norm applied to the last residual stream before unembedding."""
        return self.layout.final_norm(self.hf_model)

    def parameters(self) -> Iterator[torch.nn.Parameter]:
        """The Hugging Face model's parameters."""
        return self.hf_model.parameters()

    def hook_points(self) -> set[str]:
        """The TransformerLens names of the points :meth:`run_with_hooks` can reach (the final norm's
        scale only where the model has a final norm)."""
        n = self.n_layers
        per_layer = {hook(layer) for layer in range(n) for hook in (head_hook, attn_out_hook, mlp_out_hook)}
        scale = {FINAL_NORM_SCALE_HOOK} if self.layout.final_norm_path else set()
        return per_layer | {resid_hook(layer, n) for layer in range(n + 1)} | scale

    def residual_reader(self, layers: Sequence[int]) -> NNsightReader:
        """A reader that stops each trace after the last of ``layers``."""
        return NNsightReader(self, layers)

    def logits(
        self, input_ids: Int[torch.Tensor, "batch pos"], attention_mask: Int[torch.Tensor, "batch pos"] | None
    ) -> Float[torch.Tensor, "batch pos vocab"]:
        """The model's output logits, from one trace."""
        return self.run_with_hooks(input_ids, attention_mask, ())

    def run_with_hooks(
        self,
        input_ids: Int[torch.Tensor, "batch pos"],
        attention_mask: Int[torch.Tensor, "batch pos"] | None,
        hooks: Sequence[tuple[str, HookFunction]],
    ) -> Float[torch.Tensor, "batch pos vocab"]:
        """Output logits of one trace in which each hook reads, and may replace, its point's value.

        Hooks run in forward order (nnsight serves values in the order the model makes them);
        several on one point run in the order given, each seeing the last one's replacement.
        """
        # The trace's body names only these locals: a remote request ships them, not the backend.
        plan = plan_hooks(hooks, self.n_layers, self.architecture)
        model, layout, n_heads = self.model, self.layout, self.n_heads
        inputs = {"input_ids": input_ids}
        if attention_mask is not None:
            inputs["attention_mask"] = attention_mask
        with model.trace(inputs, use_cache=False, **self.trace_options):
            for (layer, step), name, functions in plan:
                apply_hooks(model, layout, layer, step, name, functions, n_heads, tuple(input_ids.shape))
            logits = model.output.logits.save()
        return logits

    def generate(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        """Prompts plus continuations, from nnsight's ``generate`` (Hugging Face arguments)."""
        inputs = {"input_ids": input_ids, "attention_mask": attention_mask}
        with self.model.generate(inputs, **kwargs, **self.trace_options) as tracer:
            tokens = tracer.result.save()
        return tokens

    def _part(self, path: str) -> torch.nn.Module:
        """The module at ``path`` with real weights: the model's own, or (remote) a local copy of the
        server's, fetched once (:func:`fetch_module`)."""
        if not self.remote:
            return self.layout.envoy(self.hf_model, path)
        if path not in self._fetched:
            self._fetched[path] = fetch_module(self.model, path, self.trace_options)
        return self._fetched[path]

    @property
    def _readout(self) -> tuple[torch.nn.Module, torch.nn.Module]:
        """float32 copies of the final norm (the identity where there is none) and the unembedding,
        after any ``project_out`` (the model's forward is untouched)."""
        if "readout" not in self._fetched:
            layout = self.layout
            norm = self._part(layout.final_norm_path) if layout.final_norm_path else torch.nn.Identity()
            unembed = copy.deepcopy(self._part(layout.unembedding_path)).float()
            if layout.project_out_path:
                unembed = torch.nn.Sequential(
                    copy.deepcopy(self._part(layout.project_out_path)).float(), unembed
                )
            self._fetched["readout"] = (copy.deepcopy(norm).float(), unembed)
        return self._fetched["readout"]  # type: ignore[return-value]

    @property
    def unembedding_device(self) -> torch.device:
        """Where the unembedding lives (with a device map, kept vectors are moved there)."""
        return self._part(self.layout.unembedding_path).weight.device

    @property
    def device(self) -> torch.device:
        """Where inputs go: the first parameter's device; the CPU when the model runs remotely."""
        return torch.device("cpu") if self.remote else next(self.parameters()).device

    def log_probs(
        self,
        resid: Float[torch.Tensor, "*shape d_model"],
        targets: Int[torch.Tensor, "*shape"],
        chunk_size: int,
    ) -> Float[torch.Tensor, "*shape"]:
        """Final norm per vector, unembedding, log-softmax, in float32, ``chunk_size`` vectors at a time
        (``targets`` broadcast over the leading dimensions of ``resid``, as TransformerLens's readout)."""
        norm, unembed = self._readout
        targets = targets.expand(resid.shape[:-1])
        flat, flat_targets = resid.reshape(-1, resid.shape[-1]).float(), targets.reshape(-1)
        values = [
            self._transformed(unembed(norm(flat[start : start + chunk_size])))
            .log_softmax(-1)
            .gather(-1, flat_targets[start : start + chunk_size, None].to(flat.device))[:, 0]
            for start in range(0, flat.shape[0], chunk_size)
        ]
        return torch.cat(values).reshape(targets.shape)

    def apply_final_norm(
        self, resid: Float[torch.Tensor, "*shape d_model"]
    ) -> Float[torch.Tensor, "*shape d_model"]:
        """The model's final norm (statistics per vector; the identity where there is none)."""
        return self._part(self.layout.final_norm_path)(resid) if self.layout.final_norm_path else resid

    def unembed(self, normed: Float[torch.Tensor, "*shape d_model"]) -> Float[torch.Tensor, "*shape vocab"]:
        """The model's unembedding and what its forward does to the logits after it (a scale, a
        soft cap: :mod:`probes.model.output_transform`)."""
        if self.layout.project_out_path:
            normed = self._part(self.layout.project_out_path)(normed)
        return self._transformed(self._part(self.layout.unembedding_path)(normed))

    def _transformed(
        self, logits: Float[torch.Tensor, "*shape vocab"]
    ) -> Float[torch.Tensor, "*shape vocab"]:
        transform = output_transform(self.config)
        return logits if transform is None else transform(logits)

    def frozen_final_norm(
        self, vectors: Float[torch.Tensor, "*shape d_model"], scale: Float[torch.Tensor, "*shape 1"]
    ) -> Float[torch.Tensor, "*shape d_model"]:
        """Centred (LayerNorm) or not (RMSNorm), divided by ``scale``, times the norm's weight."""
        if not self.layout.final_norm_path:
            raise ProbesError(f"{self.architecture} has no final norm; a frozen final norm needs one.")
        norm = self._part(self.layout.final_norm_path)
        normed = vectors - vectors.mean(-1, keepdim=True) if self.layout.centres(self.hf_model) else vectors
        weight = getattr(norm, "weight", None)
        if weight is not None:
            normed = normed * weight.float()
        return normed / scale

    @property
    def final_norm_bias(self) -> Float[torch.Tensor, " d_model"] | None:
        """The final norm's bias (``None`` for RMSNorm or no final norm)."""
        if not self.layout.final_norm_path:
            return None
        return getattr(self._part(self.layout.final_norm_path), "bias", None)

    @property
    def head_output_weights(self) -> Float[torch.Tensor, "layer head d_head d_model"]:
        """Each head's slice of its block's attention output projection (remote: fetched once per block)."""
        matrices = [
            self.layout.output_matrix(
                self._part(f"{self.layout.blocks_path}.{layer}.{self.layout.output_projection_path}")
            )
            for layer in range(self.n_layers)
        ]
        return torch.stack([m.reshape(self.n_heads, -1, self.d_model) for m in matrices])

    @property
    def unembedding_weights(self) -> Float[torch.Tensor, "d_model vocab"]:
        """The unembedding matrix, ``d_model x vocab`` (a ``project_out`` folded in: ``P^T W_U``)."""
        weight = self._part(self.layout.unembedding_path).weight.T
        if self.layout.project_out_path:
            weight = self._part(self.layout.project_out_path).weight.T @ weight
        return weight

    @property
    def unembedding_bias(self) -> Float[torch.Tensor, " vocab"] | None:
        """The unembedding's bias, if any."""
        return getattr(self._part(self.layout.unembedding_path), "bias", None)


def fetch_module(model: Any, path: str, trace_options: dict[str, Any]) -> torch.nn.Module:
    """A local copy of the module at ``path`` with the weights the (remote) model holds.

    One trace on a one-token input saves the module's state dict and stops; the copy is built
    from the local (meta) module's structure on the CPU.
    """
    envoy = resolve(model, path)
    with model.trace({"input_ids": torch.zeros(1, 1, dtype=torch.long)}, **trace_options) as tracer:
        state = envoy._module.state_dict()
        state = state.save()
        tracer.stop()
    local = copy.deepcopy(resolve(model._module, path))
    if any(p.is_meta for p in local.parameters()):
        local = local.to_empty(device="cpu")
    local.load_state_dict({name: value.detach().cpu() for name, value in state.items()})
    return local.eval()
