"""Text for people and for scripts: human units, tables that fit a terminal, CSV and JSON.

This module imports nothing heavy (no pandas, no torch): the ``probes`` command's listings use it
before any model library is loaded.

Units are one convention everywhere: counts of parameters and tokens with K/M/B/T suffixes
(``1.4B`` parameters, ``300B`` tokens), compute with SI prefixes on FLOP (``2.2 ZFLOP`` =
2.2e21). A missing figure prints as ``–`` and the table's footnotes say why it is missing.
"""

from __future__ import annotations

import csv
import io
import json
import math
import textwrap
from collections.abc import Mapping, Sequence
from typing import Any

#: What a missing figure prints as in a table for people.
MISSING = "–"

#: Output formats of the listing commands (``--format``).
FORMATS = ("text", "csv", "json")

#: The tables ``probes show`` prints; with ``--format csv|json`` it prints the one ``--table`` names.
SHOW_TABLES = ("layers", "decision", "divergence")

#: The ablation study's tables ``probes show --format csv|json --table`` prints.
ABLATION_TABLES = ("pushers", "effects", "patching", "unpaired")
#: The feature study's tables ``probes show --table`` prints for scripts.
FEATURE_TABLES = ("feature-ranking", "feature-verdicts", "feature-checks")

#: Default width of text tables: they fit a 100-column terminal.
WIDTH = 100

_COUNT_SUFFIXES = ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K"))
_SI_PREFIXES = ((1e24, "Y"), (1e21, "Z"), (1e18, "E"), (1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"))


def _two_digits(value: float) -> str:
    """``value`` with two significant digits for values under 10 (``1.4``; ``1``, not ``1.0``),
    else none after the point."""
    return f"{value:.1f}".removesuffix(".0") if value < 9.95 else f"{value:.0f}"


def plural(count: int, word: str, many: str | None = None) -> str:
    """``"1 layer"``, ``"4 layers"``: a count with its noun in the right number (``many``: an
    irregular plural)."""
    return f"{count} {word if count == 1 else many or word + 's'}"


def human_count(value: float | None) -> str:
    """A count of parameters or tokens in K/M/B/T units: ``1.4B``, ``300B``, ``18T``; ``–`` if None."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return MISSING
    for scale, suffix in _COUNT_SUFFIXES:
        if abs(value) >= scale * 0.9995:
            return f"{_two_digits(value / scale)}{suffix}"
    return f"{value:,.0f}"


def human_flops(value: float | None) -> str:
    """A compute figure with an SI prefix: ``2.2 ZFLOP`` for 2.2e21; ``–`` if None."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return MISSING
    for scale, prefix in _SI_PREFIXES:
        if abs(value) >= scale * 0.9995:
            return f"{_two_digits(value / scale)} {prefix}FLOP"
    return f"{value:.2g} FLOP"


def text_table(
    rows: Sequence[Mapping[str, Any]],
    columns: Mapping[str, str],
    right: Sequence[str] = (),
    indent: int = 2,
    width: int = WIDTH,
    shrink: str | None = None,
) -> list[str]:
    """Rows as aligned text lines no wider than ``width``.

    Args:
        rows: One mapping per row; values are printed with ``str`` (None as ``–``).
        columns: Column key -> header, in order.
        right: Keys of the columns to right-align (numbers).
        indent: Spaces before every line.
        width: Widest line allowed.
        shrink: Key of the column cut with ``…`` when the table is too wide (e.g. a long name).
    """
    cells = [[MISSING if row.get(key) is None else str(row[key]) for key in columns] for row in rows]
    headers = list(columns.values())
    widths = [max([len(header)] + [len(line[i]) for line in cells]) for i, header in enumerate(headers)]
    keys = list(columns)
    excess = indent + sum(widths) + 2 * (len(widths) - 1) - width
    if excess > 0 and shrink in keys:
        index = keys.index(shrink)
        widths[index] = max(len(headers[index]), widths[index] - excess)
    lines = []
    for line in [headers, *cells]:
        parts = []
        for i, (key, cell) in enumerate(zip(keys, line)):
            if len(cell) > widths[i]:
                cell = cell[: widths[i] - 1] + "…"
            parts.append(cell.rjust(widths[i]) if key in right else cell.ljust(widths[i]))
        lines.append((" " * indent + "  ".join(parts)).rstrip())
    return lines


def wrapped(text: str, indent: int = 2, width: int = WIDTH, first: str = "") -> list[str]:
    """``text`` wrapped to ``width`` with every line indented; ``first`` prefixes the first line."""
    space = " " * indent
    return textwrap.wrap(
        text, width=width, initial_indent=space + first, subsequent_indent=space + " " * len(first)
    ) or [space + first]


def records_text(records: Sequence[Mapping[str, Any]], form: str) -> str:
    """``records`` (one mapping per row, the same keys) as CSV or JSON text for scripts."""
    if form == "json":
        return json.dumps(list(records), indent=1, ensure_ascii=False, default=str)
    if form != "csv":
        raise ValueError(f"unknown format {form!r}; choose csv or json")
    buffer = io.StringIO()
    if records:
        writer = csv.DictWriter(buffer, fieldnames=list(records[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows({k: "" if v is None else v for k, v in row.items()} for row in records)
    return buffer.getvalue().rstrip("\n")
