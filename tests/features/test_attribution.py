"""Feature attribution on the organism's shipped SAEs: identity, splicing, ablation, the top-k search."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

from probes.features import saelens

if not saelens.installed():
    pytest.skip(f"SAELens is optional: {saelens.INSTALL}", allow_module_level=True)

import probes
from probes.ablate.prompts import batches, encode_prompts
from probes.features.ablation import top_vs_random
from probes.features.attribution import TOLERANCE, attribute_features, decompose, log_odds_with
from probes.features.sources import saes_for
from probes.tasks import load_items


@pytest.fixture(scope="module")
def two_layers():
    """organism:2x48 (two SAEs: a middle layer and the last) and 12 prize items."""
    model = probes.load_model("organism:2x48")
    prompts = encode_prompts(load_items(["organism_negation"], ["prize"], 12, 0), model)
    return model, prompts, saes_for(model, None)


def test_features_error_and_baseline_add_up_to_the_log_odds(two_layers):
    model, prompts, saes = two_layers
    assert [sae.layer for sae in saes] == [1, 2]
    for sae in saes:
        features, items = attribute_features(model, prompts, sae, checked=2)
        summed = items["baseline"] + items["error_attribution"]
        summed += features.groupby("item_id")["attribution"].sum().reindex(items["item_id"]).to_numpy()
        gap = (items["log_odds"] - summed).abs()
        bound = TOLERANCE * (items["log_odds"] - items["baseline"]).abs().clip(lower=1)
        assert (gap <= bound + 1e-4).all(), (sae.layer, gap.max())
        assert (items["completeness_gap"] - (items["log_odds"] - summed)).abs().max() < 1e-4
        # the decomposition with its error term is the model itself
        assert (items["log_odds"] - items["model_log_odds"]).abs().max() < 1e-4


def test_the_residual_splits_exactly_and_splicing_drops_only_the_error(two_layers):
    model, prompts, saes = two_layers
    sae = saes[0]
    batch = next(iter(batches(prompts, 8, model.device)))
    parts, clean = decompose(model, batch, sae)
    assert torch.allclose(parts.residual(1.0), parts.clean, atol=1e-4)
    # every real position is read but a leading start token (organism prompts have none)
    lengths = torch.tensor(batch.lengths)
    real = torch.arange(parts.read.shape[1]).unsqueeze(0) < lengths.unsqueeze(1)
    starts = batch.input_ids[:, 0].cpu() == model.tokenizer.bos_token_id
    assert torch.equal(parts.read[:, 1:], real[:, 1:]) and torch.equal(parts.read[:, 0], ~starts)
    hook = model.resid_hook(sae.layer)
    whole, _, _ = log_odds_with(model, batch, hook, parts.residual(1.0))
    assert torch.allclose(whole, clean, atol=1e-4)
    spliced = parts.residual(1.0, error=False)
    assert torch.allclose((parts.clean - spliced)[parts.read], parts.error[parts.read], atol=1e-5)


def test_ablation_effect_is_the_change_from_removing_the_feature(two_layers):
    model, prompts, saes = two_layers
    sae = saes[1]
    features, items = attribute_features(model, prompts[:4], sae, checked=1)
    row = features.dropna(subset=["ablation_effect"]).iloc[0]
    index = [p.item.id for p in prompts].index(row["item_id"])
    batch = next(iter(batches([prompts[index]], 1, model.device)))
    parts, _ = decompose(model, batch, sae)
    remove = torch.zeros_like(parts.activations)
    remove[..., int(row["feature"])] = parts.activations[..., int(row["feature"])]
    hook = model.resid_hook(sae.layer)
    ablated, _, _ = log_odds_with(model, batch, hook, parts.residual(1.0, remove=remove))
    clean, _, _ = log_odds_with(model, batch, hook, parts.residual(1.0))
    assert float(ablated - clean) == pytest.approx(row["ablation_effect"], abs=1e-4)
    # the last layer reads the answer position only through the final norm: attribution tracks ablation
    checked = features.dropna(subset=["ablation_effect"])
    assert (checked["attribution"] * -checked["ablation_effect"] >= 0).mean() >= 0.75


def test_top_vs_random_is_cross_fitted_and_seeded(two_layers):
    model, prompts, saes = two_layers
    sae = saes[1]
    features, _ = attribute_features(model, prompts, sae, checked=0)
    first = top_vs_random(model, prompts, sae, features, ks=[1, 2], draws=3, seed=0)
    again = top_vs_random(model, prompts, sae, features, ks=[1, 2], draws=3, seed=0)
    assert first.equals(again)
    assert set(first["selection"]) <= {"top", "random"} and set(first["half"]) == {0, 1}
    # each half's top set is ranked on the other half only
    for half in (0, 1):
        other = first.loc[first["half"] != half, "item_id"].unique()
        mine = features[features["item_id"].isin(other)]
        means = mine.groupby("feature")["attribution"].sum() / len(other)
        top = first[(first["half"] == half) & (first["selection"] == "top") & (first["k"] == 1)]
        if len(top):
            assert int(top["features"].iloc[0]) == int(means.idxmin())
    clean = first.drop_duplicates("item_id")[["item_id", "log_odds_clean"]]
    assert len(clean) == len(prompts)


def test_a_batch_gives_the_numbers_of_one_prompt_at_a_time(two_layers):
    model, prompts, saes = two_layers
    # prompts of different lengths in one batch (prize: 4 tokens, one_shot: 10), some needing more
    # path intervals than others
    mixed = prompts[:8] + encode_prompts(load_items(["organism_negation"], ["one_shot"], 4, 0), model)
    sae = saes[0]
    alone = attribute_features(model, mixed, sae, checked=1, batch_size=1)
    together = attribute_features(model, mixed, sae, checked=1, batch_size=len(mixed))
    for one, batched in zip(alone, together):  # features, then items (with each row's ig_steps)
        pd.testing.assert_frame_equal(one, batched, check_exact=False, rtol=0, atol=1e-4)


def test_a_k_above_the_active_features_leaves_an_empty_table_with_its_columns(two_layers):
    model, prompts, saes = two_layers
    features, _ = attribute_features(model, prompts[:4], saes[1], checked=0)
    table = top_vs_random(model, prompts[:4], saes[1], features, ks=[saes[1].d_sae + 1], draws=2)
    assert table.empty and {"item_id", "selection", "k", "correct_ablated", "layer"} <= set(table.columns)
