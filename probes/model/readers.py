"""What the lens needs of a model's residual-stream reader: the protocols its backends implement.

A reader runs batches of token rows and returns the residual stream at chosen (row, position)
pairs of chosen layers (:class:`ResidualReader`). One that can keep a batch of prompts'
key/value cache and read tokens that follow them (:class:`ContinuingReader`) lets the lens run
an item's prompt once whatever its options (:mod:`probes.lenses.passes`); one that can continue a
continuation (:class:`SharingReader`) lets prompts that share a start run it once.
:class:`probes.model.bridge.residual_catcher.ResidualCatcher` implements all three.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import torch
from jaxtyping import Float, Int

__all__ = ["ContinuingReader", "PromptCache", "ResidualReader", "SharingReader"]


@dataclass
class PromptCache:
    """A batch of right-padded prompts' key/value cache and their attention mask.

    Its tensors may be shared with the caches of continuations read from it (no copy where a
    continuation pass takes every prompt row in order): nothing may modify them in place.
    """

    past: Any  # a transformers Cache
    attention_mask: Int[torch.Tensor, "batch pos"]


class ResidualReader(Protocol):
    """Runs batches and returns the residual stream at chosen rows and positions of chosen layers."""

    def run(
        self,
        input_ids: Int[torch.Tensor, "batch pos"],
        attention_mask: Int[torch.Tensor, "batch pos"],
        batch_index: Int[torch.Tensor, " row"],
        position_index: Int[torch.Tensor, " row"],
    ) -> Float[torch.Tensor, "layer row d_model"]:
        """The kept vectors of one batch, layers in sorted order."""
        ...


class ContinuingReader(ResidualReader, Protocol):
    """A reader that can also keep a batch of prompts' key/value cache and run continuations of it."""

    #: Whether this model can continue from a cache (else use :meth:`run` on whole rows).
    continues: bool
    #: Whether :meth:`run_continuations` takes ``offsets`` (several continuations packed in a
    #: row); optional: the lens reads a reader without it as one that does not pack.
    packs: bool

    def run_prompts(
        self,
        input_ids: Int[torch.Tensor, "batch pos"],
        attention_mask: Int[torch.Tensor, "batch pos"],
        batch_index: Int[torch.Tensor, " row"],
        position_index: Int[torch.Tensor, " row"],
    ) -> tuple[Float[torch.Tensor, "layer row d_model"], PromptCache | None]:
        """Like :meth:`run`, and the prompts' cache (of the layers run) for :meth:`run_continuations`;
        ``None`` where a block did not fill it (then read the options as whole rows)."""
        ...

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
        """Like :meth:`run` for tokens that follow prompt ``prompt_rows[b]`` (positions count from 0).

        ``offsets[b, t]``: how far token ``t`` of row ``b`` stands after the end of its prompt. A
        row may pack several continuations of one prompt (offsets ``0 1 2 0 1``: two of them):
        each token sees the prompt and the earlier tokens of its own continuation only. Only
        where :attr:`packs`; ``None``: one continuation per row.
        """
        ...


class SharingReader(ContinuingReader, Protocol):
    """A continuing reader that can also continue a continuation: prompts that share a start run
    it once (optional: the lens checks for :meth:`continue_prompts` and else runs prompts whole)."""

    def continue_prompts(
        self,
        prompts: PromptCache,
        prompt_rows: Int[torch.Tensor, " batch"],
        input_ids: Int[torch.Tensor, "batch pos"],
        attention_mask: Int[torch.Tensor, "batch pos"],
        batch_index: Int[torch.Tensor, " row"],
        position_index: Int[torch.Tensor, " row"],
    ) -> tuple[Float[torch.Tensor, "layer row d_model"], PromptCache | None]:
        """:meth:`run_continuations` that also returns the grown cache (``None`` as in ``run_prompts``)."""
        ...
