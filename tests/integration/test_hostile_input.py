"""Hostile input through the command line and the API: right results, or one error line, exit 2.

The pure validation of items is in tests/unit/test_item_input.py; here each case goes through
`probes run` (or `probes.run`) with tiny random models (conftest), as a user would meet it.
"""

from __future__ import annotations

import csv
import json

import pytest

import probes
from probes import run as api_run
from probes.cli.main import main
from probes.errors import InvalidOptionError
from probes.store.store import Store
from probes.tasks import Item, load_items, write_items

GOOD = {"id": "a", "task": "t", "prompt": "w1 w2 w3", "true_answer": " w5", "distractor_answer": " w6"}


def _run(models, tasks, out, *extra: str) -> list[str]:
    return [
        "run",
        "--models",
        *map(str, models),
        "--tasks",
        *map(str, tasks),
        "--out",
        str(out),
        "--no-progress",
        "--no-report",
        *extra,
    ]


def _one_error(err: str) -> str:
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if line.startswith("probes: error:")]
    assert len(errors) == 1, err
    return errors[0]


def _prize_rows(n: int) -> list[dict]:
    return [
        {
            "prompt": f"w{i} w{i + 1} w{i + 2}",
            "classes": [f" w{i + 50}", f" w{i + 60}"],
            "answer_index": i % 2,
        }
        for i in range(n)
    ]


def test_two_prize_files_in_one_run_give_two_tasks(model_folders, tmp_path, capsys):
    """The prize's own files have no id column (ids are row numbers): each file is a task of its own."""
    proverb = tmp_path / "proverb.csv"
    with proverb.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, ["prompt", "classes", "answer_index"])
        writer.writeheader()
        writer.writerows({**r, "classes": repr(r["classes"])} for r in _prize_rows(3))
    hate = tmp_path / "hate.jsonl"
    hate.write_text("".join(json.dumps(r) + "\n" for r in _prize_rows(4)))
    out = tmp_path / "s"
    assert main(_run(model_folders[:1], [proverb, hate], out)) == 0
    shards = {(p.parent.name, p.stem): len(Store(out).read_shard(p)) for p in Store(out).shard_paths()}
    assert set(shards) == {("proverb", "prize"), ("hate", "prize")}


def test_n_items_takes_n_per_task_and_variant_of_an_item_file(model_folders, tmp_path):
    items = load_items(["organism_negation"], ["prize", "one_shot"], n_items=4)
    renamed = [
        Item(i.id, "toy", " ".join(f"w{j}" for j in range(3)), " w5", " w6", variant=i.variant) for i in items
    ]
    path = write_items(renamed, tmp_path / "both.jsonl")
    out = tmp_path / "s"
    assert main(_run(model_folders[:1], [path], out, "--n-items", "2")) == 0
    records = [Store(out).verified_record(p) for p in Store(out).shard_paths()]
    assert sorted((r["variant"], r["n_items"]) for r in records) == [("one_shot", 2), ("prize", 2)]


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({**GOOD, "distractor_answer": float("nan")}, "distractor_answer is float NaN"),
        ({**GOOD, "true_answer": True}, "true_answer is bool True"),
        ({**GOOD, "task": ".."}, "task name '..' is not path-safe"),
        ({**GOOD, "task": "a/b"}, "task name 'a/b' is not path-safe"),
        ({**GOOD, "variant": "a b"}, "variant name 'a b' is not path-safe"),
        ({**GOOD, "options": [" w5", " w6", " w5 "]}, "options ' w5' and ' w5 ' tokenize identically"),
        ({**GOOD, "true_answer": " hushed"}, "holds words outside this model's vocabulary (['hushed'])"),
        ({**GOOD, "prompt": "w1 [PAD] w2"}, "its prompt holds ['[PAD]'], which this model's tokenizer reads"),
    ],
)
def test_bad_items_are_named_and_nothing_is_stored(row, message, model_folders, tmp_path, capsys):
    items = tmp_path / "items.jsonl"
    other = {**GOOD, "id": "b"}
    items.write_text(json.dumps(other) + "\n" + json.dumps({**row, "id": "z"}, allow_nan=True) + "\n")
    out = tmp_path / "s"
    assert main(_run(model_folders[:1], [items], out)) == 2
    line = _one_error(capsys.readouterr().err)
    assert message in line and (f"{items} line 2" in line or "item 'z'" in line)
    assert not Store(out).shard_paths()


def test_a_bom_csv_and_a_bom_jsonl_run(model_folders, tmp_path):
    items = [Item(f"i{i}", "toy", "w1 w2 w3", f" w{i + 5}", f" w{i + 9}") for i in range(2)]
    for suffix in (".csv", ".jsonl"):
        path = write_items(items, tmp_path / f"plain{suffix}")
        path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
        assert main(_run(model_folders[:1], [path], tmp_path / f"s{suffix}")) == 0


def test_the_readme_snippet_reads_what_tasks_export_writes(tmp_path, capsys):
    """`probes.read_options(model, probes.read_items(path))` on `probes tasks export`'s output."""
    for suffix in (".csv", ".jsonl"):
        path = tmp_path / f"export{suffix}"
        assert main(["tasks", "export", str(path), "--tasks", "organism_negation", "--n-items", "3"]) == 0
        items = probes.read_items(path)
        generated = load_items(["organism_negation"], None, 3)
        assert sorted(items, key=repr) == sorted(generated, key=repr)
    model = probes.load_model("organism:1x4")
    readout = probes.read_options(model, items)
    assert len(readout.logprobs) == len(items) == 9


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"tasks": []}, "tasks=[] names nothing to run"),
        ({"layers": [0.5]}, "layers=[0.5] must be a non-empty list of whole layer numbers"),
        ({"layers": "1"}, "layers='1' must be"),
        ({"variants": []}, "variants=[] names nothing"),
    ],
)
def test_api_lists_of_the_wrong_shape_are_refused_before_any_work(options, message, model_folders, tmp_path):
    with pytest.raises(InvalidOptionError, match=message.replace("[", r"\[").replace("]", r"\]")):
        api_run(models=[str(model_folders[0])], out=tmp_path / "s", progress=False, **options)
    assert not (tmp_path / "s").exists()


def test_api_takes_one_task_name_as_a_list_of_one(model_folders, tmp_path):
    items = write_items([Item("i0", "toy", "w1 w2", " w3", " w4")], tmp_path / "toy.jsonl")
    table = api_run(models=str(model_folders[0]), tasks=str(items), out=tmp_path / "s", progress=False)
    assert set(table["task"]) == {"toy"}
