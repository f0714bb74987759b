"""Train the depth ladder on pointer chasing: GPT-NeoX models that differ only in their number of layers.

Every rung has the same width, heads, vocabulary, data stream, step budget and curriculum; only
``layers`` changes. The data are cases of :mod:`probes.tasks.generators.pointer_chase16` (a
shuffled cycle of arrows over 16 node names, "Follow 2 arrows from b.", then ``b>``) in the items'
own wording, each followed by ``follow_ups`` more questions about the same cycle; the loss is the
cross-entropy of the answer tokens only. The probe items (seed 0, the task's default 240, 40 per
k) are held out: training never states one of their cycles.

Curriculum over k: from step 0 every batch mixes k = 1 … ``first_level`` (2: a hard start at k = 1
taught the earlier ladder "answer the node after b>", which it never unlearnt); every
``eval_every`` steps the rung's accuracy at the current largest k on a fixed validation set (seed
1) is measured, and when it reaches ``advance_at`` the largest k goes up by one (to 6). Cases draw
k uniformly from 1 to the current largest. Every evaluation also measures the held-out probe
accuracy for every k (the training curve in the catalogue), so one can see whether a rung plateaued.

Training stops at the first of: the curriculum is done (largest k reached and its validation
accuracy at ``advance_at``), a plateau (``patience_steps`` without the validation accuracy at the
current level rising by ``min_gain`` or the level moving on), the step budget, or the run's
``--deadline`` (wall clock; recorded as "time budget", so such a rung is marked as not plateaued).
The rung's entry says which (``stopped``).

A checkpoint (model, optimiser, curriculum, curve) is written every evaluation; a rerun with the
same arguments resumes from it. Writes one Hugging Face folder per rung under ``--out`` and its
catalogue entry as ``<rung>.json``; ``experiments/depth/catalogue.py`` joins the entries into the
ladder's catalogue. ``--device cuda`` trains on a GPU (``experiments/depth/gpu_ladder.sh`` trains the
whole ladder at once there); weights are saved and the final accuracy measured on the CPU.

Example::

    python -m experiments.depth.train --layers 1 2 3 --seed 0 --threads 1 --out depth-out
    python -m experiments.depth.catalogue depth-out
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
import transformers
from transformers import GPTNeoXForCausalLM

# re-exported: the trainer's tests reach the recipe through this module
from experiments.depth.recipe import (
    CHASE,
    MAX_POSITIONS,
    TASK,
    TrainingConfig,
    _word_ids,
    build_tokenizer,
    by_steps,
    cycle_key,
    encode,
    factorise_arrows,
    probe_items,
    training_batch,
    training_sequence,
    validation_items,
    vocabulary,
)
from probes.builtin.training import (
    RungShape,
    config_sha256,
    model_config,
    optimizer,
    save_weights,
    size_fields,
    training_step,
)
from probes.builtin.word_tokenizer import save_word_tokenizer
from probes.tasks import Item

__all__ = [
    "CHASE",
    "MAX_POSITIONS",
    "TASK",
    "TrainingConfig",
    "_word_ids",
    "build_tokenizer",
    "by_steps",
    "cycle_key",
    "encode",
    "factorise_arrows",
    "probe_items",
    "training_batch",
    "training_sequence",
    "validation_items",
    "vocabulary",
    "accuracy",
    "per_k_accuracy",
    "train_rung",
    "rung_of",
]


@torch.no_grad()
def accuracy(model: GPTNeoXForCausalLM, items: list[Item]) -> tuple[float, float]:
    """Last-layer accuracy (true answer top among the options) and mean answer log-loss.

    Plain HF forward, one prompt length at a time, so no padding enters.
    """
    if not items:
        return math.nan, math.nan
    tokenizer = build_tokenizer()
    was_training = model.training
    model.eval()
    options = [tokenizer(o, add_special_tokens=False).input_ids[0] for o in items[0].options]
    encoded = [tokenizer(item.prompt).input_ids for item in items]
    groups: dict[int, list[int]] = {}
    for index, ids in enumerate(encoded):
        groups.setdefault(len(ids), []).append(index)
    correct, loss = 0, 0.0
    for indices in groups.values():
        input_ids = torch.tensor([encoded[i] for i in indices], device=model.device)
        logits = model(input_ids=input_ids).logits[:, -1].float().cpu()
        log_probs = logits.log_softmax(dim=-1)
        for row, index in enumerate(indices):
            chosen = int(logits[row, options].argmax())
            correct += chosen == items[index].true_index
            loss -= float(log_probs[row, options[items[index].true_index]])
    model.train(was_training)
    return correct / len(items), loss / len(items)


def per_k_accuracy(
    model: GPTNeoXForCausalLM, grouped: dict[int, list[Item]], per_k: int | None = None
) -> dict[str, float]:
    """Accuracy per k on (the first ``per_k`` of) each k's items."""
    return {str(k): round(accuracy(model, items[:per_k])[0], 4) for k, items in grouped.items()}


def stop_reason(state: dict[str, Any], config: TrainingConfig, deadline: float | None) -> str | None:
    """Why training should stop after the last evaluation, or None to go on (see the module's doc)."""
    last = state["curve"][-1] if state["curve"] else None
    if last and last["curriculum_k"] == CHASE.MAX_STEPS and last["validation_accuracy"] >= config.advance_at:
        return "solved"
    if state["step"] - state["progress_step"] >= config.patience_steps:
        return "plateau"
    if state["step"] >= config.steps:
        return "step budget"
    if deadline is not None and time.time() >= deadline:
        return "time budget"
    return None


def record_progress(
    state: dict[str, Any], level: int, validation_accuracy: float, config: TrainingConfig
) -> None:
    """Update the plateau rule's memory: the best accuracy at ``level`` and the step of the last gain."""
    if level != state["best_level"]:
        state.update(best_level=level, best_accuracy=validation_accuracy, progress_step=state["step"])
    elif validation_accuracy >= state["best_accuracy"] + config.min_gain:
        state.update(best_accuracy=validation_accuracy, progress_step=state["step"])


def device_name(device: torch.device) -> str:
    """``cpu`` or the GPU's name (``cuda: NVIDIA H200``), for the catalogue."""
    return f"cuda: {torch.cuda.get_device_name(device)}" if device.type == "cuda" else device.type


def train_rung(
    rung: RungShape,
    config: TrainingConfig,
    out: Path,
    threads: int,
    log: Any = print,
    device: str = "cpu",
    deadline: float | None = None,
) -> dict[str, Any]:
    """Train one rung (resuming from its checkpoint), save it under ``out``; return its catalogue entry.

    ``deadline`` (a ``time.time()``) ends training at the first evaluation after it.
    """
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True, warn_only=device != "cpu")
    where = torch.device(device)
    tokenizer = build_tokenizer()
    probes = probe_items()
    probe_groups = by_steps(probes)
    validation = by_steps(validation_items(config))
    held_out = {cycle_key(item.meta) for item in probes}
    torch.manual_seed(config.seed)
    model = GPTNeoXForCausalLM(model_config(rung, len(vocabulary()), tokenizer, MAX_POSITIONS))
    if config.factorised_arrows:
        factorise_arrows(model)
    model.to(where).train()
    optimiser = optimizer(model, config, foreach=where.type != "cpu")
    rng = random.Random(f"{TASK}-training-{config.seed}")
    state: dict[str, Any] = {
        "step": 0,
        "max_steps": config.first_level,
        "tokens": 0,
        "seconds": 0.0,
        "curve": [],
        "best_level": config.first_level,
        "best_accuracy": 0.0,
        "progress_step": 0,
        "stopped": None,
    }
    checkpoint = out / f"{rung.name}.checkpoint.pt"
    if checkpoint.exists():
        saved = torch.load(checkpoint, weights_only=False, map_location=where)
        model.load_state_dict(saved["model"])
        optimiser.load_state_dict(saved["optimiser"])
        rng.setstate(saved["rng"])
        torch.set_rng_state(saved["torch_rng"].cpu())
        state = {**state, **saved["state"]}
        if state["stopped"] == "time budget":  # only a time budget is lifted by a rerun
            state["stopped"] = None
        log(f"{rung.name}: resumed at step {state['step']} (k <= {state['max_steps']})")
    started = time.time() - state["seconds"]
    while state["stopped"] is None and state["step"] < config.steps:
        input_ids, labels = training_batch(config, state["max_steps"], rng, held_out).to(where)
        state["tokens"] += int((input_ids != tokenizer.pad_token_id).sum())
        loss = training_step(model, optimiser, config, state["step"], input_ids, labels)
        state["step"] += 1
        if state["step"] % config.eval_every == 0 or state["step"] == config.steps:
            level = state["max_steps"]
            validation_accuracy = accuracy(model, validation[level])[0]
            point = {
                "step": state["step"],
                "loss": round(loss.item(), 4),
                "curriculum_k": level,
                "validation_accuracy": round(validation_accuracy, 4),
                "accuracy": per_k_accuracy(model, probe_groups, config.curve_items),
            }
            state["curve"].append(point)
            record_progress(state, level, validation_accuracy, config)
            state["stopped"] = stop_reason(state, config, deadline)
            if (
                state["stopped"] is None
                and validation_accuracy >= config.advance_at
                and level < CHASE.MAX_STEPS
            ):
                state["max_steps"] = level + 1
            state["seconds"] = round(time.time() - started, 1)
            log(f"{rung.name} {json.dumps(point)} {state['seconds']}s")
            out.mkdir(parents=True, exist_ok=True)
            torch.save(
                {
                    "model": model.state_dict(),
                    "optimiser": optimiser.state_dict(),
                    "rng": rng.getstate(),
                    "torch_rng": torch.get_rng_state(),
                    "state": state,
                },
                checkpoint,
            )
    trained_on = device_name(where)
    model.to("cpu")
    folder = out / rung.name
    hashes = save_weights(
        model, folder, torch.float32, lambda path: save_word_tokenizer(tokenizer, path, MAX_POSITIONS)
    )
    final = GPTNeoXForCausalLM.from_pretrained(folder, dtype=torch.float32)
    rung_config = {"rung": asdict(rung), "training": config.to_dict()}
    entry = {
        "name": rung.name,
        "rung": rung.name,
        "kind": "rung",
        "step": state["step"],
        **size_fields(rung, final, state["tokens"]),
        "seed": config.seed,
        "training_config_sha256": config_sha256(rung_config),
        "training_config": rung_config,
        "files": hashes,
        "held_out_perplexity": round(math.exp(accuracy(final, probes)[1]), 5),
        "dtype": "float32",
        "device": trained_on,
        "threads": threads,
        "torch_version": torch.__version__,
        "transformers_version": transformers.__version__,
        "training_seconds": state["seconds"],
        "stopped": state["stopped"] or "step budget",
        "final_curriculum_k": state["max_steps"],
        "accuracy": {TASK: per_k_accuracy(final, probe_groups)},
        "training_curve": state["curve"],
    }
    (out / f"{rung.name}.json").write_text(json.dumps(entry, indent=1) + "\n", "utf-8")
    return entry


def rung_of(layers: int, d_model: int, heads: int, seed: int) -> RungShape:
    """The rung of ``layers`` blocks; seeds other than 0 get a ``-s<seed>`` suffix."""
    suffix = "" if seed == 0 else f"-s{seed}"
    return RungShape(f"depth-{layers}x{d_model}{suffix}", layers=layers, d_model=d_model, heads=heads)


def main() -> None:
    transformers.utils.logging.disable_progress_bar()  # the trainer draws its own bars
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--layers", type=int, nargs="*", default=[1, 2, 3, 4, 5, 6, 7, 8])
    parser.add_argument("--d-model", type=int, default=64)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=TrainingConfig.steps)
    parser.add_argument("--patience-steps", type=int, default=TrainingConfig.patience_steps)
    parser.add_argument("--batch-size", type=int, default=TrainingConfig.batch_size)
    parser.add_argument("--learning-rate", type=float, default=TrainingConfig.learning_rate)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    parser.add_argument("--deadline", type=float, help="stop every rung at this time.time() (a time budget)")
    parser.add_argument("--out", type=Path, default=Path("depth-ladder-out"))
    args = parser.parse_args()
    if args.device.startswith("cuda"):
        os.environ.setdefault(
            "CUBLAS_WORKSPACE_CONFIG", ":4096:8"
        )  # deterministic cuBLAS, before CUDA starts
    config = TrainingConfig(
        seed=args.seed,
        steps=args.steps,
        patience_steps=args.patience_steps,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
    )
    for layers in args.layers:
        rung = rung_of(layers, args.d_model, args.heads, args.seed)
        entry = train_rung(
            rung,
            config,
            args.out,
            args.threads,
            log=lambda line: print(line, flush=True),
            device=args.device,
            deadline=args.deadline,
        )
        print(f"{rung.name} done ({entry['stopped']}): {json.dumps(entry['accuracy'])}", flush=True)


if __name__ == "__main__":
    main()
