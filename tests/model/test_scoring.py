"""Answer scoring: per-token readouts, the length-fair score, and the float32 readout."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from tiny_models import tiny_hf_model

from probes.analysis.metrics import layer_table
from probes.analysis.scoring import (
    decisive_token,
    fair_credit,
    fair_log_odds,
    length_warnings,
    per_layer_credit,
    per_layer_score,
    scoring_warnings,
)
from probes.errors import UnsupportedModelError
from probes.lenses.reading import read_options
from probes.model.bridge.readout import readout_view
from probes.tasks import Item

PROVENANCE = {"model": "m", "revision": "", "lens": "logit", "toolkit_version": "test"}


@pytest.mark.parametrize(
    ("true_ids", "distractor_ids", "expected"),
    [
        ([5], [6], 0),
        ([5, 7, 8], [6], 0),
        ([5, 7], [5, 8, 9], 1),
        ([5], [5, 9], None),
        ([1, 2], [1, 2, 3], None),
    ],
)
def test_decisive_token_is_the_first_that_differs(true_ids, distractor_ids, expected):
    assert decisive_token(true_ids, distractor_ids) == expected


def test_fair_score_does_not_charge_the_longer_answer_for_its_later_tokens():
    # layer 0: later tokens unreadable (−11 each); layer 1 (the last): easy continuations
    true = torch.tensor([[-3.0, -11.0, -11.0], [-1.0, -0.1, -0.2]])
    distractor = torch.tensor([[-4.0], [-5.0]])
    fair = fair_log_odds(true, distractor, [5, 7, 8], [6])
    assert fair.tolist() == pytest.approx([1.0, 4.0])
    summed = true.sum(-1) - distractor.sum(-1)
    assert summed.tolist() == pytest.approx([-21.0, 3.7])  # the confound the fair score avoids
    shared = fair_log_odds(
        torch.tensor([[-2.0, -1.0]]), torch.tensor([[-2.0, -3.0, -4.0]]), [5, 7], [5, 8, 9]
    )
    assert shared.tolist() == pytest.approx([2.0])  # the shared first token cancels, later ones too


def test_prefix_pairs_are_compared_at_the_branch_point():
    """ " be" vs " be, that": the shorter answer stops (1 − p(",")) or the longer goes on (p(","))."""
    shorter, longer = torch.tensor([[-2.0], [-0.1]]), torch.tensor([[-2.0, -3.0], [-0.1, -0.01]])
    expected = [math.log1p(-math.exp(-3.0)) + 3.0, math.log(-math.expm1(-0.01)) + 0.01]
    assert fair_log_odds(shorter, longer, [5], [5, 9]).tolist() == pytest.approx(expected, rel=1e-6)
    assert fair_log_odds(longer, shorter, [5, 9], [5]).tolist() == pytest.approx([-v for v in expected])
    # the longer answer's tokens after the branch point do not count
    longer_still = torch.tensor([[-2.0, -3.0, -9.0, -9.0], [-0.1, -0.01, -5.0, -0.2]])
    assert fair_log_odds(shorter, longer_still, [5], [5, 9, 4, 2]).tolist() == pytest.approx(expected)
    # a continuation read at log-prob 0 (beyond float32) stays finite
    certain = fair_log_odds(torch.tensor([[-1.0]]), torch.tensor([[-1.0, 0.0]]), [5], [5, 9])
    assert certain.item() == pytest.approx(math.log(2.0**-23), rel=1e-6)
    assert (
        fair_log_odds(torch.tensor([[-1.0, -2.0]]), torch.tensor([[-1.0, -3.0]]), [5, 6], [5, 6]).item() == 0
    )


def test_fair_credit_over_all_options():
    true, other, third = torch.tensor([[-1.0], [-3.0], [-2.0]]), torch.tensor([[-2.0], [-2.0], [-2.0]]), None
    third = torch.tensor([[-5.0], [-1.0], [-9.0]])
    credit = fair_credit([true, other, third], [[1], [2], [3]], 0)
    assert credit.tolist() == [1.0, 0.0, 0.5]  # wins; loses to both; ties with one, beats the other
    nan = fair_credit([torch.tensor([[float("nan")]]), other[:1]], [[1], [2]], 0)
    assert nan.tolist() == [0.0]
    # a multi-token option that shares the true answer's first token is compared where it parts
    shared = fair_credit([torch.tensor([[-1.0, -0.5]]), torch.tensor([[-1.0, -2.0]])], [[1, 4], [1, 5]], 0)
    assert shared.tolist() == [1.0]


def _per_token_reference(hf_model, tokenizer, prompt: str, answer: str) -> list[float]:
    """Each answer token's log-prob after the prompt and the earlier answer tokens, by transformers."""
    prompt_ids = tokenizer(prompt).input_ids
    answer_ids = tokenizer(answer, add_special_tokens=False).input_ids
    with torch.no_grad():
        logprobs = hf_model(torch.tensor([prompt_ids + answer_ids])).logits.log_softmax(-1)[0]
    return [float(logprobs[len(prompt_ids) - 1 + j, t]) for j, t in enumerate(answer_ids)]


@pytest.mark.parametrize("family", ["gpt2", "llama"])
def test_per_token_readout_matches_transformers_and_sums_to_the_option(family, tokenizer):
    from probes.model.loading import from_hf_model

    items = [
        Item("multi", "t", "w7 w8 w9", " w4 w6 w8", " w5", options=(" w4 w6 w8", " w5", " w9 w10")),
        Item("shared", "t", "w1 w2", " w3 w4", " w3 w5 w6"),
    ]
    model = from_hf_model(tiny_hf_model(family), tokenizer, name=family)
    reference = tiny_hf_model(family)
    readout = read_options(model, items, batch_size=2)
    for index, item in enumerate(items):
        for option, answer in enumerate(item.options):
            tokens = readout.token_logprobs[index][option]
            assert tokens.shape == (model.n_layers + 1, len(readout.option_ids[index][option]))
            expected = _per_token_reference(reference, tokenizer, item.prompt, answer)
            assert tokens[-1].tolist() == pytest.approx(expected, abs=4e-5)
            assert readout.logprobs[index][:, option] == pytest.approx(tokens.sum(-1), abs=1e-6)
    table = layer_table(readout, PROVENANCE, model.n_layers).assign(task="t", variant="prize")
    shared = table[table["item_id"] == "shared"]
    by_token = torch.tensor(shared["true_token_logprobs"].tolist())[:, 1] - torch.tensor(
        [row[1] for row in shared["distractor_token_logprobs"]]
    )
    assert shared["fair_log_odds"].tolist() == pytest.approx(by_token.tolist())  # " w4" vs " w5"
    assert per_layer_score(table) == "fair_log_odds"
    assert per_layer_score(table.drop(columns="fair_log_odds")) == "log_odds"
    assert per_layer_credit(table) == "fair_correct" and not scoring_warnings(table)
    assert per_layer_credit(table.drop(columns="fair_correct")) == "correct"
    (old_store,) = scoring_warnings(table.drop(columns="fair_correct"))
    assert "summed" in old_store and "--overwrite" in old_store
    multi = table[table["item_id"] == "multi"]  # " w4 w6 w8" against " w5" and " w9 w10": first tokens
    tokens = readout.token_logprobs[0]
    expected = fair_credit(tokens, readout.option_ids[0], 0)
    assert multi["fair_correct"].tolist() == expected.tolist()
    (warning,) = length_warnings(table)
    assert warning.startswith("t / prize: in 2 of 2 (model, item) pairs")


def test_bfloat16_model_is_read_out_in_float32(tokenizer):
    """The readout of a bfloat16 model equals final norm + unembedding in float32 on its residual."""
    from probes.model.loading import from_hf_model

    hf_model = tiny_hf_model("llama").to(torch.bfloat16)
    model = from_hf_model(hf_model, tokenizer, name="bf16")
    view = readout_view(model.bridge)
    assert view is not model.bridge and view.W_U.dtype == torch.float32
    assert readout_view(model.bridge) is view  # made once per model
    item = Item("a", "t", "w1 w2 w3", " w4", " w5")
    # The residual as plain transformers computes it (never bridged, its default attention), as
    # the lens does: in bfloat16 another attention kernel (the bridge's eager one) rounds differently.
    hf_model = tiny_hf_model("llama").to(torch.bfloat16)
    caught = {}
    handle = hf_model.model.layers[-1].register_forward_hook(
        lambda module, args, output: caught.setdefault(
            "resid", output[0] if isinstance(output, tuple) else output
        )
    )
    ids = tokenizer(item.prompt).input_ids
    with torch.no_grad():
        hf_model(torch.tensor([ids]))
    handle.remove()
    norm = copy.deepcopy(hf_model.model.norm).float()
    head = hf_model.lm_head.weight.float()
    with torch.no_grad():
        expected = (norm(caught["resid"][0, -1].float()) @ head.T).log_softmax(-1)
    readout = read_options(model, [item])
    for option, answer in enumerate(item.options):
        token = tokenizer(answer, add_special_tokens=False).input_ids[0]
        assert float(readout.logprobs[0][-1, option]) == pytest.approx(float(expected[token]), abs=1e-5)
    assert readout.logprobs[0][-1, 0] != readout.logprobs[0][-1, 1]


@pytest.mark.parametrize("pre_norm", [False, True])
def test_opt_with_project_out_is_read_through_it(pre_norm, tokenizer):
    """OPT-350m maps the decoder output down (project_out) before its tied unembedding, and is
    post-LN (no final norm): a random OPT of that shape reads exactly. The bridge refuses a pre-LN
    one (it hides that final norm), so the default backend reads it through nnsight, exactly."""
    from transformers import OPTConfig, OPTForCausalLM

    from probes.model.loading import from_hf_model

    def build() -> OPTForCausalLM:
        torch.manual_seed(5)
        config = OPTConfig(
            num_hidden_layers=2,
            hidden_size=32,
            ffn_dim=64,
            num_attention_heads=4,
            vocab_size=len(tokenizer),
            max_position_embeddings=64,
            word_embed_proj_dim=16,
            do_layer_norm_before=pre_norm,
            pad_token_id=1,
            bos_token_id=0,
            eos_token_id=0,
        )
        return OPTForCausalLM(config).eval()

    reference = build()
    assert reference.model.decoder.project_out is not None
    assert (reference.model.decoder.final_layer_norm is None) == (not pre_norm)
    items = [Item("a", "t", "w1 w2 w3", " w4", " w5 w6"), Item("b", "t", "w9 w8", " w7", " w3")]
    if pre_norm:  # no OPT is built so, and the bridge hides its final norm: refused, not misread
        with pytest.raises(UnsupportedModelError, match="project_out"):
            read_options(from_hf_model(build(), tokenizer, name="opt", backend="bridge"), items)
        pytest.importorskip("nnsight")
    model = from_hf_model(build(), tokenizer, name="opt")
    readout = read_options(model, items, batch_size=2)
    for index, item in enumerate(items):
        for option, answer in enumerate(item.options):
            expected = _per_token_reference(reference, tokenizer, item.prompt, answer)
            tokens = readout.token_logprobs[index][option][-1].tolist()
            assert tokens == pytest.approx(expected, abs=4e-5)


@pytest.mark.parametrize("family", ["gpt2", "llama"])
def test_a_shared_suffix_or_a_longer_tail_does_not_move_the_fair_score(family, tokenizer):
    """Within an item: extending both answers by the same tokens leaves the fair score where it
    is at every layer (the summed score moves), and so does extending the longer answer of a
    prefix pair after its branch token."""
    from probes.model.loading import from_hf_model

    model = from_hf_model(tiny_hf_model(family, seed=5), tokenizer, name=family)
    prompt = "w7 w8 w9 w1"
    items = [
        Item("plain", "t", prompt, " w4", " w5 w6"),
        Item("suffixed", "t", prompt, " w4 w11 w12", " w5 w6 w11 w12"),
        Item("prefix", "t", prompt, " w3", " w3 w10"),
        Item("prefix_longer", "t", prompt, " w3", " w3 w10 w2 w13"),
    ]
    table = layer_table(read_options(model, items, batch_size=2), PROVENANCE, model.n_layers)
    fair = {
        i: table.loc[table["item_id"] == i, "fair_log_odds"].to_numpy() for i in table["item_id"].unique()
    }
    summed = {i: table.loc[table["item_id"] == i, "log_odds"].to_numpy() for i in table["item_id"].unique()}
    assert fair["suffixed"] == pytest.approx(fair["plain"], abs=1e-5)
    assert fair["prefix_longer"] == pytest.approx(fair["prefix"], abs=1e-5)
    assert abs(summed["suffixed"] - summed["plain"]).max() > 0.1  # what the fair score removes
    assert abs(summed["prefix_longer"] - summed["prefix"]).max() > 0.1
