"""The page of a study beside the lens report (ablations, features): panels, tables, Markdown, PNGs.

A study's page is a list of :class:`Panel` (heading and caption) in reading order, each drawn as
a plotly figure or an HTML table, with the study's key numbers in Markdown; it is written by
the lens report's renderer (:func:`probes.report.document.render_html`), so every page looks
and links alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go


@dataclass(frozen=True)
class Panel:
    """One figure or table of a study's page: its heading and how to read it."""

    name: str
    title: str
    caption: str


def write_study_page(
    folder: str | Path,
    stem: str,
    title: str,
    panels: Sequence[Panel],
    drawn: dict[str, go.Figure | str],
    markdown: str,
    summary: str,
    png: bool = True,
    links: Sequence[tuple[str, str]] = (),
    figure_prefix: str = "",
) -> Path:
    """Write ``<stem>.html``, ``<stem>.md`` and (with ``png``) ``figures/<figure_prefix>-<panel>.png``.

    Args:
        drawn: Each panel's figure or HTML table by panel name (panels without one are left out).
        markdown: The whole ``<stem>.md``.
        summary: The Markdown the page closes with (its key numbers).
        links: (text, relative address) for the page's contents bar.

    Raises:
        PngExportError: PNGs could not be drawn; the HTML and Markdown are written first.
    """
    from probes.report.document import Section, render_html, write_pngs
    from probes.store.store import write_text_atomically

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    write_text_atomically(folder / f"{stem}.md", markdown)
    sections = [Section(p.name, p.title, p.caption, lambda results, x: go.Figure()) for p in panels]
    page = folder / f"{stem}.html"
    write_text_atomically(page, render_html(drawn, summary, title=title, sections=sections, links=links))
    figures = {name: figure for name, figure in drawn.items() if isinstance(figure, go.Figure)}
    if png and figures:
        prefix = figure_prefix or stem
        write_pngs({f"{prefix}-{name}": figure for name, figure in figures.items()}, folder / "figures")
    return page


def load_study_tables(root: str | Path, kinds: Sequence[str]) -> tuple[dict[str, pd.DataFrame], list[str]]:
    """A store's tables of ``kinds`` (those present), and its models smallest first."""
    from probes.report.tables import model_order
    from probes.store.store import Store

    store = Store(root)
    present = [kind for kind in store.kinds() if kind in kinds]
    tables = {kind: store.read(kind) for kind in present}
    manifests = [store.manifest(kind) for kind in present]
    return tables, model_order(pd.concat(manifests, ignore_index=True)) if manifests else []
