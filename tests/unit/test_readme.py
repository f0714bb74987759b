"""The README's first two commands stay true: CI runs the second one."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_readme_begins_with_the_two_commands_and_ci_runs_the_test_one():
    lines = [line.strip() for line in (ROOT / "README.md").read_text().splitlines() if line.strip()]
    install_and_run, install_and_test = lines[1], lines[2]
    assert install_and_run == "pip install -e . && probes run"
    assert install_and_test == "pip install -e '.[test]' && python -m pytest"
    ci = (ROOT / ".ci" / "run").read_text()
    assert "pip install -q -e '.[test]'" in ci
    assert ci.rstrip().splitlines()[-1] == "python3 -m pytest"
