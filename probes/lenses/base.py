"""What a lens is: the :class:`Lens` protocol, and a :class:`LensKind` that names and builds one.

A lens turns the residual-stream vectors the engine keeps at each layer
(:mod:`probes.lenses.reading`) into log-probabilities of answer tokens. A :class:`LensKind`
is what ``--lens NAME`` refers to: it finds a lens for a model before the model is loaded
(:class:`LensChoice`: its name, the sha256 of its weights, where they lie), so finished shards
are skipped without loading anything, and builds it once the model is loaded. Kinds register
themselves (:mod:`probes.lenses.registry`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import torch
from jaxtyping import Float, Int

from probes.errors import ProbesError

if TYPE_CHECKING:
    from probes.model.hooked import HookedModel


class UnknownLensError(ProbesError):
    """A lens name that is not known, or a trained lens that cannot be found for a model."""


class Lens(Protocol):
    """Decodes residual-stream vectors at each layer into log-probs of target tokens."""

    name: str

    def read(
        self,
        model: HookedModel,
        resid: Float[torch.Tensor, "layer row d_model"],
        layers: Sequence[int],
        targets: Int[torch.Tensor, " row"],
    ) -> Float[torch.Tensor, "layer row"]:
        """Log-prob of ``targets[row]`` read from ``resid[layer, row]`` (layers as in ``layers``)."""
        ...


@dataclass(frozen=True)
class LensChoice:
    """A lens for one model, before the model is loaded: its name, weights hash and folder."""

    name: str
    weights_hash: str | None = None
    folder: Path | None = None
    #: A lens object given by a Python caller (used as it is).
    lens: Lens | None = None
    #: Builds the lens once the model is loaded (its kind's ``build``, set by the registry).
    builder: Callable[[LensChoice, HookedModel], Lens] | None = field(default=None, compare=False)

    def build(self, model: HookedModel) -> Lens:
        """The lens itself, checked against the loaded model."""
        if self.lens is not None:
            check = getattr(self.lens, "check", None)
            if callable(check):
                check(model)
            return self.lens
        if self.builder is None:
            raise UnknownLensError(f"the {self.name} lens was not chosen through probes.lenses.registry.")
        return self.builder(self, model)


@dataclass(frozen=True)
class LensKind:
    """One kind of lens, as ``--lens`` names it.

    Attributes:
        name: The ``--lens`` value (and the store's folder ``shards/<name>/`` for a lens
            without weights; a trained lens's folder adds its weights' hash).
        summary: One line for help texts and listings.
        choose: ``(model label, --lens-dir) -> LensChoice``: the lens for a model, found
            before the model loads (raises :class:`UnknownLensError` when there is none).
        build: ``(choice, loaded model) -> Lens``: the lens, checked against the model.
    """

    name: str
    summary: str
    choose: Callable[[str, Path | None], LensChoice]
    build: Callable[[LensChoice, HookedModel], Lens]


def lens_fields(lens: Any) -> dict[str, Any]:
    """What a shard's manifest says of a trained lens: where it came from and its held-out KL."""
    info = getattr(lens, "info", None)
    if not isinstance(info, dict):
        return {}
    fields = {"lens_path": info.get("path"), "lens_text": info.get("text"), "lens_steps": info.get("steps")}
    if info.get("held_out_kl"):
        fields["lens_held_out_kl"] = info["held_out_kl"]
    return fields
