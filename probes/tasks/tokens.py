"""Checks of an item against a model's tokenizer: what can only be checked once the tokenizer is known.

An item is refused (:class:`~probes.errors.InvalidItemError`, naming the item and the text) when

- its prompt or an option holds the text of a control token (``<|endoftext|>``, ``<s>``,
  ``[SEP]`` ...): the tokenizer turns it into that token, so the model would read a document
  boundary or a padding mark instead of the text written;
- its prompt or an option holds words outside the tokenizer's vocabulary (a word-level tokenizer
  such as the built-in ladders' reads them as its unknown token, and an answer read as
  ``<unk>`` scores the unknown token, not the answer);
- two of its options tokenize identically: no readout can tell them apart, so a right answer
  would tie with another option.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from probes.errors import InvalidItemError
from probes.tasks.items import Item
from probes.tasks.variants import ANSWER_CUE


def control_tokens(tokenizer: Any) -> list[str]:
    """The texts a tokenizer turns into control tokens (its special and special added tokens)."""
    texts = set(getattr(tokenizer, "all_special_tokens", None) or [])
    decoder = getattr(tokenizer, "added_tokens_decoder", None) or {}
    texts.update(token.content for token in decoder.values() if getattr(token, "special", False))
    return sorted(text for text in texts if text)


def check_item_tokens(
    item: Item, tokenizer: Any, prompt_ids: Sequence[int], option_ids: Sequence[Sequence[int]]
) -> None:
    """Refuse an item whose tokens would not be the text written, or whose options coincide.

    Args:
        item: The item.
        tokenizer: The model's tokenizer (a transformers tokenizer).
        prompt_ids: The prompt's tokens as the lens encodes them.
        option_ids: Each option's tokens, in ``item.options`` order.

    Raises:
        InvalidItemError: See the module's docstring.
    """
    options = {f"option {o!r}": o for o in item.options}
    texts = {"prompt": item.prompt, **options}
    controls = control_tokens(tokenizer)
    for name, text in texts.items():
        found = [token for token in controls if token in text]
        if found:
            raise InvalidItemError(
                f"item {item.id!r} of task {item.task!r}: its {name} holds {found}, which this model's "
                "tokenizer reads as control tokens (not as text); remove or reword them."
            )
    unknown = getattr(tokenizer, "unk_token_id", None)
    if unknown is not None:
        if unknown in prompt_ids:  # the id may also be a BOS the tokenizer added: look at the text's own
            prompt_ids = tokenizer(item.prompt, add_special_tokens=False).input_ids
        for name, ids in {"prompt": prompt_ids, **dict(zip(options, option_ids))}.items():
            if unknown in ids:
                words = _unknown_words(texts[name], tokenizer, unknown)
                fix = "use words the model knows"
                if name == "prompt" and "rationale" in item.meta:
                    fix = (
                        f"this chain-of-thought item's prompt ends with the answer cue {ANSWER_CUE!r}, which "
                        "the model's vocabulary must hold: run this model without the cot variant "
                        "(--variants without cot)"
                    )
                raise InvalidItemError(
                    f"item {item.id!r} of task {item.task!r}: its {name} holds words outside this model's "
                    f"vocabulary ({words or 'some text'}), which would be read as "
                    f"{tokenizer.unk_token!r}; {fix}."
                )
    seen: dict[tuple[int, ...], str] = {}
    for option, ids in zip(item.options, option_ids):
        key = tuple(ids)
        if key in seen:
            raise InvalidItemError(
                f"item {item.id!r} of task {item.task!r}: options {seen[key]!r} and {option!r} tokenize "
                f"identically ({list(key)}) under this model's tokenizer, so no readout can tell them "
                "apart; reword or drop one of them."
            )
        seen[key] = option


def _unknown_words(text: str, tokenizer: Any, unknown: int) -> list[str]:
    """The whitespace-separated words of ``text`` that the tokenizer reads with its unknown token."""
    return [w for w in text.split() if unknown in tokenizer(w, add_special_tokens=False).input_ids][:10]
