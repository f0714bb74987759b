"""Items: a prompt with the answer of the true task and the answer of the distractor task."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from probes.errors import InvalidItemError, ItemFileError

#: Columns every item file must have; the others are optional.
REQUIRED_COLUMNS = ("id", "task", "prompt", "true_answer", "distractor_answer")


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
        if not self.options:
            object.__setattr__(self, "options", (self.true_answer, self.distractor_answer))
        else:
            object.__setattr__(self, "options", tuple(self.options))
        where = f"item {self.id!r} of task {self.task!r}"
        if not self.prompt:
            raise InvalidItemError(f"{where} has an empty prompt; give it the text the model reads.")
        if not self.true_answer or not self.distractor_answer:
            raise InvalidItemError(f"{where} has an empty answer; both answers must be non-empty.")
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
            id=str(row["id"]),
            task=str(row["task"]),
            prompt=str(row["prompt"]),
            true_answer=str(row["true_answer"]),
            distractor_answer=str(row["distractor_answer"]),
            options=tuple(str(option) for option in options),
            variant=str(row.get("variant") or "prize"),
            meta=meta,
        )


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


def read_items(path: str | Path) -> list[Item]:
    """Read items from a JSONL or CSV file in the item schema.

    Raises:
        ItemFileError: The file is missing or of another type, or a line is not an item; the
            message names the file and the line (JSONL: its line number; CSV: counting the header).
    """
    path = Path(path)
    if not path.is_file():
        raise ItemFileError(f"item file {path} does not exist; check the path.")
    if path.suffix not in (".jsonl", ".csv"):
        raise ItemFileError(f"item file {path} is neither .jsonl nor .csv; rename or convert it.")
    try:
        text = path.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise ItemFileError(f"item file {path} cannot be read as UTF-8 text ({err}).") from err
    items = []
    for number, row in _rows(path, text):
        try:
            items.append(Item.from_dict(row))
        except (ItemFileError, InvalidItemError) as err:
            raise type(err)(f"{path} line {number}: {str(err).rstrip('.')}; fix that line.") from None
    if not items:
        raise ItemFileError(f"item file {path} holds no items.")
    return items


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
            yield reader.line_num, row
    except csv.Error as err:
        raise ItemFileError(f"{path}: malformed CSV ({err}); fix that line.") from None


def check_unique_ids(items: Sequence[Item]) -> None:
    """Raise when two items share an (id, variant): results are keyed by that pair."""
    seen: set[tuple[str, str]] = set()
    for item in items:
        key = (item.id, item.variant)
        if key in seen:
            raise InvalidItemError(f"two items share id {item.id!r} and variant {item.variant!r}.")
        seen.add(key)
