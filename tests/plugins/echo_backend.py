"""A toy backend in one file: the bridge backend under another name, counting the models it wraps.

Dropped into :mod:`probes.model` (``tests/integration/test_registries.py``), it is
``--backend echo`` with no other edit.
"""

from __future__ import annotations

from typing import Any

from probes.model.backend import BackendKind

#: How many models this backend has wrapped in this process.
WRAPPED: list[str] = []


def _wrap(spec: Any, hf_model: Any, tokenizer: Any, model_name: str) -> Any:
    from probes.model.bridge.backend import wrap

    WRAPPED.append(spec.label)
    return wrap(spec, hf_model, tokenizer, model_name)


BACKEND = BackendKind(name="echo", summary="the bridge, under another name", wrap=_wrap)
