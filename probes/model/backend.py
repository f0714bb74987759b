"""The backend protocol: what the toolkit needs of a loaded model, and the registry of backends.

Every analysis (lens, chain-of-thought, perplexity, attribution, ablation, patching) asks
:class:`~probes.model.hooked.HookedModel` for what it needs, and the model asks its
:class:`Backend`. A backend is the only place that knows how a model is run and hooked, what its
hook points are called and how its final norm works; nothing else in ``probes`` reaches the
Hugging Face model or branches on an architecture. Hook points are named as TransformerLens
names them; :func:`head_hook`, :func:`attn_out_hook`, :func:`mlp_out_hook` and :func:`resid_hook`
are the one place that spells them.

Backends register themselves: any module or subpackage directly inside :mod:`probes.model` that
defines ``BACKEND``, a :class:`BackendKind`, is one (``--backend NAME``), so adding a backend is
one new file; code outside the package calls :func:`register_backend`. The two that ship are
:mod:`probes.model.bridge` (TransformerLens's ``TransformerBridge``, the default) and
:mod:`probes.model.nnsight` (nnsight's tracing, locally or on NDIF).
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import torch
from jaxtyping import Float, Int

from probes.discovery import defined_in
from probes.errors import InvalidOptionError, UnknownModelError
from probes.model.readers import ResidualReader

if TYPE_CHECKING:
    from transformers import PreTrainedModel

    from probes.model.hooked import HookedModel
    from probes.model.specs import ModelSpec

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

    def mlps(self) -> list[torch.nn.Module]:
        """Each block's MLP module as the forward pass runs it, first block to last."""
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


#: Wraps a loaded transformers model and its tokenizer: (spec, model, tokenizer, name) -> model.
Wrap = Callable[["ModelSpec", "PreTrainedModel", Any, str], "HookedModel"]


@dataclass(frozen=True)
class BackendKind:
    """One way of running models, as ``--backend`` names it.

    Attributes:
        name: The ``--backend`` value.
        summary: One line for help texts and listings.
        wrap: Puts a loaded transformers model (and its tokenizer) behind the backend;
            ``name`` is the hub id or a name that resolves to nothing on the hub.
        requires: The module the backend imports (checked before any model loads).
        install: How to install it, for the message when it is missing.
        load_remote: Loads a hub model that runs elsewhere (``--remote``); None where the
            backend runs models only here.
        auto_rank: Where ``--backend auto`` tries it (lowest first); None: never tried by auto.
    """

    name: str
    summary: str
    wrap: Wrap
    requires: str | None = None
    install: str = ""
    load_remote: Callable[[ModelSpec, torch.dtype], HookedModel] | None = None
    auto_rank: int | None = None

    @property
    def installed(self) -> bool:
        """Whether the module the backend imports can be imported."""
        return not self.requires or importlib.util.find_spec(self.requires) is not None

    def check_installed(self) -> None:
        """Raise :class:`~probes.errors.InvalidOptionError` saying how to install what is missing."""
        if not self.installed:
            raise InvalidOptionError(f"--backend {self.name} needs {self.requires}: {self.install}.")


#: ``--backend auto``: the first of :func:`auto_backends` that can run the model.
AUTO = "auto"

_REGISTERED: dict[str, BackendKind] = {}


def register_backend(kind: BackendKind) -> BackendKind:
    """Add a backend defined outside :mod:`probes.model` (one inside defines ``BACKEND``)."""
    _REGISTERED[kind.name] = kind
    return kind


def backends() -> dict[str, BackendKind]:
    """Every backend by name: the ``BACKEND`` of each module of :mod:`probes.model`, then registered ones."""
    import probes.model

    found = {kind.name: kind for kind in defined_in(probes.model, "BACKEND", BackendKind)}
    return {**found, **_REGISTERED}


def auto_backends() -> list[BackendKind]:
    """The installed backends ``--backend auto`` tries, in order (their ``auto_rank``)."""
    ranked = [kind for kind in backends().values() if kind.auto_rank is not None]
    return sorted((kind for kind in ranked if kind.installed), key=lambda kind: (kind.auto_rank, kind.name))


def get_backend(name: str) -> BackendKind:
    """The backend called ``name``.

    Raises:
        UnknownModelError: No backend has that name.
    """
    known = backends()
    if name not in known:
        raise UnknownModelError(f"unknown backend {name!r}; use one of {sorted(known)}.")
    return known[name]
