"""Plain Hugging Face readouts of a freshly trained built-in model: answer log-odds at the last layer
and per layer (the organism trainer's and tests' check, independent of the lens)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from probes.tasks.items import Item


def _answer_id(tokenizer: PreTrainedTokenizerBase, answer: str) -> int:
    ids = tokenizer(answer, add_special_tokens=False).input_ids
    if len(ids) != 1:
        raise ValueError(f"answer {answer!r} is {len(ids)} tokens; organism answers are one token.")
    return int(ids[0])


@torch.no_grad()
def layer_log_odds(
    model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, items: Sequence[Item]
) -> torch.Tensor:
    """Logit-lens log-odds (true minus distractor) after every block, shape ``[layer, item]``.

    Row ``k`` reads the residual stream after block ``k + 1`` through the final norm and the
    unembedding; the last row equals the model's own output. Items are run one prompt
    length at a time, so no padding enters.
    """
    model.eval()
    decoder = model.get_decoder()
    norm = getattr(decoder, "final_layer_norm", None) or decoder.norm  # GPT-NeoX or Llama
    blocks, unembedding = decoder.layers, model.get_output_embeddings()
    result = torch.empty(len(blocks), len(items))
    by_length: dict[int, list[int]] = {}
    encoded = [tokenizer(item.prompt).input_ids for item in items]
    for index, ids in enumerate(encoded):
        by_length.setdefault(len(ids), []).append(index)
    captured: list[torch.Tensor] = []

    def capture(_module: torch.nn.Module, _inputs: object, output: object) -> None:
        hidden = output[0] if isinstance(output, tuple) else output
        captured.append(hidden[:, -1, :])

    handles = [block.register_forward_hook(capture) for block in blocks]
    try:
        for indices in by_length.values():
            captured.clear()
            model(input_ids=torch.tensor([encoded[i] for i in indices]))
            logits = unembedding(norm(torch.stack(captured)))  # [layer, batch, vocab]
            true_ids = torch.tensor([_answer_id(tokenizer, items[i].true_answer) for i in indices])
            distractor_ids = torch.tensor(
                [_answer_id(tokenizer, items[i].distractor_answer) for i in indices]
            )
            columns = torch.arange(len(indices))
            odds = logits[:, columns, true_ids] - logits[:, columns, distractor_ids]
            result[:, indices] = odds.float()
    finally:
        for handle in handles:
            handle.remove()
    return result


def accuracy(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, items: Sequence[Item]) -> float:
    """Share of items whose true answer outscores the distractor at the model's output (a tie is
    half right, as everywhere in probes)."""
    final = layer_log_odds(model, tokenizer, items)[-1]
    return float(((final > 0).float() + 0.5 * (final == 0).float()).mean())
