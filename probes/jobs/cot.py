"""Chain-of-thought: the model writes its own rationale before its answer is read.

Items of the ``cot`` variant end with the cue "Let's think step by step." and carry
``meta["needs_rationale"]``. :func:`write_rationales` lets the model continue each prompt greedily
(batched, left-padded, at most ``max_new_tokens``), cuts the continuation where the model starts
a new example or states its answer itself, and appends :data:`~probes.tasks.variants.ANSWER_CUE`:
the options are then scored at the position after "So the answer is", with the rationale in
the context, by the ordinary lens. The rationale is kept in ``meta["rationale"]``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import torch
from transformers import GenerationConfig, StoppingCriteria, StoppingCriteriaList

from probes.errors import OutOfMemoryError
from probes.model.loading import HookedModel
from probes.progress_bar import tqdm
from probes.tasks.items import Item
from probes.tasks.variants import ANSWER_CUE, NEEDS_RATIONALE, SEPARATOR, needs_rationale

#: Where a rationale ends: a new example begins, or the model states its answer.
STOP_STRINGS: tuple[str, ...] = (SEPARATOR, ANSWER_CUE.strip(), "\nQ:", "\nQuestion:", "\nInput:")

#: Default bound on a rationale's length, in tokens.
MAX_NEW_TOKENS = 64

#: Version of the rationale generation, in each chain-of-thought unit's fingerprint. 2: the bridge
#: backend hands its attention the key/value cache under the name it reads (4d4a204); before, GPT-2
#: and Llama-family models' cached generation drifted from plain transformers after 2-3 tokens, so
#: rationales stored by version 1 are refused as made from other inputs (re-run with --overwrite).
GENERATION_VERSION = 2


def cut_rationale(text: str) -> str:
    """The rationale up to the first stop string, without trailing whitespace."""
    end = min((text.find(stop) for stop in STOP_STRINGS if stop in text), default=len(text))
    return text[:end].rstrip()


def complete(item: Item, rationale: str) -> Item:
    """The scorable item: prompt + rationale + answer cue, the rationale kept in ``meta``."""
    meta = {key: value for key, value in item.meta.items() if key != NEEDS_RATIONALE}
    meta["rationale"] = rationale
    return dataclasses.replace(item, prompt=f"{item.prompt}{rationale}{ANSWER_CUE}", meta=meta)


class _StopStrings(StoppingCriteria):
    """Marks a sequence done once its continuation holds a stop string.

    (transformers' own ``stop_strings`` needs a byte-level or sentencepiece vocabulary; this
    works with any tokenizer, at the price of decoding the continuations at each step.)
    """

    def __init__(self, tokenizer: Any, prompt_width: int) -> None:
        self.tokenizer, self.prompt_width = tokenizer, prompt_width

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        texts = self.tokenizer.batch_decode(input_ids[:, self.prompt_width :], skip_special_tokens=True)
        done = [any(stop in text for stop in STOP_STRINGS) for text in texts]
        return torch.tensor(done, dtype=torch.bool, device=input_ids.device)


@torch.no_grad()
def generate_greedy(
    model: HookedModel, prompts: Sequence[str], max_new_tokens: int = MAX_NEW_TOKENS
) -> list[str]:
    """Greedy continuations of ``prompts`` (one batch, left-padded), cut at :data:`STOP_STRINGS`.

    Every prompt plus ``max_new_tokens`` must fit the model's context (see :func:`budget`).
    Each continuation is decoded together with its prompt and the prompt's text removed, so
    tokenizers that drop a word's leading space when decoding it alone keep it.
    """
    tokenizer = model.tokenizer
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    encoded = [list(tokenizer(prompt).input_ids) for prompt in prompts]
    width = max(len(ids) for ids in encoded)
    if max_new_tokens <= 0:
        return ["" for _ in prompts]
    input_ids = torch.tensor([[pad_id] * (width - len(ids)) + ids for ids in encoded])
    attention_mask = torch.tensor([[0] * (width - len(ids)) + [1] * len(ids) for ids in encoded])
    device = model.device
    config = GenerationConfig(  # fresh: no repetition penalty or the like from the model's own config
        max_new_tokens=max_new_tokens,
        do_sample=False,
        num_beams=1,
        pad_token_id=pad_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    output = model.generate(
        input_ids.to(device),
        attention_mask.to(device),
        generation_config=config,
        stopping_criteria=StoppingCriteriaList([_StopStrings(tokenizer, width)]),
    )
    texts = []
    for ids, row in zip(encoded, output[:, width:].tolist()):
        new = [token for token in row if token != pad_id]
        prompt_text = tokenizer.decode(ids, skip_special_tokens=True)
        full_text = tokenizer.decode(ids + new, skip_special_tokens=True)
        # control tokens (an EOS) are never spelled into the rationale's text: the item's prompt
        # would carry them as text, which encode_item refuses
        alone = tokenizer.decode(new, skip_special_tokens=True)
        text = full_text[len(prompt_text) :] if full_text.startswith(prompt_text) else alone
        texts.append(cut_rationale(text))
    return texts


def budget(model: HookedModel, item: Item, max_new_tokens: int) -> int:
    """How many tokens the item's rationale may take: the bound, less what the context lacks.

    Room is kept for the answer cue and the longest option, so the completed item still fits.
    """
    tokenizer = model.tokenizer
    prompt = len(tokenizer(item.prompt).input_ids)
    cue = len(tokenizer(ANSWER_CUE, add_special_tokens=False).input_ids)
    option = max(len(tokenizer(o, add_special_tokens=False).input_ids) for o in item.options)
    return max(0, min(max_new_tokens, model.n_ctx - prompt - cue - option - 2))


def write_rationales(
    model: HookedModel,
    items: Sequence[Item],
    max_new_tokens: int = MAX_NEW_TOKENS,
    batch_size: int = 8,
    progress: bool = False,
) -> list[Item]:
    """Every item that needs a rationale, completed by the model; the others unchanged.

    Raises:
        OutOfMemoryError: a batch did not fit; the message suggests a smaller batch size.
    """
    pending = [index for index, item in enumerate(items) if needs_rationale(item)]
    budgets = {index: budget(model, items[index], max_new_tokens) for index in pending}
    # Items with the full bound share batches; an item the context cuts short runs alone, so
    # no rationale depends on which other items share its batch.
    full = [index for index in pending if budgets[index] == max_new_tokens]
    batches = [full[start : start + batch_size] for start in range(0, len(full), batch_size)]
    batches += [[index] for index in pending if budgets[index] < max_new_tokens]
    result = list(items)
    for batch in tqdm(batches, desc=f"{model.name} rationales", disable=not progress or not batches):
        try:
            rationales = generate_greedy(model, [items[i].prompt for i in batch], budgets[batch[0]])
        except torch.OutOfMemoryError as error:
            raise OutOfMemoryError(
                f"writing rationales for {model.name} ran out of memory at batch size {batch_size}; "
                f"rerun with --batch-size {max(1, batch_size // 2)}."
            ) from error
        for index, rationale in zip(batch, rationales):
            result[index] = complete(items[index], rationale)
    return result
