"""All continuations of an item packed in one row on its cache: the same numbers as a row per
continuation and as whole rows, under sdpa and eager attention, and the prompt's cache untouched."""

from __future__ import annotations

import pytest
import torch

from probes.continuation import plan
from probes.lens import read_options, right_padded
from probes.residual_catcher import ResidualCatcher
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
@pytest.mark.parametrize("batch_size", [1, 3])
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
    reads = [r for b in batches for p in [b.prompts, *b.continuations] for r in p.reads]
    assert sorted((r.item, r.option, r.token, r.target) for r in reads) == sorted(
        (i, o, t, target)
        for i, item in enumerate(options)
        for o, ids in enumerate(item)
        for t, target in enumerate(ids)
    )
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
    prompts' keys stay as they were, so a second continuation reads the same."""
    prompts = [tiny_model.tokenizer(text).input_ids for text in ("w1 w2 w3", "w4 w5")]
    ids, mask = right_padded(prompts)
    nothing = torch.zeros(0, dtype=torch.long)
    with torch.inference_mode(), tiny_model.residual_reader([1, 2]) as reader:
        _, cache = reader.run_prompts(ids, mask, nothing, nothing)
        keys = [layer.keys.clone() for layer in cache.past.layers]
        rows = torch.arange(2)
        more, more_mask = right_padded([[7, 8], [9, 10]])
        at = (torch.tensor([0, 1]), torch.tensor([1, 1]))
        first = reader.run_continuations(cache, rows, more, more_mask, *at)
        second = reader.run_continuations(cache, rows, more, more_mask, *at)
    assert all(torch.equal(layer.keys, kept) for layer, kept in zip(cache.past.layers, keys))
    assert cache.past.get_seq_length() == ids.shape[1]
    torch.testing.assert_close(first, second, atol=0, rtol=0)
