"""The shared run layer: lenses side by side in one store, layer fingerprints, older stores."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pandas as pd
import pytest

from probes.errors import StoreError
from probes.jobs.fingerprint import fingerprint
from probes.jobs.sweep import SweepOptions, plan, run_sweep
from probes.jobs.units import Unit, catalogue_layers, planned
from probes.lenses.logit import LogitLens
from probes.report.tables import ReportError, lenses, one_lens, scaling_table
from probes.store.store import Store
from probes.tasks import Item, write_items


@dataclass(frozen=True)
class HalfLogitLens:
    """A stand-in second lens: the logit lens of half the residual vector (other numbers)."""

    name: str = "half-logit"

    def read(self, model, resid, layers, targets):
        return LogitLens().read(model, resid * 0.5, layers, targets)


@pytest.fixture
def item_file(tmp_path):
    items = [
        Item(
            f"i{i}",
            "toy",
            " ".join(f"w{(i * 7 + j) % 200}" for j in range(3 + i)),
            f" w{i + 50}",
            f" w{i + 60}",
        )
        for i in range(4)
    ]
    return write_items(items, tmp_path / "toy.jsonl")


def _options(folder, item_file, out, **extra) -> SweepOptions:
    return SweepOptions(models=[str(folder)], tasks=[str(item_file)], out=out, progress=False, **extra)


def _mtimes(store: Store) -> dict:
    return {p: p.stat().st_mtime_ns for p in store.shard_paths()}


def test_two_lenses_live_side_by_side_in_one_store(model_folders, item_file, tmp_path):
    options = _options(model_folders[0], item_file, tmp_path / "store")
    store, _ = run_sweep(options)
    run_sweep(options, HalfLogitLens())
    assert {p.relative_to(store.root / "shards").parts[0] for p in store.shard_paths()} == {
        "logit",
        "half-logit",
    }
    before = _mtimes(store)
    run_sweep(options)  # each lens resumes its own shards
    run_sweep(options, HalfLogitLens())
    assert _mtimes(store) == before
    rows = store.read()
    assert lenses(rows) == ["logit", "half-logit"]
    logit = rows[rows["lens"] == "logit"]
    half = rows[rows["lens"] == "half-logit"]
    assert len(logit) == len(half) and not logit["log_odds"].reset_index(drop=True).equals(
        half["log_odds"].reset_index(drop=True)
    )
    assert set(store.manifest()["lens"]) == {"logit", "half-logit"}
    pd.testing.assert_frame_equal(one_lens(rows), logit)  # the logit lens by default
    pd.testing.assert_frame_equal(one_lens(rows, "half-logit"), half)
    pd.testing.assert_frame_equal(scaling_table(rows, n_resamples=50), scaling_table(logit, n_resamples=50))
    with pytest.raises(ReportError, match="tuned"):
        one_lens(rows, "tuned")


def test_the_lens_is_in_the_fingerprint(model_folders, item_file, tmp_path):
    unit = plan(_options(model_folders[0], item_file, tmp_path))[0]
    other = plan(_options(model_folders[0], item_file, tmp_path), HalfLogitLens())[0]
    weighted = Unit(**{**unit.__dict__, "lens_weights": "0" * 64})
    assert len({fingerprint(u, "float32") for u in (unit, other, weighted)}) == 3


def test_last_layer_by_index_or_from_the_end_is_one_fingerprint(model_folders, item_file, tmp_path):
    options = _options(model_folders[0], item_file, tmp_path / "store", layers=[-1])
    store, _ = run_sweep(options)  # a folder model: its 2 layers are known only once loaded
    before = _mtimes(store)
    run_sweep(_options(model_folders[0], item_file, tmp_path / "store", layers=[2]))
    assert _mtimes(store) == before  # resumed, not refused
    with pytest.raises(StoreError, match="--overwrite"):
        run_sweep(_options(model_folders[0], item_file, tmp_path / "store", layers=[1]))


def test_catalogue_layer_count_resolves_layers_before_loading():
    model = planned("organism:1x4")
    n_layers = catalogue_layers(model)
    assert n_layers == 1
    item = Item("i", "toy", "a b", " c", " d")
    last = Unit(model, "toy", "prize", (item,), layers=(-1,))
    named = Unit(model, "toy", "prize", (item,), layers=(n_layers,))
    assert fingerprint(last, "float32", n_layers) == fingerprint(named, "float32", n_layers)
    assert fingerprint(Unit(model, "toy", "prize", (item,), layers=(0, 1, 0)), "float32") == fingerprint(
        Unit(model, "toy", "prize", (item,), layers=(1, 0)), "float32"
    )


def test_a_store_of_another_format_is_refused_with_the_fix(model_folders, item_file, tmp_path):
    options = _options(model_folders[0], item_file, tmp_path / "store")
    store, _ = run_sweep(options)
    (store.root / "store.json").write_text(json.dumps({"format": 1}))
    for action in (lambda: Store(store.root).read(), lambda: run_sweep(options)):
        with pytest.raises(StoreError, match="says format 1: .*new --out folder"):
            action()
