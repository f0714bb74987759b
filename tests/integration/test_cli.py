"""The `probes` command: runs, shows, and turns bad input into one clear line."""

from __future__ import annotations

import pandas as pd
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
    _check_show(out, shown, capsys)


def _check_show(out, shown, capsys):
    """`probes show`: 100 columns, no NaN (a layer past a model's depth is –), variants in their
    natural order, CSV and JSON for scripts, and no model library imported."""
    import csv
    import io
    import json
    import subprocess
    import sys

    from probes.cli.closing import show_tables
    from probes.store.store import Store

    lines = shown.splitlines()
    assert max(map(len, lines)) <= 100 and "NaN" not in shown and "nan" not in shown
    grid = lines[lines.index(next(line for line in lines if line.startswith("== toy"))) + 1 :]
    assert any(line.split()[0] == "3" and "–" in line for line in grid[:5])  # tiny-gpt2 has 2 blocks
    assert main(["show", str(out), "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert {row["model"] for row in rows} == {"tiny-gpt2", "tiny-llama"} and float(rows[0]["accuracy"]) >= 0
    assert main(["show", str(out), "--format", "json", "--table", "decision"]) == 0
    decision = json.loads(capsys.readouterr().out)
    assert {row["model"] for row in decision} == {"tiny-gpt2", "tiny-llama"}
    table = Store(out).read()
    mixed = pd.concat([table.assign(variant="no_distractor"), table.assign(variant="cot"), table])
    assert list(dict.fromkeys(show_tables(mixed)["layers"]["variant"])) == ["prize", "cot", "no_distractor"]
    code = (
        "import contextlib, io, sys\n"
        "from probes.cli.main import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        f"    assert main(['show', {str(out)!r}]) == 0\n"
        "print(sorted(m for m in ('torch', 'transformers', 'transformer_lens') if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_layer_grid_continues_wide_tables_below():
    """Twelve models of long names do not fit 100 columns beside each other: the grid continues
    below, every line ≤ 100 columns, each block led by the layer column; missing cells are –."""
    from probes.cli.closing import layer_grid

    models = [f"EleutherAI/pythia-{i}m-deduped" for i in range(12)]
    pivot = pd.DataFrame({m: [0.5, 0.25 if i else float("nan")] for i, m in enumerate(models)}, index=[0, 1])
    lines = layer_grid(pivot, lambda v: f"{v:.2f}")
    assert max(map(len, lines)) <= 100
    headers = [line for line in lines if line.strip().startswith("layer")]
    assert len(headers) > 1 and sum(line.count("EleutherAI") for line in headers) == 12
    assert "–" in lines[2] and "nan" not in "".join(lines)


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
