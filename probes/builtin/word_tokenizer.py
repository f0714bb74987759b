"""Word-level tokenizers of the built-in ladders' trainers: one token per word, never merged.

The organism's words are split on whitespace; the depth ladder's also split punctuation off
(``"Kim's"`` -> ``Kim ' s``), so its prompts read naturally for hub tokenizers too.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from tokenizers import Tokenizer
from tokenizers.models import WordLevel
from tokenizers.pre_tokenizers import Whitespace, WhitespaceSplit
from transformers import PreTrainedTokenizerFast

from probes.tasks.organism_world import END_TOKEN, PAD_TOKEN, UNKNOWN_TOKEN


def word_tokenizer(words: Sequence[str], split_punctuation: bool = False) -> PreTrainedTokenizerFast:
    """A fast tokenizer whose vocabulary is ``words``, in that order.

    ``words`` must hold the built-in ladders' special tokens (pad, unknown, end). Text is split on
    whitespace (and, with ``split_punctuation``, into runs of word characters and runs of
    punctuation); a word is never merged with the next, so when answers start with a space
    the tokens of ``prompt + answer`` are those of ``prompt`` followed by those of ``answer``.
    No special token is added around a text.
    """
    vocabulary = {word: index for index, word in enumerate(words)}
    backend = Tokenizer(WordLevel(vocab=vocabulary, unk_token=UNKNOWN_TOKEN))
    backend.pre_tokenizer = Whitespace() if split_punctuation else WhitespaceSplit()
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        unk_token=UNKNOWN_TOKEN,
        pad_token=PAD_TOKEN,
        eos_token=END_TOKEN,
        clean_up_tokenization_spaces=False,
    )


def save_word_tokenizer(
    tokenizer: PreTrainedTokenizerFast, folder: str | Path, max_length: int
) -> list[Path]:
    """Write ``tokenizer.json`` and ``tokenizer_config.json`` into ``folder``; returns their paths.

    The config names ``PreTrainedTokenizerFast`` as the class, which every transformers
    version since 4.x loads through ``AutoTokenizer``.
    """
    paths = [Path(p) for p in tokenizer.save_pretrained(str(folder))]
    config_path = Path(folder) / "tokenizer_config.json"
    config = json.loads(config_path.read_text("utf-8"))
    config.pop("backend", None)
    config.update(tokenizer_class="PreTrainedTokenizerFast", model_max_length=max_length)
    config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", "utf-8")
    return paths
