"""One sparse autoencoder read as probes reads it: a dictionary of feature directions at one residual layer.

An SAE (SAELens's ``SAE``, any architecture whose decoder is affine) maps a residual vector
``x`` at layer ``layer`` to feature activations ``a = encode(x)`` and back to
``decode(a) = a @ D + b``. probes writes every residual vector it reads as

    x = sum_f a_f D_f  +  b  +  e,        e = x - decode(encode(x))  (the SAE's error term),

so nothing is lost when the SAE is spliced in: the features, the decoder's offset ``b`` and
the error ``e`` add up to the model's own ``x``. ``D_f = decode(one-hot f) - decode(0)`` is the
direction the decoder gives feature ``f`` (SAELens's TopK SAEs divide ``W_dec``'s rows by their
norms at decode time, so ``D`` is not ``W_dec`` itself); decoders that are not affine (a
run-time norm such as ``constant_norm_rescale``) are refused.

Layers count as everywhere in probes: layer 0 is the embedding output, layer ``l`` the output
of block ``l - 1``; ``blocks.N.hook_resid_pre`` is layer ``N`` and ``blocks.N.hook_resid_post``
layer ``N + 1``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import torch
from jaxtyping import Float

from probes.errors import ProbesError

#: Metadata keys probes adds to an SAE's ``cfg.json`` (SAELens keeps unknown metadata keys).
FINGERPRINT_KEY = "probes_fingerprint"
#: Largest relative gap between ``decode(a)`` and ``a @ D + b`` for the decoder to count as affine.
MAX_DECODER_GAP = 1e-4
#: SAELens's ``normalize_activations`` values that rescale each vector at run time: ``decode`` divides
#: by a factor ``encode`` computed from the input, so it is not affine in the activations.
RUN_TIME_NORMS = ("constant_norm_rescale", "layer_norm")


class SAEError(ProbesError):
    """An SAE that does not fit the model or the analyses (hook, width, weights, decoder)."""


def layer_of_hook(hook_name: str, n_layers: int | None = None) -> int:
    """probes' residual layer of a TransformerLens residual hook name.

    Raises:
        SAEError: The hook is not a residual-stream hook probes reads.
    """
    if not hook_name:
        raise SAEError("the SAE's cfg.json names no metadata.hook_name, so the layer it reads is unknown.")
    match = re.fullmatch(r"blocks\.(\d+)\.hook_resid_(pre|post)", hook_name)
    if match is None:
        raise SAEError(
            f"the SAE reads {hook_name!r}; probes attributes residual-stream SAEs only "
            "(blocks.N.hook_resid_pre or blocks.N.hook_resid_post)."
        )
    layer = int(match.group(1)) + (match.group(2) == "post")
    if n_layers is not None and layer > n_layers:
        raise SAEError(f"the SAE reads {hook_name}, but the model has {n_layers} blocks.")
    return layer


@dataclass(frozen=True)
class LayerSAE:
    """An SAE at one residual layer, with where it came from.

    Attributes:
        sae: The SAELens ``SAE`` (any architecture with an affine decoder).
        layer: The residual layer it reads (0 = embeddings).
        source: How a user names it again: ``organism-4x96/layer-2`` (shipped), a folder, or
            ``release/id`` (a SAELens pretrained release).
        sha256: Of its weights file (shipped and folder SAEs) or of ``release/id``.
    """

    sae: Any = field(repr=False)
    layer: int
    source: str
    sha256: str

    def __post_init__(self) -> None:
        """Refuse an SAE whose decoder rescales by a factor of each input (not affine), or whose
        TopK ``k`` exceeds its features.

        Raises:
            SAEError: ``normalize_activations`` is one of :data:`RUN_TIME_NORMS`, or ``k > d_sae``.
        """
        k = getattr(self.sae.cfg, "k", None)
        if isinstance(k, int) and k > self.d_sae:
            raise SAEError(f"{self.source}: its cfg.json asks for k = {k} active features of {self.d_sae}.")
        normalize = getattr(self.sae.cfg, "normalize_activations", "none")
        if normalize in RUN_TIME_NORMS:
            raise SAEError(
                f"{self.source}: normalize_activations={normalize!r} rescales each vector at run time, so "
                "the SAE's decoder is not affine in its features and they do not add up to the residual; "
                "use an SAE without a run-time norm."
            )

    @property
    def metadata(self) -> Any:
        """The SAE's metadata, as SAELens keeps it (hook name, model name, probes' fingerprint ...)."""
        return self.sae.cfg.metadata

    @property
    def d_in(self) -> int:
        """Width of the residual vectors it reads."""
        return int(self.sae.cfg.d_in)

    @property
    def d_sae(self) -> int:
        """Number of features."""
        return int(self.sae.cfg.d_sae)

    @property
    def fingerprint(self) -> str | None:
        """The fingerprint of the model it was trained on, when probes trained it."""
        value = getattr(self.metadata, FINGERPRINT_KEY, None)
        if value is None and hasattr(self.metadata, "get"):
            value = self.metadata.get(FINGERPRINT_KEY)
        return None if value is None else str(value)

    @property
    def model_name(self) -> str | None:
        """The model it was trained on, as its metadata names it."""
        value = getattr(self.metadata, "model_name", None)
        return None if value is None else str(value)

    @cached_property
    def offset(self) -> Float[torch.Tensor, " d_model"]:
        """``decode(0)``: what the SAE writes with every feature off."""
        with torch.no_grad():
            zero = torch.zeros(1, self.d_sae, dtype=self.sae.W_dec.dtype, device=self.sae.W_dec.device)
            return self.sae.decode(zero)[0].detach().float().cpu()

    @cached_property
    def directions(self) -> Float[torch.Tensor, "feature d_model"]:
        """``D_f = decode(one-hot f) - decode(0)``: each feature's direction per unit of activation."""
        with torch.no_grad():
            eye = torch.eye(self.d_sae, dtype=self.sae.W_dec.dtype, device=self.sae.W_dec.device)
            return (self.sae.decode(eye).float().cpu() - self.offset).detach()

    def encode(self, x: Float[torch.Tensor, "*batch d_model"]) -> Float[torch.Tensor, "*batch feature"]:
        """Feature activations of residual vectors (float32, on the CPU)."""
        with torch.no_grad():
            weight = self.sae.W_dec
            return self.sae.encode(x.to(weight.device, weight.dtype)).float().cpu()

    def split(
        self, x: Float[torch.Tensor, "row d_model"]
    ) -> tuple[Float[torch.Tensor, "row feature"], Float[torch.Tensor, "row d_model"]]:
        """Feature activations and error term of residual vectors: ``x = a @ D + offset + e``.

        Raises:
            SAEError: ``decode`` is not ``a @ D + offset`` on these vectors (a decoder that is not affine).
        """
        x = x.float().cpu()
        activations = self.encode(x)
        with torch.no_grad():
            weight = self.sae.W_dec
            decoded = self.sae.decode(activations.to(weight.device, weight.dtype)).float().cpu()
        affine = activations @ self.directions + self.offset
        gap = float((decoded - affine).norm() / decoded.norm().clamp(min=1e-12))
        if gap > MAX_DECODER_GAP:
            normalize = getattr(self.sae.cfg, "normalize_activations", "?")
            raise SAEError(
                f"{self.source}: the SAE's decoder is not affine in its activations (relative gap {gap:.2g}; "
                f"normalize_activations={normalize!r}), so features do not add up to the residual; use an "
                "SAE without a run-time norm."
            )
        return activations, x - affine

    def check(self, model: Any) -> None:
        """Refuse an SAE that cannot read ``model`` (a :class:`~probes.model.loading.HookedModel`).

        Raises:
            SAEError: Another width, a layer the model lacks, or (for SAEs probes trained) another
                model's fingerprint.
        """
        from probes.lenses.tuned.access import model_fingerprint

        if self.d_in != model.d_model:
            raise SAEError(
                f"{self.source} reads vectors of width {self.d_in}, {model.name}'s residual stream has "
                f"{model.d_model}; give an SAE trained on {model.name}."
            )
        if self.layer > model.n_layers:
            raise SAEError(
                f"{self.source} reads layer {self.layer}; {model.name} has {model.n_layers} blocks."
            )
        if self.fingerprint is not None and self.fingerprint != model_fingerprint(model):
            raise SAEError(
                f"{self.source} was trained on other weights than {model.name}'s (its fingerprint "
                f"{self.fingerprint[:12]} differs); train one on this model (probes sae train)."
            )
