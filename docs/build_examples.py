"""Execute the example notebooks and render them to HTML: the docs' worked examples.

Each ``examples/<name>.py`` (Jupytext percent format, the source of truth) is converted to a
notebook, executed top to bottom in a fresh kernel (any cell error stops the build) and written
as ``<out>/<name>.html`` (nbconvert; plotly figures inline, opens offline)::

    python docs/build_examples.py                      # docs/examples/*.html
    python docs/build_examples.py --out /tmp/html u_shape

``examples/<name>.ipynb`` beside each source is the same notebook without outputs; refresh it
after editing the source with ``jupytext --to ipynb examples/<name>.py`` (tests/integration/test_examples.py
checks that the two agree).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"


def execute(source: Path, timeout: int = 900):
    """The notebook of a Jupytext ``source``, executed in a fresh kernel from the repository root."""
    import jupytext
    from nbclient import NotebookClient

    notebook = jupytext.read(source)
    client = NotebookClient(
        notebook,
        timeout=timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str(ROOT)}},
        coalesce_streams=True,  # a progress bar's updates (\r) end as its last state, as in Jupyter
    )
    client.execute()
    return notebook


def write_html(notebook, path: Path) -> Path:
    """``notebook`` rendered to a standalone HTML page at ``path``."""
    from nbconvert import HTMLExporter

    body, _ = HTMLExporter().from_notebook_node(notebook)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(body, encoding="utf-8")
    return path


def main(argv: list[str] | None = None) -> int:
    """Execute and render the named examples (all of them by default)."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("names", nargs="*", help="Example names (examples/<name>.py); all by default.")
    parser.add_argument(
        "--out", type=Path, default=ROOT / "docs" / "examples", help="Folder of the HTML pages."
    )
    arguments = parser.parse_args(argv)
    names = arguments.names or sorted(path.stem for path in EXAMPLES.glob("*.py"))
    for name in names:
        source = EXAMPLES / f"{name}.py"
        if not source.is_file():
            print(f"error: no example {source}", file=sys.stderr)
            return 2
        page = write_html(execute(source), arguments.out / f"{name}.html")
        print(f"{name}: {page} ({page.stat().st_size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
