"""A model loaded once gives the same rows as the store-writing runs: probes.read_layers, analyse_model."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

import probes
from probes.ablate.study import AblateOptions, analyse_model, run_ablation_study
from probes.errors import ProbesError
from probes.jobs.model_rows import readout_rows, step_rows
from probes.store.store import Store
from probes.tasks import load_items

MODEL = "organism:2x48"


@pytest.fixture(scope="module")
def model():
    return probes.load_model(MODEL)


def _sorted(table: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    return table.sort_values(keys, kind="stable").reset_index(drop=True)


def test_read_layers_gives_the_rows_probes_run_stores(model, tmp_path: Path):
    stored = probes.run(
        models=[MODEL], variants=["prize", "no_distractor"], n_items=6, out=tmp_path, progress=False
    )
    items = load_items(["organism_negation"], ["prize", "no_distractor"], 6, 0)
    read = probes.read_layers(model, items)
    keys = ["variant", "item_id", "layer"]
    assert list(read.columns) == [c for c in stored.columns if c in read.columns]
    pd.testing.assert_frame_equal(_sorted(read, keys), _sorted(stored[read.columns], keys))


def test_readout_and_step_rows_name_their_lens():
    model = probes.load_model("depth:1x64")
    items = load_items(["pointer_chase16"], ["prize"], 4, 0)  # the depth ladder's task
    readout = probes.read_options(model, items)
    rows = readout_rows(model, readout)
    steps = step_rows(model, readout)
    assert set(rows["lens"]) == set(steps["lens"]) == {"logit"}
    assert set(steps["model"]) == {"depth:1x64"}
    assert len(rows) == len(items) * (model.n_layers + 1)
    assert set(steps["steps"]) == {item.meta["steps"] for item in items}


def test_analyse_model_gives_the_tables_the_study_stores(model, tmp_path: Path):
    options = AblateOptions(
        models=[MODEL], n_items=6, methods=["mean"], ks=[1, 2], draws=1, positions=["suffix"],
        patch_heads=False, out=tmp_path, progress=False,
    )  # fmt: skip
    run_ablation_study(options)
    store = Store(tmp_path)
    items = load_items(["organism_negation"], ["prize"], 6, 0)
    twins = load_items(["organism_negation"], ["no_distractor"], 6, 0)
    tables = analyse_model(model, items, twins, options)
    assert set(tables) == {"attribution", "ablation", "patching", "patching_unpaired"}
    for kind in ("attribution", "ablation", "patching"):
        stored, mine = store.read(kind), tables[kind]
        assert set(mine.columns) <= set(stored.columns), kind
        pd.testing.assert_frame_equal(
            mine.reset_index(drop=True), stored[mine.columns].reset_index(drop=True), check_dtype=False
        )


def test_analyse_model_wants_one_task_and_variant(model):
    items = load_items(["organism_negation"], ["prize", "no_distractor"], 2, 0)
    with pytest.raises(ProbesError, match="one task and variant"):
        analyse_model(model, items, options=AblateOptions(analyses=["attribution"]))
