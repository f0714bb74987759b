"""Training and held-out token windows for a tuned lens: from a file, a dataset, or the model's own samples.

The offline default is text the model samples itself, at temperature 1 from its
start token (BOS, else EOS, else a seeded random token). The lens is trained to
match the model's own final distribution, so inputs drawn from that same
distribution are on the model's home ground for any model, need nothing
downloaded, and keep the core free of any ladder's data: on the built-in organism
ladder the samples are its world's statements (``"fid ruzi is hot . lar nobu is big ."``).
Held-out windows are sampled (or cut) apart from the training ones.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import torch
from jaxtyping import Int

from probes.errors import ProbesError
from probes.jobs.perplexity import text_from_dataset, text_from_file
from probes.model.loading import HookedModel


class TrainingTextError(ProbesError):
    """A training text too short for the windows asked for, or otherwise unusable."""


@dataclass(frozen=True)
class TokenWindows:
    """Equal-length token windows to train on and to measure held-out KL on."""

    #: Where they come from (file name, dataset, or ``"self-sampled"``).
    name: str
    #: sha256 of the source text (file/dataset) or of the sampled token ids.
    sha256: str
    train: Int[torch.Tensor, "window pos"]
    held_out: Int[torch.Tensor, "window pos"]


def start_token(model: HookedModel) -> int | None:
    """The token every window starts with: the tokenizer's BOS, else its EOS, else none."""
    tokenizer = model.tokenizer
    for token in (tokenizer.bos_token_id, tokenizer.eos_token_id):
        if token is not None:
            return int(token)
    return None


def sampled_windows(
    model: HookedModel, n_train: int, n_held_out: int, length: int, seed: int, batch_size: int = 64
) -> TokenWindows:
    """Windows the model samples itself (temperature 1, no top-k/top-p), seeded."""
    generator = torch.Generator().manual_seed(seed)
    first = start_token(model)
    vocabulary = len(model.tokenizer)
    rows: list[torch.Tensor] = []
    total = n_train + n_held_out
    with torch.inference_mode():
        for start in range(0, total, batch_size):
            count = min(batch_size, total - start)
            if first is None:
                prompt = torch.randint(vocabulary, (count, 1), generator=generator)
            else:
                prompt = torch.full((count, 1), first, dtype=torch.long)
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(int(torch.randint(2**31 - 1, (1,), generator=generator)))
                out = model.generate(
                    prompt.to(model.device),
                    torch.ones_like(prompt).to(model.device),
                    do_sample=True,
                    temperature=1.0,
                    top_k=0,
                    top_p=1.0,
                    min_new_tokens=length - 1,
                    max_new_tokens=length - 1,
                    pad_token_id=model.tokenizer.pad_token_id or 0,
                )
            rows.append(out.cpu())
    tokens = torch.cat(rows)[:, :length]
    digest = hashlib.sha256(tokens.numpy().tobytes()).hexdigest()
    return TokenWindows("self-sampled", digest, tokens[:n_train], tokens[n_train:])


def text_windows(
    model: HookedModel, text: str, name: str, n_train: int, n_held_out: int, length: int, seed: int
) -> TokenWindows:
    """Consecutive windows of a text's tokens, shuffled with ``seed``; the first ``n_held_out`` held out.

    Each window starts with the model's start token (when it has one) followed by
    ``length - 1`` text tokens.

    Raises:
        TrainingTextError: The text gives fewer than ``n_held_out + 1`` windows.
    """
    ids = list(model.tokenizer(text, add_special_tokens=False).input_ids)
    first = start_token(model)
    body = length - 1 if first is not None else length
    count = len(ids) // body
    if count < n_held_out + 1:
        raise TrainingTextError(
            f"{name} gives {count} windows of {length} tokens; at least {n_held_out + 1} are needed "
            f"({n_held_out} held out + 1 to train on): give a longer text or lower --held-out-sequences."
        )
    windows = torch.tensor(ids[: count * body]).view(count, body)
    if first is not None:
        windows = torch.cat([torch.full((count, 1), first), windows], dim=1)
    order = torch.randperm(count, generator=torch.Generator().manual_seed(seed))
    windows = windows[order]
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    return TokenWindows(name, digest, windows[n_held_out : n_held_out + n_train], windows[:n_held_out])


def training_windows(
    model: HookedModel,
    n_train: int,
    n_held_out: int,
    length: int,
    seed: int,
    text: Path | None = None,
    dataset: str | None = None,
    dataset_config: str | None = None,
    split: str = "train",
    column: str = "text",
) -> TokenWindows:
    """Windows from ``text`` (a UTF-8 file), else ``dataset`` (Hugging Face, online), else self-sampled."""
    length = min(length, model.n_ctx)
    if text is not None and dataset is not None:
        raise TrainingTextError("give --text or --dataset, not both.")
    if text is not None:
        source = text_from_file(text)
    elif dataset is not None:
        source = text_from_dataset(dataset, dataset_config, split, column)
    else:
        return sampled_windows(model, n_train, n_held_out, length, seed)
    return text_windows(model, source.text, source.name, n_train, n_held_out, length, seed)
