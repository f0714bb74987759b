"""A toy lens in one file: the logit lens read from half of each residual vector.

Dropped into :mod:`probes.lenses` (``tests/integration/test_registries.py``), it is ``--lens half``
with no other edit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from jaxtyping import Float, Int

from probes.lenses.base import Lens, LensChoice, LensKind


@dataclass(frozen=True)
class HalfLens:
    """Log-probs of the targets read from ``resid / 2`` through the final norm and unembedding."""

    name: str = "half"

    def read(
        self,
        model: Any,
        resid: Float[torch.Tensor, "layer row d_model"],
        layers: Sequence[int],
        targets: Int[torch.Tensor, " row"],
    ) -> Float[torch.Tensor, "layer row"]:
        """The logit lens's readout of the halved vectors."""
        return model.log_probs(resid * 0.5, targets, 256).float()


def _choose(model_label: str, lens_dir: Path | None) -> LensChoice:
    return LensChoice("half")


def _build(choice: LensChoice, model: Any) -> Lens:
    return HalfLens()


LENS = LensKind(name="half", summary="the logit lens of half of each vector", choose=_choose, build=_build)
