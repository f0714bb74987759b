"""The Inverse Scaling Prize's classification format: reading it, refusing bad files, writing it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from probes.cli.main import main
from probes.errors import ItemFileError
from probes.tasks import load_items, read_item_file, read_prize_file
from probes.tasks.prize import write_prize_file

NEQA = Path(__file__).resolve().parents[3] / "shared" / "isp" / "neqa_sample_300.csv"


@pytest.mark.skipif(not NEQA.is_file(), reason="../shared/isp/neqa_sample_300.csv is not beside the project")
def test_the_shared_neqa_file_loads_300_two_class_items() -> None:
    items = read_item_file(NEQA)
    assert len(items) == 300 and {i.task for i in items} == {"neqa_sample_300"}
    assert all(i.options == (" A", " B") for i in items)
    first = items[0]
    assert first.prompt.startswith("The following are multiple choice questions")
    assert (first.true_answer, first.distractor_answer) == (" A", " B")  # answer_index 0


def _write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([{"prompt": "Q:", "classes": [" a", " b"]}], "lacks column"),
        ([{"prompt": "Q:", "classes": [" a", " b"], "answer_index": 2}], "out of range"),
        ([{"prompt": "Q:", "classes": [" a"], "answer_index": 0}], "at least two"),
        ([{"prompt": "Q:", "classes": "not a list", "answer_index": 0}], "list literal"),
        ([{"prompt": "Q:", "classes": [" a", " b", " c"], "answer_index": 0}], "distractor"),
    ],
)
def test_malformed_prize_files_raise_a_clear_error(tmp_path: Path, rows: list[dict], message: str) -> None:
    with pytest.raises(ItemFileError, match=message):
        read_prize_file(_write_jsonl(tmp_path / "bad.jsonl", rows))


def test_more_than_two_classes_take_the_distractor_from_a_column_or_a_rule(tmp_path: Path) -> None:
    row = {"prompt": "Q:", "classes": [" a", " b", " c"], "answer_index": 0}
    column = read_prize_file(_write_jsonl(tmp_path / "c.jsonl", [{**row, "distractor_index": 2}]))
    assert column[0].distractor_answer == " c"
    rule = read_prize_file(_write_jsonl(tmp_path / "r.jsonl", [row]), distractor_index=lambda r: 1)
    assert rule[0].distractor_answer == " b" and rule[0].options == (" a", " b", " c")


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_export_round_trips_generated_items(tmp_path: Path, suffix: str) -> None:
    items = load_items(["negation_qa"], ["prize", "no_distractor"], n_items=7)
    path = write_prize_file(items, tmp_path / f"suite{suffix}")
    back = read_item_file(path)
    assert [
        (i.id, i.task, i.variant, i.prompt, i.true_answer, i.distractor_answer, i.options) for i in back
    ] == [(i.id, i.task, i.variant, i.prompt, i.true_answer, i.distractor_answer, i.options) for i in items]


def test_export_refuses_chain_of_thought_items(tmp_path: Path) -> None:
    with pytest.raises(ItemFileError, match="rationale"):
        write_prize_file(load_items(["negation_qa"], ["cot"], n_items=2), tmp_path / "cot.csv")


def test_cli_exports_every_variant_but_cot(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(["tasks", "export", str(tmp_path / "out.jsonl"), "--tasks", "negation_qa", "--n-items", "4"])
        == 0
    )
    rows = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert sorted({r["variant"] for r in rows}) == ["no_distractor", "one_shot", "prize"] and len(rows) == 12
    assert "wrote 12 items" in capsys.readouterr().out


def test_dataset_rows_with_array_columns_become_lists(monkeypatch: pytest.MonkeyPatch) -> None:
    """datasets' pandas export holds list columns as numpy arrays; they must stay lists."""
    import sys
    import types

    import numpy as np
    import pandas as pd

    from probes.tasks.prize import read_prize_dataset

    class Split:
        def to_pandas(self) -> pd.DataFrame:
            row = {"prompt": "Q:", "classes": np.array([" A", " B"]), "answer_index": 1}
            return pd.DataFrame([row])

    fake = types.SimpleNamespace(load_dataset=lambda name, split: Split())
    monkeypatch.setitem(sys.modules, "datasets", fake)
    (item,) = read_prize_dataset("inverse-scaling/toy")
    assert item.options == (" A", " B") and item.true_answer == " B" and item.task == "toy"
