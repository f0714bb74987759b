"""The report: each figure's traces, axes and values on a hand-built results table; HTML and PNG.

The fixture is a sweep of three models (1M, 10M, 100M parameters; 4, 5, 6 blocks) over two
tasks and two variants, three items each, whose log-odds rise linearly with depth from -1 at
the embeddings to a chosen final value, so every number a figure shows is known:
``negation / prize`` dips (accuracy 2/3, 0, 1), ``quote / prize`` falls (1, 2/3, 0), and the
``no_distractor`` controls are right at every size. Three items per size are too few for a test
to name those shapes; the ``many`` fixture (20 copies of each item) names them U-shaped and
inverse.
"""

from __future__ import annotations

import math
import re
import shutil
import struct
import subprocess
import sys
import zlib
from pathlib import Path
from unittest import mock

import numpy as np
import pandas as pd
import pytest

from probes.cli.main import main
from probes.report import (
    BrowserNotFoundError,
    PngExportError,
    ReportError,
    attach_sizes,
    decision_layer_scaling,
    depth_heatmap,
    item_browser,
    layer_trajectories,
    scaling_curve,
    scaling_measures,
    scaling_table,
    summary_markdown,
    variant_comparison,
    write_pngs,
    write_report,
)
from probes.report.depth import cell_edges
from probes.report.document import PNG_SCALE, SECTIONS
from probes.report.tables import item_flips, scaling_shapes, wilson_interval
from probes.store.store import Store

#: name -> (parameters, non-embedding parameters, blocks)
MODELS = {
    "tiny-s": (1_000_000, 400_000, 4),
    "tiny-m": (10_000_000, 6_000_000, 5),
    "tiny-l": (100_000_000, 80_000_000, 6),
}
TOKENS = 1_000_000_000
PERPLEXITY = {"tiny-s": 40.0, "tiny-m": 30.0, "tiny-l": 20.0}
#: (task, variant) -> model -> each item's log-odds at the last layer.
FINAL = {
    ("negation", "prize"): {"tiny-s": [1, 1, -1], "tiny-m": [-1, -1, -1], "tiny-l": [1, 1, 1]},
    ("negation", "no_distractor"): {m: [2, 2, 2] for m in MODELS},
    ("quote", "prize"): {"tiny-s": [1, 1, 1], "tiny-m": [1, -1, 1], "tiny-l": [-1, -1, -1]},
    ("quote", "no_distractor"): {m: [3, 3, 3] for m in MODELS},
}
DISTRACTOR_LOGPROB = -4.0


def log_odds(final: float, depth: float) -> float:
    """The fixture's log-odds: -1 at depth 0, ``final`` at depth 1, linear between."""
    return -1.0 + (final + 1.0) * depth


def build_table(copies: int = 1) -> pd.DataFrame:
    """Per-layer rows in the columns of probes.analysis.metrics.layer_table; ``copies`` of each item."""
    rows = []
    for (task, variant), finals in FINAL.items():
        for model, (_, _, n_layers) in MODELS.items():
            for index, final in enumerate(finals[model] * copies):
                item = index if copies == 1 else f"{index % len(finals[model])}-{index}"
                for layer in range(n_layers + 1):
                    depth = layer / n_layers
                    odds = log_odds(final, depth)
                    p_true = 1 / (1 + math.exp(-odds))
                    last = layer == n_layers
                    rows.append(
                        {
                            "model": model,
                            "revision": "",
                            "lens": "logit",
                            "toolkit_version": "test",
                            "task": task,
                            "variant": variant,
                            "item_id": f"{task}-{item}",
                            "layer": layer,
                            "n_layers": n_layers,
                            "relative_depth": depth,
                            "true_logprob": DISTRACTOR_LOGPROB + odds,
                            "distractor_logprob": DISTRACTOR_LOGPROB,
                            "log_odds": odds,
                            "p_true": p_true,
                            "p_distractor": 1 - p_true,
                            "chosen_option": 0 if odds > 0 else 1,
                            "chosen_answer": " yes" if odds > 0 else " no",
                            "correct": float(odds > 0),
                            "prize_probability": p_true if last else np.nan,
                            "prize_loss": -math.log(p_true) if last else np.nan,
                            "option_logprobs": [DISTRACTOR_LOGPROB + odds, DISTRACTOR_LOGPROB],
                            "true_answer": " yes",
                            "distractor_answer": " no",
                            "true_tokens": 1,
                            "distractor_tokens": 1,
                        }
                    )
    return pd.DataFrame(rows)


def build_manifest() -> pd.DataFrame:
    """One manifest record per shard, with the fields sweep._manifest_record writes for sizes."""
    rows = []
    for task, variant in FINAL:
        for model, (parameters, non_embedding, n_layers) in MODELS.items():
            rows.append(
                {
                    "model": model,
                    "task": task,
                    "variant": variant,
                    "parameters": parameters,
                    "n_layers": n_layers,
                    "d_model": 32,
                    "non_embedding_parameters": non_embedding,
                    "training_tokens": TOKENS,
                    "training_flops": 6 * non_embedding * TOKENS,
                }
            )
    return pd.DataFrame(rows)


def build_perplexity() -> pd.DataFrame:
    """Perplexity on one text for every model, and on another text for one model only."""
    rows = [
        {"model": m, "text_sha256": "held-out", "perplexity": p, "created": "2026-01-01T00:00:00+00:00"}
        for m, p in PERPLEXITY.items()
    ]
    rows.append({"model": "tiny-s", "text_sha256": "other", "perplexity": 99.0, "created": "2026-02-01"})
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def results() -> pd.DataFrame:
    return attach_sizes(build_table(), build_manifest(), build_perplexity())


@pytest.fixture(scope="module")
def many() -> pd.DataFrame:
    """The fixture with 20 copies of each item: enough items for a model to be above chance
    (Wilson interval) where 2 of 3 or all are right."""
    return attach_sizes(build_table(copies=20), build_manifest(), build_perplexity())


def by_name(fig, name: str, **where) -> list:
    """The traces of ``fig`` with this legend name (and attribute values)."""
    return [t for t in fig.data if t.name == name and all(getattr(t, k) == v for k, v in where.items())]


# ------------------------------------------------------------------------------------------ tables


def test_attach_sizes_joins_each_models_size_and_the_best_covered_perplexity(results):
    sizes = results.drop_duplicates("model").set_index("model")
    assert sizes["parameters"].to_dict() == {m: float(p) for m, (p, _, _) in MODELS.items()}
    assert sizes.loc["tiny-m", "training_flops"] == 6 * 6_000_000 * TOKENS
    assert sizes["perplexity"].to_dict() == PERPLEXITY  # "other" covers one model only
    bare = attach_sizes(build_table(), pd.DataFrame())
    assert bare["parameters"].isna().all() and len(bare) == len(build_table())


def test_scaling_table_is_the_last_layer_per_model_task_and_variant(results):
    table = scaling_table(results)
    u_shape = table[(table["task"] == "negation") & (table["variant"] == "prize")].set_index("model")
    assert list(u_shape.index) == ["tiny-s", "tiny-m", "tiny-l"]
    assert list(u_shape["accuracy"]) == pytest.approx([2 / 3, 0.0, 1.0])
    assert list(u_shape["layer"]) == [4, 5, 6]
    assert list(u_shape["mean_log_odds"]) == pytest.approx([1 / 3, -1.0, 1.0])
    # cross-entropy of the true answer = -(DISTRACTOR_LOGPROB + final log-odds)
    assert list(u_shape["mean_cross_entropy"]) == pytest.approx([11 / 3, 5, 3])
    assert list(u_shape["accuracy_low"]) == pytest.approx(
        [wilson_interval(2, 3)[0], 0.0, wilson_interval(3, 3)[0]]
    )
    assert list(u_shape["accuracy_high"]) == pytest.approx(
        [wilson_interval(2, 3)[1], wilson_interval(0, 3)[1], 1]
    )
    assert list(u_shape["mean_log_odds_low"]) == pytest.approx([-1, -1, 1])  # bootstrap of 1, 1, -1 ...
    assert (table["chance"] == 0.5).all() and (table["n_items"] == 3).all()


def test_wilson_interval_and_shape_names(results, many):
    low, high = wilson_interval(0, 3)
    assert low == 0.0 and high == pytest.approx(0.5615, abs=1e-4)
    few = scaling_shapes(results)  # three items per size: no shape can be told apart from chance
    assert {shape.label for shape in few.values()} == {"not determined"}
    shapes = scaling_shapes(many)  # the same curves over 60 items per size
    assert shapes[("negation", "prize")].label == "U-shaped"
    assert shapes[("negation", "prize")].path() == "0.67→0.00→1.00"
    assert shapes[("quote", "prize")].label == "inverse"
    assert shapes[("negation", "no_distractor")].label == "not determined"  # right at every size
    assert shapes[("negation", "prize")].accuracy == pytest.approx((2 / 3, 0, 1))


def test_closing_lines_name_only_tested_shapes(results, many):
    from probes.cli.closing import closing_lines

    order = list(MODELS)
    text = "\n".join(closing_lines(many, order))
    assert "U-shaped in prize (0.67→0.00→1.00, p < 0.001); not determined in no_distractor" in text
    assert "inverse in prize (1.00→0.00, p < 0.001)" in text
    text = "\n".join(closing_lines(results, order))  # 3 items per size
    assert "not determined in prize (0.67→0.00→1.00), no_distractor (1.00→1.00→1.00)" in text
    assert "U-shaped" not in text and "inverse" not in text


def test_item_flips_puts_items_that_flip_first(results, many):
    flips = item_flips(many)
    first = flips.iloc[0]
    assert (first["task"], first["variant"], first["item_id"], first["flips"]) == (
        "negation",
        "prize",
        "negation-0-0",
        2,
    )
    assert first["verdicts"] == [1.0, 0.0, 1.0] and first["counted"] == [True, True, True]
    assert list(flips["flips"]) == sorted(flips["flips"], reverse=True)
    assert (flips["flips"] > 0).sum() == 120  # every prize item; the controls are right at every size
    assert first["log_odds_by_model"]["tiny-s"] == pytest.approx([log_odds(1, d / 4) for d in range(5)])
    few = item_flips(results)  # 3 items: no size's accuracy differs from chance, no verdict counts
    assert (few["flips"] == 0).all() and (few["compared"] == 0).all()


@pytest.mark.parametrize("credit", [0.5, "alternating"], ids=["ties", "coin flips"])
def test_item_flips_leave_out_sizes_at_chance_and_ties(many, credit):
    """tiny-s at chance on negation / prize (all ties, or right on every other item): its
    verdicts are not compared, so an item ✓ ✗ ✓ flips once (tiny-m → tiny-l), not twice."""
    final = (many["model"] == "tiny-s") & (many["task"] == "negation") & (many["variant"] == "prize")
    final &= many["layer"] == many["n_layers"]
    changed = many.copy()
    rows = changed.index[final]
    changed.loc[rows, "correct"] = 0.5 if credit == 0.5 else [float(i % 2) for i in range(len(rows))]
    flips = item_flips(changed)
    prize = flips[(flips["task"] == "negation") & (flips["variant"] == "prize")]
    assert (prize["compared"] == 2).all() and (prize["flips"] == 1).all()
    assert all(counted == [False, True, True] for counted in prize["counted"])


# ----------------------------------------------------------------------------------------- figures


def test_scaling_curve_plots_accuracy_against_parameters_with_chance_and_intervals(results):
    fig = scaling_curve(results)
    assert len(fig.data) == 4  # 2 tasks x 2 variants
    prize = by_name(fig, "prize", xaxis="x")[0]  # the first column is the first task: negation
    assert list(prize.x) == [1e6, 1e7, 1e8]
    assert list(prize.y) == pytest.approx([2 / 3, 0.0, 1.0])
    assert list(prize.customdata) == ["tiny-s", "tiny-m", "tiny-l"]
    assert prize.error_y.arrayminus[1] == 0.0 and prize.error_y.array[1] == pytest.approx(0.5615, abs=1e-4)
    quote = by_name(fig, "prize", xaxis="x2")[0]
    assert list(quote.y) == pytest.approx([1.0, 2 / 3, 0.0])
    chance = [s for s in fig.layout.shapes if s.line.dash == "dot"]
    assert sorted(s.yref for s in chance) == ["y", "y2"] and {s.y0 for s in chance} == {0.5}
    assert fig.layout.xaxis.type == "log" and fig.layout.xaxis.title.text == "parameters"
    assert [a.text for a in fig.layout.annotations] == ["negation", "quote"]


def test_scaling_curve_menu_switches_between_the_size_axes(results):
    fig = scaling_curve(results)
    (menu,) = fig.layout.updatemenus
    labels = [b.label for b in menu.buttons]
    assert labels == [
        "parameters",
        "non-embedding parameters",
        "training FLOPs",
        "perplexity on held-out text",
    ]
    flops = menu.buttons[2].args
    assert list(flops[2]) == [0, 1, 2, 3]
    assert flops[0]["x"][0] == [6 * n * TOKENS for _, n, _ in MODELS.values()]
    assert flops[1]["xaxis.title.text"] == "training FLOPs"
    assert menu.buttons[3].args[1]["xaxis2.autorange"] == "reversed"  # lower perplexity to the right
    assert menu.buttons[3].args[0]["x"][0] == list(PERPLEXITY.values())


def test_scaling_curve_against_perplexity_and_missing_axes(results):
    fig = scaling_curve(results, x="perplexity")
    assert list(fig.data[0].x) == [40.0, 30.0, 20.0]
    assert fig.layout.xaxis.autorange == "reversed"
    with pytest.raises(ReportError, match="probes perplexity"):
        scaling_curve(results.drop(columns="perplexity"), x="perplexity")
    with pytest.raises(ReportError, match="unknown size axis"):
        scaling_curve(results, x="tokens")
    one_axis = results.assign(non_embedding_parameters=np.nan, training_flops=np.nan, perplexity=np.nan)
    assert not scaling_curve(one_axis).layout.updatemenus


def test_scaling_measures_puts_continuous_measures_beside_accuracy(results):
    fig = scaling_measures(results)
    assert len(fig.data) == 12  # 3 measures x 2 tasks x 2 variants
    # rows: accuracy (y, y2), log-odds (y3, y4), cross-entropy (y5, y6); columns: negation, quote
    odds = by_name(fig, "prize", yaxis="y3")[0]
    assert list(odds.y) == pytest.approx([1 / 3, -1.0, 1.0])
    entropy = by_name(fig, "no_distractor", yaxis="y6")[0]
    assert list(entropy.y) == pytest.approx([1.0, 1.0, 1.0])  # -(-4 + 3)
    assert [fig.layout[f"yaxis{i}"].title.text for i in ("", "3", "5")] == [
        "last-layer accuracy",
        "mean log-odds true − distractor",
        "true-answer cross-entropy (nats)",
    ]
    zero = [s for s in fig.layout.shapes if s.y0 == 0]
    assert sorted(s.yref for s in zero) == ["y3", "y4"]
    titled = [a.plotly_name for a in fig.select_xaxes() if a.title.text]
    assert titled == ["xaxis5", "xaxis6"]  # the bottom row only
    assert all(fig.layout[a.plotly_name].type == "log" for a in fig.select_xaxes())


def test_depth_heatmap_has_a_column_of_layer_cells_per_model_on_a_centred_scale(results):
    fig = depth_heatmap(results)
    assert len(fig.data) == 12 and {t.type for t in fig.data} == {"heatmap"}
    assert fig.layout.coloraxis.cmid == 0 and fig.layout.coloraxis.cmin == -fig.layout.coloraxis.cmax == -3.0
    assert fig.layout.coloraxis.colorscale[0][1] == "rgb(103,0,31)"  # RdBu: red for the distractor
    small = [t for t in fig.data if t.name == "tiny-s" and t.xaxis == "x"][0]  # negation / prize
    # mean over items of -1 + (final + 1) * depth, finals 1, 1, -1
    assert [row[0] for row in small.z] == pytest.approx([-1 + 4 / 3 * d / 4 for d in range(5)])
    assert list(small.y) == pytest.approx([-0.125, 0.125, 0.375, 0.625, 0.875, 1.125])
    assert list(small.x) == pytest.approx([-0.42, 0.42])
    middle = [t for t in fig.data if t.name == "tiny-m" and t.xaxis == "x"][0]
    assert list(middle.x) == pytest.approx([0.58, 1.42]) and len(middle.z) == 6
    assert list(fig.layout.xaxis.ticktext) == ["tiny-s (1M)", "tiny-m (10M)", "tiny-l (100M)"]
    assert [a.text for a in fig.layout.annotations] == ["prize", "no_distractor", "negation", "quote"]


def test_cell_edges_are_midpoints_between_layers():
    assert cell_edges([0.0, 0.5, 1.0]) == pytest.approx([-0.25, 0.25, 0.75, 1.25])
    assert cell_edges([0.0, 0.2, 1.0]) == pytest.approx([-0.1, 0.1, 0.6, 1.4])


def test_layer_trajectories_one_line_per_model_with_decision_and_divergence_layers(many):
    fig = layer_trajectories(many, "negation", "prize")
    lines = [t for t in fig.data if t.mode == "lines+markers"]
    stars = [t for t in fig.data if t.mode == "markers" and t.marker.symbol == "star"]
    diamonds = [t for t in fig.data if t.mode == "markers" and t.marker.symbol == "diamond"]
    assert len(lines) == 9  # 3 models x (log-odds, p(true), p(distractor))
    small_odds = [t for t in lines if t.legendgroup == "tiny-s" and t.yaxis == "y"][0]
    assert list(small_odds.x) == pytest.approx([0, 0.25, 0.5, 0.75, 1])
    assert list(small_odds.y) == pytest.approx([-1 + 4 / 3 * d / 4 for d in range(5)])
    large_p = [t for t in lines if t.legendgroup == "tiny-l" and t.yaxis == "y2"][0]
    assert large_p.y[-1] == pytest.approx(1 / (1 + math.exp(-1)))
    # decision layer: tiny-s layer 3 of 4 (items 0, 1), tiny-l layer 4 of 6, tiny-m none (at chance)
    assert {t.legendgroup: (t.x[0], t.y[0]) for t in stars} == {
        "tiny-s": pytest.approx((0.75, 0.0)),
        "tiny-l": pytest.approx((4 / 6, -1 + 2 * 4 / 6)),
    }
    # divergence layer: the prize falls below its twin (final 2) from the first block in every model
    assert {t.legendgroup: t.x[0] for t in diamonds} == {"tiny-s": 0.25, "tiny-m": 0.2, "tiny-l": 1 / 6}
    assert [s.yref for s in fig.layout.shapes] == ["y"] and fig.layout.shapes[0].y0 == 0
    assert fig.layout.xaxis3.title.text == "relative depth (layer / blocks)"
    with pytest.raises(ReportError, match="not in the results"):
        layer_trajectories(many, "no-such-task")


def test_layer_trajectories_menu_shows_one_task_and_variant_at_a_time(many):
    fig = layer_trajectories(many)
    (menu,) = fig.layout.updatemenus
    assert [b.label for b in menu.buttons] == [
        "negation / prize",
        "negation / no_distractor",
        "quote / prize",
        "quote / no_distractor",
    ]
    visible = [bool(t.visible) for t in fig.data]
    assert visible == list(menu.buttons[0].args[0]["visible"])
    assert sum(visible) == 14  # 9 lines, 2 stars and 3 diamonds of negation / prize
    second = menu.buttons[1].args[0]["visible"]
    assert sum(second) == 9 + 3 and not any(a and b for a, b in zip(visible, second))


def test_decision_layer_scaling_plots_medians_above_chance(many, results):
    fig = decision_layer_scaling(many)
    absolute = by_name(fig, "prize", yaxis="y")[0]  # negation
    assert absolute.y[0] == 3 and math.isnan(absolute.y[1]) and absolute.y[2] == 4
    relative = by_name(fig, "no_distractor", yaxis="y4")[0]  # quote, final 3: first layer past depth 1/4
    assert list(relative.y) == pytest.approx([2 / 4, 2 / 5, 2 / 6])
    assert list(relative.text) == ["100% of items"] * 3
    assert fig.layout.yaxis3.title.text == "decision relative depth"
    few = by_name(decision_layer_scaling(results), "prize", yaxis="y")[0]
    assert all(math.isnan(y) for y in few.y)  # three items: no model is surely above chance


def test_variant_comparison_groups_variants_per_model(results):
    fig = variant_comparison(results)
    assert {t.type for t in fig.data} == {"bar"} and fig.layout.barmode == "group"
    prize = by_name(fig, "prize", yaxis="y")[0]
    assert list(prize.x) == ["tiny-s (1M)", "tiny-m (10M)", "tiny-l (100M)"]
    assert list(prize.y) == pytest.approx([2 / 3, 0, 1])
    control = by_name(fig, "no_distractor", yaxis="y4")[0]  # quote, mean log-odds
    assert list(control.y) == pytest.approx([3, 3, 3])
    assert [s.y0 for s in fig.layout.shapes] == [0.5, 0.5]


def test_item_browser_lists_flipping_items_first_with_per_layer_log_odds(results):
    fig = item_browser(results)
    (table,) = fig.data
    header = [h.replace("<b>", "").replace("</b>", "") for h in table.header.values]
    assert header[:7] == ["task", "variant", "item", "true answer", "distractor answer", "flips", header[6]]
    assert header[-3:] == ["tiny-s (1M)", "tiny-m (10M)", "tiny-l (100M)"]
    columns = dict(zip(header, table.cells.values))
    assert list(columns["item"][:3]) == ["negation-0", "negation-1", "negation-2"]
    assert columns["verdicts (small → large)"][0] == "(✓) (✗) (✓)"  # 3 items: no size differs from chance
    assert columns["tiny-s (1M)"][0] == "+1.00 | -1.0 -0.5 +0.0 +0.5 +1.0"
    assert table.cells.fill.color[-2][0] == "#f4cccc" and table.cells.fill.color[-3][0] == "#d9f0d3"
    with_prompt = results.assign(prompt=results["item_id"].map(lambda i: f"Question {i}?"))
    assert "<b>prompt</b>" in item_browser(with_prompt).data[0].header.values
    assert len(item_browser(results, max_rows=2).data[0].cells.values[0]) == 2


def test_figures_are_deterministic(results):
    assert scaling_measures(results).to_json() == scaling_measures(results).to_json()


def test_summary_names_the_shapes_and_key_numbers(results, many):
    text = summary_markdown(results)
    assert "| negation | prize | 3 | 0.50 | not determined | 0.67 | 0.00 | 1.00 |" in text  # 3 items
    assert "| quote | prize | 3 | 0.50 | not determined | 1.00 | 0.67 | 0.00 |" in text
    assert "| tiny-m | 10M | 6M | 36 PFLOP | 30.00 | 5 |" in text  # as `probes ladders` prints them
    assert "| negation | prize | not above chance (67%) | not above chance (0%) |" in text
    assert "## Items that flip between sizes: not determined" in text
    assert "12 of 12 items have fewer than two" in text  # 3 items: no size differs from chance
    text = summary_markdown(many)
    assert "| negation | prize | 60 | 0.50 | U-shaped (p < 0.001) | 0.67 | 0.00 | 1.00 |" in text
    assert "| quote | prize | 60 | 0.50 | inverse (p < 0.001) | 1.00 | 0.67 | 0.00 |" in text
    assert "## Items that flip between sizes: 120 of the 240 with a verdict at two sizes or more" in text
    assert "| negation | prize | negation-0-0 | ' yes' | ' no' | ✓ ✗ ✓ |" in text
    assert "| negation | prize | 3 [3, 3] of 4 (67%) | not above chance (0%) | 4 [4, 4] of 6 (100%) |" in text
    # divergence: the prize (final 1 or -1) below its twin (final 2) on the same pair from block 1
    divergence = "| negation | 60 | 1 of 4 (-0.42 [-0.48, -0.35]) | 1 of 5 (-0.60 [-0.60, -0.60]) | "
    assert divergence + "1 of 6 (-0.17 [-0.17, -0.17]) |" in text


# ---------------------------------------------------------------------------------- HTML and PNG


@pytest.fixture(scope="module")
def written(results, tmp_path_factory) -> tuple[Path, PngExportError]:
    """The fixture's report, written where PNG export fails (kaleido hidden): HTML and summary."""
    folder = tmp_path_factory.mktemp("report")
    with mock.patch.dict(sys.modules, {"kaleido": None}), pytest.raises(PngExportError) as caught:
        write_report(results, folder, png=True)
    return folder, caught.value


def test_write_report_writes_html_and_summary_before_png_export_fails(written):
    folder, error = written
    assert "pip install" in str(error) and str(folder / "report.html") in str(error)
    assert sorted(p.name for p in folder.iterdir()) == ["report.html", "summary.md"]
    assert "| negation | prize | 3 | 0.50 | not determined |" in (folder / "summary.md").read_text()


def test_html_is_standalone_and_holds_every_figure(written):
    page = (written[0] / "report.html").read_text()
    assert page.startswith("<!DOCTYPE html>")
    assert "<script src=" not in page  # plotly.js inlined: opens offline
    for section in SECTIONS:
        assert f'id="figure-{section.name}"' in page and section.title in page
    assert "<td>not determined</td>" in page  # the summary's shape column (3 items per size)


def chromium() -> str | None:
    """A Chrome or Chromium executable on PATH (the Debian package is `chromium`)."""
    names = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
    return next((path for path in map(shutil.which, names) if path), None)


def kaleido_missing() -> bool:
    try:
        import kaleido  # noqa: F401
    except ImportError:
        return True
    return False


needs_chromium = pytest.mark.skipif(
    chromium() is None, reason="no Chromium on PATH: apt-get install chromium (.ci/run does)"
)
needs_kaleido = pytest.mark.skipif(
    kaleido_missing(), reason="kaleido >= 1 is not installed: pip install kaleido"
)


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


def rows_with_content(data: bytes) -> tuple[int, int]:
    """How many rows of an 8-bit PNG are not one flat colour, and how many rows it has.

    Each PNG row is filtered against its left and upper neighbours; in a flat-coloured image
    every filter leaves one value repeated after the row's first pixel, whatever the filter
    (None, Sub, Up, Average, Paeth), so a row whose later bytes differ holds content.
    """
    width, height = png_size(data)
    bit_depth, colour_type = data[24], data[25]
    assert bit_depth == 8
    channels = {0: 1, 2: 3, 4: 2, 6: 4}[colour_type]
    position, idat = 8, b""
    while position < len(data):
        (length,) = struct.unpack(">I", data[position : position + 4])
        if data[position + 4 : position + 8] == b"IDAT":
            idat += data[position + 8 : position + 8 + length]
        position += 12 + length
    raw = zlib.decompress(idat)
    stride = 1 + width * channels
    rows = [raw[i * stride + 1 + channels : (i + 1) * stride] for i in range(height)]
    return sum(len(set(row)) > 1 for row in rows), height


def flat_png(width: int, height: int) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    pixels = b"".join(b"\x01" + b"\x00" * 3 * width for _ in range(height))  # Sub filter, white
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(pixels))
        + chunk(b"IEND", b"")
    )


def test_blank_check_sees_a_flat_image_as_blank():
    assert rows_with_content(flat_png(20, 10)) == (0, 10)


def headless(browser: str, page: Path, profile: Path, *flags: str) -> subprocess.CompletedProcess:
    command = [
        browser,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--hide-scrollbars",
        f"--user-data-dir={profile}",
        "--enable-logging=stderr",
        "--v=0",
        *flags,
        page.as_uri(),
    ]
    return subprocess.run(command, capture_output=True, timeout=180, check=False)


def rendered_figures(dom: str) -> set[str]:
    """Ids of the figure divs that plotly.js drew into (an SVG inside the div, before the next one)."""
    drawn = set()
    for section in dom.split("<section")[1:]:
        div = re.search(r'<div id="(figure-[^"]+)" class="plotly-graph-div js-plotly-plot"', section)
        if div and 'class="main-svg"' in section[div.end() :]:
            drawn.add(div.group(1))
    return drawn


def console_messages(stderr: bytes) -> list[str]:
    """Lines Chromium logs for the page's console (errors, uncaught exceptions, logs)."""
    return [line for line in stderr.decode(errors="replace").splitlines() if "CONSOLE" in line]


@needs_chromium
def test_html_report_renders_in_headless_chromium(written, tmp_path):
    browser = chromium()
    assert browser is not None
    page = written[0] / "report.html"
    broken = tmp_path / "broken.html"
    broken.write_text("<html><body><p>x</p><script>notDefined();</script></body></html>")
    # The console check can fail: an uncaught error on a page shows.
    caught = console_messages(headless(browser, broken, tmp_path / "p0", "--dump-dom").stderr)
    assert any("notDefined" in line for line in caught)

    run = headless(browser, page, tmp_path / "p1", "--virtual-time-budget=10000", "--dump-dom")
    assert run.returncode == 0, run.stderr.decode(errors="replace")[-2000:]
    assert console_messages(run.stderr) == []
    tables = {"figure-items"}  # the item browser is an HTML table, not a plotly figure
    dom = run.stdout.decode()
    assert rendered_figures(dom) == {f"figure-{section.name}" for section in SECTIONS} - tables
    assert '<div id="figure-items" class="html-table">' in dom and "Each model's cell" in dom

    shot = tmp_path / "shot.png"
    run = headless(browser, page, tmp_path / "p2", "--window-size=1400,2400", f"--screenshot={shot}")
    assert run.returncode == 0 and shot.exists()
    content, height = rows_with_content(shot.read_bytes())
    assert height == 2400 and content > height // 2


@needs_kaleido
@needs_chromium
def test_png_export_offline(results, tmp_path):
    figures = {"scaling": scaling_curve(results), "items": item_browser(results, max_rows=5)}
    paths = write_pngs(figures, tmp_path / "figures")
    assert [p.name for p in paths] == ["scaling.png", "items.png"]  # a figure of a table still exports
    assert all(p.with_suffix(".svg").is_file() for p in paths)  # a vector copy beside each PNG
    data = paths[0].read_bytes()
    layout = figures["scaling"].layout
    assert png_size(data) == (PNG_SCALE * layout.width, PNG_SCALE * layout.height)  # 2×, for print
    content, height = rows_with_content(data)
    assert content > height // 2
    assert not list((tmp_path / "figures").glob(".*"))  # no scratch left


@needs_kaleido
def test_png_export_without_a_browser_says_to_install_chromium(results, tmp_path, monkeypatch):
    monkeypatch.setenv("BROWSER_PATH", str(tmp_path / "no-such-browser"))
    with pytest.raises(BrowserNotFoundError, match="apt-get install chromium"):
        write_pngs({"scaling": scaling_curve(results)}, tmp_path)


# --------------------------------------------------------------------------------------------- CLI


def write_store(root: Path) -> Store:
    """The fixture written as a result store, one shard per (model, task, variant)."""
    store = Store(root)
    table, manifest = build_table(), build_manifest()
    for record in manifest.to_dict("records"):
        at = (table["model"] == record["model"]) & (table["task"] == record["task"])
        store.write(table[at & (table["variant"] == record["variant"])], record)
    return store


def test_report_command_writes_the_report_of_a_store(tmp_path, capsys):
    write_store(tmp_path / "store")
    assert main(["report", str(tmp_path / "store"), "--no-png"]) == 0
    assert f"report: {tmp_path / 'store' / 'report' / 'report.html'}" in capsys.readouterr().out
    assert (tmp_path / "store" / "report" / "summary.md").exists()
    assert main(["report", str(tmp_path / "store"), "--x", "perplexity", "--no-png"]) == 2
    error = capsys.readouterr().err
    assert error.startswith("probes: error:") and "probes perplexity" in error


def test_run_ends_by_writing_the_report(model_folders, tmp_path, capsys, monkeypatch):
    from probes.report import document
    from probes.tasks import Item, write_items

    def no_browser(figures, folder):
        raise BrowserNotFoundError("PNG export needs Chrome or Chromium: apt-get install chromium")

    monkeypatch.setattr(document, "write_pngs", no_browser)  # the PNG path is tested above
    items = [Item(f"i{i}", "toy", f"w{i} w{i + 1}", f" w{i + 20}", f" w{i + 30}") for i in range(3)]
    item_file = write_items(items, tmp_path / "toy.csv")
    out = tmp_path / "store"
    args = ["run", "--models", *map(str, model_folders), "--tasks", str(item_file), "--out", str(out)]
    assert main([*args, "--no-progress", "--png"]) == 0
    captured = capsys.readouterr()
    assert f"report: {out / 'report' / 'report.html'}" in captured.out
    assert "warning: PNG export needs Chrome" in captured.err  # warned, the sweep still succeeds
    assert "tiny-llama" in (out / "report" / "summary.md").read_text()


def test_perplexity_axis_uses_one_text_measured_for_these_models():
    """Measurements of other models, or with another window, never decide which text is used."""
    import pandas as pd

    from probes.report.tables import attach_sizes

    def row(model, text, window, value):
        return {
            "model": model,
            "text_sha256": text,
            "max_tokens": pd.NA,
            "window": window,
            "dtype": "float32",
            "perplexity": value,
            "created": "2026-01-01",
        }

    perplexity = pd.DataFrame(
        [row(m, "other", 64, 1.0) for m in ("x", "y", "z")]
        + [row("a", "held", 64, 10.0), row("b", "held", 64, 20.0), row("b", "held", 32, 99.0)]
    )
    table = pd.DataFrame({"model": ["a", "b"], "layer": [0, 0]})
    sizes = attach_sizes(table, pd.DataFrame(), perplexity).set_index("model")["perplexity"]
    assert sizes.to_dict() == {"a": 10.0, "b": 20.0}


def test_a_report_error_after_a_sweep_warns_and_keeps_the_results(
    model_folders, tmp_path, capsys, monkeypatch
):
    from probes.report import document
    from probes.report.tables import ReportError
    from probes.tasks import Item, write_items

    def broken(*args, **kwargs):
        raise ReportError("cannot draw this")

    monkeypatch.setattr(document, "report_figures", broken)
    items = [Item(f"i{i}", "toy", f"w{i} w{i + 1}", f" w{i + 20}", f" w{i + 30}") for i in range(2)]
    out = tmp_path / "store"
    args = ["run", "--models", str(model_folders[0]), "--tasks", str(write_items(items, tmp_path / "t.csv"))]
    assert main([*args, "--out", str(out), "--no-progress"]) == 0
    captured = capsys.readouterr()
    assert "no report written (cannot draw this)" in captured.err and "report:" not in captured.out
    assert list((out / "shards").rglob("*.parquet"))
