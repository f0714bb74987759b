"""Train the depth ladder: GPT-NeoX models that differ only in their number of layers.

Every rung has the same width, heads, vocabulary, data, data order and token count; only
``layers`` changes (1, 2, 3, 4, 6). The data are the k-step tasks of :mod:`probes.tasks`
(``variable_chain``, ``multi_hop``, ``arithmetic_steps``) in the very surface text of their items,
k = 1 … 5 in equal shares; the loss is the cross-entropy of the answer token only. The probe items
(seed 0, the tasks' default 200 per task) are held out: a training sequence that states the context
of one of them is skipped (one-operation arithmetic, the addition table itself, excepted).

Writes one Hugging Face folder per rung under ``--out``, the catalogue ``catalogue.json``
(``--catalogue``) and an accuracy report (``--report``). Seeded and deterministic on CPU: the same
seed, rungs and ``--threads`` give bit-identical weights on the same torch build.

Example::

    python experiments/depth/train.py --seed 0 --threads 2
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import random
import sys
import time
from collections.abc import Hashable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch
import transformers
from jaxtyping import Int
from tqdm import tqdm
from transformers import GPTNeoXForCausalLM

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run from a checkout without installing

from probes.tasks import Item, get_task  # noqa: E402
from probes.tasks.generated import Case  # noqa: E402
from probes.tasks.generators import arithmetic_steps, multi_hop, variable_chain  # noqa: E402
from probes.tasks.kstep_vocabulary import TASKS, build_tokenizer, vocabulary  # noqa: E402
from probes.tasks.multistep import MAX_STEPS  # noqa: E402
from probes.training import (  # noqa: E402
    RungShape,
    config_sha256,
    model_config,
    optimizer,
    provides_block,
    save_weights,
    size_fields,
    training_step,
)
from probes.word_tokenizer import save_word_tokenizer  # noqa: E402

#: The built-in ladder folder the trainer writes into (catalogue, accuracy report, weights).
PACKAGE_FOLDER = Path(__file__).resolve().parents[2] / "probes" / "builtin" / "depth"

#: What the ladder is, for its catalogue and ``probes ladders``.
DESCRIPTION = (
    "Depth ladder: GPT-NeoX models of one width (d_model 64, 4 heads) that differ only in their number "
    "of layers, trained on the same k-step tasks (the catalogue's `tasks`; k = 1-5) in the same order; "
    "probe = the tasks' held-out items (true = answer after k steps, distractor = the value one step "
    "short)."
)

transformers.utils.logging.disable_progress_bar()

#: Writes one case of each task, duplicates allowed (the training stream).
CASE_WRITERS = {module.NAME: module.write_case for module in (variable_chain, multi_hop, arithmetic_steps)}

#: Further questions about a case's context, per task with a shared context.
FOLLOW_UPS = {
    variable_chain.NAME: variable_chain.follow_up_questions,
    multi_hop.NAME: multi_hop.follow_up_questions,
}

#: Independent arithmetic expressions per training sequence.
ARITHMETIC_PACK = 8

#: Longest sequence a rung accepts: a chain-of-thought prompt of the tasks fits.
MAX_POSITIONS = 256

#: The ladder: depth only.
RUNGS: tuple[RungShape, ...] = tuple(
    RungShape(f"depth-{layers}x64", layers=layers, d_model=64, heads=4) for layers in (1, 2, 3, 4, 6)
)


@dataclass(frozen=True)
class TrainingConfig:
    """Everything that fixes a rung's training except its shape and the thread count."""

    #: Seed of the initialisation and of the training cases.
    seed: int = 0
    #: Optimiser steps; each step trains on one task, the tasks in turn.
    steps: int = 2500
    #: Sequences per step.
    batch_size: int = 16
    #: Peak learning rate of AdamW.
    learning_rate: float = 3e-3
    #: Steps of linear warm-up.
    warmup_steps: int = 100
    #: Final learning rate as a share of the peak (cosine decay).
    final_learning_rate_share: float = 0.1
    #: AdamW weight decay (on matrices only).
    weight_decay: float = 0.1
    #: AdamW betas.
    betas: tuple[float, float] = (0.9, 0.98)
    #: Gradient-norm clip.
    gradient_clip: float = 1.0
    #: The tasks, trained in turn: arithmetic only by default, as the lookup tasks were not learnt
    #: within ~20 minutes of CPU (experiments/reasoning_depth.md); ``--tasks`` adds them.
    tasks: tuple[str, ...] = ("arithmetic_steps",)
    #: Largest step count k of the training cases (k = 1 … max_steps in equal shares).
    max_steps: int = MAX_STEPS
    #: Probe items per task held out of training (seed 0, the first of the task's items).
    held_out_items: int = 200

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of the config."""
        row = asdict(self)
        row["betas"], row["tasks"] = list(self.betas), list(self.tasks)
        return row


def probe_items(config: TrainingConfig) -> dict[str, list[Item]]:
    """The held-out probe items of each task (prize variant, seed 0)."""
    return {name: get_task(name).items("prize", config.held_out_items, seed=0) for name in config.tasks}


def context_key(name: str, meta: dict[str, Any]) -> Hashable | None:
    """What a case's context states, whatever its order: the program's assignments, the ring's
    friendships, the arithmetic expression. Training skips every context a probe item has.

    None (never held out) for one-operation arithmetic: its ~90 expressions are the addition and
    subtraction table itself, which every longer expression also exercises.
    """
    if name == variable_chain.NAME:
        return frozenset(meta["program"].split("; "))
    if name == multi_hop.NAME:
        ring = meta["ring"]
        return frozenset((person, ring[(i + 1) % len(ring)]) for i, person in enumerate(ring))
    return meta["expression"] if meta["steps"] > 1 else None


def training_sequence(name: str, index: int, rng: random.Random) -> tuple[list[Case], list[tuple[str, str]]]:
    """One training sequence of task ``name``: the context of case ``index`` and its questions.

    Returns the cases the sequence states (for the held-out check) and its (text, answer) pieces,
    the first being the case's prompt (its context and its own question) with its answer. Then
    the variable chain asks about every other variable of the program, multi-hop asks more
    questions about the same ring, and arithmetic packs :data:`ARITHMETIC_PACK` independent
    expressions. Every question is in the items' own wording.
    """
    case = CASE_WRITERS[name](index, rng)
    if name == arithmetic_steps.NAME:
        more = [CASE_WRITERS[name](index + j, rng) for j in range(1, ARITHMETIC_PACK)]
        return [case, *more], [(c.question, c.true_answer) for c in (case, *more)]
    return [case], [(case.question, case.true_answer), *FOLLOW_UPS[name](case, rng)]


def training_batches(config: TrainingConfig, tokenizer: Any) -> list[Int[torch.Tensor, "pair batch token"]]:
    """Every training batch as stacked (input ids, labels), right-padded; the same for every rung.

    Step ``s`` trains on task ``tasks[s % len(tasks)]``; within a task, case ``i`` has ``k = i %
    max_steps + 1``. Labels are -100 except at answer tokens. A sequence that states the context
    of a held-out probe item (:func:`context_key`) is skipped.
    """
    probes = probe_items(config).items()
    held_out = {context_key(name, item.meta) for name, items in probes for item in items} - {None}
    streams = {name: random.Random(f"{name}-training-{config.seed}") for name in config.tasks}
    counters = dict.fromkeys(config.tasks, 0)
    batches = []
    for step in range(config.steps):
        name = config.tasks[step % len(config.tasks)]
        rows: list[tuple[list[int], list[int]]] = []
        while len(rows) < config.batch_size:
            index = counters[name] % config.max_steps
            counters[name] += 1
            cases, questions = training_sequence(name, index, streams[name])
            if any(context_key(name, case.meta) in held_out for case in cases):
                continue
            ids: list[int] = []
            labels: list[int] = []
            for question, answer in questions:
                ids += tokenizer(question).input_ids
                labels += [-100] * (len(ids) - len(labels))
                ids += tokenizer(answer, add_special_tokens=False).input_ids
                labels += ids[len(labels) :]
            rows.append((ids, labels))
        width = max(len(ids) for ids, _ in rows)
        batch = torch.full((2, len(rows), width), -100, dtype=torch.long)
        batch[0] = tokenizer.pad_token_id
        for position, (ids, labels) in enumerate(rows):
            batch[0, position, : len(ids)] = torch.tensor(ids)
            batch[1, position, : len(labels)] = torch.tensor(labels)
        batches.append(batch)
    return batches


@torch.no_grad()
def answer_scores(model: GPTNeoXForCausalLM, tokenizer: Any, items: Sequence[Item]) -> tuple[float, float]:
    """Last-layer accuracy (true answer top among the options) and answer log-loss, plain HF forward.

    Items are run one prompt length at a time, so no padding enters.
    """
    model.eval()
    by_length: dict[int, list[int]] = {}
    encoded = [tokenizer(item.prompt).input_ids for item in items]
    for index, ids in enumerate(encoded):
        by_length.setdefault(len(ids), []).append(index)
    correct, loss = 0, 0.0
    for indices in by_length.values():
        logits = model(input_ids=torch.tensor([encoded[i] for i in indices])).logits[:, -1].float()
        log_probs = logits.log_softmax(dim=-1)
        for row, index in enumerate(indices):
            item = items[index]
            options = [tokenizer(o, add_special_tokens=False).input_ids[0] for o in item.options]
            chosen = int(logits[row, options].argmax())
            correct += chosen == item.true_index
            loss -= float(log_probs[row, options[item.true_index]])
    return correct / len(items), loss / len(items)


def evaluate(model: GPTNeoXForCausalLM, tokenizer: Any, items: dict[str, list[Item]]) -> dict[str, Any]:
    """Per task and per k: last-layer accuracy on the held-out probe items."""
    result: dict[str, Any] = {}
    for name, task_items in items.items():
        by_steps: dict[int, list[Item]] = {}
        for item in task_items:
            by_steps.setdefault(item.meta["steps"], []).append(item)
        result[name] = {
            str(steps): round(answer_scores(model, tokenizer, chosen)[0], 4)
            for steps, chosen in sorted(by_steps.items())
        }
    return result


def train_rung(
    rung: RungShape,
    config: TrainingConfig,
    out: Path,
    threads: int,
    batches: list[torch.Tensor] | None = None,
    progress: bool = True,
    curve_every: int = 250,
) -> dict[str, Any]:
    """Train one rung, save it under ``out`` and return its catalogue entry.

    Every ``curve_every`` steps (0: never) the held-out accuracy per task and k is logged into
    the entry's ``training_curve``; evaluation draws no random numbers.
    """
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)
    tokenizer = build_tokenizer()
    if batches is None:
        batches = training_batches(config, tokenizer)
    items = probe_items(config)
    torch.manual_seed(config.seed)
    model = GPTNeoXForCausalLM(model_config(rung, len(vocabulary()), tokenizer, MAX_POSITIONS))
    model.train()
    optimiser = optimizer(model, config)
    rung_config = {"rung": asdict(rung), "training": config.to_dict()}
    curve: list[dict[str, Any]] = []
    tokens = 0
    started = time.time()
    bar = tqdm(range(config.steps), desc=rung.name, disable=not progress, mininterval=5.0)
    for step in bar:
        input_ids, labels = batches[step]
        tokens += int((input_ids != tokenizer.pad_token_id).sum())
        loss = training_step(model, optimiser, config, step, input_ids, labels)
        if step % 50 == 0:
            bar.set_postfix(loss=f"{loss.item():.3f}")
        if curve_every and (step + 1) % curve_every == 0:
            curve.append(
                {"step": step + 1, "loss": round(loss.item(), 4), **evaluate(model, tokenizer, items)}
            )
            model.train()
    seconds = round(time.time() - started, 1)
    folder = out / rung.name
    hashes = save_weights(
        model, folder, torch.float32, lambda path: save_word_tokenizer(tokenizer, path, MAX_POSITIONS)
    )
    saved = GPTNeoXForCausalLM.from_pretrained(folder, dtype=torch.float32)
    every_item = [item for task_items in items.values() for item in task_items]
    return {
        "name": rung.name,
        "rung": rung.name,
        "kind": "rung",
        "step": config.steps,
        **size_fields(rung, saved, tokens),
        "seed": config.seed,
        "training_config_sha256": config_sha256(rung_config),
        "training_config": rung_config,
        "files": hashes,
        "held_out_perplexity": round(math.exp(answer_scores(saved, tokenizer, every_item)[1]), 5),
        "dtype": "float32",
        "threads": threads,
        "torch_version": torch.__version__,
        "transformers_version": transformers.__version__,
        "training_seconds": seconds,
        "accuracy": evaluate(saved, tokenizer, items),
        "training_curve": curve,
    }


def train_ladder(
    rungs: Sequence[RungShape], config: TrainingConfig, out: Path, threads: int
) -> dict[str, Any]:
    """Train every rung in ``rungs`` on the same batches and return the catalogue."""
    started = time.time()
    batches = training_batches(config, build_tokenizer())
    data_seconds = round(time.time() - started, 1)
    entries = [train_rung(rung, config, out, threads, batches) for rung in rungs]
    return {
        "description": DESCRIPTION,
        "provides": provides_block(
            "depth",
            DESCRIPTION,
            "Same width, data, order and tokens for every rung; see probes/builtin/depth/catalogue.json.",
            entries,
            "experiments/depth/train.py",
            len(vocabulary()),
            MAX_POSITIONS,
            "after_hub",
        ),
        "conventions": {
            "training_flops": "6 * parameters * tokens_seen (total parameters)",
            "training_flops_non_embedding": "6 * non_embedding_parameters * tokens_seen",
            "tokens_seen": "non-padding input tokens over all steps (prompt and answer)",
            "held_out_perplexity": "exp of the mean answer-token cross-entropy on the held-out probe items",
            "accuracy": "per task and k, last-layer share of held-out probe items whose true answer "
            "is the top option, plain HF forward",
            "training_config_sha256": "sha256 of the canonical JSON of training_config",
        },
        "tasks": list(config.tasks),
        "vocabulary": len(vocabulary()),
        "context_length": MAX_POSITIONS,
        "seed": config.seed,
        "threads": threads,
        "platform": platform.platform(),
        "python_version": platform.python_version(),
        "torch_version": torch.__version__,
        "data_seconds": data_seconds,
        "wall_seconds": round(time.time() - started, 1),
        "rungs": entries,
    }


def accuracy_report(catalogue: dict[str, Any]) -> dict[str, Any]:
    """The short report: per rung, its layers, parameters and accuracy per task and k."""
    return {
        "seed": catalogue["seed"],
        "threads": catalogue["threads"],
        "wall_seconds": catalogue["wall_seconds"],
        "entries": [
            {
                "name": entry["name"],
                "layers": entry["layers"],
                "parameters": entry["parameters"],
                "training_seconds": entry["training_seconds"],
                "held_out_perplexity": entry["held_out_perplexity"],
                "accuracy": entry["accuracy"],
            }
            for entry in catalogue["rungs"]
        ],
    }


def parse_arguments(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seed", type=int, default=0, help="training seed (init and training cases)")
    parser.add_argument("--out", type=Path, default=PACKAGE_FOLDER / "weights", help="folder of the rungs")
    parser.add_argument("--catalogue", type=Path, default=PACKAGE_FOLDER / "catalogue.json")
    parser.add_argument("--report", type=Path, default=PACKAGE_FOLDER / "accuracy.json")
    parser.add_argument("--rungs", nargs="*", default=None, help="rung names to train (default: all)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (part of reproducibility)")
    parser.add_argument("--steps", type=int, default=TrainingConfig.steps)
    parser.add_argument("--learning-rate", type=float, default=TrainingConfig.learning_rate)
    tasks = list(TrainingConfig.tasks)
    parser.add_argument(
        "--tasks", nargs="+", default=tasks, choices=list(TASKS), help="k-step tasks, in turn"
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    """Train the ladder and write weights, catalogue and report."""
    arguments = parse_arguments(argv)
    known = {rung.name: rung for rung in RUNGS}
    names = arguments.rungs or list(known)
    unknown = [name for name in names if name not in known]
    if unknown:
        raise SystemExit(f"unknown rungs {unknown}; choose among {list(known)}")
    config = replace(
        TrainingConfig(seed=arguments.seed, steps=arguments.steps),
        learning_rate=arguments.learning_rate,
        tasks=tuple(arguments.tasks),
    )
    catalogue = train_ladder([known[name] for name in names], config, arguments.out, arguments.threads)
    for path, data in ((arguments.catalogue, catalogue), (arguments.report, accuracy_report(catalogue))):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data, indent=1) + "\n", "utf-8")
    for row in accuracy_report(catalogue)["entries"]:
        print(json.dumps(row))


if __name__ == "__main__":
    main()
