"""Sweeps into the store: resumable, atomic, shardable, reproducible."""

from __future__ import annotations

import pandas as pd
import pyarrow.parquet as pq
import pytest

import probes
from probes.errors import StoreError
from probes.jobs.sweep import SweepOptions, plan, run_sweep
from probes.store.store import Store
from probes.tasks import Item, write_items


@pytest.fixture
def item_file(tmp_path):
    items = []
    for variant in ("prize", "one_shot"):
        for i in range(5):
            prompt = " ".join(f"w{(i * 7 + j) % 200}" for j in range(3 + i))
            items.append(Item(f"i{i}", "toy", prompt, f" w{i + 50}", f" w{i + 60} w{i}", variant=variant))
    return write_items(items, tmp_path / "toy.jsonl")


def _options(folders, item_file, out, **extra) -> SweepOptions:
    return SweepOptions(
        models=[str(f) for f in folders], tasks=[str(item_file)], out=out, progress=False, **extra
    )


def _sorted(table: pd.DataFrame) -> pd.DataFrame:
    keys = ["model", "task", "variant", "item_id", "layer"]
    return table.sort_values(keys).reset_index(drop=True)


def test_killed_sweep_resumes_to_the_uninterrupted_result(model_folders, item_file, tmp_path, monkeypatch):
    full_store, _ = run_sweep(_options(model_folders, item_file, tmp_path / "full"))
    expected = _sorted(full_store.read())
    assert len(full_store.shard_paths()) == 4  # 2 models x 1 task x 2 variants

    original_write = Store.write
    calls = []

    def write_then_die(self, table, record, *args, **kwargs):
        if calls:
            raise KeyboardInterrupt  # the process is killed while computing the second shard
        calls.append(record)
        return original_write(self, table, record, *args, **kwargs)

    monkeypatch.setattr(Store, "write", write_then_die)
    with pytest.raises(KeyboardInterrupt):
        run_sweep(_options(model_folders, item_file, tmp_path / "resumed"))
    assert len(Store(tmp_path / "resumed").shard_paths()) == 1
    monkeypatch.setattr(Store, "write", original_write)

    written = []
    monkeypatch.setattr(
        Store, "write", lambda self, t, r, *a, **k: written.append(r) or original_write(self, t, r, *a, **k)
    )
    store, _ = run_sweep(_options(model_folders, item_file, tmp_path / "resumed"))
    assert len(written) == 3  # the finished shard was skipped
    resumed = _sorted(store.read())
    pd.testing.assert_frame_equal(resumed, expected)


def test_a_crash_inside_a_write_leaves_no_shard(model_folders, item_file, tmp_path, monkeypatch):
    def broken_write(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(pq, "write_table", broken_write)
    with pytest.raises(OSError):
        run_sweep(_options(model_folders[:1], item_file, tmp_path / "store"))
    shard_folder = tmp_path / "store" / "shards"
    assert not list(shard_folder.rglob("*.parquet")) and not list(shard_folder.rglob("*.tmp"))


def test_shards_split_the_work_and_fill_one_store(model_folders, item_file, tmp_path):
    whole = plan(_options(model_folders, item_file, tmp_path / "s"))
    parts = [plan(_options(model_folders, item_file, tmp_path / "s", shard=f"{i}/3")) for i in range(3)]
    assert [u for part in parts for u in part] == whole
    for i in range(3):
        run_sweep(_options(model_folders, item_file, tmp_path / "s", shard=f"{i}/3"))
    assert len(Store(tmp_path / "s").shard_paths()) == len(whole)


def test_manifest_records_provenance(model_folders, item_file, tmp_path):
    store, _ = run_sweep(_options(model_folders[:1], item_file, tmp_path / "m", variants=["prize"]))
    record = store.manifest().iloc[0]
    assert record["model"] == "tiny-gpt2" and record["variant"] == "prize" and record["lens"] == "logit"
    assert record["n_layers"] == 2 and record["parameters"] > 0 and record["n_items"] == 5
    assert record["dtype"] == "float32" and record["device"] == "cpu" and record["seed"] == 0
    assert {"torch", "transformers", "transformer-lens"} <= set(record["packages"])
    rows = store.read()
    assert {"model", "revision", "lens", "toolkit_version", "variant"} <= set(rows.columns)


def test_changed_inputs_are_refused_not_mixed(model_folders, item_file, tmp_path):
    run_sweep(_options(model_folders[:1], item_file, tmp_path / "x", variants=["prize"]))
    with pytest.raises(StoreError, match="--overwrite"):
        run_sweep(_options(model_folders[:1], item_file, tmp_path / "x", variants=["prize"], n_items=2))
    run_sweep(
        _options(model_folders[:1], item_file, tmp_path / "x", variants=["prize"], n_items=2, overwrite=True)
    )
    assert Store(tmp_path / "x").read()["item_id"].nunique() == 2


def test_python_api_returns_the_rows_of_its_sweep(model_folders, item_file, tmp_path):
    table = probes.run(
        models=[str(model_folders[1])],
        tasks=[str(item_file)],
        out=tmp_path / "api",
        variants=["prize"],
        progress=False,
    )
    assert set(table["model"]) == {"tiny-llama"}
    assert len(table) == 5 * (3 + 1)  # items x readable layers


def test_bad_shard_and_options(tmp_path):
    from probes.errors import ProbesError
    from probes.jobs.validation import parse_shard

    assert parse_shard("2/4") == (2, 4)
    for bad in ("4/4", "x", "1/0"):
        with pytest.raises(ProbesError):
            parse_shard(bad)
    with pytest.raises(ProbesError, match="unknown sweep option"):
        probes.run(modles=["x"])


def test_chain_of_thought_units_name_their_generation_version(model_folders, tmp_path):
    """Rationales written by the old (drifting) cached generation are not reused: the generation
    version is in each cot unit's settings, hence its fingerprint; other units carry no settings."""
    from probes.jobs.cot import GENERATION_VERSION
    from probes.tasks.variants import NEEDS_RATIONALE

    items = [
        Item(f"c{i}", "toy", f"w{i}", " w7", " w8", variant=v, meta={NEEDS_RATIONALE: v == "cot"})
        for i in range(2)
        for v in ("cot", "prize")
    ]
    item_file = write_items(items, tmp_path / "cot.jsonl")
    units = {unit.variant: unit for unit in plan(_options(model_folders[:1], item_file, tmp_path / "s"))}
    assert units["cot"].settings == {"max_new_tokens": 64, "generation": GENERATION_VERSION}
    assert units["prize"].settings == {}
