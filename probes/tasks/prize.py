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
from typing import TYPE_CHECKING, Any

from probes.errors import ItemFileError
from probes.tasks.items import Item
from probes.tasks.variants import needs_rationale

if TYPE_CHECKING:
    import pandas as pd

PRIZE_COLUMNS = ("prompt", "classes", "answer_index")


def _classes(value: Any, where: str) -> list[str]:
    if isinstance(value, str):
        try:
            value = ast.literal_eval(value)
        except (ValueError, SyntaxError) as err:
            raise ItemFileError(f"{where}: classes {value!r} is not a list literal.") from err
    if not isinstance(value, (list, tuple)) or not all(isinstance(c, str) for c in value):
        raise ItemFileError(f"{where}: classes must be a list of strings, got {value!r}.")
    return list(value)


def _read_table(path: Path) -> pd.DataFrame:
    import pandas as pd  # here, not at the top: `probes tasks` lists generated items without it

    if not path.is_file():
        raise ItemFileError(f"prize file {path} does not exist; check the path.")
    try:
        if path.suffix == ".jsonl":
            return pd.DataFrame(
                [json.loads(line) for line in path.read_text("utf-8").splitlines() if line.strip()]
            )
        if path.suffix == ".csv":
            return pd.read_csv(path, keep_default_na=False)
    except (json.JSONDecodeError, pd.errors.ParserError, UnicodeDecodeError) as err:
        raise ItemFileError(f"prize file {path} is malformed ({err}).") from err
    raise ItemFileError(f"prize file {path} is neither .csv nor .jsonl.")


def read_prize_file(
    path: str | Path,
    task: str | None = None,
    variant: str = "prize",
    distractor_index: Callable[[dict[str, Any]], int] | None = None,
) -> list[Item]:
    """Items from a prize-format file.

    Args:
        path: A ``.csv`` or ``.jsonl`` file with ``prompt``, ``classes``, ``answer_index``.
        task: Task name of the items (default: the file's stem).
        variant: Prompt variant the file's prompts are in.
        distractor_index: For files of more than two classes without a
            ``distractor_index`` column: the distractor class of a row.
    """
    path = Path(path)
    table = _read_table(path)
    missing = [c for c in PRIZE_COLUMNS if c not in table.columns]
    if missing:
        raise ItemFileError(
            f"prize file {path} lacks column(s) {missing}; the prize format needs {list(PRIZE_COLUMNS)}."
        )
    if table.empty:
        raise ItemFileError(f"prize file {path} holds no rows.")
    id_column = next((c for c in ("id", "Unnamed: 0") if c in table.columns), None)
    items = []
    for number, row in enumerate(table.to_dict("records")):
        item_id = str(row[id_column]) if id_column else str(number)
        where = f"{path} row {item_id}"
        classes = _classes(row["classes"], where)
        if len(classes) < 2:
            raise ItemFileError(f"{where} has {len(classes)} class(es); an item needs at least two.")
        try:
            answer = int(row["answer_index"])
        except (TypeError, ValueError) as err:
            raise ItemFileError(f"{where}: answer_index {row['answer_index']!r} is not an integer.") from err
        if not 0 <= answer < len(classes):
            raise ItemFileError(f"{where}: answer_index {answer} is out of range for {len(classes)} classes.")
        if len(classes) == 2:
            distractor = 1 - answer
        elif "distractor_index" in row and str(row["distractor_index"]) != "":
            distractor = int(row["distractor_index"])
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
        items.append(
            Item(
                id=item_id,
                task=str(row.get("task") or task or path.stem),
                prompt=str(row["prompt"]),
                true_answer=classes[answer],
                distractor_answer=classes[distractor],
                options=tuple(classes),
                variant=str(row.get("variant") or variant),
                meta=meta,
            )
        )
    return items


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
