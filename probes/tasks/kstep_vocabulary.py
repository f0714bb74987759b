"""The k-step tasks' word-level vocabulary (the depth ladder's tokenizer): every word of their text, in order.

Used by the depth ladder's trainer (``experiments/depth/train.py``) and its tests; the built-in
ladder itself is data (``probes/builtin/depth/``).
"""

from __future__ import annotations

from functools import cache

from tokenizers.pre_tokenizers import Whitespace
from transformers import PreTrainedTokenizerFast

from probes.tasks import get_task
from probes.tasks.organism_world import SPECIAL_TOKENS
from probes.word_tokenizer import word_tokenizer

#: The k-step tasks the depth ladder is trained and probed on.
TASKS: tuple[str, ...] = ("variable_chain", "multi_hop", "arithmetic_steps")


@cache
def vocabulary() -> tuple[str, ...]:
    """Special tokens, then every word of the tasks' items (all variants, seed 0) and options, sorted.

    Words are what :class:`tokenizers.pre_tokenizers.Whitespace` makes of the text: runs of word
    characters and runs of punctuation. The tasks' text is built from fixed templates, digits,
    letters and names, so this covers every item of every seed.
    """
    splitter = Whitespace()
    words: set[str] = set()
    for name in TASKS:
        task = get_task(name)
        for variant in task.variants:
            for item in task.items(variant):
                for text in (item.prompt, *item.options):
                    words.update(word for word, _ in splitter.pre_tokenize_str(text))
    return (*SPECIAL_TOKENS, *sorted(words))


def build_tokenizer() -> PreTrainedTokenizerFast:
    """The depth ladder's tokenizer: one token per word or punctuation run."""
    return word_tokenizer(vocabulary(), split_punctuation=True)
