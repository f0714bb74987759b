"""Per-layer readouts of every option of every item, from one hooked forward pass per batch.

The engine keeps, at each layer, only the residual-stream vectors at the
positions that predict an answer token; it never caches a whole activation
tensor and never runs the full-vocabulary head on every position. It stops the
forward pass after the last layer asked for (the model's
:meth:`~probes.model.loading.HookedModel.residual_reader` does both). A :class:`Lens` then turns those
vectors into log-probabilities of the answer tokens.

Answers of several tokens are teacher-forced: the model reads ``prompt +
answer`` and the log-probabilities of the answer's tokens, each read at the
same layer, are kept per token and summed. Batches are right-padded; with causal
attention the numbers are those of one prompt at a time.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import torch
from jaxtyping import Float, Int

from probes.errors import InvalidItemError, LayerError, OutOfMemoryError
from probes.lenses import passes as continuation
from probes.lenses.base import Lens
from probes.lenses.logit import LogitLens
from probes.lenses.passes import Read
from probes.model.loading import HookedModel
from probes.progress_bar import tqdm
from probes.tasks.items import Item
from probes.tasks.tokens import check_item_tokens
from probes.tasks.variants import needs_rationale


@dataclass(frozen=True)
class EncodedItem:
    """An item's tokens: the prompt's and each option's."""

    prompt_ids: list[int]
    option_ids: list[list[int]]


@dataclass(frozen=True)
class _Sequence:
    """One forward-pass row: tokens plus the (position, target, option) reads it serves."""

    item_index: int
    tokens: list[int]
    reads: list[tuple[int, int, int]]


def encode_item(item: Item, tokenizer: Any, n_ctx: int) -> EncodedItem:
    """Tokenize an item as the model's tokenizer does by default; check it can be scored.

    The prompt gets the tokenizer's special tokens (a BOS where the model family
    uses one); each option is tokenized on its own, without special tokens, and
    appended to the prompt.
    """
    if needs_rationale(item):
        raise InvalidItemError(
            f"item {item.id!r} ({item.variant}) waits for the model's rationale; complete it with "
            "probes.jobs.cot.write_rationales(model, items) before reading it (the sweep does this)."
        )
    prompt_ids = list(tokenizer(item.prompt).input_ids)
    if not prompt_ids:
        raise InvalidItemError(f"item {item.id!r}: the prompt tokenizes to nothing; give it some text.")
    option_ids = [list(tokenizer(option, add_special_tokens=False).input_ids) for option in item.options]
    for option, ids in zip(item.options, option_ids):
        if not ids:
            raise InvalidItemError(f"item {item.id!r}: option {option!r} tokenizes to nothing.")
    check_item_tokens(item, tokenizer, prompt_ids, option_ids)  # control tokens, <unk>, equal options
    longest = len(prompt_ids) + max(len(ids) for ids in option_ids) - 1
    if longest > n_ctx:
        raise InvalidItemError(
            f"item {item.id!r}: prompt plus answer is {longest} tokens, longer than the model's "
            f"context of {n_ctx}; shorten the prompt or drop the item."
        )
    return EncodedItem(prompt_ids=prompt_ids, option_ids=option_ids)


def _sequences(item_index: int, encoded: EncodedItem) -> list[_Sequence]:
    """Forward-pass rows for one item: the prompt alone when every option is one token."""
    prompt = encoded.prompt_ids
    answer_start = len(prompt) - 1
    single = [(answer_start, ids[0], o) for o, ids in enumerate(encoded.option_ids) if len(ids) == 1]
    sequences = []
    for option, ids in enumerate(encoded.option_ids):
        if len(ids) > 1:
            reads = [(answer_start + j, token, option) for j, token in enumerate(ids)]
            sequences.append(_Sequence(item_index, prompt + ids[:-1], reads))
    if not sequences:
        return [_Sequence(item_index, prompt, single)]
    # Single-token options share the prompt's last position with the first teacher-forced row.
    first = sequences[0]
    sequences[0] = _Sequence(item_index, first.tokens, first.reads + single)
    return sequences


@dataclass
class OptionReadout:
    """Per-layer log-probs of every option of every item, as the lens reads them."""

    items: list[Item]
    layers: list[int]
    #: ``logprobs[item][layer_index, option]``; items may have different option counts.
    logprobs: list[Float[torch.Tensor, "layer option"]]
    #: number of tokens of each option of each item
    option_token_counts: list[list[int]]
    #: ``token_logprobs[item][option][layer_index, token]``: each answer token's log-prob at each
    #: layer (their sum over tokens is ``logprobs``); empty when a readout was built without them.
    token_logprobs: list[list[Float[torch.Tensor, "layer token"]]] = field(default_factory=list)
    #: ``option_ids[item][option]``: the option's token ids (empty as above)
    option_ids: list[list[list[int]]] = field(default_factory=list)


def right_padded(
    sequences: Sequence[Sequence[int]],
) -> tuple[Int[torch.Tensor, "batch pos"], Int[torch.Tensor, "batch pos"]]:
    """Token lists padded on the right with 0 into one batch, and its attention mask."""
    width = max(len(tokens) for tokens in sequences)
    input_ids = torch.zeros(len(sequences), width, dtype=torch.long)
    attention_mask = torch.zeros(len(sequences), width, dtype=torch.long)
    for row, tokens in enumerate(sequences):
        input_ids[row, : len(tokens)] = torch.tensor(tokens)
        attention_mask[row, : len(tokens)] = 1
    return input_ids, attention_mask


def resolve_layers(layers: Sequence[int] | None, n_layers: int) -> list[int]:
    """Readable layer indices, ``0..n_layers``; negative ones count from the end."""
    if layers is None:
        return list(range(n_layers + 1))
    resolved = sorted({layer + n_layers + 1 if layer < 0 else layer for layer in layers})
    if not resolved or resolved[0] < 0 or resolved[-1] > n_layers:
        raise LayerError(
            f"layers {list(layers)} are out of range; this model has layers 0..{n_layers} "
            f"(or -{n_layers + 1}..-1 counting from the end)."
        )
    return resolved


def read_options(
    model: HookedModel,
    items: Sequence[Item],
    lens: Lens | None = None,
    layers: Sequence[int] | None = None,
    batch_size: int = 8,
    progress: bool = False,
    reuse_prompts: bool = True,
    share_prefixes: bool = True,
    pack_continuations: bool = True,
) -> OptionReadout:
    """Read every option of every item at every requested layer.

    Each item's prompt runs once: its key/value cache is kept and every option's later
    tokens are read as continuations of it (:mod:`probes.lenses.passes`). A model whose
    backend cannot continue from a cache runs one row of ``prompt + option`` per
    multi-token option instead; the numbers are the same.

    Args:
        model: The hooked model.
        items: Items to score; their prompts may differ in length.
        lens: How residual vectors become log-probs; the logit lens by default.
        layers: Readable layers (``0`` = embeddings, ``n_layers`` = last block's
            output); all of them by default.
        batch_size: Forward-pass rows per batch: prompts per prompt pass, rows per
            continuation pass (one per item where the reader packs, as wide as all of the
            item's continuations together; else one per continuation), rows of
            ``prompt + option`` without a cache.
        progress: Show a progress bar.
        reuse_prompts: Run each prompt once and continue from its cache where the
            backend can; ``False`` forces one row per multi-token option (for comparison).
        share_prefixes: With ``reuse_prompts``, batch prompts that share a long start
            (:data:`probes.lenses.passes.MIN_SHARED` tokens or more) and run that start once
            where the reader can continue a continuation; ``False`` runs every prompt whole.
        pack_continuations: With ``reuse_prompts``, run all continuations of an item in one
            row where the reader packs; ``False``: a row per continuation (for comparison).
    """
    lens = lens or LogitLens()
    layer_list = resolve_layers(layers, model.n_layers)
    encoded = [encode_item(item, model.tokenizer, model.n_ctx) for item in items]
    per_token = [[torch.zeros(len(layer_list), len(ids)) for ids in enc.option_ids] for enc in encoded]
    with torch.inference_mode(), model.residual_reader(layer_list) as reader:
        if reuse_prompts and getattr(reader, "continues", False):
            min_shared = (
                continuation.MIN_SHARED if share_prefixes and hasattr(reader, "continue_prompts") else 0
            )
            pack = pack_continuations and getattr(reader, "packs", False)
            passes = _cached_passes(reader, encoded, batch_size, model.device, min_shared, pack)
        else:
            passes = _row_passes(reader, encoded, batch_size, model.device)
        for resid, vector, reads in tqdm(
            passes, desc=f"lens {model.name}", disable=not progress, leave=False
        ):
            if not reads:
                continue
            targets = torch.tensor([read.target for read in reads], device=resid.device)
            values = _read(lens, model, resid, layer_list, vector.to(resid.device), targets).cpu()
            for column, read in enumerate(reads):
                per_token[read.item][read.option][:, read.token] = values[:, column]
    return OptionReadout(
        items=list(items),
        layers=layer_list,
        logprobs=[torch.stack([t.sum(dim=-1) for t in options], dim=-1) for options in per_token],
        option_token_counts=[[len(ids) for ids in enc.option_ids] for enc in encoded],
        token_logprobs=per_token,
        option_ids=[enc.option_ids for enc in encoded],
    )


_Passes = Iterator[tuple[Float[torch.Tensor, "layer vector d_model"], Int[torch.Tensor, " read"], list[Read]]]


def _read(
    lens: Lens,
    model: HookedModel,
    resid: Float[torch.Tensor, "layer vector d_model"],
    layers: Sequence[int],
    vector: Int[torch.Tensor, " read"],
    targets: Int[torch.Tensor, " read"],
) -> Float[torch.Tensor, "layer read"]:
    """Each read's log-prob from its vector: one log-softmax per vector where the lens can
    (``read_at``), else the vectors repeated per read through :meth:`Lens.read`."""
    read_at = getattr(lens, "read_at", None)
    if read_at is not None:
        return read_at(model, resid, layers, vector, targets)
    return lens.read(model, resid[:, vector], layers, targets)


def _indices(
    reads: Sequence[Read], device: torch.device, offset: int = 0
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Each distinct (row, position) once (position less ``offset``), and each read's vector."""
    keys: dict[tuple[int, int], int] = {}
    vector = [keys.setdefault((read.row, read.position - offset), len(keys)) for read in reads]
    rows = torch.tensor([row for row, _ in keys], dtype=torch.long, device=device)
    positions = torch.tensor([position for _, position in keys], dtype=torch.long, device=device)
    return rows, positions, torch.tensor(vector, dtype=torch.long)


@contextlib.contextmanager
def _memory_advice(rows: int, width: int) -> Iterator[None]:
    try:
        yield
    except torch.OutOfMemoryError as err:
        raise OutOfMemoryError(
            f"out of memory on a batch of {rows} rows of {width} tokens; "
            f"try --batch-size {max(1, rows // 2)}."
        ) from err


def _cached_passes(
    reader: Any,
    encoded: Sequence[EncodedItem],
    batch_size: int,
    device: torch.device,
    min_shared: int,
    pack: bool,
) -> _Passes:
    """One prompt pass per batch of items, then their options' continuations on its cache
    (with ``pack``, all of an item's continuations in one row)."""
    prompt_ids = [enc.prompt_ids for enc in encoded]
    option_ids = [enc.option_ids for enc in encoded]
    for batch in continuation.plan(prompt_ids, option_ids, batch_size, min_shared, pack):
        reads = batch.prompts.reads
        rows, positions, vector = _indices(reads, device)
        resid, cache = None, None
        if batch.shared:  # the shared start once, then each prompt's rest on its cache
            resid, cache = _shared_start(reader, batch, device)
        if resid is None:
            input_ids, attention_mask = right_padded(batch.prompts.tokens)
            ids, mask = input_ids.to(device), attention_mask.to(device)
            with _memory_advice(*input_ids.shape):
                if batch.continuations:
                    resid, cache = reader.run_prompts(ids, mask, rows, positions)
                else:  # single-token options only: no continuation, so no cache to keep
                    resid = reader.run(ids, mask, rows, positions)
        yield resid, vector, reads
        if cache is None and batch.continuations:  # no cache kept: these items' rows as today
            subset = sorted({read.item for read in reads})
            for resid, vector, row_reads in _row_passes(
                reader, [encoded[i] for i in subset], batch_size, device
            ):
                yield resid, vector, [replace(read, item=subset[read.item]) for read in row_reads]
            continue
        for step in batch.continuations:
            input_ids, attention_mask = right_padded(step.tokens)
            ids, mask = input_ids.to(device), attention_mask.to(device)
            prompt_rows = torch.tensor(step.prompt_rows, device=device)
            rows, positions, vector = _indices(step.reads, device)
            packed = {"offsets": right_padded(step.offsets)[0].to(device)} if step.packed else {}
            with _memory_advice(len(step.tokens), input_ids.shape[1] + cache.attention_mask.shape[1]):
                resid = reader.run_continuations(cache, prompt_rows, ids, mask, rows, positions, **packed)
            yield resid, vector, step.reads


def _shared_start(reader: Any, batch: continuation.PromptBatch, device: torch.device) -> tuple[Any, Any]:
    """The batch's shared start in one row, then every prompt's rest as its continuation;
    the prompts' reads and their whole cache (``None, None`` where a block kept no cache)."""
    shared = batch.shared
    start_ids, start_mask = right_padded([batch.prompts.tokens[0][:shared]])
    nothing = torch.zeros(0, dtype=torch.long, device=device)
    with _memory_advice(*start_ids.shape):
        _, start = reader.run_prompts(start_ids.to(device), start_mask.to(device), nothing, nothing)
    if start is None:
        return None, None
    input_ids, attention_mask = right_padded([tokens[shared:] for tokens in batch.prompts.tokens])
    rows, positions, _ = _indices(batch.prompts.reads, device, offset=shared)
    prompt_rows = torch.zeros(len(batch.prompts.tokens), dtype=torch.long, device=device)
    with _memory_advice(input_ids.shape[0], shared + input_ids.shape[1]):
        return reader.continue_prompts(
            start, prompt_rows, input_ids.to(device), attention_mask.to(device), rows, positions
        )


def _row_passes(
    reader: Any, encoded: Sequence[EncodedItem], batch_size: int, device: torch.device
) -> _Passes:
    """Without a cache: one row of ``prompt + option`` per multi-token option, longest first."""
    rows = [seq for index, enc in enumerate(encoded) for seq in _sequences(index, enc)]
    rows.sort(key=lambda seq: -len(seq.tokens))  # longest first: memory trouble shows at once
    for start in range(0, len(rows), batch_size):
        batch = rows[start : start + batch_size]
        input_ids, attention_mask = right_padded([seq.tokens for seq in batch])
        answer_starts = [len(encoded[seq.item_index].prompt_ids) - 1 for seq in batch]
        reads = [
            Read(b, position, seq.item_index, option, position - answer_starts[b], token)
            for b, seq in enumerate(batch)
            for position, token, option in seq.reads
        ]
        batch_index, position_index, vector = _indices(reads, device)
        with _memory_advice(*input_ids.shape):
            resid = reader.run(input_ids.to(device), attention_mask.to(device), batch_index, position_index)
        yield resid, vector, reads
