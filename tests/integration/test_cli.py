"""The `probes` command: runs, shows, and turns bad input into one clear line."""

from __future__ import annotations

import pytest

from probes.cli.main import main
from probes.tasks import Item, write_items


@pytest.fixture
def item_file(tmp_path):
    items = [Item(f"i{i}", "toy", f"w{i} w{i + 1} w{i + 2}", f" w{i + 20}", f" w{i + 30}") for i in range(4)]
    return write_items(items, tmp_path / "toy.csv")


def test_run_then_show(model_folders, item_file, tmp_path, capsys):
    out = tmp_path / "store"
    args = [
        "run",
        "--models",
        *map(str, model_folders),
        "--tasks",
        str(item_file),
        "--out",
        str(out),
        "--no-progress",
    ]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "toy (4 items per variant, 2 sizes, tiny-gpt2…tiny-llama)" in printed
    assert "decision layer" in printed
    assert "accuracy by layer" not in printed  # the full tables are `probes show`'s
    assert len(printed.strip().splitlines()) <= 15
    assert (out / "report" / "report.html").is_file() and "report:" in printed
    assert main(["show", str(out)]) == 0
    shown = capsys.readouterr().out
    assert "accuracy by layer" in shown and "mean log-odds" in shown and "decision layer" in shown


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "--ladder", "pythia", "--tasks", "no-such-items.jsonl"], "does not exist"),
        (["run", "--models", "./no/such/model"], "check the path"),
        (["run", "--ladder", "no-such-ladder"], "unknown ladder"),
        (["run", "--ladder", "pythia", "--tasks", "no_such_task"], "unknown task"),
        (["show", "/no/such/store"], "holds no lens results"),
        (["run", "--ladder", "pythia", "--shard", "3/2"], "shard"),
    ],
)
def test_bad_input_is_one_clear_line(args, message, capsys, tmp_path):
    assert main([*args, "--out", str(tmp_path)] if args[0] == "run" else args) == 2
    error = capsys.readouterr().err
    assert error.startswith("probes: error:") and message in error
    assert "Traceback" not in error


def test_malformed_item_files(tmp_path, capsys):
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"id": "a", "task": "t", "prompt": "p"\n')
    assert main(["run", "--ladder", "pythia", "--tasks", str(broken), "--out", str(tmp_path / "o")]) == 2
    assert "malformed" in capsys.readouterr().err
    missing_column = tmp_path / "missing.csv"
    missing_column.write_text("id,task,prompt,true_answer\na,t,p, x\n")
    assert (
        main(["run", "--ladder", "pythia", "--tasks", str(missing_column), "--out", str(tmp_path / "o")]) == 2
    )
    assert "distractor_answer" in capsys.readouterr().err


def test_ladders_lists_rungs(capsys):
    assert main(["ladders", "pythia"]) == 0
    printed = capsys.readouterr().out
    assert "EleutherAI/pythia-160m" in printed and "EleutherAI/pythia-12b" in printed
