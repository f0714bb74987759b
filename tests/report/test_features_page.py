"""The feature study's page from small hand-built tables: no model, no SAE, no store."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pandas as pd
import pytest

from probes.features.summary import feature_ranking
from probes.report.features import (
    PROMPTS,
    ablation_figure,
    feature_markdown,
    identity_figure,
    short_names,
    top_features_figure,
    top_items_html,
    write_feature_page,
)

MODELS = ["toy:small", "toy:middle", "toy:large"]
VARIANTS = ["no_distractor", "prize"]  # not in report order: the page puts prize first
LAYERS = [1, 2]
N_ITEMS = 12
#: The feature every model's prize items share: it pushes the distractor on every item.
PUSHER = 7


def _tables(seed: int = 0) -> dict[str, pd.DataFrame]:
    """Features, items and ablation rows whose attribution identity holds exactly on every item."""
    rng = np.random.default_rng(seed)
    features, items, ablation = [], [], []
    for size, model in enumerate(MODELS):
        for variant in VARIANTS:
            for layer in LAYERS:
                key = {"model": model, "task": "toy", "variant": variant, "layer": layer}
                for number in range(N_ITEMS):
                    key["item_id"] = f"item{number:02d}"
                    attributions = {PUSHER: -2.0 - size + 0.1 * rng.normal()} if variant == "prize" else {}
                    attributions[10 + number % 3] = 1.5 + 0.2 * rng.normal()  # a true-answer pusher
                    attributions[20 + number] = 0.3 * rng.normal()  # noise, active on one item
                    for feature, attribution in attributions.items():
                        features.append(_feature_row(key, feature, attribution, rng))
                    items.append(_item_row(key, sum(attributions.values()), rng))
                    # the large model's prize answers are rescued by the top set; elsewhere top ~ random
                    rescued = model == MODELS[-1] and variant == "prize"
                    for k in (1, 2):
                        top = ("top", 0, 3.0 if rescued else rng.normal(), rescued)
                        randoms = [("random", draw, rng.normal(), False) for draw in range(3)]
                        for selection, draw, change, right in [top, *randoms]:
                            ablation.append(
                                {**key, "half": number % 2, "selection": selection, "k": k, "draw": draw,
                                 "log_odds_clean": items[-1]["log_odds"], "correct_clean": 0.0,
                                 "log_odds_ablated": items[-1]["log_odds"] + change,
                                 "correct_ablated": 1.0 if right else float(change > 0)}
                            )  # fmt: skip
    return {
        "features": pd.DataFrame(features),
        "feature_items": pd.DataFrame(items),
        "feature_ablation": pd.DataFrame(ablation),
    }


def _feature_row(key: dict, feature: int, attribution: float, rng: np.random.Generator) -> dict:
    return {
        **key, "feature": feature, "activation": 1 + rng.random(), "active_positions": 1, "position": 3,
        "from_end": 0, "token": 40 + feature % 5, "attribution": attribution,
        "linear_attribution": 0.8 * attribution, "ablation_effect": -attribution + 0.05 * rng.normal(),
    }  # fmt: skip


def _item_row(key: dict, features_total: float, rng: np.random.Generator) -> dict:
    baseline, error, gap = rng.normal(), 0.5 * rng.normal(), 1e-3 * rng.normal()
    log_odds = baseline + features_total + error + gap
    return {
        **key, "log_odds": log_odds, "model_log_odds": log_odds, "correct": float(log_odds > 0),
        "baseline": baseline, "features_total": features_total, "error_attribution": error,
        "completeness_gap": gap, "spliced_log_odds": log_odds - error,
        "spliced_correct": float(log_odds - error > 0),
    }  # fmt: skip


@pytest.fixture(scope="module")
def tables() -> dict[str, pd.DataFrame]:
    return _tables()


def test_the_page_and_its_markdown_are_written(tables, tmp_path):
    tables = {**tables, PROMPTS: pd.DataFrame([{"task": "toy", "variant": "prize", "item_id": "item03",
                                                "prompt": "Is the toy <large>?"}])}  # fmt: skip
    page = write_feature_page(tables, tmp_path, MODELS, png=False, links=[("Lens report", "report.html")])
    text = page.read_text()
    markdown = (tmp_path / "features.md").read_text()
    assert page.name == "features.html" and markdown.startswith("# Features")
    for section in ("identity", "top-features", "top-items", "ablation", "splice", "attribution-check",
                    "ablation-table"):  # fmt: skip
        assert f'<section id="{section}">' in text
    assert 'href="report.html"' in text and "Is the toy &lt;large&gt;?" in text  # prompts escaped
    for heading in ("sum of its terms", "Top features", "Splicing", "exact effect", "top-k"):
        assert heading in markdown
    assert "\n\n\n" not in markdown


def test_the_identity_bars_add_up_to_the_mean_log_odds(tables):
    figure = identity_figure(tables["features"], tables["feature_items"], MODELS)
    assert [a.text for a in figure.layout.annotations][:2] == ["prize", "no_distractor"]  # prize first
    sums: dict[tuple[str, tuple[str, str]], float] = defaultdict(float)
    markers = {}
    for trace in figure.data:
        positions = list(zip(*trace.x))
        if trace.type == "bar":
            for position, value in zip(positions, trace.y):
                sums[(trace.xaxis, position)] += value
        else:
            markers.update({(trace.xaxis, p): v for p, v in zip(positions, trace.y)})
    assert len(markers) == len(MODELS) * len(LAYERS) * len(VARIANTS) and set(sums) == set(markers)
    for key, value in markers.items():
        assert sums[key] == pytest.approx(value, abs=1e-9)
    # the diamonds are the items' mean log-odds; the x axis groups layers under short model names
    items = tables["feature_items"]
    large = items[(items["model"] == "toy:large") & (items["variant"] == "prize") & (items["layer"] == 2)]
    mean = large["log_odds"].mean()
    assert markers[("x", ("large", "L2"))] == pytest.approx(mean)
    assert list(dict.fromkeys(p[0] for a, p in markers if a == "x")) == ["small", "middle", "large"]


def test_the_position_bars_add_up_to_the_features_part(tables):
    from probes.features.summary import identity_terms
    from probes.report.features import position_figure

    features, items = tables["features"], tables["feature_items"]
    figure = position_figure(features, items, MODELS)
    sums: dict[tuple[str, str], float] = defaultdict(float)
    for trace in figure.data:
        for position, value in zip(zip(*trace.x), trace.y):
            sums[position] += value
    terms = identity_terms(features, items)
    terms = terms[terms["variant"] == "prize"]
    for row in terms.itertuples():
        expected = row.distractor_features + row.true_features
        assert sums[(row.model.split(":")[1], f"L{row.layer}")] == pytest.approx(expected, abs=1e-9)


def test_top_features_show_with_their_intervals(tables):
    features, items = tables["features"], tables["feature_items"]
    figure = top_features_figure(features, items, MODELS)
    ranking = feature_ranking(features, items).set_index(["model", "variant", "layer", "feature"])
    red = [trace for trace in figure.data if trace.name == "pushes the distractor"]
    assert len(red) == len(MODELS)
    for model, trace in zip(MODELS, red):
        assert list(trace.y) == [f"f{PUSHER} @ token 42 (from_end 0)"]  # no tokenizer: the id
        expected = ranking.loc[(model, "prize", 2, PUSHER)]  # the last SAE layer, prize
        assert trace.x[0] == pytest.approx(expected["attribution"])
        assert trace.error_x.arrayminus[0] == pytest.approx(expected["attribution"] - expected["low"])
        assert trace.error_x.array[0] == pytest.approx(expected["high"] - expected["attribution"])
        assert expected["high"] < 0
    decoded = features.assign(token_text=features["token"].map(lambda t: f"word{t}"))
    assert f'f{PUSHER} @ "word42" (from_end 0)' in top_features_figure(decoded, items, MODELS).data[0].y
    markdown = feature_markdown(tables, MODELS)["top"]
    low, high = expected["low"], expected["high"]
    assert f"{expected['attribution']:+.3f} [{low:+.3f}, {high:+.3f}]" in markdown
    table = top_items_html(features, items, MODELS)
    assert table.count(f'<td rowspan="3">f{PUSHER}</td>') == len(MODELS) and "prompt" not in table


def test_not_determined_when_the_difference_interval_spans_zero(tables):
    block = feature_markdown(tables, MODELS)["ablation-table"]
    verdicts = {}
    for line in block.splitlines()[4:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        verdicts[(cells[1], cells[2], cells[3], cells[4])] = cells[10]
    assert verdicts[("prize", "toy:large", "2", "1")] == "top > random"
    assert verdicts[("prize", "toy:small", "2", "1")] == "not determined"
    assert set(verdicts.values()) <= {"top > random", "top < random", "not determined"}
    figure = ablation_figure(tables["feature_ablation"], MODELS)
    top = [trace for trace in figure.data if trace.name == "top-k distractor features"]
    assert len(top) == 2 * len(MODELS) and list(top[-2].y) == [1.0, 1.0]  # accuracy, large model


def test_short_names_cut_at_a_separator():
    assert short_names(["organism:1x4", "organism:1x8", "organism:1x32"]) == (
        "organism:",
        {"organism:1x4": "1x4", "organism:1x8": "1x8", "organism:1x32": "1x32"},
    )
    assert short_names(["gpt2", "pythia"])[0] == ""


def test_prompts_come_from_the_items_table(tmp_path):
    from probes.report.features import load_feature_tables
    from probes.store.store import Store

    store = Store(tmp_path / "store")
    assert load_feature_tables(store.root) == ({}, [])


def test_the_page_is_written_when_the_figures_task_has_no_top_set(tables, tmp_path):
    ablation = tables["feature_ablation"]
    other = ablation.assign(task="another")
    only_random = ablation[ablation["selection"] == "random"].assign(task="a first task")
    chosen = {**tables, "feature_ablation": pd.concat([only_random, other], ignore_index=True)}
    text = write_feature_page(chosen, tmp_path, MODELS, png=False).read_text()
    assert '<section id="ablation-table">' in text
