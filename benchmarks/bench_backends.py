"""Benchmark: the cost of the nnsight backend against the default (TransformerLens bridge) one, per model.

Run: ``OMP_NUM_THREADS=1 python -m benchmarks.bench_backends`` (``--models`` to choose,
e.g. the SmolLM2 GGUF file; ``--rounds``, ``--items``).

Each model is loaded once behind each backend; the same items (the ``prize`` variant of
``organism_negation``, or ``--task``) are read through the lens at every layer. Three ways, in
interleaved rounds (each once per round), a way's time being its minimum over rounds, so a burst
of load from elsewhere hits one round, not one way:

  bridge        the default: each prompt runs once and multi-token options continue from its
                key/value cache;
  bridge-rows   the bridge reading whole rows of prompt + option (``reuse_prompts=False``), the
                way the nnsight backend reads;
  nnsight       the nnsight backend (one ``model.trace`` per batch, stopped after the last layer).

Printed: seconds per way and the ratios nnsight / bridge (what a user pays for nnsight) and
nnsight / bridge-rows (nnsight's tracing cost alone), as one Markdown row per model.
"""

from __future__ import annotations

import argparse
import time

DEFAULT_MODELS = ["organism:1x32", "organism:4x96"]


def _time(function) -> float:  # noqa: ANN001
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--models", nargs="+", default=DEFAULT_MODELS)
    parser.add_argument("--task", default="organism_negation")
    parser.add_argument("--items", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=8)
    args = parser.parse_args()

    import torch

    from probes.jobs.progress import quiet_libraries
    from probes.lenses.reading import read_options
    from probes.model.loading import load_model
    from probes.tasks import load_items

    torch.manual_seed(0)
    items = load_items([args.task], variants=["prize"], n_items=args.items, seed=0)
    print(f"{len(items)} items of {args.task}/prize, batch size {args.batch_size}, {args.rounds} rounds")
    print("| model | bridge s | bridge-rows s | nnsight s | nnsight / bridge | nnsight / bridge-rows |")
    print("|---|---|---|---|---|---|")
    for spec in args.models:
        with quiet_libraries():
            bridge, nnsight = load_model(spec), load_model(spec, backend="nnsight")
        ways = {
            "bridge": lambda model=bridge: read_options(model, items, batch_size=args.batch_size),
            "bridge-rows": lambda model=bridge: read_options(
                model, items, batch_size=args.batch_size, reuse_prompts=False
            ),
            "nnsight": lambda model=nnsight: read_options(model, items, batch_size=args.batch_size),
        }
        with torch.inference_mode():
            for way in ways.values():  # warm-up: first calls pay one-off costs
                way()
            best = dict.fromkeys(ways, float("inf"))
            for _ in range(args.rounds):
                for name, way in ways.items():
                    best[name] = min(best[name], _time(way))
        b, rows, n = best["bridge"], best["bridge-rows"], best["nnsight"]
        print(f"| {spec} | {b:.3f} | {rows:.3f} | {n:.3f} | {n / b:.2f} | {n / rows:.2f} |", flush=True)


if __name__ == "__main__":
    main()
