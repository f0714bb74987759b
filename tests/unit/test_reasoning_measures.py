"""Reasoning-depth measures on hand-made per-layer readouts: first decodable layer, summaries, steps."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from probes.analysis.metrics import layer_table
from probes.analysis.reasoning import (
    depth_summary,
    first_decodable_layer,
    item_first_decodable_layers,
    step_peaks,
    step_readout_summary,
    step_readout_table,
    steps_solved,
    with_steps,
)
from probes.errors import InvalidItemError
from probes.lenses.reading import OptionReadout
from probes.report.reasoning import first_decodable_depth, step_readouts, steps_solved_by_layers
from probes.report.tables import ReportError
from probes.tasks.items import Item

PROVENANCE = {"model": "m", "revision": None, "lens": "logit", "toolkit_version": "test"}
OPTIONS = (" 0", " 1", " 2", " 3")


@pytest.mark.parametrize(
    ("correct", "expected"),
    [
        ([False, False, True, True, True], 2.0),
        ([True, True, True, True, True], 0.0),
        ([True, False, True, False, True], 4.0),  # must stay the top option: the last switch counts
        ([False, True, True, True, False], math.nan),  # not the top option at the end: never decodable
        ([False, False, False, False, False], math.nan),
    ],
)
def test_first_decodable_layer_of_hand_made_rows(correct: list[bool], expected: float) -> None:
    layers = np.arange(5)
    result = first_decodable_layer(layers, np.array(correct))
    assert (math.isnan(result) and math.isnan(expected)) or result == expected
    shuffled = np.array([4, 0, 3, 1, 2])  # the order the layers come in does not matter
    again = first_decodable_layer(shuffled, np.array(correct)[shuffled])
    assert (math.isnan(again) and math.isnan(expected)) or again == expected


def item(item_id: str, start: str, intermediates: list[str]) -> Item:
    return Item(
        id=item_id,
        task="toy",
        prompt="What?",
        true_answer=intermediates[-1],
        distractor_answer=([start, *intermediates])[-2],
        options=OPTIONS,
        meta={"steps": len(intermediates), "start": start, "intermediates": intermediates},
    )


def readout_of(rows: dict[str, list[list[float]]], items: list[Item]) -> OptionReadout:
    """An OptionReadout whose per-layer option log-probs are the hand-made ``rows`` (layer x option)."""
    logprobs = [torch.tensor(rows[i.id], dtype=torch.float).log_softmax(dim=-1) for i in items]
    layers = list(range(len(next(iter(rows.values())))))
    return OptionReadout(
        items=items, layers=layers, logprobs=logprobs, option_token_counts=[[1] * 4] * len(items)
    )


#: Two 1-step items and one 2-step item over layers 0..3 (scores per option " 0" … " 3").
ITEMS = [item("a", " 0", [" 1"]), item("b", " 0", [" 2"]), item("c", " 0", [" 1", " 3"])]
ROWS = {
    "a": [[5, 0, 0, 0], [0, 5, 0, 0], [0, 5, 0, 0], [0, 5, 0, 0]],  # decodable from layer 1
    "b": [[5, 0, 0, 0], [5, 0, 0, 0], [0, 0, 5, 0], [5, 0, 0, 0]],  # wrong at the end
    "c": [[5, 0, 0, 0], [0, 5, 0, 0], [0, 0, 0, 5], [0, 0, 0, 5]],  # step 1 peaks at 1, answer from 2
}


def table() -> pd.DataFrame:
    return with_steps(layer_table(readout_of(ROWS, ITEMS), PROVENANCE, n_layers=3), ITEMS)


def test_item_first_decodable_layers_and_depth_summary() -> None:
    per_item = item_first_decodable_layers(table()).set_index("item_id")
    assert per_item.loc["a", "first_decodable_layer"] == 1.0
    assert math.isnan(per_item.loc["b", "first_decodable_layer"])
    assert per_item.loc["c", "first_decodable_layer"] == 2.0
    assert per_item.loc["c", "first_decodable_relative_depth"] == pytest.approx(2 / 3)
    assert per_item.loc["c", "steps"] == 2
    summary = depth_summary(table()).set_index("steps")
    assert summary.loc[1, "accuracy"] == 0.5 and summary.loc[1, "n_items"] == 2
    assert summary.loc[1, "share_decodable"] == 0.5 and summary.loc[1, "median_first_decodable_layer"] == 1.0
    assert summary.loc[2, "median_first_decodable_relative_depth"] == pytest.approx(2 / 3)
    assert summary.loc[1, "chance"] == 0.25 and summary.loc[1, "toolkit_version"] == "test"


def test_steps_solved_counts_consecutive_step_counts_from_one() -> None:
    summary = pd.DataFrame(
        {
            "model": "m",
            "revision": None,
            "lens": "logit",
            "task": "toy",
            "variant": "prize",
            "steps": [1, 2, 3, 4],
            "n_layers": 3,
            "accuracy": [0.9, 0.7, 0.2, 0.8],
        }
    )
    solved = steps_solved(summary, threshold=0.5)
    assert solved["steps_solved"].tolist() == [2] and solved["max_steps_tested"].tolist() == [4]
    assert steps_solved(summary.assign(accuracy=0.1))["steps_solved"].tolist() == [0]


def test_step_readout_reads_every_intermediate_value_by_layer() -> None:
    steps_table = step_readout_table(readout_of(ROWS, ITEMS), PROVENANCE, n_layers=3)
    c = steps_table[steps_table["item_id"] == "c"]
    assert sorted(c["step"].unique()) == [0, 1, 2] and set(c["value"]) == {" 0", " 1", " 3"}
    assert c[(c["step"] == 1) & (c["layer"] == 1)]["top"].item()
    summary = step_readout_summary(steps_table)
    peaks = step_peaks(summary)
    two_step = peaks[peaks["steps"] == 2].set_index("step")
    assert two_step.loc[1, "peak_layer"] == 1 and two_step.loc[2, "peak_layer"] == 2
    assert two_step["ordered"].all()


def test_error_paths_say_what_to_do() -> None:
    plain = layer_table(readout_of(ROWS, ITEMS), PROVENANCE, n_layers=3)
    with pytest.raises(InvalidItemError, match="with_steps"):
        depth_summary(plain)
    no_steps = Item(id="x", task="toy", prompt="What?", true_answer=" 1", distractor_answer=" 0")
    with pytest.raises(InvalidItemError, match="k-step task"):
        with_steps(plain, [no_steps])
    readout = OptionReadout(
        items=[no_steps], layers=[0], logprobs=[torch.zeros(1, 2)], option_token_counts=[[1, 1]]
    )
    with pytest.raises(InvalidItemError, match="k-step task"):
        step_readout_table(readout, PROVENANCE, n_layers=1)
    with pytest.raises(ReportError, match="probes.analysis.reasoning"):
        first_decodable_depth(pd.DataFrame())


def test_figures_draw_from_the_tables() -> None:
    summary = depth_summary(table())
    figure = first_decodable_depth(summary)
    assert len(figure.data) == 1 and list(figure.data[0].x) == [1, 2]  # one model, one task
    assert list(figure.data[0].y) == pytest.approx([1 / 3, 2 / 3])
    solved = steps_solved(summary)
    assert len(steps_solved_by_layers(solved).data) == 2  # the k = layers reference and the task
    readouts = step_readouts(
        step_readout_summary(step_readout_table(readout_of(ROWS, ITEMS), PROVENANCE, 3)), "toy", 2
    )
    assert len(readouts.data) == 3
    with pytest.raises(ReportError, match="k = 5"):
        step_readouts(
            step_readout_summary(step_readout_table(readout_of(ROWS, ITEMS), PROVENANCE, 3)), "toy", 5
        )
