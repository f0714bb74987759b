"""The README's first two commands stay true: CI runs the second one."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_readme_begins_with_the_two_commands_and_ci_runs_the_test_one():
    lines = [line.strip() for line in (ROOT / "README.md").read_text().splitlines() if line.strip()]
    install_and_run, install_and_test = lines[1], lines[2]
    assert install_and_run == "pip install -e . && probes run"
    assert install_and_test == "pip install -e '.[test]' && python -m pytest"
    ci = (ROOT / ".ci" / "run").read_text()
    assert "pip install -q -e '.[test]'" in ci
    assert ci.rstrip().splitlines()[-1] == "python3 -m pytest"


def _sample_after(text: str, marker: str) -> str:
    """The indented block that follows the paragraph holding ``marker`` in the README."""
    rest = text[text.index(marker) :].split("\n\n", 1)[1]
    block = []
    for line in rest.splitlines():
        if line and not line.startswith("    "):
            break
        block.append(line[4:])
    return "\n".join(block).strip("\n")


def test_readme_listing_sample_is_what_the_command_prints(capsys):
    from probes.cli.main import main

    assert main(["ladders", "gpt2"]) == 0
    printed = capsys.readouterr().out.strip("\n")
    assert _sample_after((ROOT / "README.md").read_text(), "(`probes ladders gpt2`)") == printed


@pytest.mark.slow
def test_readme_run_sample_is_what_the_default_job_prints(tmp_path, monkeypatch, capsys):
    """The default job, run as the README says (about 5 minutes on 2 cores)."""
    from probes.cli.main import main

    monkeypatch.chdir(tmp_path)
    assert main(["run", "--no-progress"]) == 0
    printed = capsys.readouterr().out.strip("\n")
    assert _sample_after((ROOT / "README.md").read_text(), "in a few lines:") == printed
