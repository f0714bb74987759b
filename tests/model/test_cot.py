"""Chain-of-thought: bounded greedy rationales, cut at stop strings, then scored by the lens."""

from __future__ import annotations

import pytest
from tiny_models import VOCAB, tiny_hf_model
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import AutoTokenizer, PreTrainedTokenizerFast

from probes.jobs.cot import complete, cut_rationale, generate_greedy, needs_rationale, write_rationales
from probes.lenses.logit import LogitLens
from probes.lenses.reading import read_options
from probes.model.loading import from_hf_model
from probes.tasks.items import Item
from probes.tasks.variants import ANSWER_CUE


def _cot_item(index: int, prompt: str) -> Item:
    return Item(
        id=f"c{index}",
        task="toy",
        prompt=prompt,
        true_answer=" w10",
        distractor_answer=" w11",
        variant="cot",
        meta={"needs_rationale": True},
    )


def test_cut_rationale_stops_at_a_new_example_or_a_stated_answer() -> None:
    assert cut_rationale(" a is b. So the answer is A.\n\nQ: next") == " a is b."
    assert cut_rationale(" a is b.\n\nQuestion: more So the answer is") == " a is b."
    assert cut_rationale(" no stop here  ") == " no stop here"


def test_complete_appends_rationale_and_cue_and_keeps_the_rationale() -> None:
    item = _cot_item(0, "w1 w2")
    done = complete(item, " w3 w4")
    assert done.prompt == "w1 w2 w3 w4" + ANSWER_CUE
    assert done.meta["rationale"] == " w3 w4" and not needs_rationale(done)
    assert needs_rationale(item)


def test_generation_stops_at_its_bound_and_is_batch_invariant(tiny_model) -> None:
    prompts = ["w1 w2 w3", "w4 w5 w6 w7 w8 w9"]
    batched = generate_greedy(tiny_model, prompts, max_new_tokens=5)
    alone = [generate_greedy(tiny_model, [p], max_new_tokens=5)[0] for p in prompts]
    assert batched == alone
    for text in batched:  # the word-level test tokenizer writes one word per token
        assert 1 <= len(text.split()) <= 5


@pytest.fixture(scope="module", params=["gpt2", "neox", "llama"])
def cue_model(request, tmp_path_factory):
    """A tiny model whose word-level vocabulary knows the answer cue's words (in place of the last
    test words, so the vocabulary keeps its size): a cot item's prompt holds no unknown word."""
    cue = ANSWER_CUE.split()
    vocabulary = VOCAB[: len(VOCAB) - len(cue)] + cue
    backend = Tokenizer(models.WordLevel({w: i for i, w in enumerate(vocabulary)}, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    folder = tmp_path_factory.mktemp("cue-tokenizer")
    PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="[UNK]", pad_token="[PAD]").save_pretrained(
        folder
    )
    tokenizer = AutoTokenizer.from_pretrained(folder)
    return from_hf_model(tiny_hf_model(request.param), tokenizer, name=f"tiny-{request.param}")


def test_cot_items_are_completed_then_scored(cue_model) -> None:
    tiny_model = cue_model
    items = [_cot_item(0, "w1 w2 w3"), _cot_item(1, "w4 w5"), Item("p", "toy", "w6", " w10", " w11")]
    done = write_rationales(tiny_model, items, max_new_tokens=4, batch_size=2)
    assert done[2] == items[2]
    for before, after in zip(items[:2], done[:2]):
        assert after.prompt.startswith(before.prompt) and after.prompt.endswith(ANSWER_CUE)
        assert 1 <= len(after.meta["rationale"].split()) <= 4
    readout = read_options(tiny_model, done, LogitLens(), layers=None, batch_size=2)
    assert readout.logprobs[0].shape[1] == 2


def test_a_cot_item_whose_cue_the_vocabulary_lacks_is_refused_with_the_fix(tiny_model) -> None:
    """The test vocabulary (w0 ... w199) lacks the cue's words: they would be read as [UNK]."""
    from probes.errors import InvalidItemError

    done = write_rationales(tiny_model, [_cot_item(0, "w1 w2 w3")], max_new_tokens=2, batch_size=1)
    with pytest.raises(InvalidItemError, match=r"\['So', 'the', 'answer', 'is'\].*without the cot variant"):
        read_options(tiny_model, done, LogitLens(), layers=None, batch_size=1)
