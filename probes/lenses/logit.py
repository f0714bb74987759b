"""The logit lens (nostalgebraist 2020): the model's own final norm and unembedding at every layer."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from jaxtyping import Float, Int

from probes.lenses.base import Lens, LensChoice, LensKind

if TYPE_CHECKING:
    from probes.model.hooked import HookedModel


@dataclass(frozen=True)
class LogitLens:
    """The logit lens: the model's own final norm and unembedding at every layer.

    The model's :meth:`~probes.model.loading.HookedModel.log_probs` (TransformerLens's
    ``logit_readout`` behind the bridge backend) applies the final norm with
    statistics recomputed per vector and any post-unembedding transform, so the
    last layer reproduces the model's output log-probs. The readout (final norm,
    unembedding, log-softmax) runs in float32 whatever the model's dtype: in
    bfloat16 two answers' log-probs often round to the same value, and a tie that
    the rounding made is no reading of the model. A ``project_out`` between the
    decoder and the unembedding (OPT-350m) is folded into the unembedding.
    """

    name: str = "logit"
    chunk_size: int = 256

    def read(
        self,
        model: HookedModel,
        resid: Float[torch.Tensor, "layer row d_model"],
        layers: Sequence[int],
        targets: Int[torch.Tensor, " row"],
    ) -> Float[torch.Tensor, "layer row"]:
        """Log-prob of each row's target token through final norm and unembedding."""
        return model.log_probs(resid, targets, self.chunk_size).float()

    def read_at(
        self,
        model: HookedModel,
        resid: Float[torch.Tensor, "layer vector d_model"],
        layers: Sequence[int],
        vector: Int[torch.Tensor, " read"],
        targets: Int[torch.Tensor, " read"],
    ) -> Float[torch.Tensor, "layer read"]:
        """:meth:`read` of ``targets[r]`` from ``resid[:, vector[r]]``: one log-softmax per vector."""
        return model.log_probs_at(resid, vector, targets, self.chunk_size).float()


def _choose(model_label: str, lens_dir: Path | None) -> LensChoice:
    return LensChoice("logit")


def _build(choice: LensChoice, model: HookedModel) -> Lens:
    return LogitLens()


LENS = LensKind(
    name="logit",
    summary="the model's own final norm and unembedding at every layer (no weights)",
    choose=_choose,
    build=_build,
)
