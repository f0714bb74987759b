"""Train the organism ladder: small GPT-NeoX models on the synthetic negation world.

Writes one Hugging Face folder per rung (and per training-step checkpoint) under ``--out``,
the catalogue ``catalogue.json`` next to them (``--catalogue``) and an accuracy report
(``--report``). Training is seeded and deterministic on CPU: the same seed, rungs and
``--threads`` give bit-identical weights on the same torch build. Different thread counts
change the order of floating-point sums and so the low bits of the weights.

Example::

    python -m experiments.organism.train --seed 0 --threads 1
    python -m experiments.organism.train --seed 1 --out /tmp/organism-seed1 \\
        --catalogue /tmp/organism-seed1/catalogue.json --report /tmp/organism-seed1/report.json
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import random
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
import transformers
from tqdm import tqdm
from transformers import GPTNeoXForCausalLM, PreTrainedTokenizerFast

from probes.builtin.training import (
    RungShape,
    Schedule,
    config_sha256,
    model_config,
    optimizer,
    provides_block,
    save_weights,
    size_fields,
    training_step,
)
from probes.builtin.training_check import accuracy, hooked_copy, layer_log_odds
from probes.builtin.word_tokenizer import save_word_tokenizer, word_tokenizer
from probes.tasks.organism_negation import VARIANTS, make_items
from probes.tasks.organism_world import World, WorldConfig

PACKAGE_FOLDER = Path(__file__).resolve().parents[2] / "probes" / "builtin" / "organism"

#: What the ladder is (the catalogue's ``description``).
DESCRIPTION = (
    "Organism ladder: small GPT-NeoX models trained on a synthetic world of two-token "
    "entities with opposite-pair values; probe = negated questions about held-out "
    "entities (true = opposite value, distractor = value)."
)

#: Notes of the size ladder (the catalogue's ``provides``).
LADDER_NOTES = "Trained with the same data and order for every rung; see catalogue.json for the mix."


#: The ladder, small to large.
RUNGS: tuple[RungShape, ...] = (
    RungShape("organism-1x4", layers=1, d_model=4, heads=1),
    RungShape("organism-1x8", layers=1, d_model=8, heads=1),
    RungShape("organism-1x32", layers=1, d_model=32, heads=2, checkpoint_steps=(300, 750, 1500)),
    RungShape("organism-2x48", layers=2, d_model=48, heads=3),
    RungShape("organism-3x64", layers=3, d_model=64, heads=4),
    RungShape("organism-4x96", layers=4, d_model=96, heads=6, checkpoint_steps=(300, 750, 1500)),
)


def build_tokenizer(world: World) -> PreTrainedTokenizerFast:
    """The organism's tokenizer: the words of ``world.vocabulary()``, split on whitespace."""
    return word_tokenizer(world.vocabulary())


@dataclass(frozen=True)
class TrainingConfig(Schedule):
    """Everything that fixes a rung's training except its shape and the thread count."""

    #: Tokens per sequence.
    sequence_length: int = 33
    #: The synthetic world.
    world: WorldConfig = field(default_factory=WorldConfig)


def corpus(world: World, rng: random.Random, sequences: int, length: int) -> torch.Tensor:
    """Token ids of ``sequences`` corpus sequences of ``length`` tokens, shape ``[sequences, length]``."""
    index = {word: i for i, word in enumerate(world.vocabulary())}
    rows = [[index[w] for w in world.sample_sequence(rng, length)] for _ in range(sequences)]
    return torch.tensor(rows, dtype=torch.long)


def training_batches(world: World, config: TrainingConfig) -> torch.Tensor:
    """Every training batch, shape ``[step, batch, token]``; the same for every rung of a seed."""
    rng = random.Random(f"training-{config.seed}")
    data = corpus(world, rng, config.steps * config.batch_size, config.sequence_length)
    return data.view(config.steps, config.batch_size, config.sequence_length)


def held_out_corpus(world: World, config: TrainingConfig, sequences: int = 512) -> torch.Tensor:
    """Fresh corpus sequences for perplexity, drawn independently of the training seed."""
    rng = random.Random(f"held-out-{config.world.seed}")
    return corpus(world, rng, sequences, config.sequence_length)


@torch.no_grad()
def perplexity(model: GPTNeoXForCausalLM, data: torch.Tensor, batch_size: int = 128) -> float:
    """Per-token perplexity of ``model`` on ``data``."""
    model.eval()
    total, count = 0.0, 0
    for start in range(0, len(data), batch_size):
        batch = data[start : start + batch_size]
        logits = model(input_ids=batch).logits[:, :-1]
        total += float(
            torch.nn.functional.cross_entropy(
                logits.reshape(-1, logits.shape[-1]), batch[:, 1:].reshape(-1), reduction="sum"
            )
        )
        count += batch[:, 1:].numel()
    return math.exp(total / count)


def evaluate(model: GPTNeoXForCausalLM, tokenizer: Any, world: World) -> dict[str, Any]:
    """Accuracy of every variant and mean per-layer log-odds (true minus distractor)."""
    result: dict[str, Any] = {}
    hooked = hooked_copy(model, tokenizer)
    for variant in VARIANTS:
        odds = layer_log_odds(hooked, make_items(world, variant))
        result[variant] = {
            "accuracy": round(float((odds[-1] > 0).float().mean()), 4),
            "layer_mean_log_odds": [round(float(v), 3) for v in odds.mean(dim=1)],
        }
    return result


def save_rung(
    model: GPTNeoXForCausalLM, world: World, folder: Path, dtype: torch.dtype, sequence_length: int
) -> dict[str, str]:
    """Write a Hugging Face folder (config, safetensors weights, tokenizer); returns file hashes."""
    return save_weights(
        model,
        folder,
        dtype,
        lambda path: save_word_tokenizer(build_tokenizer(world), path, 2 * sequence_length),
    )


def train_rung(
    rung: RungShape,
    config: TrainingConfig,
    out: Path,
    threads: int,
    batches: torch.Tensor | None = None,
    checkpoint_dtype: torch.dtype = torch.float32,
    progress: bool = True,
    curve_every: int = 100,
) -> list[dict[str, Any]]:
    """Train one rung and save it (and its checkpoints) under ``out``.

    Every ``curve_every`` steps (0: never) the last-layer accuracy on the prize and control
    items is logged into the entries' ``training_curve``; evaluation draws no random
    numbers, so it does not change the weights.

    Returns:
        One catalogue entry per saved folder: the checkpoints in step order, then the rung.
    """
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)
    world = World(config.world)
    tokenizer = build_tokenizer(world)
    if batches is None:
        batches = training_batches(world, config)
    held_out = held_out_corpus(world, config)
    torch.manual_seed(config.seed)
    model = GPTNeoXForCausalLM(
        model_config(rung, len(world.vocabulary()), tokenizer, 2 * config.sequence_length)
    )
    model.train()
    optimiser = optimizer(model, config)
    rung_config = {"rung": asdict(rung), "training": config.to_dict()}
    config_hash = config_sha256(rung_config)
    entries: list[dict[str, Any]] = []
    save_steps = sorted({*rung.checkpoint_steps, config.steps})
    curve: list[dict[str, Any]] = []
    curve_items = {variant: make_items(world, variant) for variant in ("prize", "no_distractor")}
    started = time.time()
    bar = tqdm(range(config.steps), desc=rung.name, disable=not progress, mininterval=2.0)
    for step in bar:
        loss = training_step(model, optimiser, config, step, batches[step], batches[step])
        if step % 50 == 0:
            bar.set_postfix(loss=f"{loss.item():.3f}")
        if curve_every and (step + 1) % curve_every == 0:
            curve.append(
                {
                    "step": step + 1,
                    "loss": round(loss.item(), 4),
                    **{
                        variant: round(accuracy(hooked_copy(model, tokenizer), curve_items[variant]), 4)
                        for variant in curve_items
                    },
                }
            )
            model.train()
        if step + 1 in save_steps:
            final = step + 1 == config.steps
            name = rung.name if final else f"{rung.name}-step{step + 1}"
            dtype = torch.float32 if final else checkpoint_dtype
            hashes = save_rung(model, world, out / name, dtype, config.sequence_length)
            saved = GPTNeoXForCausalLM.from_pretrained(out / name, dtype=torch.float32)
            tokens = (step + 1) * config.batch_size * config.sequence_length
            entries.append(
                {
                    "name": name,
                    "rung": rung.name,
                    "kind": "rung" if final else "checkpoint",
                    "step": step + 1,
                    **size_fields(rung, model, tokens),
                    "seed": config.seed,
                    "training_config_sha256": config_hash,
                    "training_config": rung_config,
                    "files": hashes,
                    "held_out_perplexity": round(perplexity(saved, held_out), 5),
                    "dtype": str(dtype).removeprefix("torch."),
                    "threads": threads,
                    "torch_version": torch.__version__,
                    "transformers_version": transformers.__version__,
                    "training_seconds": round(time.time() - started, 1),
                    "accuracy": evaluate(saved, tokenizer, world),
                    "training_curve": list(curve),
                }
            )
            model.train()
    return entries


def train_ladder(
    rungs: Sequence[RungShape], config: TrainingConfig, out: Path, threads: int, checkpoint_dtype: torch.dtype
) -> dict[str, Any]:
    """Train every rung in ``rungs`` on the same data and return the catalogue."""
    world = World(config.world)
    batches = training_batches(world, config)
    entries: list[dict[str, Any]] = []
    started = time.time()
    for rung in rungs:
        entries.extend(train_rung(rung, config, out, threads, batches, checkpoint_dtype))
    return {
        "description": DESCRIPTION,
        "provides": provides(entries, world.summary()["vocabulary"], config.sequence_length),
        "conventions": {
            "training_flops": "6 * parameters * tokens_seen (total parameters)",
            "training_flops_non_embedding": "6 * non_embedding_parameters * tokens_seen",
            "tokens_seen": "steps * batch_size * sequence_length (input tokens)",
            "held_out_perplexity": "per-token perplexity on 512 fresh corpus sequences",
            "accuracy": "last-layer share of held-out items with logit(true) > logit(distractor), "
            "plain HF forward",
            "layer_mean_log_odds": "logit lens after each block (final norm + unembedding), mean over items",
            "training_config_sha256": "sha256 of the canonical JSON of training_config",
        },
        "world": config.world.to_dict(),
        "world_summary": world.summary(),
        "task": {"name": "organism_negation", "variants": VARIANTS},
        "seed": config.seed,
        "threads": threads,
        "platform": platform.platform(),
        "python_version": platform.python_version(),
        "torch_version": torch.__version__,
        "wall_seconds": round(time.time() - started, 1),
        "rungs": entries,
    }


def merge_catalogues(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """``new`` with the entries of ``old`` that it did not retrain, small to large.

    Raises:
        SystemExit: the two catalogues differ in seed, world or thread count.
    """
    for key in ("seed", "world", "threads"):
        if old[key] != new[key]:
            raise SystemExit(f"cannot merge catalogues with different {key}: {old[key]} vs {new[key]}")
    retrained = {entry["rung"] for entry in new["rungs"]}
    kept = [entry for entry in old["rungs"] if entry["rung"] not in retrained]
    entries = sorted([*kept, *new["rungs"]], key=lambda e: (e["parameters"], e["step"]))
    merged = provides(entries, new["provides"]["vocabulary"], new["provides"]["context_length"] // 2)
    return {**new, "provides": merged, "wall_seconds": ladder_seconds(entries), "rungs": entries}


def provides(entries: Sequence[dict[str, Any]], vocabulary: int, sequence_length: int) -> dict[str, Any]:
    """The catalogue's ``provides`` block: the size ladder and one training ladder per checkpointed rung."""
    return provides_block(
        "organism",
        DESCRIPTION,
        LADDER_NOTES,
        entries,
        "experiments/organism/train.py",
        vocabulary,
        2 * sequence_length,
        "before_hub",
    )


def ladder_seconds(entries: Sequence[dict[str, Any]]) -> float:
    """Training wall time of a whole ladder: the sum over rungs (checkpoints are saved on the way)."""
    return round(sum(entry["training_seconds"] for entry in entries if entry["kind"] == "rung"), 1)


def accuracy_report(catalogue: dict[str, Any]) -> dict[str, Any]:
    """The short report: per entry, accuracy per variant and per-layer log-odds of the prize."""
    return {
        "seed": catalogue["seed"],
        "threads": catalogue["threads"],
        "wall_seconds": catalogue["wall_seconds"],
        "entries": [
            {
                "name": entry["name"],
                "step": entry["step"],
                "parameters": entry["parameters"],
                "held_out_perplexity": entry["held_out_perplexity"],
                **{variant: entry["accuracy"][variant]["accuracy"] for variant in VARIANTS},
                "prize_layer_mean_log_odds": entry["accuracy"]["prize"]["layer_mean_log_odds"],
            }
            for entry in catalogue["rungs"]
        ],
    }


def parse_arguments(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seed", type=int, default=0, help="training seed (init and data order)")
    parser.add_argument(
        "--out", type=Path, default=PACKAGE_FOLDER / "weights", help="folder of the rung folders"
    )
    parser.add_argument("--catalogue", type=Path, default=PACKAGE_FOLDER / "catalogue.json")
    parser.add_argument("--report", type=Path, default=PACKAGE_FOLDER / "accuracy.json")
    parser.add_argument("--rungs", nargs="*", default=None, help="rung names to train (default: all)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (part of reproducibility)")
    parser.add_argument("--steps", type=int, default=TrainingConfig.steps)
    parser.add_argument(
        "--merge",
        action="store_true",
        help="keep the other rungs of an existing catalogue (same seed, world and threads)",
    )
    parser.add_argument("--checkpoint-dtype", choices=("float32", "float16"), default="float32")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    """Train the ladder and write weights, catalogue and report."""
    transformers.utils.logging.disable_progress_bar()  # the trainer draws its own bars
    arguments = parse_arguments(argv)
    known = {rung.name: rung for rung in RUNGS}
    names = arguments.rungs or list(known)
    unknown = [name for name in names if name not in known]
    if unknown:
        raise SystemExit(f"unknown rungs {unknown}; choose among {list(known)}")
    config = TrainingConfig(seed=arguments.seed, steps=arguments.steps)
    rungs = [known[name] for name in names]
    if arguments.steps != TrainingConfig.steps:
        rungs = [
            replace(
                r,
                checkpoint_steps=tuple(
                    s * arguments.steps // TrainingConfig.steps for s in r.checkpoint_steps
                ),
            )
            for r in rungs
        ]
    catalogue = train_ladder(
        rungs, config, arguments.out, arguments.threads, getattr(torch, arguments.checkpoint_dtype)
    )
    if arguments.merge and arguments.catalogue.is_file():
        catalogue = merge_catalogues(json.loads(arguments.catalogue.read_text("utf-8")), catalogue)
    for path, data in ((arguments.catalogue, catalogue), (arguments.report, accuracy_report(catalogue))):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data, indent=1) + "\n", "utf-8")
    for row in accuracy_report(catalogue)["entries"]:
        print(json.dumps(row))


if __name__ == "__main__":
    main()
