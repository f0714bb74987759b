"""Work the lens shares without changing a number: options that start alike, prompts that start
alike (one pass of the shared start), and one log-softmax per distinct residual vector."""

from __future__ import annotations

import pytest
import torch

from probes.lenses.passes import MIN_SHARED, plan
from probes.lenses.reading import read_options
from probes.tasks import Item

#: 20 shared tokens, then each item's own question (the shape of one-shot demonstrations).
START = " ".join(f"w{i}" for i in range(100, 120))


def _shared_items() -> list[Item]:
    return [
        Item("a", "t", f"{START} w1 w2", " w4", " w5 w6", options=(" w4", " w5 w6", " w5 w7 w8", " w9 w8")),
        Item("b", "t", f"{START} w3", " w9 w10", " w11", options=(" w9 w10", " w11", " w11 w12 w13")),
        Item("c", "t", f"{START} w1 w2 w7 w8 w9", " w12", " w13"),
        Item("d", "t", "w60 w61", " w14 w15", " w16"),  # shares nothing: a prompt pass of its own
    ]


def _assert_same(got, expected) -> None:
    for fast, slow in zip(got.logprobs, expected.logprobs):
        torch.testing.assert_close(fast, slow, atol=1e-4, rtol=0)
    for fast_options, slow_options in zip(got.token_logprobs, expected.token_logprobs):
        for fast, slow in zip(fast_options, slow_options):
            torch.testing.assert_close(fast, slow, atol=1e-4, rtol=0)


def test_options_that_start_alike_share_a_continuation_row():
    batches = plan([[1, 2]], [[[7, 8, 9], [7, 8], [7, 10], [11]]], batch_size=4)
    (continuation,) = batches[0].continuations
    assert continuation.tokens == [[7, 8]]  # serves all three multi-token options
    assert sorted((r.option, r.token, r.position) for r in continuation.reads) == [
        (0, 1, 0),
        (0, 2, 1),
        (1, 1, 0),
        (2, 1, 0),
    ]


def test_plan_batches_prompts_that_start_alike():
    start = list(range(100, 120))
    prompts = [start + [1], [5, 6, 7], start + [2, 3], [8] * 30]
    options = [[[1], [2]]] * 4
    batches = plan(prompts, options, batch_size=2, min_shared=16)
    assert [sorted({r.item for r in b.prompts.reads}) for b in batches] == [[1, 3], [0, 2]]
    assert [b.shared for b in batches] == [0, 20]
    assert all(b.shared == 0 for b in plan(prompts, options, batch_size=2))  # off by default


@pytest.mark.parametrize("batch_size", [2, 8])
def test_shared_start_equals_whole_prompts(tiny_model, batch_size):
    items = _shared_items()
    shared = read_options(tiny_model, items, batch_size=batch_size)
    whole = read_options(tiny_model, items, batch_size=batch_size, share_prefixes=False)
    rows = read_options(tiny_model, items, batch_size=batch_size, reuse_prompts=False)
    _assert_same(shared, rows)
    _assert_same(whole, rows)
    # a packed continuation pass on a shared start's cache is among them
    tokenize = tiny_model.tokenizer
    prompts = [tokenize(item.prompt).input_ids for item in items]
    options = [[tokenize(o, add_special_tokens=False).input_ids for o in item.options] for item in items]
    batches = plan(prompts, options, batch_size, MIN_SHARED, pack=True)
    assert any(batch.shared and any(step.packed for step in batch.continuations) for batch in batches)


def test_shared_start_runs_once(tiny_model):
    items = _shared_items()[:3]
    widths = []
    handle = tiny_model.blocks[0].register_forward_hook(lambda _m, args, _o: widths.append(args[0].shape[1]))
    try:
        read_options(tiny_model, items, batch_size=8)
    finally:
        handle.remove()
    # The 20 tokens the three prompts share, then their rests at once (the longest is
    # "w1 w2 w7 w8 w9"), then the options' continuations.
    assert widths[:2] == [20, 5]


def test_each_vector_is_read_once(tiny_model, monkeypatch):
    """Four single-token options are read from one log-softmax of the prompt's last vector."""
    seen = []
    original = type(tiny_model).log_probs_at

    def spy(self, resid, vector, targets, chunk_size=256):
        seen.append((resid.shape[-2], len(vector)))
        return original(self, resid, vector, targets, chunk_size)

    monkeypatch.setattr(type(tiny_model), "log_probs_at", spy)
    item = Item("x", "t", "w1 w2 w3", " w4", " w5", options=(" w4", " w5", " w6", " w7"))
    read_options(tiny_model, [item])
    assert seen == [(1, 4)]


def test_log_probs_at_equals_repeated_vectors(tiny_model):
    torch.manual_seed(0)
    resid = torch.randn(3, 5, tiny_model.d_model)
    vector = torch.tensor([0, 0, 4, 2, 4, 1])
    targets = torch.tensor([3, 9, 9, 2, 40, 7])
    got = tiny_model.log_probs_at(resid, vector, targets, chunk_size=4)
    expected = tiny_model.log_probs(resid[:, vector], targets.expand(3, -1))
    torch.testing.assert_close(got, expected.float(), atol=1e-6, rtol=0)
