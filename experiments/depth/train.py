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

A checkpoint (model, optimiser, curriculum, curve) is written every evaluation; a rerun with the
same arguments resumes from it. Writes one Hugging Face folder per rung under ``--out`` and its
catalogue entry as ``<rung>.json``; ``--catalogue`` joins the entries into the ladder's catalogue.

Example::

    python experiments/depth/train.py --layers 1 2 3 --seed 0 --threads 1 --out depth-out
    python experiments/depth/train.py --catalogue depth-out
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import random
import shutil
import sys
import time
from dataclasses import asdict, dataclass
from functools import cache
from pathlib import Path
from typing import Any

import torch
import transformers
from jaxtyping import Int
from transformers import GPTNeoXForCausalLM, PreTrainedTokenizerFast

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run from a checkout without installing

from probes.tasks import Item, get_task  # noqa: E402
from probes.tasks.generators import pointer_chase, pointer_chase16  # noqa: E402
from probes.tasks.organism_world import SPECIAL_TOKENS  # noqa: E402
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
from probes.word_tokenizer import save_word_tokenizer, word_tokenizer  # noqa: E402

transformers.utils.logging.disable_progress_bar()

#: The task the ladder learns: pointer chasing over 16 node names, k = 1 … 6.
TASK = pointer_chase16.NAME

#: The task's module (node names, largest k, case writer).
CHASE = pointer_chase16

#: Longest sequence a rung accepts (a k = 16 case with its follow-ups is about 190 tokens).
MAX_POSITIONS = 256

#: The built-in ladder folder ``--install`` writes into (catalogue and ``weights/``).
PACKAGE_FOLDER = Path(__file__).resolve().parents[2] / "probes" / "builtin" / "depth"

#: Notes of the ladder in its catalogue's ``provides`` block.
NOTES = (
    "Same width, data stream, curriculum and optimiser for every rung, two seeds per depth; each rung's "
    "steps, curve and seconds in probes/builtin/depth/catalogue.json (2000 steps; the 2-layer seed 1 "
    "rung 4000, extended because it had not learnt k = 2 at 2000)."
)

#: What the ladder is, for its catalogue.
DESCRIPTION = (
    "Depth ladder: GPT-NeoX models of one width that differ only in their number of layers, trained "
    "on pointer chasing over 16 names (follow k arrows around a cycle whose arrows are stated in "
    "shuffled order; k = 1-6), k = 1 and 2 mixed from the first step, then a curriculum over k; "
    "probe = the task's held-out items (true = the node k arrows on, distractor = the node one "
    "arrow short)."
)


@dataclass(frozen=True)
class TrainingConfig:
    """Everything that fixes a rung's training except its shape and the thread count."""

    #: Seed of the initialisation and of the training cases.
    seed: int = 0
    #: Optimiser steps (the same budget for every rung).
    steps: int = 1500
    #: Sequences per step.
    batch_size: int = 48
    #: Peak learning rate of AdamW.
    learning_rate: float = 3e-3
    #: Steps of linear warm-up.
    warmup_steps: int = 50
    #: Final learning rate as a share of the peak: 1.0 keeps it constant (the curriculum needs it).
    final_learning_rate_share: float = 1.0
    #: AdamW weight decay (on matrices only).
    weight_decay: float = 0.1
    #: AdamW betas.
    betas: tuple[float, float] = (0.9, 0.98)
    #: Gradient-norm clip.
    gradient_clip: float = 1.0
    #: Steps between evaluations (curriculum decision, curve point, checkpoint).
    eval_every: int = 100
    #: Validation accuracy at the current largest k that moves the curriculum on.
    advance_at: float = 0.9
    #: The curriculum's first level: from step 0 every batch mixes k = 1 … first_level.
    first_level: int = 2
    #: More questions about a case's cycle after its own (each one a training target).
    follow_ups: int = 3
    #: Start each arrow ``a>b``'s embedding as those of ``a>`` plus ``b`` (:func:`factorise_arrows`).
    factorised_arrows: bool = True
    #: Validation items per k (seed 1).
    validation_items: int = 64
    #: Probe items per k in the training curve (the first of the held-out items).
    curve_items: int = 16

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of the config."""
        row = asdict(self)
        row["betas"] = list(self.betas)
        return row


@cache
def vocabulary() -> tuple[str, ...]:
    """Special tokens, then every word the task's text can hold, sorted.

    Words are whitespace-separated: an arrow ``b>q`` is one token (so is the question's ``b>`` and
    ``b.``), as are the template words of a few hundred items. Every arrow between two node names
    is listed, so that any seed's text is covered.
    """
    nodes = CHASE.NODES
    words = {f"{a}>{b}" for a in nodes for b in nodes if a != b}
    words |= set(nodes) | {f"{a}>" for a in nodes} | {f"{a}." for a in nodes}
    words |= {str(k) for k in range(1, CHASE.MAX_STEPS + 1)}
    for item in get_task(TASK).items("prize", 64, seed=0):
        for text in (item.prompt, *item.options):
            words.update(text.split())
    return (*SPECIAL_TOKENS, *sorted(words))


@cache
def build_tokenizer() -> PreTrainedTokenizerFast:
    """One token per whitespace-separated word: an arrow ``b>q`` is a single token.

    A single token per arrow lets one attention layer do one lookup (the question's ``b>`` finds the
    arrow ``b>q`` by its content and reads ``q``), so a rung's depth bounds how many lookups it can
    chain; with ``b``, ``>``, ``q`` as three tokens even one lookup needs two composed layers, which
    the ladder's first recipes did not learn within the budget (experiments/reasoning_depth.md).
    """
    return word_tokenizer(vocabulary(), split_punctuation=False)


def encode(text: str) -> list[int]:
    """The ids :func:`build_tokenizer` gives ``text`` (a test checks they agree), ten times faster.

    Training tokenizes ~10^5 short texts; the fast tokenizer's per-call overhead dominated a step.
    """
    ids = _word_ids()
    return [ids[word] for word in text.split()]


@cache
def _word_ids() -> dict[str, int]:
    return {word: index for index, word in enumerate(vocabulary())}


def by_steps(items: list[Item]) -> dict[int, list[Item]]:
    """Items grouped by their k, in order."""
    grouped: dict[int, list[Item]] = {}
    for item in items:
        grouped.setdefault(item.meta["steps"], []).append(item)
    return dict(sorted(grouped.items()))


def probe_items() -> list[Item]:
    """The held-out probe items: the task's default items, seed 0 (40 per k)."""
    return get_task(TASK).items("prize", seed=0)


def validation_items(config: TrainingConfig) -> list[Item]:
    """The curriculum's validation items (seed 1), ``validation_items`` per k."""
    return get_task(TASK).items("prize", config.validation_items * CHASE.MAX_STEPS, seed=1)


def cycle_key(meta: dict[str, Any]) -> frozenset[tuple[str, str]]:
    """A case's arrows, whatever their order: training skips every cycle a probe item states."""
    return frozenset(tuple(arrow) for arrow in meta["arrows"])


def training_sequence(
    max_steps: int, rng: random.Random, held_out: set[frozenset[tuple[str, str]]], follow_ups: int
) -> tuple[list[int], list[int]]:
    """One training sequence at curriculum level ``max_steps``: (input ids, labels).

    A case with k uniform in 1 … ``max_steps`` (redrawn if it states a held-out cycle), its answer,
    then ``follow_ups`` more questions about the same cycle; labels are -100 except at answers.
    """
    while True:
        steps = rng.randint(1, max_steps)
        case = CHASE.write_case(steps - 1, rng)
        if cycle_key(case.meta) not in held_out:
            break
    pieces = [(case.question, case.true_answer)]
    pieces += [pointer_chase.follow_up_question(case, rng, max_steps) for _ in range(follow_ups)]
    ids: list[int] = []
    labels: list[int] = []
    for text, answer in pieces:
        ids += encode(text)
        labels += [-100] * (len(ids) - len(labels))
        ids += encode(answer)
        labels += ids[len(labels) :]
    return ids, labels


def training_batch(
    config: TrainingConfig, max_steps: int, rng: random.Random, held_out: set[frozenset[tuple[str, str]]]
) -> Int[torch.Tensor, "pair batch token"]:
    """A batch of stacked (input ids, labels), right-padded (labels -100 on padding)."""
    rows = [training_sequence(max_steps, rng, held_out, config.follow_ups) for _ in range(config.batch_size)]
    width = max(len(ids) for ids, _ in rows)
    batch = torch.full((2, len(rows), width), -100, dtype=torch.long)
    batch[0] = build_tokenizer().pad_token_id
    for position, (ids, labels) in enumerate(rows):
        batch[0, position, : len(ids)] = torch.tensor(ids)
        batch[1, position, : len(labels)] = torch.tensor(labels)
    return batch


@torch.no_grad()
def factorise_arrows(model: GPTNeoXForCausalLM) -> None:
    """Set every arrow token ``a>b``'s input embedding to the sum of those of ``a>`` and ``b``.

    Only the initialisation changes (the rows stay free parameters). Each arrow then starts with
    one direction for "out of a" (shared with the question's ``a>``) and one for "into b" (shared
    with the answer token ``b``), so what the model learns about one arrow carries over to the
    others instead of being learnt 240 times. The rung is still a plain GPT-NeoX; a lookup still
    needs one attention layer, two chained lookups two.
    """
    ids = _word_ids()
    embedding = model.get_input_embeddings().weight
    for source in CHASE.NODES:
        for target in CHASE.NODES:
            if source != target:
                embedding[ids[f"{source}>{target}"]] = embedding[ids[f"{source}>"]] + embedding[ids[target]]


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
        logits = model(input_ids=torch.tensor([encoded[i] for i in indices])).logits[:, -1].float()
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


def train_rung(
    rung: RungShape, config: TrainingConfig, out: Path, threads: int, log: Any = print
) -> dict[str, Any]:
    """Train one rung (resuming from its checkpoint), save it under ``out``; return its catalogue entry."""
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)
    tokenizer = build_tokenizer()
    probes = probe_items()
    probe_groups = by_steps(probes)
    validation = by_steps(validation_items(config))
    held_out = {cycle_key(item.meta) for item in probes}
    torch.manual_seed(config.seed)
    model = GPTNeoXForCausalLM(model_config(rung, len(vocabulary()), tokenizer, MAX_POSITIONS))
    if config.factorised_arrows:
        factorise_arrows(model)
    model.train()
    optimiser = optimizer(model, config)
    rng = random.Random(f"{TASK}-training-{config.seed}")
    state: dict[str, Any] = {
        "step": 0,
        "max_steps": config.first_level,
        "tokens": 0,
        "seconds": 0.0,
        "curve": [],
    }
    checkpoint = out / f"{rung.name}.checkpoint.pt"
    if checkpoint.exists():
        saved = torch.load(checkpoint, weights_only=False)
        model.load_state_dict(saved["model"])
        optimiser.load_state_dict(saved["optimiser"])
        rng.setstate(saved["rng"])
        torch.set_rng_state(saved["torch_rng"])
        state = saved["state"]
        log(f"{rung.name}: resumed at step {state['step']} (k <= {state['max_steps']})")
    started = time.time() - state["seconds"]
    while state["step"] < config.steps:
        input_ids, labels = training_batch(config, state["max_steps"], rng, held_out)
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
            if validation_accuracy >= config.advance_at and level < CHASE.MAX_STEPS:
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
        "step": config.steps,
        **size_fields(rung, final, state["tokens"]),
        "seed": config.seed,
        "training_config_sha256": config_sha256(rung_config),
        "training_config": rung_config,
        "files": hashes,
        "held_out_perplexity": round(math.exp(accuracy(final, probes)[1]), 5),
        "dtype": "float32",
        "threads": threads,
        "torch_version": torch.__version__,
        "transformers_version": transformers.__version__,
        "training_seconds": state["seconds"],
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


def join_catalogue(out: Path) -> dict[str, Any]:
    """The ladder's catalogue from the ``<rung>.json`` entries under ``out``, shallow to deep."""
    entries = [json.loads(path.read_text("utf-8")) for path in sorted(out.glob("depth-*.json"))]
    entries.sort(key=lambda entry: (entry["layers"], entry["seed"]))
    return {
        "description": DESCRIPTION,
        "provides": provides_block(
            "depth",
            DESCRIPTION,
            NOTES,
            entries,
            "experiments/depth/train.py",
            len(vocabulary()),
            MAX_POSITIONS,
            "after_hub",
        ),
        "conventions": {
            "training_flops": "6 * parameters * tokens_seen (total parameters)",
            "training_flops_non_embedding": "6 * non_embedding_parameters * tokens_seen",
            "tokens_seen": "non-padding input tokens over all steps (prompts, follow-ups and answers)",
            "held_out_perplexity": "exp of the mean answer-token cross-entropy on the held-out probe items",
            "accuracy": "per k, last-layer share of held-out probe items whose true answer is the top "
            "option, plain HF forward",
            "training_curve": "every eval_every steps: curriculum level, validation accuracy at that "
            "level (seed 1), probe accuracy per k on the first curve_items probe items of each k",
            "training_seconds": "wall seconds of one process on one thread, on a machine shared with "
            "other jobs",
            "training_config_sha256": "sha256 of the canonical JSON of training_config",
        },
        "tasks": [TASK],
        "vocabulary": len(vocabulary()),
        "context_length": MAX_POSITIONS,
        "platform": platform.platform(),
        "python_version": platform.python_version(),
        "torch_version": torch.__version__,
        "training_seconds_total": round(sum(entry["training_seconds"] for entry in entries), 1),
        "rungs": entries,
    }


def install(out: Path, catalogue: dict[str, Any]) -> None:
    """Replace the built-in depth ladder (catalogue and weights) with the rungs trained under ``out``."""
    weights = PACKAGE_FOLDER / "weights"
    if weights.exists():
        shutil.rmtree(weights)
    for entry in catalogue["rungs"]:
        shutil.copytree(out / entry["name"], weights / entry["name"])
    (PACKAGE_FOLDER / "catalogue.json").write_text(json.dumps(catalogue, indent=1) + "\n", "utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--layers", type=int, nargs="*", default=[1, 2, 3, 4, 6, 8])
    parser.add_argument("--d-model", type=int, default=64)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=TrainingConfig.steps)
    parser.add_argument("--batch-size", type=int, default=TrainingConfig.batch_size)
    parser.add_argument("--learning-rate", type=float, default=TrainingConfig.learning_rate)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path("depth-ladder-out"))
    parser.add_argument("--catalogue", type=Path, help="only join the entries under this folder")
    parser.add_argument(
        "--install",
        action="store_true",
        help="with --catalogue: copy the joined catalogue and the rung folders into probes/builtin/depth/",
    )
    args = parser.parse_args()
    if args.catalogue:
        catalogue = join_catalogue(args.catalogue)
        (args.catalogue / "catalogue.json").write_text(json.dumps(catalogue, indent=1) + "\n", "utf-8")
        if args.install:
            install(args.catalogue, catalogue)
        return
    config = TrainingConfig(
        seed=args.seed, steps=args.steps, batch_size=args.batch_size, learning_rate=args.learning_rate
    )
    for layers in args.layers:
        rung = rung_of(layers, args.d_model, args.heads, args.seed)
        entry = train_rung(rung, config, args.out, args.threads, log=lambda line: print(line, flush=True))
        print(f"{rung.name} done: {json.dumps(entry['accuracy'])}", flush=True)


if __name__ == "__main__":
    main()
