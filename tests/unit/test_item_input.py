"""Hostile item files: every one gives items that are right or one error naming file, line and field.

Pure validation (no model): answers must be text, indices whole numbers, names path-safe; one
reader takes both schemas, a byte-order mark and ids numbered per task; a tokenizer refuses
options that coincide, words outside its vocabulary and control-token text.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from probes.builtin.word_tokenizer import word_tokenizer
from probes.errors import InvalidItemError, ItemFileError, UnknownTaskError
from probes.lenses.reading import encode_item
from probes.tasks import Item, load_items, read_items, write_items
from probes.tasks.organism_world import END_TOKEN, PAD_TOKEN, UNKNOWN_TOKEN
from probes.tasks.prize import write_prize_file

GOOD = {"id": "a", "task": "t", "prompt": "w1 w2 w3", "true_answer": " w5", "distractor_answer": " w6"}


def _jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), "utf-8")
    return path


@pytest.mark.parametrize(
    ("field", "value", "shown"),
    [
        ("distractor_answer", float("nan"), "float NaN"),
        ("true_answer", True, "bool True"),
        ("true_answer", [" w5"], "list"),
        ("distractor_answer", 7, "int 7"),
        ("prompt", 3.5, "float 3.5"),
    ],
)
def test_non_text_answers_are_refused_with_file_line_and_field(tmp_path, field, value, shown):
    path = _jsonl(tmp_path / "items.jsonl", [GOOD, {**GOOD, "id": "b", field: value}])
    with pytest.raises(InvalidItemError) as caught:
        read_items(path)
    message = str(caught.value)
    assert f"{path} line 2" in message and field in message and shown in message and "not text" in message


def test_non_text_options_and_bool_ids_are_refused(tmp_path):
    with pytest.raises(InvalidItemError, match="option 2 is float NaN"):
        read_items(_jsonl(tmp_path / "o.jsonl", [{**GOOD, "options": [" w5", " w6", float("nan")]}]))
    with pytest.raises(ItemFileError, match='line 1: "id" is bool'):
        read_items(_jsonl(tmp_path / "i.jsonl", [{**GOOD, "id": True}]))
    assert read_items(_jsonl(tmp_path / "n.jsonl", [{**GOOD, "id": 7}]))[0].id == "7"


@pytest.mark.parametrize(
    ("index", "ok"), [(0.7, False), (True, False), ("x", False), (1.0, True), ("1", True)]
)
def test_a_prize_answer_index_must_be_a_whole_number(tmp_path, index, ok):
    path = _jsonl(tmp_path / "p.jsonl", [{"prompt": "Q:", "classes": [" a", " b"], "answer_index": index}])
    if ok:
        assert read_items(path)[0].true_answer == " b"
    else:
        with pytest.raises(ItemFileError, match=r"p.jsonl line 1: answer_index .* is not a whole-number"):
            read_items(path)


def test_prize_classes_must_be_text(tmp_path):
    path = _jsonl(
        tmp_path / "p.jsonl", [{"prompt": "Q:", "classes": [" a", float("nan")], "answer_index": 0}]
    )
    with pytest.raises(ItemFileError, match="line 1: classes must be a list of strings"):
        read_items(path)


def test_a_prize_jsonl_line_that_is_no_object_is_named(tmp_path):
    good = {"prompt": "Q:", "classes": [" a", " b"], "answer_index": 0}
    path = _jsonl(tmp_path / "p.jsonl", [good, "[1, 2]"])
    with pytest.raises(ItemFileError, match="p.jsonl line 2: expected an object"):
        read_items(path)


@pytest.mark.parametrize("name", [".", "..", "a b", "a/b", "", ".hidden", "ü"])
def test_task_and_variant_names_must_be_path_safe(name):
    with pytest.raises(InvalidItemError, match="not path-safe"):
        Item("a", name, "w1", " w2", " w3")
    with pytest.raises(InvalidItemError, match="not path-safe"):
        Item("a", "t", "w1", " w2", " w3", variant=name)


def test_a_prize_file_named_unsafely_needs_a_task_column(tmp_path):
    row = {"prompt": "Q:", "classes": [" a", " b"], "answer_index": 0}
    with pytest.raises(ItemFileError, match="named after the file, and 'my items' is not a path-safe"):
        read_items(_jsonl(tmp_path / "my items.jsonl", [row]))
    assert read_items(_jsonl(tmp_path / "my items2.jsonl", [{**row, "task": "mine"}]))[0].task == "mine"


def test_a_byte_order_mark_is_ignored(tmp_path):
    items = [Item(f"i{i}", "t", "w1 w2", " w3", " w4") for i in range(2)]
    for suffix in (".csv", ".jsonl"):
        plain = write_items(items, tmp_path / f"plain{suffix}")
        bom = tmp_path / f"bom{suffix}"
        bom.write_bytes(b"\xef\xbb\xbf" + plain.read_bytes())
        assert read_items(bom) == items
    prize = write_prize_file(items, tmp_path / "prize.csv")
    prize.write_bytes(b"\xef\xbb\xbf" + prize.read_bytes())
    assert read_items(prize) == items


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_one_reader_reads_every_format_the_toolkit_writes(tmp_path, suffix):
    items = load_items(["negation_qa", "organism_negation"], ["prize", "one_shot"], n_items=3)
    assert read_items(write_items(items, tmp_path / f"ours{suffix}")) == items
    assert read_items(write_prize_file(items, tmp_path / f"prize{suffix}")) == items


def test_two_prize_files_numbered_alike_give_two_tasks(tmp_path):
    """The prize's own files number rows from 0 and have no id column: ids are namespaced by task."""
    rows = [{"prompt": f"Q{i}:", "classes": [" a", " b"], "answer_index": i % 2} for i in range(3)]
    proverb, hate = _jsonl(tmp_path / "proverb.jsonl", rows), tmp_path / "hate.csv"
    with hate.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, ["prompt", "classes", "answer_index"])
        writer.writeheader()
        writer.writerows({**r, "classes": repr(r["classes"])} for r in rows)
    items = load_items([str(proverb), str(hate)])
    assert [(i.task, i.id) for i in items] == [(t, str(n)) for t in ("proverb", "hate") for n in range(3)]
    (tmp_path / "other").mkdir()
    same = _jsonl(tmp_path / "other" / "proverb.jsonl", rows)
    with pytest.raises(InvalidItemError, match=rf"task 'proverb' share id '0'.*{proverb}.*{same}"):
        load_items([str(proverb), str(same)])


def test_n_items_counts_per_task_and_variant_in_an_item_file(tmp_path):
    items = load_items(["negation_qa"], ["prize", "one_shot"], n_items=5)
    path = write_items(items, tmp_path / "both.jsonl")
    chosen = load_items([str(path)], n_items=2)
    assert [(i.variant, i.id) for i in chosen] == [(i.variant, i.id) for i in items if i.variant == "prize"][
        :2
    ] + [(i.variant, i.id) for i in items if i.variant == "one_shot"][:2]


@pytest.mark.parametrize("tasks", [[], "organism_negation", [""], [3]])
def test_tasks_must_be_a_non_empty_list_of_names(tasks):
    with pytest.raises(UnknownTaskError, match="tasks must be a non-empty list"):
        load_items(tasks)


# --- against a tokenizer ----------------------------------------------------------------------

TOKENIZER = word_tokenizer(
    [PAD_TOKEN, UNKNOWN_TOKEN, END_TOKEN, "quiet", "loud", "calm", "is", "the", "room"]
)


def _encode(item: Item):
    return encode_item(item, TOKENIZER, 64)


def test_options_that_tokenize_alike_are_refused():
    item = Item("a", "t", "the room is", " quiet", " loud", options=(" quiet", " loud", " quiet "))
    with pytest.raises(InvalidItemError, match="options ' quiet' and ' quiet ' tokenize identically"):
        _encode(item)
    assert _encode(Item("a", "t", "the room is", " quiet", " loud", options=(" quiet", " loud", " calm")))


def test_words_outside_a_word_tokenizers_vocabulary_are_refused():
    with pytest.raises(InvalidItemError, match=r"option ' hushed' holds words outside .*\['hushed'\]"):
        _encode(Item("a", "t", "the room is", " hushed", " loud"))
    with pytest.raises(InvalidItemError, match=r"prompt holds words outside .*\['kitchen'\]"):
        _encode(Item("a", "t", "the kitchen is", " quiet", " loud"))


def test_control_token_text_in_a_prompt_is_refused():
    with pytest.raises(InvalidItemError, match=rf"prompt holds \['{END_TOKEN}'\], which .* reads as control"):
        _encode(Item("a", "t", f"the room {END_TOKEN} is", " quiet", " loud"))
