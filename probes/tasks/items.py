"""Items: a prompt with the answer of the true task and the answer of the distractor task."""

from __future__ import annotations

import csv
import io
import json
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from probes.errors import InvalidItemError, ItemFileError

#: Columns every item file must have; the others are optional.
REQUIRED_COLUMNS = ("id", "task", "prompt", "true_answer", "distractor_answer")

#: Task and variant names name a shard's folder and file: letters, digits, ``.``, ``_``, ``-`` and
#: ``+``, starting with a letter or digit (so never ``.``, ``..``, a hidden name or a path).
SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]*")


def check_name(name: object, field_name: str) -> str:
    """``name`` if it is a path-safe task or variant name (:data:`SAFE_NAME`).

    Raises:
        InvalidItemError: The name is no string, is empty, or could escape or share a folder of
            the store (``.``, ``..``, ``a/b``, ``a b``).
    """
    if not isinstance(name, str) or not SAFE_NAME.fullmatch(name) or len(name) > 200:
        raise InvalidItemError(
            f"{field_name} name {name!r} is not path-safe (it names a folder of the result store); use "
            "letters, digits, '.', '_', '-' or '+', starting with a letter or digit."
        )
    return name


def _check_text(value: object, field_name: str, where: str) -> None:
    """Refuse a prompt or answer that is not a non-empty string (NaN, a number, a bool, a list)."""
    if not isinstance(value, str):
        shown = "NaN" if isinstance(value, float) and math.isnan(value) else repr(value)
        raise InvalidItemError(
            f"{where}: {field_name} is {type(value).__name__} {shown:.60}, not text; give it as a "
            "string (quote it in JSON)."
        )
    if not value:
        raise InvalidItemError(f"{where}: {field_name} is empty; give it the text it stands for.")


@dataclass(frozen=True)
class Item:
    """One prompt, scored by how much a model prefers ``true_answer`` over ``distractor_answer``.

    Answers are continuations of the prompt, so they usually start with a space
    (``" Paris"``). They may span several tokens. ``options`` lists every
    answer the model chooses among; it defaults to ``(true_answer,
    distractor_answer)`` and must contain both.
    """

    id: str
    task: str
    prompt: str
    true_answer: str
    distractor_answer: str
    options: tuple[str, ...] = ()
    variant: str = "prize"
    meta: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)

    def __post_init__(self) -> None:
        where = f"item {self.id!r} of task {self.task!r}"
        if not isinstance(self.id, str) or not self.id:
            raise InvalidItemError(f"{where}: its id must be a non-empty string.")
        check_name(self.task, "task")
        check_name(self.variant, "variant")
        if not self.prompt:
            raise InvalidItemError(f"{where} has an empty prompt; give it the text the model reads.")
        _check_text(self.prompt, "prompt", where)
        for name in ("true_answer", "distractor_answer"):
            _check_text(getattr(self, name), name, where)
        if isinstance(self.options, (str, bytes)):
            raise InvalidItemError(f"{where}: options must be a list of answers, not one string.")
        if not self.options:
            object.__setattr__(self, "options", (self.true_answer, self.distractor_answer))
        else:
            object.__setattr__(self, "options", tuple(self.options))
        for number, option in enumerate(self.options):
            _check_text(option, f"option {number}", where)
        if self.true_answer == self.distractor_answer:
            raise InvalidItemError(
                f"{where}: true and distractor answers are both {self.true_answer!r}; "
                "an item must oppose two different answers."
            )
        missing = [a for a in (self.true_answer, self.distractor_answer) if a not in self.options]
        if missing:
            raise InvalidItemError(f"{where}: options {self.options} lack {missing}; add them.")
        if len(set(self.options)) != len(self.options):
            raise InvalidItemError(f"{where}: options {self.options} repeat an answer.")

    @property
    def true_index(self) -> int:
        """Position of the true answer in ``options``."""
        return self.options.index(self.true_answer)

    @property
    def distractor_index(self) -> int:
        """Position of the distractor answer in ``options``."""
        return self.options.index(self.distractor_answer)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict in the item-file schema."""
        row = asdict(self)
        row["options"] = list(self.options)
        return row

    @classmethod
    def from_dict(cls, row: dict[str, Any]) -> Item:
        """Build an item from a dict in the item-file schema (extra keys go to ``meta``).

        Raises:
            ItemFileError: A required column is missing, or ``options`` / ``meta`` are not a
                list / an object (or JSON text of one).
        """
        if not isinstance(row, dict):
            raise ItemFileError(
                f"expected an object with {list(REQUIRED_COLUMNS)}, got {type(row).__name__} {row!r:.60}"
            )
        missing = [c for c in REQUIRED_COLUMNS if row.get(c) in (None, "")]
        if missing:
            raise ItemFileError(
                f"item row {row.get('id', '?')!r} lacks {missing}; every row needs {list(REQUIRED_COLUMNS)}."
            )
        known = {"id", "task", "prompt", "true_answer", "distractor_answer", "options", "variant", "meta"}
        meta = _json_field(row.get("meta") or {}, "meta", dict, "an object")
        meta.update({k: v for k, v in row.items() if k not in known})
        options = _json_field(row.get("options") or [], "options", list, "a list of answers")
        return cls(
            id=item_id(row["id"]),
            task=row["task"],
            prompt=row["prompt"],
            true_answer=row["true_answer"],
            distractor_answer=row["distractor_answer"],
            options=tuple(options),
            variant=row.get("variant") or "prize",
            meta=meta,
        )


def item_id(value: object) -> str:
    """An item id as text: a string, or a whole number (JSON files often number their items).

    Raises:
        ItemFileError: The id is a bool, a fraction, NaN, a list ...
    """
    if isinstance(value, str) and value:
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise ItemFileError(f'"id" is {type(value).__name__} {value!r:.60}; give a string or a whole number')


def _json_field(value: Any, name: str, kind: type, described: str) -> Any:
    """A field that must be ``kind`` (a list or dict), given as such or as JSON text of one."""
    if isinstance(value, str):
        try:
            value = json.loads(value) if value.strip() else kind()
        except json.JSONDecodeError:
            raise ItemFileError(f'"{name}" is {value!r:.60}, not JSON text of {described}') from None
    if isinstance(value, tuple):
        value = list(value)
    if not isinstance(value, kind):
        raise ItemFileError(f'"{name}" must be {described}, got {type(value).__name__} {value!r:.60}')
    return dict(value) if kind is dict else value


def write_items(items: Iterable[Item], path: str | Path) -> Path:
    """Write items to ``path`` as JSONL (``.jsonl``) or CSV (``.csv``); returns the path."""
    path = Path(path)
    rows = [item.to_dict() for item in items]
    if path.suffix == ".jsonl":
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    elif path.suffix == ".csv":
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(Item.__dataclass_fields__))
            writer.writeheader()
            for r in rows:
                writer.writerow({**r, "options": json.dumps(r["options"]), "meta": json.dumps(r["meta"])})
    else:
        raise ItemFileError(f"cannot write items to {path}: use a .jsonl or .csv file name.")
    return path


def read_rows(path: Path) -> list[tuple[int, dict[str, Any]]]:
    """``(line number, row)`` of every row of a JSONL or CSV file (blank JSONL lines skipped).

    A byte-order mark is ignored. Every JSONL line must be a JSON object.

    Raises:
        ItemFileError: The file is missing, not ``.jsonl``/``.csv``, not UTF-8, malformed, or a
            JSONL line is no object; the message names the file and line.
    """
    if not path.is_file():
        raise ItemFileError(f"item file {path} does not exist; check the path.")
    if path.suffix not in (".jsonl", ".csv"):
        raise ItemFileError(f"item file {path} is neither .jsonl nor .csv; rename or convert it.")
    try:
        text = path.read_text("utf-8-sig")
    except (OSError, UnicodeDecodeError) as err:
        raise ItemFileError(f"item file {path} cannot be read as UTF-8 text ({err}).") from err
    rows = []
    for number, row in _rows(path, text):
        if not isinstance(row, dict):
            raise ItemFileError(
                f"{path} line {number}: expected an object with {list(REQUIRED_COLUMNS)} (or the prize "
                f"format's prompt, classes, answer_index), got {type(row).__name__} {row!r:.60}; fix it."
            )
        rows.append((number, row))
    return rows


def _rows(path: Path, text: str) -> Iterable[tuple[int, Any]]:
    """``(line number, parsed row)`` of an item file, blank JSONL lines skipped."""
    if path.suffix == ".jsonl":
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                yield number, json.loads(line)
            except json.JSONDecodeError as err:
                raise ItemFileError(
                    f"{path} line {number}: malformed JSON ({err.msg} at column {err.colno}); fix that line."
                ) from None
        return
    try:
        reader = csv.DictReader(io.StringIO(text, newline=""))
        for row in reader:
            if None in row:
                raise ItemFileError(
                    f"{path} line {reader.line_num}: more fields than the header has columns; fix that line."
                )
            yield reader.line_num, row
    except csv.Error as err:
        raise ItemFileError(f"{path}: malformed CSV ({err}); fix that line.") from None


def check_unique_ids(items: Sequence[Item], sources: Sequence[str] | None = None) -> None:
    """Raise when two items share a (task, id, variant): results are keyed by those three.

    Ids are namespaced by task, so two files (or tasks) may both number their items from 0.
    ``sources`` (one per item) names where each item came from, for the message.
    """
    seen: dict[tuple[str, str, str], int] = {}
    for index, item in enumerate(items):
        key = (item.task, item.id, item.variant)
        if key in seen:
            where = ""
            if sources is not None:
                where = f" ({sources[seen[key]]} and {sources[index]})"
            raise InvalidItemError(
                f"two items of task {item.task!r} share id {item.id!r} and variant {item.variant!r}{where}; "
                "give them distinct ids, or give one file another task name (its task column, or its "
                "file name for a prize file)."
            )
        seen[key] = index


def task_and_variant(items: Sequence[Item], caller: str) -> tuple[str, str]:
    """The one task and variant of ``items``, for an analysis of one (task, variant) at a time.

    Raises:
        InvalidItemError: The items are of several tasks or variants, or there are none.
    """
    groups = {(item.task, item.variant) for item in items}
    if len(groups) != 1:
        raise InvalidItemError(
            f"{caller} takes the items of one task and variant; got {sorted(groups) or 'none'}. "
            "Load them with probes.tasks.load_items([task], [variant])."
        )
    return next(iter(groups))
