"""Writing the report: one standalone HTML file, a PNG per figure, and a Markdown summary.

The HTML inlines plotly.js, so it opens offline and can be mailed as one file. PNGs are drawn
by kaleido (>= 1), which drives a local Chrome or Chromium and needs no download at run time:
MathJax is switched off and plotly.js is the copy inside the plotly package. Every file is
written to a temporary name and renamed into place, so processes that finish shards of one
store at the same time never leave a torn report.
"""

from __future__ import annotations

import html
import os
import re
import tempfile
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio
from plotly.offline import get_plotlyjs

from probes.errors import ProbesError
from probes.report.depth import depth_heatmap, layer_trajectories
from probes.report.items import item_table_html
from probes.report.scaling import decision_layer_scaling, scaling_curve, scaling_measures, variant_comparison
from probes.report.summary import summary_markdown
from probes.report.tables import (
    attach_sizes,
    available_axes,
    check_axis,
    lenses,
    one_lens,
    task_order,
    variant_order,
)
from probes.version import __version__

#: Pixels per layout pixel of the exported PNGs (2: sharp in print and on high-density screens).
PNG_SCALE = 2


class PngExportError(ProbesError):
    """The PNG figures could not be drawn (the HTML report and summary were written)."""


class BrowserNotFoundError(PngExportError):
    """PNG export found no Chrome or Chromium to draw with."""


@dataclass(frozen=True)
class Section:
    """One figure of the report: its anchor name, heading, how to read it, and how to draw it."""

    name: str
    title: str
    caption: str
    draw: Callable[[pd.DataFrame, str], go.Figure | str]  # a figure, or an HTML table


#: The report's figures, in reading order.
SECTIONS: tuple[Section, ...] = (
    Section(
        "scaling",
        "Scaling curve",
        "Last-layer accuracy per task and variant against model size; bars are Wilson 95% "
        "intervals, the dotted line is chance. The menu switches the size axis between "
        "parameters, non-embedding parameters, training FLOPs and perplexity, where known.",
        lambda results, x: scaling_curve(results, x),
    ),
    Section(
        "measures",
        "Accuracy beside continuous measures",
        "The same curves for the mean log-odds true − distractor and the true answer's "
        "cross-entropy: a jump in accuracy that these do not make is an artefact of thresholding.",
        lambda results, x: scaling_measures(results, x),
    ),
    Section(
        "depth",
        "Log-odds by depth and size",
        "Mean log-odds true − distractor at each layer (relative depth) of each model; blue where "
        "the true answer wins, red where the distractor does. The U of U-shaped scaling is a red "
        "band at middle sizes; its depth says where in the network it forms.",
        lambda results, x: depth_heatmap(results),
    ),
    Section(
        "trajectories",
        "Layer trajectories",
        "Log-odds, p(true) and p(distractor) against relative depth, one line per model; a star "
        "marks each model's median decision layer (only above chance), a diamond on prize panels "
        "its divergence layer; hovers give 95% intervals. The menu picks the task and variant.",
        lambda results, x: layer_trajectories(results),
    ),
    Section(
        "decision",
        "Decision layer against size",
        "Median over items (bars: 95% interval from order statistics) of the first block from which the true "
        "answer wins through the last, absolute and as relative depth; only models above chance.",
        lambda results, x: decision_layer_scaling(results, x),
    ),
    Section(
        "variants",
        "Variants compared",
        "Prize, one-shot, chain-of-thought and no-distractor variants side by side at each size.",
        lambda results, x: variant_comparison(results),
    ),
    Section(
        "items",
        "Item browser",
        "Every item with its answers, its last-layer verdict at each size and its per-layer "
        "log-odds per model; items whose verdict flips between sizes come first.",
        lambda results, x: item_table_html(results),
    ),
)


@dataclass
class ReportFiles:
    """What :func:`write_report` wrote."""

    html: Path
    markdown: Path
    pngs: list[Path] = field(default_factory=list)


def load_results(root: str | Path) -> pd.DataFrame:
    """A store's per-layer results with each model's size (and measured perplexity) joined in."""
    from probes.jobs.perplexity import read_perplexity
    from probes.report.lenses import kl_table
    from probes.store.store import Store

    store = Store(root)
    rows = store.read()  # first: it names a damaged shard
    manifest = store.manifest()
    results = attach_sizes(rows, manifest, read_perplexity(root))
    # The lens comparison's KL per layer, as plain records (pandas compares attrs when combining frames).
    results.attrs["lens_held_out_kl"] = kl_table(manifest).to_dict("records")
    return results


def report_figures(results: pd.DataFrame, x: str = "parameters") -> dict[str, go.Figure]:
    """Every figure of the report by section name, in reading order (what the HTML shows)."""
    check_axis(results, x)
    return {section.name: section.draw(results, x) for section in SECTIONS}


def png_figures(
    results: pd.DataFrame, x: str = "parameters", figures: dict[str, go.Figure] | None = None
) -> dict[str, go.Figure]:
    """The figures to export as PNG, by file stem, without their interactive menus.

    A static image shows one state, so the figures with a menu are drawn once per state:
    the scaling curve against every known size axis (``scaling-<axis>``), the trajectories
    per task and variant (``trajectories-<task>-<variant>``). The item browser is a table: it
    stays in the HTML (and the store), not an image.

    Args:
        results: The results table.
        x: The size axis of the other figures against size.
        figures: :func:`report_figures` already drawn (copied, not changed), to save time.
    """
    drawn = report_figures(results, x) if figures is None else figures
    kept = ("measures", "depth", "decision", "variants")
    pngs = {name: go.Figure(drawn[name]) for name in kept if isinstance(drawn[name], go.Figure)}
    for axis in available_axes(results):
        pngs[f"scaling-{axis}"] = go.Figure(drawn["scaling"]) if axis == x else scaling_curve(results, axis)
    present = set(zip(results["task"], results["variant"]))
    for task in task_order(results):
        for variant in variant_order(results):
            if (task, variant) in present:
                stem = f"trajectories-{_stem(task)}-{_stem(variant)}"
                pngs[stem] = layer_trajectories(results, task, variant)
    for figure in pngs.values():
        figure.layout.updatemenus = ()
    return pngs


def write_report(
    results: pd.DataFrame,
    folder: str | Path,
    x: str = "parameters",
    png: bool = True,
    title: str = "probes report",
    links: Sequence[tuple[str, str]] = (),
    lens: str | None = None,
) -> ReportFiles:
    """Write ``report.html``, ``summary.md`` and (with ``png``) ``figures/*.png`` into ``folder``.

    ``links`` (text, relative address) go into the page's contents bar: the CLI links the
    ablation page beside it when the store has one. ``lens`` chooses the lens of the main
    figures and summary when the results hold several (:func:`~probes.report.tables.one_lens`:
    the logit lens by default); the lens comparison draws every lens.

    Raises:
        ReportError: ``x`` is not a size axis these results know.
        PngExportError: PNGs could not be drawn (kaleido or a browser is missing); the HTML
            and the summary are written before it is raised.
    """
    from probes.report.lenses import KL_COLUMNS, LENS_SECTIONS, lens_figures, lens_markdown

    folder = Path(folder)
    main = results if lens is None else one_lens(results, lens)  # checked before anything is written
    folder.mkdir(parents=True, exist_ok=True)
    summary = summary_markdown(main, title=title)
    kl = pd.DataFrame(results.attrs.get("lens_held_out_kl") or [], columns=KL_COLUMNS)
    compared = lens_figures(results, kl)
    if compared:  # two lenses or more: the other figures draw one lens (--lens), these compare them
        drawn = lenses(one_lens(results, lens))[0]
        summary = (
            f"{summary.rstrip()}\n\n{lens_markdown(results, kl)}\nThe other figures read the {drawn} lens.\n"
        )
    files = ReportFiles(html=folder / "report.html", markdown=folder / "summary.md")
    _write_text(files.markdown, summary)
    figures = {**report_figures(main, x), **compared}
    sections = [*SECTIONS, *(Section(n, t, c, lambda results, x: go.Figure()) for n, t, c in LENS_SECTIONS)]
    _write_text(files.html, render_html(figures, summary, title, sections, links=links))
    if png:
        try:
            _kaleido()  # before drawing the PNG-only figures
            pngs = {**png_figures(main, x, figures), **{n: go.Figure(f) for n, f in compared.items()}}
            files.pngs = write_pngs(pngs, folder / "figures")
        except PngExportError as err:
            raise type(err)(f"{err} (the HTML report is at {files.html})") from err
    return files


def render_html(
    figures: dict[str, go.Figure | str],
    summary: str,
    title: str = "probes report",
    sections: Sequence[Section] = SECTIONS,
    links: Sequence[tuple[str, str]] = (),
) -> str:
    """One standalone HTML page: plotly.js inlined, each figure with its caption, then the key numbers.

    Args:
        figures: Figures (or HTML tables) by section name (``sections`` give headings and captions).
        summary: The Markdown of :func:`probes.report.summary.summary_markdown`.
        title: The page's title.
        sections: Headings and captions of the figures (the lens report's by default).
        links: (text, address) pairs added to the contents bar, e.g. the page beside this one.
    """
    by_name = {section.name: section for section in sections}
    contents = "".join(
        f'<li><a href="#{name}">{html.escape(by_name[name].title if name in by_name else name)}</a></li>'
        for name in figures
    )
    others = "".join(
        f'<li><a href="{html.escape(address)}">{html.escape(text)} →</a></li>' for text, address in links
    )
    body = []
    for name, figure in figures.items():
        heading = by_name[name].title if name in by_name else name
        caption = by_name[name].caption if name in by_name else ""
        div = (
            f'<div id="figure-{name}" class="html-table">{figure}</div>'  # the item browser
            if isinstance(figure, str)
            else pio.to_html(
                figure,
                full_html=False,
                include_plotlyjs=False,
                div_id=f"figure-{name}",
                config={"displaylogo": False, "responsive": True},
            )
        )
        body.append(
            f'<section id="{name}"><h2>{html.escape(heading)}</h2>'
            f"<p>{html.escape(caption)}</p>{div}</section>"
        )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style>"
        f'<script type="text/javascript">{get_plotlyjs()}</script></head><body>'
        f"<h1>{html.escape(title)}</h1>"
        f'<nav><ul>{contents}<li><a href="#summary">Key numbers</a></li>{others}</ul></nav>'
        f'<p class="meta">Made by probes {html.escape(__version__)}.</p>'
        + "".join(body)
        + f'<section id="summary">{markdown_to_html(summary.replace(f"# {title}", "# Key numbers", 1))}'
        + "</section></body></html>\n"
    )


_STYLE = (
    "body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1800px;padding:0 1em;color:#222}"
    "section{margin:2.5em 0}table{border-collapse:collapse;margin:1em 0}"
    "td,th{border:1px solid #ccc;padding:.2em .6em;text-align:left}nav ul{display:flex;flex-wrap:wrap;"
    "gap:1.2em;list-style:none;padding:0}.meta{color:#777}"
    ".items{overflow:auto;max-height:80vh;border:1px solid #ddd}.items table{margin:0;font-size:13px}"
    ".items th{position:sticky;top:0;background:#eee}.items td{vertical-align:top;white-space:nowrap}"
    ".items td.prompt{white-space:normal;min-width:24em;max-width:36em}"
    ".items td.odds{font-family:ui-monospace,monospace}.encoding{max-width:60em}"
    "figure,.plotly-graph-div{max-width:100%}"
)


def markdown_to_html(text: str) -> str:
    """HTML of the Markdown :func:`probes.report.summary.summary_markdown` writes.

    Only what it uses: headings, pipe tables and paragraphs (all text escaped).
    """
    parts = []
    for block in text.strip().split("\n\n"):
        lines = block.splitlines()
        heading = re.match(r"^(#+) (.*)$", lines[0])
        if heading and len(lines) == 1:
            level = min(len(heading.group(1)) + 1, 6)
            parts.append(f"<h{level}>{html.escape(heading.group(2))}</h{level}>")
        elif lines[0].startswith("|"):
            rows = [_cells(line) for line in lines if not re.match(r"^\|(---\|)+$", line)]
            head = "".join(f"<th>{html.escape(c)}</th>" for c in rows[0])
            cells = "".join(
                "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows[1:]
            )
            parts.append(f"<table><thead><tr>{head}</tr></thead><tbody>{cells}</tbody></table>")
        else:
            parts.append(f"<p>{html.escape(block)}</p>")
    return "\n".join(parts)


def _cells(line: str) -> list[str]:
    cells = re.split(r"(?<!\\)\|", line.strip())[1:-1]
    return [cell.strip().replace("\\|", "|") for cell in cells]


def write_pngs(figures: dict[str, go.Figure], folder: str | Path) -> list[Path]:
    """Draw each figure to ``folder/<name>.png`` (at :data:`PNG_SCALE` × its layout size, for
    print) and ``folder/<name>.svg`` beside it (vector, for papers) with kaleido, offline, in one
    browser session; returns the PNGs' paths.

    Raises:
        PngExportError: kaleido (>= 1) is not installed.
        BrowserNotFoundError: kaleido found no Chrome or Chromium.
    """
    kaleido = _kaleido()
    from kaleido.errors import ChromeNotFoundError

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"{name}.png" for name in figures]
    vectors = [path.with_suffix(".svg") for path in paths]
    with tempfile.TemporaryDirectory(dir=folder, prefix=".png-") as scratch:
        drafts = [Path(scratch) / path.name for path in [*paths, *vectors]]
        specs = [
            {"fig": figure, "path": draft, "opts": {"format": draft.suffix[1:], "scale": PNG_SCALE}}
            for figure, draft in zip([*figures.values(), *figures.values()], drafts)
        ]
        try:
            kaleido.write_fig_from_object_sync(specs, kopts={"mathjax": False})
        except ChromeNotFoundError as err:
            raise BrowserNotFoundError(
                "PNG export needs Chrome or Chromium and found none: install it (Debian/Ubuntu: "
                "apt-get install chromium) or set BROWSER_PATH to its executable"
            ) from err
        for draft, path in zip(drafts, [*paths, *vectors]):
            os.replace(draft, path)
    return paths


def browser_path() -> str | None:
    """The Chrome or Chromium kaleido would draw PNGs with, or None when there is none.

    Asks kaleido's own browser finder (choreographer: ``BROWSER_PATH``, its downloaded copy,
    ``PATH``, the usual install folders), so that a report can skip PNGs with one hint instead
    of failing. None also when kaleido is not installed.
    """
    try:
        from choreographer.browsers.chromium import Chromium
    except ImportError:
        return None
    return Chromium.find_browser(skip_local=False)


def _kaleido() -> ModuleType:
    """The kaleido module, or a :class:`PngExportError` that says how to install it."""
    try:
        import kaleido
    except ImportError as err:
        raise PngExportError(f"PNG export needs kaleido >= 1: pip install 'kaleido>=1' ({err}).") from err
    return kaleido


def _write_text(path: Path, text: str) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex}.tmp")
    try:
        temporary.write_text(text, encoding="utf-8")
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def _stem(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "_"
