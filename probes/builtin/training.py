"""Training the built-in ladders' tiny GPT-NeoX models from scratch on CPU: the parts they share.

The organism ladder (``experiments/organism/train.py``) and the depth ladder
(``experiments/depth/train.py``) differ in their data; their rung shapes, model configs,
learning-rate schedule, optimiser, saved folders and catalogue size fields are the same, and live
here so that both ladders are built the same way.
"""

from __future__ import annotations

import hashlib
import math
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import safetensors.torch
import torch
from transformers import GPTNeoXConfig, GPTNeoXForCausalLM

from probes.builtin.folders import sha256_file
from probes.tasks.organism_world import canonical_json


@dataclass(frozen=True)
class RungShape:
    """Shape of one rung of a trained ladder."""

    #: Name of the rung, also its folder name.
    name: str
    #: Number of transformer blocks.
    layers: int
    #: Width of the residual stream.
    d_model: int
    #: Number of attention heads (head size ``d_model // heads``).
    heads: int
    #: Training steps at which extra checkpoints are saved (the last step is the rung itself).
    checkpoint_steps: tuple[int, ...] = ()

    @property
    def intermediate_size(self) -> int:
        """Width of the MLP (four times ``d_model``)."""
        return 4 * self.d_model


@dataclass(frozen=True)
class Schedule:
    """What both ladders' training configs share: the seed, the optimiser and its learning-rate
    schedule. Each trainer's ``TrainingConfig`` extends it with its data (and its own defaults)."""

    #: Seed of the initialisation and of the training data.
    seed: int = 0
    #: Optimiser steps (the most, where a trainer has a stopping rule).
    steps: int = 3000
    #: Sequences per step.
    batch_size: int = 64
    #: Peak learning rate of AdamW.
    learning_rate: float = 3e-3
    #: Steps of linear warm-up.
    warmup_steps: int = 100
    #: Final learning rate as a share of the peak (cosine decay; 1.0 keeps it constant).
    final_learning_rate_share: float = 0.1
    #: AdamW weight decay (on matrices only).
    weight_decay: float = 0.1
    #: AdamW betas.
    betas: tuple[float, float] = (0.9, 0.98)
    #: Gradient-norm clip.
    gradient_clip: float = 1.0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of the config (nested configs by their own ``to_dict``)."""
        row = {
            name: value.to_dict() if hasattr(value, "to_dict") else value
            for name, value in vars(self).items()
        }
        row["betas"] = list(self.betas)
        return row


def model_config(rung: RungShape, vocabulary_size: int, tokenizer: Any, max_positions: int) -> GPTNeoXConfig:
    """The GPT-NeoX config of ``rung``: sequential residual, full rotary, GELU MLP, untied unembedding."""
    return GPTNeoXConfig(
        vocab_size=vocabulary_size,
        hidden_size=rung.d_model,
        intermediate_size=rung.intermediate_size,
        num_hidden_layers=rung.layers,
        num_attention_heads=rung.heads,
        max_position_embeddings=max_positions,
        rotary_pct=1.0,
        use_parallel_residual=False,
        layer_norm_eps=1e-5,
        tie_word_embeddings=False,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=None,
    )


def learning_rate(step: int, config: Schedule) -> float:
    """Learning rate at ``step`` (0-based): linear warm-up, then cosine decay to the final share."""
    if step < config.warmup_steps:
        return config.learning_rate * (step + 1) / config.warmup_steps
    progress = (step - config.warmup_steps) / max(1, config.steps - config.warmup_steps)
    share = config.final_learning_rate_share
    return config.learning_rate * (share + (1 - share) * 0.5 * (1 + math.cos(math.pi * progress)))


def optimizer(model: torch.nn.Module, config: Schedule, foreach: bool = False) -> torch.optim.AdamW:
    """AdamW with weight decay on matrices only; ``foreach=False`` keeps CPU runs bit-reproducible.

    ``foreach=True`` (one kernel per step for all parameters) is for GPUs, where per-parameter
    kernel launches would dominate a tiny model's step.
    """
    matrices = [p for p in model.parameters() if p.dim() >= 2]
    vectors = [p for p in model.parameters() if p.dim() < 2]
    return torch.optim.AdamW(
        [{"params": matrices, "weight_decay": config.weight_decay}, {"params": vectors, "weight_decay": 0.0}],
        lr=config.learning_rate,
        betas=config.betas,
        foreach=foreach,
    )


def set_learning_rate(optimiser: torch.optim.Optimizer, step: int, config: Schedule) -> None:
    """Put the schedule's rate for ``step`` into every parameter group."""
    for group in optimiser.param_groups:
        group["lr"] = learning_rate(step, config)


def training_step(
    model: GPTNeoXForCausalLM,
    optimiser: torch.optim.Optimizer,
    config: Schedule,
    step: int,
    input_ids: torch.Tensor,
    labels: torch.Tensor,
) -> torch.Tensor:
    """One optimiser step at the schedule's rate for ``step``, gradients clipped; returns the loss.

    ``labels`` follow Hugging Face's convention (shifted inside the model; -100 is ignored).
    """
    set_learning_rate(optimiser, step, config)
    loss = model(input_ids=input_ids, labels=labels).loss
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), config.gradient_clip)
    optimiser.step()
    optimiser.zero_grad(set_to_none=True)
    return loss


def parameter_counts(model: GPTNeoXForCausalLM) -> tuple[int, int]:
    """Total and non-embedding parameters (the embedding and the unembedding excluded)."""
    total = sum(p.numel() for p in model.parameters())
    embedding = model.get_input_embeddings().weight.numel() + model.get_output_embeddings().weight.numel()
    return total, total - embedding


def save_weights(
    model: GPTNeoXForCausalLM, folder: Path, dtype: torch.dtype, save_tokenizer: Callable[[Path], object]
) -> dict[str, str]:
    """Write a Hugging Face folder (config, safetensors weights, tokenizer); returns file hashes.

    ``save_tokenizer(folder)`` writes the tokenizer files. An existing ``folder`` is replaced.
    """
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    model.config.torch_dtype = dtype
    model.config.save_pretrained(folder)
    state = {name: tensor.detach().to(dtype).contiguous() for name, tensor in model.state_dict().items()}
    safetensors.torch.save_file(state, folder / "model.safetensors", metadata={"format": "pt"})
    save_tokenizer(folder)
    return {path.name: sha256_file(path) for path in sorted(folder.iterdir())}


def config_sha256(config: dict[str, Any]) -> str:
    """sha256 of the canonical JSON of a training config (the catalogue's ``training_config_sha256``)."""
    return hashlib.sha256(canonical_json(config).encode()).hexdigest()


def size_fields(rung: RungShape, model: GPTNeoXForCausalLM, tokens: int) -> dict[str, int]:
    """The catalogue's size figures of a saved rung: parameters, shape, tokens seen and FLOPs."""
    total, non_embedding = parameter_counts(model)
    return {
        "parameters": total,
        "non_embedding_parameters": non_embedding,
        "layers": rung.layers,
        "d_model": rung.d_model,
        "heads": rung.heads,
        "intermediate_size": rung.intermediate_size,
        "tokens_seen": tokens,
        "training_flops": 6 * total * tokens,
        "training_flops_non_embedding": 6 * non_embedding * tokens,
    }


def provides_block(
    ladder: str,
    description: str,
    notes: str,
    entries: Sequence[dict[str, Any]],
    trainer: str,
    vocabulary: int,
    context_length: int,
    listed: str,
) -> dict[str, Any]:
    """The catalogue's ``provides`` block: what a built-in ladder folder defines (see builtin.folders).

    The ladders are the size ladder ``ladder`` (the final rungs, by parameters) and one ladder
    ``<rung>-training`` per rung saved at more than one step (its checkpoints in step order).

    Args:
        ladder: The folder's and size ladder's name; model specs are ``<ladder>:<rung>``.
        description: What the ladder is (the catalogue's ``description``).
        notes: Notes of the size ladder.
        entries: The catalogue's rung entries (``name``, ``rung``, ``kind``, ``step``, ``parameters``).
        trainer: The script that trains the ladder (named in error messages).
        vocabulary: The tokenizer's vocabulary size.
        context_length: The longest sequence a rung accepts.
        listed: ``"before_hub"`` or ``"after_hub"`` (where ``probes ladders`` lists it).
    """
    ordered = sorted(entries, key=lambda entry: (entry["parameters"], entry["step"]))
    rungs = [entry["name"] for entry in ordered if entry["kind"] == "rung"]
    ladders = [
        {"name": ladder, "description": f"Built-in, offline: {description}", "notes": notes, "rungs": rungs}
    ]
    for rung in rungs:
        steps = [entry for entry in ordered if entry["rung"] == rung]
        if len(steps) > 1:
            ladders.append(
                {
                    "name": rung + "-training",
                    "description": f"Training checkpoints of the built-in {rung} (steps "
                    f"{', '.join(str(entry['step']) for entry in steps)}).",
                    "notes": "",
                    "rungs": [entry["name"] for entry in steps],
                }
            )
    return {
        "model_prefix": f"{ladder}:",
        "name_prefix": f"{ladder}-",
        "trainer": trainer,
        "family": "gpt_neox",
        "vocabulary": vocabulary,
        "context_length": context_length,
        "listed": listed,
        "ladders": ladders,
    }
