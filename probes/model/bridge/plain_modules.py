"""The plain Hugging Face modules behind a TransformerLens bridge, for the lens's read path.

A ``TransformerBridge`` replaces the Hugging Face model's modules *in place* by its own
components (each keeps the module it wraps as ``original_component``): after bridging,
``hf_model.gpt_neox.layers[0]`` is a ``ParallelBlockBridge``, its attention re-implements the
attention (eager, with hook points on scores and pattern) and its linear layers are
``LinearBridge``\\ s. That is what makes the bridge's hook points work, and it costs time (the
lens through the components against the plain modules: benchmarks/README.md).

The lens needs no bridge hook point: it reads the residual stream with plain forward hooks on
the blocks (:mod:`probes.model.bridge.residual_catcher`). :func:`plain_modules` puts the wrapped modules back
into the Hugging Face model for the duration of one forward pass and restores the components
afterwards (the readout between passes sees the bridge as it is), so the pass runs exactly the
model transformers would run, while ablation, patching, attribution and generation keep the
bridge's hook points. The bridge stays the map of the architecture: :func:`plain` names the
Hugging Face module behind one of its components (``BridgeBackend.blocks``: block ``i``).
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from typing import Any

import torch


def _is_component(module: torch.nn.Module) -> bool:
    """Whether ``module`` is a TransformerLens bridge component (without importing TL if unused)."""
    base = sys.modules.get("transformer_lens.model_bridge.generalized_components.base")
    return base is not None and isinstance(module, base.GeneralizedComponent)


def plain(module: torch.nn.Module) -> torch.nn.Module:
    """The Hugging Face module a bridge component wraps (``module`` itself if it wraps none)."""
    while _is_component(module):
        original = module.original_component
        if not isinstance(original, torch.nn.Module):
            return module
        module = original
    return module


@contextlib.contextmanager
def plain_modules(root: torch.nn.Module) -> Iterator[int]:
    """Within the block, every bridge component in ``root``'s module tree is replaced by the module
    it wraps (recursively), so ``root`` runs as plain transformers; restored on exit, also on an
    exception (the residual reader's early stop is one). Yields how many modules were swapped.

    Parameters are the same objects either way: nothing is copied, and a forward hook on a plain
    module (:attr:`~probes.model.bridge.backend.BridgeBackend.blocks`) fires in both the plain run and the
    bridge's, since the component calls the module it wraps.
    """
    swapped: list[tuple[torch.nn.Module, str, torch.nn.Module]] = []

    def visit(parent: torch.nn.Module) -> None:
        for name, child in list(parent._modules.items()):
            if child is None:
                continue
            module = plain(child)
            if module is not child:
                swapped.append((parent, name, child))
                parent._modules[name] = module
            visit(module)

    try:
        visit(root)
        yield len(swapped)
    finally:
        for parent, name, child in reversed(swapped):
            parent._modules[name] = child


def cache_by_old_name(module: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, Any]:
    """Hand a block's cache to a bridge attention component under the name it reads
    (``past_key_values``): transformers 5.x passes it as ``cache``, and a component that misses
    it neither fills the cache nor reads it (the plain modules need no such help)."""
    if kwargs.get("cache") is not None and kwargs.get("past_key_values") is None:
        kwargs = {**kwargs, "past_key_values": kwargs["cache"]}
    return args, kwargs
