"""Hooks under the nnsight backend: TransformerLens hook points as reads and writes in a trace.

:func:`plan_hooks` sorts a run's ``(hook point, function)`` pairs into the order the model makes
the values (nnsight serves them in that order only); :func:`apply_hooks`, called inside
``model.trace(...)``, reads a point's value, runs its functions (each may return a replacement)
and writes the last replacement back. The points (:mod:`probes.model.bridge.backend` names them) are the
blocks' inputs (``hook_resid_pre``), the input of the attention output projection split per
head (``hook_z``), the attention and MLP outputs as they join the residual stream (after a
post-norm, times a residual multiplier: :class:`~probes.model.nnsight.layout.Layout`), the last
block's output (``hook_resid_post``) and the final norm's scale (computed from its input;
read-only).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from probes.errors import ProbesError
from probes.model.backend import (
    FINAL_NORM_SCALE_HOOK,
    HookFunction,
    attn_out_hook,
    head_hook,
    mlp_out_hook,
    resid_hook,
)
from probes.model.nnsight.layout import Layout

#: Where a hook point sits in a block's forward pass, for running hooks in that order.
STEPS = {"resid_pre": 0, "z": 1, "attn_out": 2, "mlp_out": 3, "resid_post": 4}


@dataclass(frozen=True)
class HookPoint:
    """What a hook function gets as its second argument: the hook point's name."""

    name: str


def plan_hooks(
    hooks: Sequence[tuple[str, HookFunction]], n_layers: int, architecture: str
) -> list[tuple[tuple[int, int], str, list[Any]]]:
    """The hooks grouped by point and sorted into forward order: ``((block, step), name, functions)``."""
    places = {}
    n = n_layers
    for layer in range(n):
        places[resid_hook(layer, n)] = (layer, STEPS["resid_pre"])
        places[head_hook(layer)] = (layer, STEPS["z"])
        places[attn_out_hook(layer)] = (layer, STEPS["attn_out"])
        places[mlp_out_hook(layer)] = (layer, STEPS["mlp_out"])
    places[resid_hook(n, n)] = (n - 1, STEPS["resid_post"])
    places[FINAL_NORM_SCALE_HOOK] = (n, 0)
    grouped: dict[str, list[Any]] = {}
    for name, function in hooks:
        if name not in places:
            raise ProbesError(f"{architecture} has no hook point {name!r}; hook_points() lists them.")
        grouped.setdefault(name, []).append(function)
    return sorted((places[name], name, functions) for name, functions in grouped.items())


def apply_hooks(
    model: Any,
    layout: Layout,
    layer: int,
    step: int,
    name: str,
    functions: list[Any],
    n_heads: int,
    leading: tuple[int, ...] = (),
) -> None:
    """Inside a trace: read one point's value, run its hooks, write a replacement back.

    ``leading`` is the input's ``(batch, pos)``: a module that works on the flattened positions
    (OPT's ``fc2``) has its output shown to the hooks as ``batch pos d_model``."""
    point = HookPoint(name)
    if name == FINAL_NORM_SCALE_HOOK:
        if not layout.final_norm_path:
            raise ProbesError(f"{name}: this model has no final norm (post-LN OPT).")
        norm = layout.envoy(model, layout.final_norm_path)
        hidden = norm.input
        scale = layout.scale(norm._module, hidden)
        for function in functions:
            if function(scale, point) is not None:
                raise ProbesError(f"{name} can be read but not replaced under the nnsight backend.")
        return
    block = layout.blocks(model)[layer]
    if step == STEPS["resid_pre"]:
        value, write = block.input, lambda new: setattr(block, "input", new)
    elif step == STEPS["z"]:
        projection = layout.envoy(block, layout.output_projection_path)
        flat = projection.input
        value = flat.reshape(*flat.shape[:-1], n_heads, -1)
        write = lambda new: setattr(projection, "input", new.reshape(flat.shape))  # noqa: E731
    else:
        # attn_out, mlp_out: what joins the residual stream (after any post-norm, times any scale)
        paths = {
            STEPS["attn_out"]: layout.attention_output_path or layout.attention_path,
            STEPS["mlp_out"]: layout.mlp_output_path or layout.mlp_path,
        }
        scale = layout.residual_scale if step in paths else 1.0
        envoy = layout.envoy(block, paths.get(step, ""))  # resid_post: the block itself
        output = envoy.output
        value = output[0] if isinstance(output, tuple) else output
        flat = value.ndim == 2 and len(leading) == 2
        if flat:
            value = value.reshape(*leading, -1)
        if scale != 1.0:
            value = value * scale

        def write(new: torch.Tensor) -> None:
            new = new / scale if scale != 1.0 else new
            new = new.reshape(-1, new.shape[-1]) if flat else new
            envoy.output = (new, *output[1:]) if isinstance(output, tuple) else new

    changed = False
    for function in functions:
        new = function(value, point)
        if new is not None:
            value, changed = new, True
    if changed:
        write(value)
