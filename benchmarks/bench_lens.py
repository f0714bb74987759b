"""Benchmark: the lens against the bare forward pass, TransformerLens's ``logit_lens``, and
multi-token options against single-token ones.

Run: ``OMP_NUM_THREADS=1 python benchmarks/bench_lens.py`` (``--quick`` for a short run,
``--naive`` to add the cache-everything way).

Each method runs in its own subprocess on the same random model (built from a config,
nothing downloaded) and the same batch of prompts, so peak memory is measured cleanly: the
growth of the process's resident memory over its level just before the method runs,
sampled every millisecond. The methods run in interleaved rounds (every method once per
round); a method's time is the minimum over rounds of its median over repeats, so a burst
of load from elsewhere on the machine hits one round, not one method. Ratios within one
run are what to compare.

Methods (``B`` prompts of ``L`` random tokens):
  forward   the plain transformers model (not bridged) with its logits;
  tl        TransformerLens's ``logit_lens(bridge, tokens, positions=-1, targets=...)``
            (run_with_cache of the residual stream, then the readout at the last position);
  lens      probes' lens, two single-token options (the single-token benchmark);
  1x4       probes' lens, four single-token options;
  5x2, 5x4  two / four options of 5 tokens: one prompt pass per item, the options read
            as continuations of its key/value cache;
  rows5x2, rows5x4  the same items as whole rows of prompt + option (``reuse_prompts=False``,
            the way before the cache);
  naive     TransformerBridge.run_with_cache, accumulated_resid(apply_ln=True),
            unembed at every position of every layer.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's probes, in every child

SHAPES = {
    # name: (layers, d_model, heads, vocab)
    "tiny": (4, 128, 4, 4096),
    "pythia-160m-shaped": (12, 768, 12, 50304),
}


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


def _build(shape: str):
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


#: method -> (options per item, tokens per option, continue from the prompt's cache)
LENS_METHODS = {
    "lens": (2, 1, True),
    "1x4": (4, 1, True),
    "5x2": (2, 5, True),
    "5x4": (4, 5, True),
    "rows5x2": (2, 5, False),
    "rows5x4": (4, 5, False),
}


def run_method(method: str, shape: str, batch: int, length: int, repeats: int) -> dict[str, float]:
    """Time one method in this process; returns median seconds and peak memory growth."""
    import tempfile

    import torch

    from probes.lens import read_options
    from probes.models import from_hf_model
    from probes.tasks import Item

    torch.manual_seed(1)
    vocab = SHAPES[shape][3]
    tokens = torch.randint(2, vocab, (batch, length))
    hf_model = _build(shape)
    if method == "forward":

        def step() -> None:
            with torch.inference_mode():
                hf_model(input_ids=tokens, use_cache=False).logits.sum()

    else:
        tokenizer = _tokenizer(vocab, Path(tempfile.mkdtemp()))
        model = from_hf_model(hf_model, tokenizer, name=shape)
        if method in LENS_METHODS:
            count, answer_tokens, reuse = LENS_METHODS[method]
            items = []
            for b in range(batch):
                options = _options(count, answer_tokens, seed=b)
                prompt = " ".join(f"t{int(t)}" for t in tokens[b])
                items.append(Item(str(b), "bench", prompt, options[0], options[1], options=tuple(options)))

            def step() -> None:
                read_options(model, items, batch_size=batch, reuse_prompts=reuse)

        elif method == "tl":
            from transformer_lens.tools.analysis import logit_lens

            def step() -> None:
                with torch.inference_mode():
                    logit_lens(model.bridge, tokens, positions=-1, targets=[2, 3], return_type="log_probs")

        else:

            def step() -> None:
                with torch.inference_mode():
                    _, cache = model.bridge.run_with_cache(tokens)
                    stack = cache.accumulated_resid(apply_ln=True)
                    logits = model.bridge.unembed(stack.flatten(0, 1))
                    logits.log_softmax(-1)[..., 2:4].sum()

    step()  # warm-up
    times, peaks = [], []
    for _ in range(repeats):
        with PeakMemory() as memory:
            start = time.perf_counter()
            step()
            times.append(time.perf_counter() - start)
        peaks.append(memory.peak - memory.start)
    return {"seconds": statistics.median(times), "peak_bytes": max(peaks)}


RATIOS = [
    # (numerator, denominator, label, target)
    ("lens", "forward", "single-token lens / bare forward", "<= 0.8"),
    ("tl", "lens", "TL logit_lens / lens (speed-up)", ">= 1.4"),
    ("5x2", "lens", "two 5-token options / two single-token", "<= 1.15"),
    ("5x4", "1x4", "four 5-token options / four single-token", "<= 1.3"),
    ("rows5x2", "lens", "before (whole rows): two 5-token / single", ""),
    ("rows5x4", "1x4", "before (whole rows): four 5-token / single", ""),
    ("naive", "lens", "naive cache-everything / lens", ""),
]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="tiny shape only, fewer repeats")
    parser.add_argument("--naive", action="store_true", help="also the cache-everything way (slow, big)")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--length", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--shape", choices=list(SHAPES), help="one shape only")
    parser.add_argument("--child", nargs=2, metavar=("METHOD", "SHAPE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        result = run_method(args.child[0], args.child[1], args.batch, args.length, args.repeats)
        print(json.dumps(result))
        return
    shapes = ["tiny"] if args.quick else [args.shape] if args.shape else list(SHAPES)
    rounds = 1 if args.quick else args.rounds
    methods = ["forward", "tl", *LENS_METHODS, *(["naive"] if args.naive else [])]
    print(
        f"batch {args.batch} x {args.length} tokens; per method the min over {rounds} interleaved "
        f"rounds of the median of {args.repeats} repeats; one process per method and round"
    )
    for shape in shapes:
        seconds: dict[str, list[float]] = {method: [] for method in methods}
        peaks: dict[str, int] = dict.fromkeys(methods, 0)
        for _ in range(rounds):
            for method in methods:
                command = [sys.executable, __file__, "--child", method, shape]
                command += ["--batch", str(args.batch), "--length", str(args.length)]
                command += ["--repeats", str(args.repeats)]
                output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
                result = json.loads(output.strip().splitlines()[-1])
                seconds[method].append(result["seconds"])
                peaks[method] = max(peaks[method], result["peak_bytes"])
        best = {method: min(times) for method, times in seconds.items()}
        print(f"\n{shape}\n| method | seconds (min) | peak memory growth |\n|---|---:|---:|")
        for method in methods:
            print(f"| {method} | {best[method]:.3f} | {peaks[method] / 2**20:.1f} MiB |")
        print("\n| ratio | measured | target |\n|---|---:|---|")
        for top, bottom, label, target in RATIOS:
            if top in best and bottom in best:
                print(f"| {label} | {best[top] / best[bottom]:.2f}x | {target} |")


if __name__ == "__main__":
    main()
