"""The lens engine: exact at the last layer, padding-invariant, teacher-forced sums."""

from __future__ import annotations

import pytest
import torch
from plan_checks import assert_every_token_read_once
from tiny_models import tiny_hf_model

from probes.errors import InvalidItemError, LayerError, OutOfMemoryError
from probes.lenses.reading import read_options, resolve_layers
from probes.tasks import Item

PROMPTS = ["w1 w2 w3", "w7 w8 w9 w10 w11 w12 w13", "w5", "w40 w41 w42 w43"]


def _items() -> list[Item]:
    return [
        Item("single", "t", PROMPTS[0], " w4", " w5"),
        Item("multi", "t", PROMPTS[1], " w4 w6 w8", " w5", options=(" w4 w6 w8", " w5", " w9 w10")),
        Item("short", "t", PROMPTS[2], " w30", " w31 w32"),
        Item("three", "t", PROMPTS[3], " w1", " w2", options=(" w3", " w1", " w2")),
    ]


def _reference_logprob(hf_model, tokenizer, prompt: str, answer: str) -> float:
    """Summed log-prob of the answer's tokens after the prompt, by plain transformers."""
    prompt_ids = tokenizer(prompt).input_ids
    answer_ids = tokenizer(answer, add_special_tokens=False).input_ids
    ids = torch.tensor([prompt_ids + answer_ids])
    with torch.no_grad():
        logprobs = hf_model(ids).logits.log_softmax(-1)[0]
    return float(sum(logprobs[len(prompt_ids) - 1 + j, t] for j, t in enumerate(answer_ids)))


@pytest.mark.parametrize("family", ["gpt2", "neox", "llama"])
def test_last_layer_equals_model_logprobs(family, tokenizer):
    from probes.model.loading import from_hf_model

    model = from_hf_model(tiny_hf_model(family), tokenizer, name=family)
    reference = tiny_hf_model(family)  # the same weights, never bridged
    readout = read_options(model, _items(), batch_size=3)
    assert readout.layers == list(range(model.n_layers + 1))
    for item, logprobs in zip(readout.items, readout.logprobs):
        for option_index, option in enumerate(item.options):
            expected = _reference_logprob(reference, tokenizer, item.prompt, option)
            assert logprobs[-1, option_index].item() == pytest.approx(expected, abs=1e-4)


def test_batched_with_padding_equals_one_at_a_time(tiny_model):
    items = _items()
    batched = read_options(tiny_model, items, batch_size=8)
    for item, logprobs in zip(items, batched.logprobs):
        alone = read_options(tiny_model, [item], batch_size=1).logprobs[0]
        torch.testing.assert_close(logprobs, alone, atol=1e-4, rtol=0)


def test_multi_token_options_are_summed_per_layer(tiny_model):
    item = _items()[1]
    readout = read_options(tiny_model, [item])
    assert readout.option_token_counts[0] == [3, 1, 2]
    # By hand: one forward pass of prompt + option, the per-token readouts summed at each layer.
    tokenizer = tiny_model.tokenizer
    prompt_ids = tokenizer(item.prompt).input_ids
    option_ids = tokenizer(item.options[0], add_special_tokens=False).input_ids
    with torch.no_grad():
        _, cache = tiny_model.bridge.run_with_cache(torch.tensor([prompt_ids + option_ids]))
    stack = cache.accumulated_resid(apply_ln=True)  # [layer, 1, pos, d_model]
    logprobs = tiny_model.bridge.unembed(stack[:, 0]).log_softmax(-1)  # [layer, pos, vocab]
    by_hand = sum(logprobs[:, len(prompt_ids) - 1 + j, t] for j, t in enumerate(option_ids))
    torch.testing.assert_close(readout.logprobs[0][:, 0], by_hand, atol=1e-4, rtol=0)


def test_stops_after_the_last_layer_asked_for(tiny_model):
    calls = []
    last_block = tiny_model.blocks[-1]
    handle = last_block.register_forward_hook(lambda *args: calls.append(1))
    try:
        partial = read_options(tiny_model, _items()[:1], layers=[0, 1])
    finally:
        handle.remove()
    assert calls == []  # the last block never ran
    full = read_options(tiny_model, _items()[:1])
    torch.testing.assert_close(partial.logprobs[0], full.logprobs[0][:2])


def test_layer_selection():
    assert resolve_layers(None, 3) == [0, 1, 2, 3]
    assert resolve_layers([-1, 0], 3) == [0, 3]
    with pytest.raises(LayerError, match="out of range"):
        resolve_layers([5], 3)


def test_items_that_cannot_be_scored(tiny_model):
    with pytest.raises(InvalidItemError, match=r"words outside this model's vocabulary \(\['apple'\]\)"):
        # the word-level tokenizer would read both unknown words as [UNK]
        read_options(tiny_model, [Item("x", "t", "w1", " apple", " pear")])
    with pytest.raises(InvalidItemError, match="' w2' and ' w2 ' tokenize identically"):
        read_options(tiny_model, [Item("x", "t", "w1", " w2", " w3", options=(" w2", " w3", " w2 "))])
    with pytest.raises(InvalidItemError, match="longer than the model's context"):
        read_options(tiny_model, [Item("x", "t", " ".join(["w1"] * 80), " w2", " w3")])
    with pytest.raises(InvalidItemError, match="empty prompt"):
        Item("x", "t", "", " w2", " w3")
    with pytest.raises(InvalidItemError, match="tokenizes to nothing"):
        read_options(tiny_model, [Item("x", "t", "   ", " w2", " w3")])


def test_out_of_memory_names_a_smaller_batch(tiny_model, monkeypatch):
    from probes.model.bridge import residual_catcher

    def explode(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

    for method in ("run", "run_prompts", "run_continuations"):
        monkeypatch.setattr(residual_catcher.ResidualCatcher, method, explode)
    with pytest.raises(OutOfMemoryError, match="--batch-size 2"):
        read_options(tiny_model, _items(), batch_size=4)


def test_attention_implementation_is_restored(tiny_model):
    before = tiny_model.hf_model.config._attn_implementation
    read_options(tiny_model, _items()[:1])
    assert tiny_model.hf_model.config._attn_implementation == before


@pytest.mark.parametrize("batch_size", [1, 2, 8])
def test_prompt_cache_equals_whole_rows(tiny_model, batch_size):
    """One prompt pass plus option continuations reads what one row per option reads."""
    items = _items()
    cached = read_options(tiny_model, items, batch_size=batch_size)
    rows = read_options(tiny_model, items, batch_size=batch_size, reuse_prompts=False)
    for fast, slow in zip(cached.logprobs, rows.logprobs):
        torch.testing.assert_close(fast, slow, atol=1e-4, rtol=0)
    assert cached.option_ids == rows.option_ids
    for fast_options, slow_options in zip(cached.token_logprobs, rows.token_logprobs):
        for fast, slow in zip(fast_options, slow_options):  # every answer token's value, not just sums
            torch.testing.assert_close(fast, slow, atol=1e-4, rtol=0)


def test_each_prompt_runs_once(tiny_model):
    item = _items()[1]  # options of 3, 1 and 2 tokens
    prompt_length = len(tiny_model.tokenizer(item.prompt).input_ids)
    widths = []
    handle = tiny_model.blocks[0].register_forward_hook(lambda _m, args, _o: widths.append(args[0].shape[1]))
    try:
        read_options(tiny_model, [item], batch_size=8)
    finally:
        handle.remove()
    # The prompt once, then one continuation pass: one row packing both long options' inputs (2 + 1).
    assert widths == [prompt_length, 3]


def test_no_cache_falls_back_to_whole_rows(tiny_model, monkeypatch):
    """A backend that keeps no cache gets today's rows, and the same numbers."""
    from probes.model.bridge.residual_catcher import ResidualCatcher

    original = ResidualCatcher.run_prompts

    def without_cache(self, *args):
        return original(self, *args)[0], None

    items = _items()
    expected = read_options(tiny_model, items, batch_size=3, reuse_prompts=False)
    monkeypatch.setattr(ResidualCatcher, "run_prompts", without_cache)
    got = read_options(tiny_model, items, batch_size=3)
    for fast, slow in zip(got.logprobs, expected.logprobs):
        torch.testing.assert_close(fast, slow, atol=1e-4, rtol=0)


def test_plan_reads_every_token_once():
    from probes.lenses.passes import plan

    prompts = [[1, 2, 3], [4], [5, 6]]
    options = [[[7], [8, 9, 10]], [[11, 12], [13]], [[14], [15]]]
    batches = plan(prompts, options, batch_size=2)
    assert_every_token_read_once(batches, options)
    assert [b.prompts.tokens for b in batches] == [[[1, 2, 3], [5, 6]], [[4]]]
    assert batches[0].continuations[0].tokens == [[8, 9]] and batches[0].continuations[0].prompt_rows == [0]
