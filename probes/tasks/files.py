"""The one reader of item files: our schema and the Inverse Scaling Prize's, as JSONL or CSV."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from probes.errors import InvalidItemError, ItemFileError
from probes.tasks.items import Item, read_rows
from probes.tasks.prize import prize_items


def read_items(
    path: str | Path,
    task: str | None = None,
    variant: str = "prize",
    distractor_index: Callable[[dict[str, Any]], int] | None = None,
) -> list[Item]:
    """Read items from any item file the toolkit writes or documents: the one reader of items.

    Two schemas, each as JSONL or CSV (UTF-8, with or without a byte-order mark): ours
    (:data:`REQUIRED_COLUMNS`, as :func:`write_items` writes it) and the Inverse Scaling Prize's
    classification format (``prompt``, ``classes``, ``answer_index``; as ``probes tasks export``
    writes it, see :mod:`probes.tasks.prize`), told apart by the columns of the first row.

    Args:
        path: A ``.jsonl`` or ``.csv`` file.
        task: Prize files only: the items' task when the file has no ``task`` column (default:
            the file's stem).
        variant: Prize files only: the variant when the file has no ``variant`` column.
        distractor_index: Prize files only: the distractor class of a row of more than two
            classes without a ``distractor_index`` column.

    Raises:
        ItemFileError: The file is missing or of another type, or a line is not an item; the
            message names the file and the line (JSONL: its line number; CSV: counting the header).
        InvalidItemError: A line's item cannot be scored (non-text or empty answers, a name
            that is not path-safe ...), named the same way.
    """
    path = Path(path)
    rows = read_rows(path)
    if not rows:
        raise ItemFileError(f"item file {path} holds no items.")
    first = rows[0][1]
    if isinstance(first, dict) and "true_answer" not in first and {"classes", "answer_index"} <= set(first):
        return prize_items(path, rows, task, variant, distractor_index)
    items = []
    for number, row in rows:
        try:
            items.append(Item.from_dict(row))
        except (ItemFileError, InvalidItemError) as err:
            raise type(err)(f"{path} line {number}: {str(err).rstrip('.')}; fix that line.") from None
    return items
