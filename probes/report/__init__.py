"""The report: plotly figures of a sweep's results, and the standalone HTML report that holds them.

Each figure is a pure function from the results table (the per-layer table with each model's
size joined in, see :func:`load_results` and :func:`attach_sizes`) to a plotly ``Figure``, so
notebooks can draw, restyle and save them one by one::

    from probes import report
    results = report.load_results("probes-results")
    report.scaling_curve(results, x="training_flops").show()
    report.write_report(results, "probes-results/report")   # report.html, summary.md, figures/*.png

Modules: :mod:`~probes.report.tables` (what the figures plot), :mod:`~probes.report.scaling`
(against size), :mod:`~probes.report.depth` (along depth), :mod:`~probes.report.items` (the
item browser), :mod:`~probes.report.summary` (Markdown key numbers),
:mod:`~probes.report.document` (writing HTML and PNG).

The names below are imported on first use (PEP 562): ``probes.report.tables`` alone (what
``probes show`` needs) loads no plotting library.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from probes.report.depth import depth_heatmap, layer_trajectories
    from probes.report.document import (
        BrowserNotFoundError,
        PngExportError,
        ReportFiles,
        load_results,
        png_figures,
        render_html,
        report_figures,
        write_pngs,
        write_report,
    )
    from probes.report.items import item_browser
    from probes.report.scaling import (
        decision_layer_scaling,
        scaling_curve,
        scaling_measures,
        variant_comparison,
    )
    from probes.report.summary import summary_markdown
    from probes.report.tables import SIZE_AXES, ReportError, attach_sizes, scaling_table

#: Public name -> the module that defines it.
_LAZY = {
    **dict.fromkeys(["depth_heatmap", "layer_trajectories"], "probes.report.depth"),
    **dict.fromkeys(
        ["BrowserNotFoundError", "PngExportError", "ReportFiles", "load_results", "png_figures",
         "render_html", "report_figures", "write_pngs", "write_report"],
        "probes.report.document",
    ),
    "item_browser": "probes.report.items",
    **dict.fromkeys(
        ["decision_layer_scaling", "scaling_curve", "scaling_measures", "variant_comparison"],
        "probes.report.scaling",
    ),
    "summary_markdown": "probes.report.summary",
    **dict.fromkeys(["SIZE_AXES", "ReportError", "attach_sizes", "scaling_table"], "probes.report.tables"),
}  # fmt: skip

__all__ = [
    "SIZE_AXES",
    "BrowserNotFoundError",
    "PngExportError",
    "ReportError",
    "ReportFiles",
    "attach_sizes",
    "decision_layer_scaling",
    "depth_heatmap",
    "item_browser",
    "layer_trajectories",
    "load_results",
    "png_figures",
    "render_html",
    "report_figures",
    "scaling_curve",
    "scaling_measures",
    "scaling_table",
    "summary_markdown",
    "variant_comparison",
    "write_pngs",
    "write_report",
]


def __getattr__(name: str) -> Any:
    """Import a public name's module on first use."""
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'probes.report' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
