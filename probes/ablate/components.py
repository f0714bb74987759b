"""Names of the model parts the analyses attribute, ablate and patch, and their hook points.

A component is written as users write them in notes and on the command line:

* ``L2H3``: head 3 of the attention layer of block 2 (its output before the
  attention's output bias, i.e. its slice of ``hook_z`` times ``W_O``);
* ``L2.attn``: the whole attention output of block 2 (every head plus the bias);
* ``L2.mlp``: the MLP output of block 2;
* ``L2``: block 2's whole contribution to the residual stream (attention and MLP).

Blocks and heads count from 0.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from probes.errors import ProbesError
from probes.model import backend as standard_hooks
from probes.model.loading import HookedModel

Kind = Literal["head", "attn", "mlp", "layer"]

_PATTERN = re.compile(r"^L(\d+)(?:H(\d+)|\.(attn|mlp))?$")


class ComponentError(ProbesError):
    """A component name that is malformed or outside the model."""


@dataclass(frozen=True, order=True)
class Component:
    """One ablatable part of a model."""

    layer: int
    kind: Kind
    head: int | None = None

    @property
    def label(self) -> str:
        """The component's name (``L2H3``, ``L2.attn``, ``L2.mlp``, ``L2``)."""
        if self.kind == "head":
            return f"L{self.layer}H{self.head}"
        if self.kind == "layer":
            return f"L{self.layer}"
        return f"L{self.layer}.{self.kind}"

    def hook_names(self, model: HookedModel | None = None) -> list[str]:
        """Hook points whose activations stand for this component (the model's; without one,
        the names every backend uses: :mod:`probes.model.backend`)."""
        names = model or standard_hooks
        if self.kind == "head":
            return [names.head_hook(self.layer)]
        if self.kind == "attn":
            return [names.attn_out_hook(self.layer)]
        if self.kind == "mlp":
            return [names.mlp_out_hook(self.layer)]
        return [names.attn_out_hook(self.layer), names.mlp_out_hook(self.layer)]

    def check(self, model: HookedModel) -> None:
        """Raise :class:`ComponentError` if the model has no such component."""
        if not 0 <= self.layer < model.n_layers:
            raise ComponentError(
                f"component {self.label}: {model.name} has blocks L0..L{model.n_layers - 1}."
            )
        heads = model.n_heads
        if self.head is not None and not 0 <= self.head < heads:
            raise ComponentError(f"component {self.label}: {model.name} has heads H0..H{heads - 1}.")


def parse_component(name: str) -> Component:
    """The component a name such as ``L2H3``, ``L2.mlp``, ``L2.attn`` or ``L2`` stands for."""
    match = _PATTERN.match(name.strip())
    if not match:
        raise ComponentError(
            f"component {name!r} is not understood; write L<block>H<head> (a head), L<block>.attn, "
            "L<block>.mlp or L<block> (a whole block), counting from 0, e.g. L2H3."
        )
    layer, head, part = match.groups()
    if head is not None:
        return Component(int(layer), "head", int(head))
    return Component(int(layer), part or "layer")  # type: ignore[arg-type]


def all_heads(model: HookedModel) -> list[Component]:
    """Every attention head of the model, block by block."""
    heads = model.n_heads
    return [Component(layer, "head", head) for layer in range(model.n_layers) for head in range(heads)]


def all_mlps(model: HookedModel) -> list[Component]:
    """Every MLP of the model."""
    return [Component(layer, "mlp") for layer in range(model.n_layers)]
