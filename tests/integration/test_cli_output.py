"""What the `probes` command prints and what it imports: tables, units, reports.

How fast it starts is measured, as ratios to a bare interpreter, by benchmarks/bench_cli_startup.py;
here only the deterministic part is tested: which heavy libraries a command imports.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from probes.cli.display import human_count, human_flops, plural, text_table
from probes.cli.main import main
from probes.tasks import Item, write_items

HEAVY = ("torch", "transformers", "transformer_lens", "plotly", "pandas")
ROOT = Path(__file__).resolve().parents[2]


def _loaded_after(argv: list[str]) -> list[str]:
    """The heavy libraries a fresh interpreter has imported after ``probes <argv>``."""
    code = (
        "import contextlib, io, json, sys\n"
        "from probes.cli.main import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    try:\n"
        f"        main({argv!r})\n"
        "    except SystemExit:\n"
        "        pass\n"
        f"print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(
    "argv",
    [["--help"], ["ladders"], ["ladders", "gpt2", "--format", "json"],
     ["tasks", "list", "memo_trap", "--format", "csv"], ["report", "--help"]],
)  # fmt: skip
def test_help_and_listings_import_no_heavy_library(argv):
    assert _loaded_after(argv) == []


def test_human_units():
    assert [human_count(v) for v in (1_414_647_808, 300e9, 18e12, 85_056_000, 252, None)] == [
        "1.4B", "300B", "18T", "85M", "252", "–",
    ]  # fmt: skip
    assert human_flops(2.2e21) == "2.2 ZFLOP" and human_flops(1.53e20) == "153 EFLOP"
    assert human_flops(float("nan")) == "–" and human_flops(9.58e9) == "9.6 GFLOP"
    assert human_count(1_000_000) == "1M" and human_flops(1e21) == "1 ZFLOP"
    assert [plural(1, "layer"), plural(4, "layer"), plural(2, "query", "queries")] == [
        "1 layer", "4 layers", "2 queries",
    ]  # fmt: skip


def test_text_table_cuts_the_long_column_to_the_width():
    rows = [{"name": "x" * 80, "n": "1"}, {"name": "short", "n": "22"}]
    lines = text_table(rows, {"name": "name", "n": "n"}, right=["n"], width=40, shrink="name")
    assert max(map(len, lines)) <= 40 and lines[1].rstrip().endswith("1") and "…" in lines[1]


def test_ladders_fit_100_columns_with_units_and_reasons(capsys):
    assert main(["ladders"]) == 0
    printed = capsys.readouterr().out
    assert max(len(line) for line in printed.splitlines()) <= 100
    pythia_1b4 = next(line for line in printed.splitlines() if "EleutherAI/pythia-1.4b" in line)
    assert "1.4B" in pythia_1b4 and "300B" in pythia_1b4 and "2.2 ZFLOP" in pythia_1b4
    gpt2 = printed[printed.index("\ngpt2:") + 1 :].split("\n\n")[0]
    assert "–" in gpt2.splitlines()[2] and "training tokens: not published" in gpt2
    assert "NaN" not in printed and "<NA>" not in printed and "e+" not in printed


def test_ladders_for_scripts(capsys):
    assert main(["ladders", "gpt2", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["model"] for r in rows][0] == "openai-community/gpt2" and rows[0]["training_tokens"] is None
    assert main(["ladders", "pythia", "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert len(rows) == 10 and int(rows[0]["training_flops"]) > 1e18 and rows[0]["checkpoints"] == "154"
    assert main(["ladders", "no-such-ladder"]) == 2


def test_tasks_fit_100_columns_and_export_records(capsys):
    assert main(["tasks", "list", "memo_trap", "modus_tollens"]) == 0
    printed = capsys.readouterr().out
    assert max(len(line) for line in printed.splitlines()) <= 100 and "[cot]" in printed
    assert main(["tasks", "list", "memo_trap", "--format", "json"]) == 0
    records = json.loads(capsys.readouterr().out)
    assert {r["variant"] for r in records} >= {"prize", "cot"} and all(r["sample_prompt"] for r in records)


@pytest.fixture
def item_file(tmp_path):
    items = [Item(f"i{i}", "toy", f"w{i} w{i + 1} w{i + 2}", f" w{i + 20}", f" w{i + 30}") for i in range(4)]
    return write_items(items, tmp_path / "toy.csv")


@pytest.fixture
def no_browser(monkeypatch):
    """Hide every Chrome or Chromium from kaleido's own finder (and so from the report)."""
    from choreographer.browsers.chromium import Chromium

    monkeypatch.setattr(Chromium, "find_browser", classmethod(lambda cls, **kwargs: None))
    monkeypatch.delenv("BROWSER_PATH", raising=False)


def test_report_without_a_browser_writes_html_and_summary_and_exits_0(
    model_folders, item_file, tmp_path, capsys, no_browser
):
    out = tmp_path / "store"
    run = ["run", "--models", *map(str, model_folders), "--tasks", str(item_file), "--out", str(out)]
    assert main([*run, "--no-progress", "--no-report"]) == 0
    capsys.readouterr()
    assert main(["report", str(out)]) == 0
    printed = capsys.readouterr()
    assert printed.err.count("apt-get install chromium") == 1 and "Traceback" not in printed.err
    assert (out / "report" / "report.html").is_file() and (out / "report" / "summary.md").is_file()
    assert not list((out / "report").glob("figures/*.png"))
    assert main(["report", str(out), "--png"]) == 2  # asked for explicitly: an error with the hint
    assert "apt-get install chromium" in capsys.readouterr().err


def test_a_sharded_run_writes_one_report_from_its_last_shard(model_folders, item_file, tmp_path, capsys):
    out = tmp_path / "store"
    run = ["run", "--models", *map(str, model_folders), "--tasks", str(item_file), "--out", str(out)]
    assert main([*run, "--no-progress", "--shard", "0/2"]) == 0
    assert "still running in other shards" in capsys.readouterr().out
    assert not (out / "report").exists()
    assert main([*run, "--no-progress", "--shard", "1/2"]) == 0
    assert "report:" in capsys.readouterr().out and (out / "report" / "report.html").is_file()


def test_report_and_ablation_pages_link_each_other(tmp_path, capsys):
    out = tmp_path / "store"
    common = ["--models", "organism:1x32", "--n-items", "6", "--out", str(out), "--no-progress"]
    assert main(["run", *common]) == 0
    assert 'href="ablations.html"' not in (out / "report" / "report.html").read_text()
    assert main(["ablate", *common, "--analyses", "attribution"]) == 0
    assert 'href="ablations.html"' in (out / "report" / "report.html").read_text()
    assert 'href="report.html"' in (out / "report" / "ablations.html").read_text()


def test_the_item_browser_shows_each_model_s_own_rationale():
    import pandas as pd

    from probes.report.tables import item_flips
    from probes.tasks.variants import ANSWER_CUE

    rows = []
    for model, size, rationale in (("small", 1, " 2 + 2 is 4."), ("large", 2, " Two and two make four.")):
        for layer in (0, 1):
            rows.append(
                {"model": model, "parameters": size, "task": "t", "variant": "cot", "item_id": "a",
                 "layer": layer, "log_odds": 0.5, "correct": True, "true_answer": " 4",
                 "distractor_answer": " 5", "prompt": f"Q: 2 + 2?{rationale}{ANSWER_CUE}",
                 "rationale": rationale, "option_logprobs": [[-0.5], [-1.0]]}
            )  # fmt: skip
    flips = item_flips(pd.DataFrame(rows))
    assert flips.loc[0, "prompt"] == "Q: 2 + 2?"
    assert flips.loc[0, "rationale_by_model"] == {"small": " 2 + 2 is 4.", "large": " Two and two make four."}


def test_quiet_libraries_silences_and_restores():
    from transformers.utils import logging as transformers_logging

    from probes.jobs.progress import quiet_libraries

    before = logging.getLogger("transformer_lens").level
    bars_before = transformers_logging.is_progress_bar_enabled()  # earlier tests may have changed it
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with quiet_libraries():
            warnings.warn_explicit("noise", UserWarning, "x.py", 1, module="transformers.modeling_utils")
            warnings.warn_explicit("ours", UserWarning, "y.py", 1, module="probes.jobs.sweep")
            assert not transformers_logging.is_progress_bar_enabled()
            assert logging.getLogger("transformer_lens").level == logging.ERROR
    assert [str(w.message) for w in caught] == ["ours"]
    assert transformers_logging.is_progress_bar_enabled() == bars_before
    assert logging.getLogger("transformer_lens").level == before


@pytest.mark.parametrize("verbose", [False, True])
def test_load_model_is_quiet_unless_asked(verbose, capfd):
    """`probes.load_model` hides transformers' "Loading weights" bar and its logs (``verbose`` shows them)."""
    from transformers.utils import logging as transformers_logging

    import probes

    disabled = not transformers_logging.is_progress_bar_enabled()
    transformers_logging.enable_progress_bar()  # as in a fresh session (other tests may have turned it off)
    try:
        capfd.readouterr()
        probes.load_model("organism:1x4", verbose=verbose)
        printed = capfd.readouterr()
    finally:
        if disabled:
            transformers_logging.disable_progress_bar()
    if verbose:
        assert "Loading" in printed.out + printed.err  # the test can fail: the bar is there to hide
    else:
        assert printed.out == "" and printed.err == ""


def test_the_run_bar_counts_work_and_never_shows_an_empty_model_name():
    from types import SimpleNamespace as Unit

    from probes.jobs.progress import RunProgress

    units = [Unit(model=Unit(label="m"), items=(1, 2), kind=kind) for kind in ("attribution", "ablation")]
    passes = {"attribution": 1, "ablation": 10}
    bar = RunProgress(units, "ablations", work=lambda u: len(u.items) * passes[u.kind])
    try:
        assert bar.bar.total == 22 and "starting" in bar.bar.postfix and "model 0" not in bar.bar.postfix
        bar.skip(units[:1])  # found in the store: it leaves the total
        assert bar.bar.total == 20
        bar.model("m", "ablation t/prize")
        bar.done(units[1])
        assert bar.bar.n == 20 and "model 1/1 m ablation t/prize · units 2/2" in bar.bar.postfix
    finally:
        bar.close()


def test_built_in_ladders_list_their_held_out_perplexity(capsys):
    """A column only where the catalogue has the figure (the built-in ladders measure it)."""
    assert main(["ladders", "organism"]) == 0
    printed = capsys.readouterr().out
    header = next(line for line in printed.splitlines() if line.strip().startswith("model"))
    assert header.rstrip().endswith("perplexity") and "held-out perplexity: per token" in printed
    assert main(["ladders", "gpt2"]) == 0
    assert "perplexity" not in capsys.readouterr().out


def test_a_run_with_nothing_left_to_do_says_so_in_one_line(capsys):
    from types import SimpleNamespace as Unit

    from probes.jobs.progress import RunProgress

    units = [Unit(model=Unit(label="m"), items=(1, 2)) for _ in range(3)]
    bar = RunProgress(units, "shards")
    bar.skip(units)
    bar.close()
    said = capsys.readouterr().err.strip().splitlines()[-1]
    assert said.startswith("shards: all 3 unit(s) are already in the store; nothing to compute")


def test_tqdm_s_missing_widgets_notice_is_the_one_warning_hidden():
    """Importing probes hides tqdm's "IProgress not found" (its text bar works), nothing else."""
    code = (
        "import warnings\n"
        "import probes\n"
        "from tqdm.std import TqdmWarning\n"
        "with warnings.catch_warnings(record=True) as caught:\n"
        "    for text in ('IProgress not found. Please update jupyter', 'another notice'):\n"
        "        warnings.warn_explicit(text, TqdmWarning, 'auto.py', 21, module='tqdm.auto')\n"
        "print([str(w.message) for w in caught])\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert done.stdout.strip() == "['another notice']"
