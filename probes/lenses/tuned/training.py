"""Training a tuned lens: per layer, minimise the KL divergence from the model's final distribution.

As in Belrose et al. (2023) and the ``tuned-lens`` library: each translator starts at
the identity (the logit lens), the loss at layer ``l`` is
``KL(p_final || softmax(unembed(norm(h_l + A_l h_l + b_l))))`` averaged over every
position of every window, summed over layers; the model's own weights stay frozen.
We use Adam with a linear warm-up and decay instead of the library's Nesterov SGD:
with a few hundred short steps on a CPU it converges faster. Everything is seeded.
Held-out KL per layer is measured for both lenses on windows never trained on.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from jaxtyping import Float, Int

from probes.lenses.reading import encode_item, right_padded
from probes.lenses.tuned.access import full_log_probs, model_fingerprint, residuals_at
from probes.lenses.tuned.lens import TunedLens
from probes.lenses.tuned.text import TokenWindows
from probes.lenses.tuned.translator import Translators
from probes.model.loading import HookedModel
from probes.progress_bar import tqdm
from probes.tasks.items import Item
from probes.version import __version__


@dataclass
class TrainingSettings:
    """How a lens is trained (the numbers that change its weights)."""

    train_steps: int = field(default=300, metadata={"help": "Optimizer steps."})
    batch_size: int = field(
        default=8, metadata={"help": "Windows per step (every position of each is trained on)."}
    )
    learning_rate: float = field(default=1e-3, metadata={"help": "Peak Adam learning rate."})
    warmup: float = field(
        default=0.1, metadata={"help": "Share of the steps spent warming the learning rate up."}
    )
    weight_decay: float = field(
        default=0.0, metadata={"help": "Decay of the translators toward the identity."}
    )
    seed: int = field(
        default=0, metadata={"help": "Seed of the text sample, the window order and the batches."}
    )


@contextlib.contextmanager
def frozen(model: HookedModel) -> Iterator[None]:
    """The model's weights without gradients for the duration (restored after)."""
    parameters = list(model.backend.parameters())
    before = [p.requires_grad for p in parameters]
    for p in parameters:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in zip(parameters, before):
            p.requires_grad_(flag)


def _residuals(
    model: HookedModel, windows: Int[torch.Tensor, "window pos"]
) -> Float[torch.Tensor, "layer row d_model"]:
    """Residuals of every layer at every position of ``windows`` (equal lengths, no padding)."""
    count, length = windows.shape
    batch_index = torch.arange(count).repeat_interleave(length).to(model.device)
    position_index = torch.arange(length).repeat(count).to(model.device)
    input_ids = windows.to(model.device)
    mask = torch.ones_like(input_ids)
    with torch.no_grad():
        return residuals_at(model, input_ids, mask, range(model.n_layers + 1), batch_index, position_index)


def _kl(
    target: Float[torch.Tensor, "row vocab"], log_probs: Float[torch.Tensor, "row vocab"]
) -> Float[torch.Tensor, ""]:
    """Mean over rows of ``KL(exp(target) || exp(log_probs))`` in nats."""
    return (target.exp() * (target - log_probs)).sum(-1).mean()


def held_out_kl(
    model: HookedModel, lens: TunedLens | None, windows: Int[torch.Tensor, "window pos"], batch_size: int = 8
) -> list[float]:
    """Mean KL (nats per token) from the final distribution at each layer ``0..n_layers``.

    ``lens=None`` measures the logit lens.
    """
    totals = torch.zeros(model.n_layers + 1, dtype=torch.float64)
    rows = 0
    with frozen(model), torch.no_grad():
        for start in range(0, len(windows), batch_size):
            resid = _residuals(model, windows[start : start + batch_size])
            target = full_log_probs(model, resid[-1]).float()
            for layer in range(model.n_layers + 1):
                vectors = (
                    resid[layer] if lens is None else lens.translators.transform(resid[layer].float(), layer)
                )
                log_probs = full_log_probs(model, vectors).float()
                totals[layer] += _kl(target, log_probs).double() * resid.shape[1]
            rows += resid.shape[1]
    return [round(float(v) / rows, 6) for v in totals]


def read_position_kl(
    model: HookedModel, lens: TunedLens | None, items: Sequence[Item], batch_size: int = 32
) -> Float[torch.Tensor, "item layer"]:
    """Per item and layer ``0..n_layers``: KL (nats) from the model's final distribution at the read
    position, the item's last prompt token (where the answer's first token is predicted).

    :func:`held_out_kl` averages over every position of free text, most of them easy; a probe
    reads one position per item, so this is the divergence that bears on what the lens shows
    there. ``lens=None`` measures the logit lens. Prompts of different lengths are right-padded:
    each row reads its own last token, so a batch gives what one prompt at a time would.
    """
    prompts = [encode_item(item, model.tokenizer, model.n_ctx).prompt_ids for item in items]
    out = torch.empty(len(items), model.n_layers + 1, dtype=torch.float64)
    with frozen(model), torch.no_grad():
        for start in range(0, len(prompts), batch_size):
            chunk = prompts[start : start + batch_size]
            input_ids, mask = right_padded(chunk)
            rows = torch.arange(len(chunk)).to(model.device)
            positions = torch.tensor([len(ids) - 1 for ids in chunk]).to(model.device)
            layers = range(model.n_layers + 1)
            resid = residuals_at(
                model, input_ids.to(model.device), mask.to(model.device), layers, rows, positions
            )
            target = full_log_probs(model, resid[-1]).float()
            for layer in layers:
                vectors = (
                    resid[layer] if lens is None else lens.translators.transform(resid[layer].float(), layer)
                )
                log_probs = full_log_probs(model, vectors).float()
                kl = (target.exp() * (target - log_probs)).sum(-1)
                out[start : start + len(chunk), layer] = kl.double().cpu()
    return out


def _learning_rate(step: int, settings: TrainingSettings) -> float:
    warmup = max(1, math.ceil(settings.warmup * settings.train_steps))
    if step < warmup:
        return settings.learning_rate * (step + 1) / warmup
    return settings.learning_rate * max(
        0.0, (settings.train_steps - step) / max(1, settings.train_steps - warmup)
    )


def train_lens(
    model: HookedModel, windows: TokenWindows, settings: TrainingSettings, progress: bool = True
) -> TunedLens:
    """A lens for ``model`` trained on ``windows.train``; its info carries held-out KL of both lenses."""
    started = time.perf_counter()
    torch.manual_seed(settings.seed)
    translators = Translators(model.n_layers, model.d_model).to(model.device)
    optimiser = torch.optim.Adam(translators.parameters(), lr=settings.learning_rate)
    generator = torch.Generator().manual_seed(settings.seed)
    order = torch.randperm(len(windows.train), generator=generator)
    cursor = 0
    losses: list[float] = []
    bar = tqdm(range(settings.train_steps), desc=f"tuned lens {model.name}", disable=not progress)
    with frozen(model):
        for step in bar:
            if cursor + settings.batch_size > len(order):
                order, cursor = torch.randperm(len(windows.train), generator=generator), 0
            batch = windows.train[order[cursor : cursor + settings.batch_size]]
            cursor += settings.batch_size
            resid = _residuals(model, batch)
            with torch.no_grad():
                target = full_log_probs(model, resid[-1]).float()
            for group in optimiser.param_groups:
                group["lr"] = _learning_rate(step, settings)
            optimiser.zero_grad(set_to_none=True)
            total = 0.0
            for layer in range(model.n_layers):
                log_probs = full_log_probs(model, translators.transform(resid[layer].float(), layer)).float()
                loss = _kl(target, log_probs)
                loss.backward()
                total += loss.item()
            if settings.weight_decay:
                with torch.no_grad():
                    for p in translators.parameters():
                        p.mul_(1 - settings.learning_rate * settings.weight_decay)
            optimiser.step()
            losses.append(total / max(1, model.n_layers))
            bar.set_postfix(kl=f"{losses[-1]:.4f}")
    seconds = time.perf_counter() - started
    lens = TunedLens(translators=translators.cpu(), info={})
    train_tokens = settings.train_steps * settings.batch_size * windows.train.shape[1]
    lens.info.update(
        model=model.name,
        model_fingerprint=model_fingerprint(model),
        text=windows.name,
        text_sha256=windows.sha256,
        sequence_length=int(windows.train.shape[1]),
        train_windows=len(windows.train),
        held_out_windows=len(windows.held_out),
        steps=settings.train_steps,
        tokens_trained=train_tokens,
        training={k: getattr(settings, k) for k in TrainingSettings.__dataclass_fields__},
        training_seconds=round(seconds, 1),
        torch_threads=torch.get_num_threads(),
        device=str(model.device),
        final_train_kl=round(losses[-1], 6) if losses else None,
        toolkit_version=__version__,
    )
    if len(windows.held_out):
        lens.info["held_out_kl"] = {
            "logit": held_out_kl(model, None, windows.held_out, settings.batch_size),
            "tuned": held_out_kl(model, lens, windows.held_out, settings.batch_size),
        }
    return lens


def describe(lens: TunedLens) -> dict[str, Any]:
    """The held-out KL table of a trained lens, one dict per layer (for printing)."""
    kl = lens.info.get("held_out_kl", {})
    return {
        "layer": list(range(len(kl.get("logit", [])))),
        "logit_kl": kl.get("logit", []),
        "tuned_kl": kl.get("tuned", []),
    }
