"""All continuations of an item packed in one row on its cache: the same numbers as a row per
continuation and as whole rows, under sdpa and eager attention, and the prompt's cache untouched."""

from __future__ import annotations

import pytest
import torch
from plan_checks import assert_every_token_read_once

from probes.errors import ProbesError
from probes.lenses.passes import plan
from probes.lenses.reading import read_options, right_padded
from probes.model.bridge.residual_catcher import ResidualCatcher
from probes.model.readers import PromptCache
from probes.tasks import Item


def _items() -> list[Item]:
    return [
        # options that share a start, of 1 to 4 tokens
        Item(
            "a",
            "t",
            "w1 w2 w3 w4",
            " w5 w6 w7",
            " w5 w6",
            options=(" w5 w6 w7", " w5 w6", " w9", " w5 w8 w7 w3"),
        ),
        Item("b", "t", "w7 w8", " w4", " w5"),  # single-token options: no continuation row
        Item("c", "t", "w11 w12 w13 w14 w15 w16", " w20 w21", " w22 w23 w24 w25"),
        Item(
            "d", "t", "w30", " w31 w32 w33", " w34", options=(" w31 w32 w33", " w34", " w35 w36", " w37 w38")
        ),
    ]


def _assert_same(got, expected) -> None:
    assert got.option_ids == expected.option_ids
    for fast_options, slow_options in zip(got.token_logprobs, expected.token_logprobs):
        for fast, slow in zip(fast_options, slow_options):  # every answer token at every layer
            torch.testing.assert_close(fast, slow, atol=1e-4, rtol=0)


def _eager(monkeypatch) -> None:
    enter = ResidualCatcher.__enter__

    def eager_enter(self):
        enter(self)
        self.hf_model.set_attn_implementation("eager")
        return self

    monkeypatch.setattr(ResidualCatcher, "__enter__", eager_enter)


@pytest.mark.parametrize("attention", ["sdpa", "eager"])
@pytest.mark.parametrize("batch_size", [1, 2, 3])  # 2: prompts of 6 and 4 tokens, the cache as it is
def test_packed_equals_a_row_per_continuation_and_whole_rows(tiny_model, monkeypatch, attention, batch_size):
    if attention == "eager":
        _eager(monkeypatch)
    items = _items()
    with tiny_model.residual_reader([1]) as reader:
        assert reader.packs
    packed = read_options(tiny_model, items, batch_size=batch_size)
    rows = read_options(tiny_model, items, batch_size=batch_size, reuse_prompts=False)
    unpacked = read_options(tiny_model, items, batch_size=batch_size, pack_continuations=False)
    _assert_same(packed, rows)
    _assert_same(unpacked, rows)


def test_one_continuation_row_per_item(tiny_model):
    items = [_items()[0], _items()[3]]  # 3 and 3 continuations (after shared starts)
    shapes = []
    handle = tiny_model.blocks[0].register_forward_hook(
        lambda _m, args, _o: shapes.append(tuple(args[0].shape[:2]))
    )
    try:
        read_options(tiny_model, items, batch_size=8)
    finally:
        handle.remove()
    # item a: continuations "w5 w6" (serves " w5 w6 w7" and " w5 w6"), "w5 w8 w7": 2 + 3 tokens;
    # item d: "w31 w32", "w35", "w37": 4 tokens. One prompt pass, one continuation pass of 2 rows.
    assert len(shapes) == 2 and shapes[1] == (2, 5)


def test_plan_packs_an_items_continuations_in_one_row():
    prompts = [[1, 2, 3], [4], [5, 6]]
    options = [[[7], [8, 9, 10], [8, 9], [11, 12]], [[13, 14], [15]], [[16], [17]]]
    batches = plan(prompts, options, batch_size=2, pack=True)
    assert_every_token_read_once(batches, options)
    first = batches[0].continuations
    assert len(first) == 1 and first[0].tokens == [[8, 9, 11]] and first[0].offsets == [[0, 1, 0]]
    assert first[0].packed and first[0].prompt_rows == [0]
    for batch in batches:
        for step in batch.continuations:
            for read in step.reads:  # the token read at (row, position) follows the option's tokens so far
                row, offsets = step.tokens[read.row], step.offsets[read.row]
                start = read.position - offsets[read.position]
                assert row[start : read.position + 1] == options[read.item][read.option][: read.token]


def test_packed_mask_sees_the_prompt_and_its_own_continuation(tiny_model):
    prompt_mask = torch.tensor([[1, 1, 0]])  # a prompt of 2 tokens, right-padded to 3
    attention_mask = torch.tensor([[1, 1, 1, 1, 0]])
    offsets = torch.tensor([[0, 1, 0, 1, 0]])  # two continuations of 2 tokens, then padding
    with tiny_model.residual_reader([1]) as reader:
        mask = reader._packed_mask(prompt_mask, attention_mask, offsets)
    expected = torch.tensor(
        [
            [1, 1, 0, 1, 0, 0, 0, 0],
            [1, 1, 0, 1, 1, 0, 0, 0],
            [1, 1, 0, 0, 0, 1, 0, 0],
            [1, 1, 0, 0, 0, 1, 1, 0],
            [1, 1, 0, 0, 0, 0, 0, 0],  # padding sees the prompt only (no empty row: no NaN)
        ],
        dtype=torch.bool,
    )
    assert mask.shape == (1, 1, 5, 8) and torch.equal(mask[0, 0], expected)


def test_alibi_models_do_not_pack(tiny_model, monkeypatch):
    monkeypatch.setattr(tiny_model.hf_model.config, "alibi", True, raising=False)
    with tiny_model.residual_reader([1]) as reader:
        assert reader.continues and not reader.packs


def test_continuations_leave_the_prompt_cache_untouched(tiny_model):
    """A continuation of every prompt row in order uses the cache without copying it; the
    prompts' keys and values stay as they were, and the reads equal those on a copy."""
    prompts = [tiny_model.tokenizer(text).input_ids for text in ("w1 w2 w3", "w4 w5")]
    ids, mask = right_padded(prompts)
    nothing = torch.zeros(0, dtype=torch.long)
    with torch.inference_mode(), tiny_model.residual_reader([1, 2]) as reader:
        _, cache = reader.run_prompts(ids, mask, nothing, nothing)
        kept = [(layer.keys.clone(), layer.values.clone()) for layer in cache.past.layers]
        more, more_mask = right_padded([[7, 8, 9, 10], [9, 10, 11, 12]])
        at = (torch.tensor([0, 0, 1, 1]), torch.tensor([1, 3, 1, 3]))
        packed = torch.tensor([[0, 1, 0, 1]] * 2)
        in_place = reader.run_continuations(cache, torch.arange(2), more, more_mask, *at, packed)
        straight = reader.run_continuations(cache, torch.arange(2), more, more_mask, *at)
        # the same rows through a copy: prompts swapped, then swapped back in the continuation
        swapped = PromptCache(_swapped(cache.past), mask.flip(0))
        copied = reader.run_continuations(swapped, torch.tensor([1, 0]), more, more_mask, *at, packed)
    for layer, (keys, values) in zip(cache.past.layers, kept):
        assert torch.equal(layer.keys, keys) and torch.equal(layer.values, values)
    assert cache.past.get_seq_length() == ids.shape[1]
    torch.testing.assert_close(in_place, copied, atol=1e-6, rtol=0)
    assert not torch.allclose(in_place, straight)  # packing changed what the tokens see


def _swapped(past):
    """A cache with the batch's two rows swapped."""
    from transformers import DynamicCache

    swapped = DynamicCache()
    for index, layer in enumerate(past.layers):
        swapped.update(layer.keys.flip(0), layer.values.flip(0), index)
    return swapped


def test_prompt_caches_hold_no_more_than_their_keys_and_values(tiny_model):
    """The cache keeps its keys and values, not the fused projections they are views of."""
    ids, mask = right_padded([tiny_model.tokenizer("w1 w2 w3 w4").input_ids])
    nothing = torch.zeros(0, dtype=torch.long)
    with torch.inference_mode(), tiny_model.residual_reader([2]) as reader:
        _, cache = reader.run_prompts(ids, mask, nothing, nothing)
    for layer in cache.past.layers:
        for tensor in (layer.keys, layer.values):
            assert tensor.untyped_storage().nbytes() == tensor.numel() * tensor.element_size()


def test_a_reader_that_cannot_pack_refuses_packed_rows(tiny_model, monkeypatch):
    monkeypatch.setattr(ResidualCatcher, "packs", property(lambda self: False))
    ids, mask = right_padded([tiny_model.tokenizer("w1 w2").input_ids])
    nothing = torch.zeros(0, dtype=torch.long)
    with torch.inference_mode(), tiny_model.residual_reader([1]) as reader:
        _, cache = reader.run_prompts(ids, mask, nothing, nothing)
        more, more_mask = right_padded([[7, 8, 9]])
        with pytest.raises(ProbesError, match="packed"):
            reader.run_continuations(
                cache, torch.arange(1), more, more_mask, nothing, nothing, torch.tensor([[0, 0, 1]])
            )
    assert read_options(tiny_model, _items(), batch_size=2)  # the lens then reads a row per continuation


def test_local_attention_reads_whole_rows(tokenizer):
    """GPT-Neo's local layers window by cache column, which padding and packing would shift:
    such a model continues no cache and reads what whole rows read."""
    from transformers import GPTNeoConfig, GPTNeoForCausalLM

    from probes.model.loading import from_hf_model

    torch.manual_seed(0)
    config = GPTNeoConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_layers=2,
        num_heads=4,
        attention_types=[[["global", "local"], 1]],
        window_size=4,
        max_position_embeddings=64,
        intermediate_size=64,
        bos_token_id=None,
        eos_token_id=None,
    )
    model = from_hf_model(GPTNeoForCausalLM(config).eval(), tokenizer, name="tiny-gpt-neo")
    with model.residual_reader([1]) as reader:
        assert not reader.continues and not reader.packs
    items = _items()
    _assert_same(
        read_options(model, items, batch_size=3),
        read_options(model, items, batch_size=3, reuse_prompts=False),
    )
