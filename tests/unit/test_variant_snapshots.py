"""The exact prompt text of every variant of every generated task, against reviewed snapshots.

A snapshot is ``tests/unit/snapshots/<task>.json``: the first item (seed 0) of each variant. After an
intended change of a generator or of the variant templates, regenerate them with
``PROBES_UPDATE_SNAPSHOTS=1 python -m pytest tests/unit/test_variant_snapshots.py`` and review the diff.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from probes.tasks import get_task
from probes.tasks.generators import specs

SNAPSHOTS = Path(__file__).parent / "snapshots"


def _first_items(name: str) -> dict[str, dict[str, object]]:
    task = get_task(name)
    return {variant: task.items(variant, 1, seed=0)[0].to_dict() for variant in task.variants}


@pytest.mark.parametrize("name", [spec.name for spec in specs()])
def test_variants_match_their_snapshot(name: str) -> None:
    path = SNAPSHOTS / f"{name}.json"
    current = json.loads(json.dumps(_first_items(name)))
    if os.environ.get("PROBES_UPDATE_SNAPSHOTS"):
        path.write_text(json.dumps(current, indent=1, ensure_ascii=False) + "\n", "utf-8")
    assert path.is_file(), f"no snapshot for {name}; create it with PROBES_UPDATE_SNAPSHOTS=1 and review it"
    assert current == json.loads(path.read_text("utf-8"))


def test_negation_qa_variants_read_as_written() -> None:
    items = _first_items("negation_qa")
    header = "The following are multiple choice questions (with answers) about common sense.\n\n"
    question = "Question: A swan is not an example of a\nA. bird\nB. fish\nAnswer:"
    assert items["prize"]["prompt"] == header + question
    assert (items["prize"]["true_answer"], items["prize"]["distractor_answer"]) == (" B", " A")
    control = items["no_distractor"]
    assert control["prompt"] == header + question.replace("is not an example", "is an example")
    assert (control["true_answer"], control["distractor_answer"]) == (" A", " B")
    demonstration = (
        header
        + "Question: A desk does not belong to the group called\nA. insect\nB. piece of furniture\nAnswer: A"
    )
    assert items["one_shot"]["prompt"] == demonstration + "\n\n" + header + question
    cot = items["cot"]["prompt"]
    assert cot.startswith(
        header + "Question: A desk does not belong to the group called\nA. insect\nB. piece of furniture\n"
        "Answer: Let's think step by step. A desk belongs to the group called piece of furniture, which "
        "is option B. The question says it is not, so the answer is the other option, insect. So the "
        "answer is A.\n\n"
    )
    assert cot.endswith(header + question + " Let's think step by step.")
