"""The bridge backend (``--backend bridge``, the default): TransformerLens's ``TransformerBridge``.

The only package that imports TransformerLens's internals. :mod:`~probes.model.bridge.backend`
implements the protocol; :mod:`~probes.model.bridge.residual_catcher` reads residuals with plain
forward hooks; :mod:`~probes.model.bridge.plain_modules` swaps the bridge's components for the
modules they wrap during a read; :mod:`~probes.model.bridge.readout` is the exact float32 readout.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from probes.model.backend import BackendKind

if TYPE_CHECKING:
    from transformers import PreTrainedModel

    from probes.model.hooked import HookedModel
    from probes.model.specs import ModelSpec


def _wrap(spec: ModelSpec, hf_model: PreTrainedModel, tokenizer: Any, model_name: str) -> HookedModel:
    from probes.model.bridge.backend import wrap

    return wrap(spec, hf_model, tokenizer, model_name)


BACKEND = BackendKind(
    name="bridge",
    summary="TransformerLens's TransformerBridge: hook points, ablations, patching, attribution",
    wrap=_wrap,
    requires="transformer_lens",
    install="pip install transformer-lens",
    auto_rank=0,
)
