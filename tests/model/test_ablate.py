"""Attribution, ablation and patching on tiny random models and on a hand-built copying head."""

from __future__ import annotations

import pandas as pd
import pytest
import torch
from tiny_models import tiny_hf_model

from probes.ablate.ablation import AblationError, Reference, ablate, derangement, ranked_search
from probes.ablate.attribution import attribute, mean_head_attribution
from probes.ablate.components import Component, ComponentError, all_heads, all_mlps, parse_component
from probes.ablate.patching import pair_items, patch
from probes.ablate.prompts import encode_prompts
from probes.errors import InvalidItemError
from probes.model.loading import from_hf_model
from probes.tasks.items import Item


def make_items(count: int, variant: str = "prize", prefix: str = "w150 w151 ") -> list[Item]:
    """Items of different lengths; the twins (``no_distractor``) drop the prefix."""
    items = []
    for i in range(count):
        body = " ".join(f"w{10 + (7 * i + 3 * j) % 120}" for j in range(2 + i % 4))
        prompt = (prefix if variant == "prize" else "") + body
        items.append(Item(f"item{i}", "toy", prompt, " w1", " w2", (" w1", " w2", " w3"), variant))
    return items


@pytest.fixture(scope="module", params=["gpt2", "neox", "llama"])
def model(request, tokenizer):
    return from_hf_model(tiny_hf_model(request.param, seed=3), tokenizer, name=f"tiny-{request.param}")


def test_attributions_sum_to_the_models_log_odds(model):
    items = make_items(6)
    table = attribute(model, items, batch_size=4)
    totals = table.groupby("item_id")["attribution"].sum()
    own = table.groupby("item_id")["log_odds"].first()
    assert (totals - own).abs().max() <= 1e-3
    heads = int(model.bridge.cfg.n_heads)
    kinds = table[table["item_id"] == "item0"]["kind"].value_counts()
    assert kinds["head"] == heads * model.n_layers and kinds["mlp"] == model.n_layers
    assert kinds["embed"] == 1 and kinds["constant"] == 1
    # the model's own log-odds, read independently from plain transformers
    for item in items[:2]:
        ids = model.tokenizer(item.prompt, return_tensors="pt").input_ids
        with torch.no_grad():
            logits = model.hf_model(input_ids=ids).logits[0, -1]
        w1, w2 = (model.tokenizer(a, add_special_tokens=False).input_ids[0] for a in (" w1", " w2"))
        assert own[item.id] == pytest.approx(float(logits[w1] - logits[w2]), abs=1e-4)


def test_attribution_does_not_depend_on_batching(model):
    items = make_items(5)
    one = attribute(model, items, batch_size=1)
    many = attribute(model, items, batch_size=5)
    assert (one["attribution"] - many["attribution"]).abs().max() < 1e-5


def test_ablating_nothing_changes_nothing_and_everything_changes_something(model):
    prompts = encode_prompts(make_items(6), model)
    for method in ("zero", "mean", "resample"):
        none = ablate(model, prompts, [], method)
        assert (none["log_odds_ablated"] == none["log_odds_clean"]).all()
        everything = ablate(model, prompts, all_heads(model) + all_mlps(model), method)
        assert (everything["log_odds_ablated"] - everything["log_odds_clean"]).abs().max() > 1e-3


def test_zeroing_every_head_of_a_layer_zeroes_its_attention(model):
    # random initialisation leaves the attention output biases at zero, so the two must agree
    prompts = encode_prompts(make_items(5), model)
    heads = [c for c in all_heads(model) if c.layer == 1]
    by_heads = ablate(model, prompts, heads, "zero")
    by_layer = ablate(model, prompts, [Component(1, "attn")], "zero")
    assert (by_heads["log_odds_ablated"] - by_layer["log_odds_ablated"]).abs().max() < 1e-5
    assert (by_heads["log_odds_ablated"] - by_heads["log_odds_clean"]).abs().max() > 1e-4


def test_mean_and_resample_of_identical_prompts_change_nothing(model):
    same = [Item(f"copy{i}", "toy", "w5 w6 w7 w8", " w1", " w2") for i in range(4)]
    prompts = encode_prompts(same, model)
    for method in ("mean", "resample"):
        table = ablate(model, prompts, [Component(0, "layer"), Component(1, "head", 1)], method)
        assert (table["log_odds_ablated"] - table["log_odds_clean"]).abs().max() < 1e-4


def test_ablation_does_not_depend_on_batching(model):
    prompts = encode_prompts(make_items(7), model)
    chosen = [parse_component("L1H2"), parse_component("L0.mlp")]
    for method in ("mean", "resample"):
        one = ablate(model, prompts, chosen, method, batch_size=1, seed=4)
        many = ablate(model, prompts, chosen, method, batch_size=7, seed=4)
        assert (one["log_odds_ablated"] - many["log_odds_ablated"]).abs().max() < 1e-5


def test_mean_and_resample_align_at_the_answer_position_and_keep_the_first_apart():
    first = torch.tensor([[100.0], [2.0], [3.0]])  # position 0 is a BOS-like outlier
    second = torch.tensor([[200.0], [10.0], [20.0], [30.0]])
    reference = Reference.of({"h": [first, second]})
    assert reference.row("h", 3, 4).flatten().tolist() == [150.0, 11.0, 16.5, 0.0]  # padded to 4
    assert reference.row("h", 4, 4).flatten().tolist() == [150.0, 10.0, 11.0, 16.5]
    # a long row takes the donor where it reaches and the means before that; first from first
    assert reference.row("h", 4, 4, donor=0).flatten().tolist() == [100.0, 10.0, 2.0, 3.0]
    assert reference.row("h", 3, 3, donor=1).flatten().tolist() == [200.0, 20.0, 30.0]


def test_derangement_has_no_fixed_points_and_is_seeded():
    for n in (2, 3, 10):
        donors = derangement(n, seed=1)
        assert sorted(donors) == list(range(n)) and all(d != i for i, d in enumerate(donors))
    assert derangement(10, 5) == derangement(10, 5)


def test_patching_the_last_residual_restores_the_twin_exactly(model):
    items, twins = make_items(6), make_items(6, "no_distractor")
    pairs, unpaired = pair_items(model, items, twins)
    assert len(pairs) == 6 and unpaired.empty
    table = patch(model, pairs, "answer", heads=True, batch_size=4)
    last = table[(table["site"] == "resid") & (table["layer"] == model.n_layers)]
    assert (last["log_odds_patched"] - last["log_odds_twin"]).abs().max() < 1e-5
    assert (last["restored"] - 1).abs().max() < 1e-4
    if "gpt2" not in model.name:  # rotary positions: the embedding of the same last token is the same
        first = table[(table["site"] == "resid") & (table["layer"] == 0)]
        assert (first["log_odds_patched"] - first["log_odds_clean"]).abs().max() < 1e-5
    heads = int(model.bridge.cfg.n_heads)
    assert (table["site"] == "head").sum() == 6 * model.n_layers * heads


def test_patching_every_position_of_equal_length_pairs_at_layer_0_is_the_twin(model):
    items = make_items(4)
    twins = [
        Item(i.id, "toy", "w99 w98 " + i.prompt.split(" ", 2)[2], " w1", " w2", i.options) for i in items
    ]
    pairs, _ = pair_items(model, items, twins, positions="all")
    table = patch(model, pairs, "all", heads=False)
    first = table[table["layer"] == 0]
    assert (first["log_odds_patched"] - first["log_odds_twin"]).abs().max() < 1e-5


def test_unalignable_pairs_are_reported_with_a_reason(model):
    items, twins = make_items(5), make_items(3, "no_distractor")
    twins.append(Item("item3", "toy", "w5 w6", " w1", " w2"))  # other options
    twins.append(Item("item4", "toy", "w5 w6", " w1", " w2", (" w1", " w2", " w3")))  # other last token
    pairs, unpaired = pair_items(model, items, twins, positions="all")
    reasons = dict(zip(unpaired["item_id"], unpaired["reason"]))
    assert "equal lengths" in reasons["item0"] and "options" in reasons["item3"]
    assert len(pairs) + len(unpaired) == 5
    pairs, unpaired = pair_items(model, items, twins[:3] + twins[4:], positions="suffix")
    reasons = dict(zip(unpaired["item_id"], unpaired["reason"]))
    assert "no no_distractor twin" in reasons["item3"] and "different tokens" in reasons["item4"]
    assert [p.item.item.id for p in pairs] == ["item0", "item1", "item2"]


def test_suffix_patching_matches_identical_tokens_and_the_bos():
    from probes.ablate.patching import aligned_positions

    item, twin = [0, 7, 8, 5, 6], [0, 5, 6]  # BOS, "not", "very", X, is  /  BOS, X, is
    assert aligned_positions(item, twin, "suffix", bos=0) == ((0, 3, 4), (0, 1, 2))
    assert aligned_positions(item, twin, "suffix", bos=None) == ((3, 4), (1, 2))
    assert aligned_positions([1, 9, 5, 6], [1, 8, 6], "suffix", bos=None) == ((3,), (2,))
    assert aligned_positions(item, twin, "answer", bos=0) == ((4,), (2,))
    assert "different tokens" in aligned_positions([1, 2], [1, 3], "suffix", bos=None)


def test_suffix_patching_at_layer_0_restores_nothing_when_the_twin_is_a_suffix(model):
    if "gpt2" in model.name:
        pytest.skip("absolute position embeddings differ between the shifted positions")
    items, twins = make_items(4), make_items(4, "no_distractor")
    pairs, _ = pair_items(model, items, twins, positions="suffix")
    assert all(len(p.twin_positions) == len(p.twin.tokens) for p in pairs)  # the whole twin is shared
    table = patch(model, pairs, "suffix", heads=False)
    first = table[table["layer"] == 0]
    assert (first["log_odds_patched"] - first["log_odds_clean"]).abs().max() < 1e-5  # same embeddings
    last = table[table["layer"] == model.n_layers]
    assert (last["log_odds_patched"] - last["log_odds_twin"]).abs().max() < 1e-5


def test_component_names_parse_and_bad_ones_say_how(model):
    assert parse_component("L2H3") == Component(2, "head", 3)
    assert parse_component("L1.mlp").hook_names() == ["blocks.1.hook_mlp_out"]
    assert parse_component("L0").label == "L0"
    with pytest.raises(ComponentError, match="L<block>H<head>"):
        parse_component("layer2")
    with pytest.raises(ComponentError, match="has blocks"):
        ablate(model, encode_prompts(make_items(2), model), [Component(9, "mlp")], "zero")
    with pytest.raises(AblationError, match="unknown"):
        ablate(model, encode_prompts(make_items(2), model), [Component(0, "mlp")], "scramble")  # type: ignore[arg-type]


def test_answers_sharing_a_first_token_are_refused(model):
    item = Item("x", "toy", "w5 w6", " w1 w2", " w1 w3")
    with pytest.raises(InvalidItemError, match="same token"):
        encode_prompts([item], model)


# --- a hand-built model whose one head copies the distractor token -----------------------------

DISTRACTOR = "w7"


@pytest.fixture(scope="module")
def copying_model(tokenizer):
    """Tiny GPT-2 whose head L1H0 attends to the distractor token and writes its unembedding."""
    hf_model = tiny_hf_model("gpt2", seed=5, n_layers=2)
    d_model, heads = hf_model.config.n_embd, hf_model.config.n_head
    d_head = d_model // heads
    distractor = tokenizer(DISTRACTOR, add_special_tokens=False).input_ids[0]
    with torch.no_grad():
        attention = hf_model.transformer.h[1].attn
        unembedding = hf_model.lm_head.weight[distractor].clone()  # tied with the token embedding
        detector = unembedding - unembedding.mean()
        detector = detector / detector.norm()
        q, k, v = (slice(start, start + d_head) for start in (0, d_model, 2 * d_model))
        for part in (q, k, v):
            attention.c_attn.weight[:, part] = 0
            attention.c_attn.bias[part] = 0
        attention.c_attn.bias[0] = 1.0  # a constant query ...
        attention.c_attn.weight[:, d_model] = 10 * detector  # ... that matches keys of the distractor token
        attention.c_attn.weight[:, 2 * d_model] = detector  # value: how much the position is the distractor
        attention.c_proj.weight[:d_head] = 0
        attention.c_proj.weight[0] = unembedding / unembedding.norm()  # output: the distractor's logit
    return from_hf_model(hf_model, tokenizer, name="copying-gpt2")


def copy_items(count: int) -> list[Item]:
    items = []
    for i in range(count):
        words = [f"w{20 + (5 * i + 3 * j) % 100}" for j in range(3 + i % 3)]
        words.insert(i % len(words), DISTRACTOR)
        items.append(Item(f"copy{i}", "toy", " ".join(words), " w9", f" {DISTRACTOR}"))
    return items


def test_attribution_and_ablation_name_the_copying_head(copying_model):
    items = copy_items(8)
    ranking = mean_head_attribution(attribute(copying_model, items))
    assert ranking["component"].iloc[0] == "L1H0"
    assert abs(ranking["attribution"].iloc[0]) > 100 * ranking["attribution"].iloc[1:].abs().max()
    prompts = encode_prompts(items, copying_model)
    effects = {}
    for head in all_heads(copying_model):
        table = ablate(copying_model, prompts, [head], "zero")
        effects[head.label] = float((table["log_odds_ablated"] - table["log_odds_clean"]).mean())
    others = max(abs(value) for label, value in effects.items() if label != "L1H0")
    assert max(effects, key=effects.get) == "L1H0" and effects["L1H0"] > 10 * others
    # zero ablation: this head writes the same vector on every item, so its mean would keep its push
    search = ranked_search(
        copying_model, prompts, [parse_component(c) for c in ranking["component"]], [1], 3, method="zero"
    )
    top = search[search["selection"] == "top"]
    assert set(top["components"]) == {"L1H0"}
    random_delta = search[search["selection"] == "random"].eval("log_odds_ablated - log_odds_clean")
    top_delta = top.eval("log_odds_ablated - log_odds_clean")
    assert top_delta.mean() > random_delta.mean()
    assert isinstance(search, pd.DataFrame) and set(search["draw"]) == {0, 1, 2}
