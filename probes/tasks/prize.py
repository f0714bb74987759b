"""Files in the Inverse Scaling Prize's classification format, as items.

The prize's classification tasks are CSV or JSONL files with a ``prompt``, a
list of ``classes`` (each a continuation with its leading space; in CSV files
often the list's Python-literal string form) and the ``answer_index`` of the
right class. The true answer is that class. The distractor is the other class
when there are two; with more classes it comes from a ``distractor_index``
column, or from the ``distractor_index`` argument (a function of the row) for
tasks whose rule is known.
"""

from __future__ import annotations

import ast
import json
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from probes.errors import InvalidItemError, ItemFileError
from probes.tasks import items as items_module
from probes.tasks.items import Item, read_rows
from probes.tasks.variants import needs_rationale

PRIZE_COLUMNS = ("prompt", "classes", "answer_index")


def _classes(value: Any, where: str) -> list[str]:
    if isinstance(value, str):
        try:
            value = ast.literal_eval(value)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            raise ItemFileError(f"{where}: classes {value!r:.80} is not a list literal.") from None
    if not isinstance(value, (list, tuple)) or not all(isinstance(c, str) for c in value):
        raise ItemFileError(f"{where}: classes must be a list of strings, got {value!r:.80}.")
    return list(value)


def _index(value: Any, name: str, where: str) -> int:
    """A class index: a whole number (JSON ``1`` or ``1.0``, CSV text ``"1"``), never a bool or fraction."""
    if isinstance(value, str):
        text = value.strip()
        if text.lstrip("-").isdigit():
            return int(text)
    elif isinstance(value, float) and value.is_integer():
        return int(value)
    elif isinstance(value, int) and not isinstance(value, bool):
        return value
    raise ItemFileError(f"{where}: {name} {value!r:.60} is not a whole-number index into classes.")


def read_prize_file(
    path: str | Path,
    task: str | None = None,
    variant: str = "prize",
    distractor_index: Callable[[dict[str, Any]], int] | None = None,
) -> list[Item]:
    """Items from a prize-format file.

    Args:
        path: A ``.csv`` or ``.jsonl`` file with ``prompt``, ``classes``, ``answer_index``.
        task: Task name of the items when the file has no ``task`` column (default: the file's stem).
        variant: Prompt variant of the file's prompts when it has no ``variant`` column.
        distractor_index: For files of more than two classes without a
            ``distractor_index`` column: the distractor class of a row.
    """
    path = Path(path)
    rows = read_rows(path)
    if not rows:
        raise ItemFileError(f"prize file {path} holds no rows.")
    return prize_items(path, rows, task, variant, distractor_index)


def prize_items(
    path: Path,
    rows: Sequence[tuple[int, dict[str, Any]]],
    task: str | None = None,
    variant: str = "prize",
    distractor_index: Callable[[dict[str, Any]], int] | None = None,
) -> list[Item]:
    """Items from the rows (with their line numbers) of a prize-format file (see :func:`read_prize_file`).

    Without an ``id`` column an item's id is its row number (from 0); ids are namespaced by task,
    so two prize files of different names give two tasks whose ids may coincide.
    """
    missing = [c for c in PRIZE_COLUMNS if c not in rows[0][1]]
    if missing:
        raise ItemFileError(
            f"prize file {path} lacks column(s) {missing}; the prize format needs {list(PRIZE_COLUMNS)}."
        )
    id_column = next((c for c in ("id", "Unnamed: 0", "") if c in rows[0][1]), None)
    items = []
    for number, (line, row) in enumerate(rows):
        where = f"{path} line {line}"
        try:
            items.append(_prize_item(row, number, id_column, where, path, task, variant, distractor_index))
        except InvalidItemError as err:
            raise InvalidItemError(f"{where}: {str(err).rstrip('.')}; fix that line.") from None
    return items


def _prize_item(
    row: dict[str, Any],
    number: int,
    id_column: str | None,
    where: str,
    path: Path,
    task: str | None,
    variant: str,
    distractor_index: Callable[[dict[str, Any]], int] | None,
) -> Item:
    """One prize row as an item (``where`` names its file and line in messages)."""
    missing = [c for c in PRIZE_COLUMNS if c not in row]
    if missing:
        raise ItemFileError(f"{where} lacks {missing}; every row needs {list(PRIZE_COLUMNS)}.")
    item_id = str(number)
    if id_column and row.get(id_column) not in (None, ""):
        try:
            item_id = items_module.item_id(row[id_column])
        except ItemFileError as err:
            raise ItemFileError(f"{where}: {err}.") from None
    classes = _classes(row["classes"], where)
    if len(classes) < 2:
        raise ItemFileError(f"{where} has {len(classes)} class(es); an item needs at least two.")
    answer = _index(row["answer_index"], "answer_index", where)
    if not 0 <= answer < len(classes):
        raise ItemFileError(f"{where}: answer_index {answer} is out of range for {len(classes)} classes.")
    if len(classes) == 2:
        distractor = 1 - answer
    elif row.get("distractor_index") not in (None, ""):
        distractor = _index(row["distractor_index"], "distractor_index", where)
    elif distractor_index is not None:
        distractor = distractor_index(row)
    else:
        raise ItemFileError(
            f"{where} has {len(classes)} classes and no distractor rule; add a distractor_index "
            "column or pass distractor_index= to read_prize_file."
        )
    if not 0 <= distractor < len(classes) or distractor == answer:
        raise ItemFileError(f"{where}: distractor index {distractor} is not another class.")
    ours = (*PRIZE_COLUMNS, id_column, "distractor_index", "task", "variant")
    meta = {k: v for k, v in row.items() if k not in ours}
    name = row.get("task") or task or path.stem
    if row.get("task") in (None, "") and not items_module.SAFE_NAME.fullmatch(str(name)):
        raise ItemFileError(
            f"{where}: the task is named after the file, and {name!r} is not a path-safe task name "
            "(letters, digits, '.', '_', '-', '+'); rename the file or add a task column."
        )
    return Item(
        id=item_id,
        task=name,
        prompt=row["prompt"],
        true_answer=classes[answer],
        distractor_answer=classes[distractor],
        options=tuple(classes),
        variant=row.get("variant") or variant,
        meta=meta,
    )


def read_prize_dataset(name: str, split: str = "train", **kwargs: Any) -> list[Item]:
    """Items from a prize-format dataset on the Hugging Face hub (e.g. ``"inverse-scaling/NeQA"``).

    The prize's tasks are published there with the columns of the file format. Needs the
    ``datasets`` package and the network (or its cache); ``kwargs`` go to :func:`read_prize_file`.
    """
    try:
        import datasets
    except ImportError as err:
        raise ItemFileError(
            f"reading dataset {name!r} needs the datasets package: pip install datasets "
            "(or download the task's file and give its path)."
        ) from err
    try:
        table = datasets.load_dataset(name, split=split).to_pandas()
    except Exception as err:  # datasets raises many types for a missing name, split or network
        raise ItemFileError(f"could not load dataset {name!r} split {split!r}: {err}") from err
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"{name.rsplit('/', 1)[-1]}.jsonl"
        path.write_text("".join(json.dumps(row, default=_plain) + "\n" for row in table.to_dict("records")))
        return read_prize_file(path, **{"task": name.rsplit("/", 1)[-1], **kwargs})


def _plain(value: Any) -> Any:
    """JSON-ready form of what ``datasets``' pandas export holds (numpy arrays for list columns)."""
    return value.tolist() if hasattr(value, "tolist") else str(value)


def write_prize_file(items: Sequence[Item], path: str | Path) -> Path:
    """Write items in the prize's classification format (``.csv`` or ``.jsonl``), for other tools.

    Columns: ``prompt``, ``classes``, ``answer_index`` (the prize's own), then ``distractor_index``,
    ``id``, ``task`` and ``variant`` so that :func:`read_prize_file` reads the same items back.

    Raises:
        ItemFileError: an item still waits for a model-written rationale (``cot``), or the
            suffix is neither ``.csv`` nor ``.jsonl``.
    """
    path = Path(path)
    rows = []
    for item in items:
        if needs_rationale(item):
            raise ItemFileError(
                f"item {item.id!r} is a chain-of-thought item whose rationale the scored model writes; "
                "export the prize, one_shot or no_distractor variants."
            )
        rows.append(
            {
                "prompt": item.prompt,
                "classes": list(item.options),
                "answer_index": item.true_index,
                "distractor_index": item.distractor_index,
                "id": item.id,
                "task": item.task,
                "variant": item.variant,
            }
        )
    if path.suffix == ".jsonl":
        path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), "utf-8")
    elif path.suffix == ".csv":
        import pandas as pd

        frame = pd.DataFrame(rows)
        frame["classes"] = frame["classes"].map(repr)
        frame.to_csv(path, index=False)
    else:
        raise ItemFileError(f"cannot write {path}: use a .csv or .jsonl file name.")
    return path
