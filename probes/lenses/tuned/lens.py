"""The tuned lens as a :class:`probes.lenses.base.Lens`: translate each layer's stream, read logits."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from jaxtyping import Float, Int

from probes.cli.display import plural
from probes.errors import ProbesError
from probes.lenses.logit import LogitLens
from probes.lenses.tuned.access import model_fingerprint
from probes.lenses.tuned.translator import Translators
from probes.model.loading import HookedModel


class LensMismatchError(ProbesError):
    """A tuned lens used on a model it was not trained for."""


def weights_sha256(state: dict[str, torch.Tensor]) -> str:
    """sha256 of a lens's parameters (names, shapes and float32 values), whatever file holds them."""
    digest = hashlib.sha256()
    for name in sorted(state):
        tensor = state[name].detach().to("cpu", torch.float32).contiguous()
        digest.update(f"{name}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.numpy().tobytes())
    return digest.hexdigest()


@dataclass(eq=False)
class TunedLens:
    """Per layer an affine translator before the model's own final norm and unembedding.

    The last layer is read untranslated, so it gives the model's output exactly as
    the logit lens does. ``info`` is the lens's metadata (:mod:`probes.lenses.tuned.artifacts`):
    it names the model it was trained for by ``model_fingerprint``; :meth:`check` refuses
    any other model.
    """

    translators: Translators
    info: dict[str, Any]
    name: str = "tuned"
    #: The readout after translation: the logit lens's own (one readout path for both lenses,
    #: float32, any ``project_out`` folded in), so the last layer reads exactly as the logit lens.
    readout: LogitLens = field(default_factory=LogitLens)
    _checked: set[int] = field(default_factory=set, repr=False)

    @property
    def weights_hash(self) -> str:
        """sha256 of the translators' parameters: two lenses read alike only if theirs are equal."""
        cached = self.info.get("weights_sha256")
        if cached is None:
            cached = self.info["weights_sha256"] = weights_sha256(self.translators.state())
        return str(cached)

    def check(self, model: HookedModel) -> None:
        """Refuse a model the lens was not trained for (other weights, layers or width).

        Raises:
            LensMismatchError: The model differs from the one the lens was trained on.
        """
        if id(model) in self._checked:
            return
        where = self.info.get("path", "this tuned lens")
        trained_for = self.info.get("model", "another model")
        if (model.n_layers, model.d_model) != (self.translators.n_layers, self.translators.d_model):
            raise LensMismatchError(
                f"{where} was trained for {trained_for} ({plural(self.translators.n_layers, 'layer')}, "
                f"d_model {self.translators.d_model}), not {model.name} "
                f"({plural(model.n_layers, 'layer')}, d_model {model.d_model}); train one for it with "
                f"`probes lens train --models {model.spec.name}`."
            )
        expected = self.info.get("model_fingerprint")
        if expected is not None and expected != model_fingerprint(model):
            raise LensMismatchError(
                f"{where} was trained for {trained_for} (weights fingerprint {str(expected)[:12]}...), "
                f"and {model.name} has other weights; train one for it with "
                f"`probes lens train --models {model.spec.name}`."
            )
        self._checked.add(id(model))

    def translate(
        self, resid: Float[torch.Tensor, "layer row d_model"], layers: Sequence[int]
    ) -> Float[torch.Tensor, "layer row d_model"]:
        """Each layer's vectors through its translator, in float32 (the last layer's unchanged)."""
        self.translators.to(resid.device)
        return torch.stack(
            [self.translators.transform(resid[i].float(), layer) for i, layer in enumerate(layers)]
        )

    def read(
        self,
        model: HookedModel,
        resid: Float[torch.Tensor, "layer row d_model"],
        layers: Sequence[int],
        targets: Int[torch.Tensor, " row"],
    ) -> Float[torch.Tensor, "layer row"]:
        """Log-prob of each row's target token: the logit lens's readout of the translated stream."""
        self.check(model)
        with torch.no_grad():
            translated = self.translate(resid, layers)
        return self.readout.read(model, translated, layers, targets)

    def read_at(
        self,
        model: HookedModel,
        resid: Float[torch.Tensor, "layer vector d_model"],
        layers: Sequence[int],
        vector: Int[torch.Tensor, " read"],
        targets: Int[torch.Tensor, " read"],
    ) -> Float[torch.Tensor, "layer read"]:
        """:meth:`read` of ``targets[r]`` from ``resid[:, vector[r]]``: each vector translated
        and its log-softmax taken once, through the logit lens's ``read_at``."""
        self.check(model)
        with torch.no_grad():
            translated = self.translate(resid, layers)
        return self.readout.read_at(model, translated, layers, vector, targets)
