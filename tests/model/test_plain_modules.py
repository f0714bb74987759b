"""The lens reads the plain Hugging Face modules behind the bridge; the bridge keeps its components."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch

from probes.lenses.reading import read_options
from probes.model.bridge.plain_modules import plain, plain_modules
from probes.tasks import Item

ITEMS = [
    Item("one", "t", "w1 w2 w3", " w4", " w5"),
    Item("many", "t", "w7 w8 w9 w10", " w4 w6", " w5", options=(" w4 w6", " w5", " w9 w10 w11")),
]


def _components(model) -> list[torch.nn.Module]:
    from transformer_lens.model_bridge.generalized_components.base import GeneralizedComponent

    return [m for m in model.hf_model.modules() if isinstance(m, GeneralizedComponent)]


def _forward_components(model) -> list[torch.nn.Module]:
    """The components of the forward pass: all but the final norm, which the readout applies
    (TransformerLens's own, as ``logit_lens`` does)."""
    return [m for m in _components(model) if m is not model.final_norm]


def test_the_lens_runs_no_bridge_component_and_leaves_them_in_place(tiny_model):
    components = _forward_components(tiny_model)
    assert components  # the bridge did wrap the model's modules
    before = dict(tiny_model.hf_model.named_modules())
    component_calls, block_calls = [], []
    handles = [c.register_forward_hook(lambda *args: component_calls.append(1)) for c in components]
    handles += [b.register_forward_hook(lambda *args: block_calls.append(1)) for b in tiny_model.blocks]
    try:
        read_options(tiny_model, ITEMS)
        assert component_calls == [] and block_calls  # the plain blocks ran, no component did
        assert dict(tiny_model.hf_model.named_modules()) == before  # every component is back
        component_calls.clear()
        block_calls.clear()
        input_ids = torch.tensor([[3, 4, 5]])
        with torch.inference_mode():
            tiny_model.run_with_hooks(input_ids, torch.ones_like(input_ids), [])
        assert component_calls and block_calls  # the bridge's run still goes through them
    finally:
        for handle in handles:
            handle.remove()


def test_blocks_are_the_modules_behind_the_bridge_s_blocks(tiny_model):
    assert tiny_model.blocks == [plain(block) for block in tiny_model.bridge.blocks]
    assert not set(map(id, tiny_model.blocks)) & set(map(id, _components(tiny_model)))


def test_the_components_come_back_after_an_error(tiny_model):
    hf_model = tiny_model.hf_model
    before = dict(hf_model.named_modules())
    with pytest.raises(RuntimeError, match="inside"), plain_modules(hf_model) as swapped:
        assert swapped > 0 and not _components(tiny_model)
        raise RuntimeError("inside")
    assert dict(hf_model.named_modules()) == before


def test_plain_runs_equal_plain_transformers_exactly(tiny_model):
    """Inside plain_modules the bridged model computes what the model never bridged computes."""
    from tiny_models import tiny_hf_model

    family = tiny_model.name.removeprefix("tiny-")
    reference = tiny_hf_model(family)
    reference.set_attn_implementation(tiny_model.hf_model.config._attn_implementation)  # the bridge's
    input_ids = torch.tensor([[3, 4, 5, 6], [7, 8, 9, 10]])
    with torch.inference_mode(), plain_modules(tiny_model.hf_model):
        ours = tiny_model.hf_model(input_ids=input_ids).logits
    with torch.inference_mode():
        theirs = reference(input_ids=input_ids).logits
    torch.testing.assert_close(ours, theirs, atol=0, rtol=0)


@dataclass(frozen=True)
class _RepeatingLens:
    """A lens without ``read_at``: TransformerLens's ``logit_readout`` per read, between passes."""

    name: str = "repeating"

    def read(self, model, resid, layers, targets):
        return model.log_probs(resid, targets, 256).float()


def test_a_readout_through_the_bridge_between_passes_sees_the_bridge(tiny_model):
    ours = read_options(tiny_model, ITEMS)
    theirs = read_options(tiny_model, ITEMS, lens=_RepeatingLens())
    for fast, slow in zip(ours.logprobs, theirs.logprobs):
        torch.testing.assert_close(fast, slow, atol=1e-5, rtol=0)
