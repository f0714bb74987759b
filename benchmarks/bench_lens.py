"""Benchmark: the lens sweep against the model's bare forward pass and the naive cache-everything way.

Run: ``python benchmarks/bench_lens.py`` (add ``--quick`` for a short run).

Each method runs in its own subprocess on the same random model (built from a
config, nothing downloaded) and the same batch, so peak memory is measured
cleanly: the growth of the process's resident memory over its level just before
the method runs, sampled every millisecond. Times are the median of several
repeats after a warm-up. Ratios are what to compare (the machine is noisy).

Methods:
  forward  the plain transformers model (not bridged) with its logits;
  lens     probes' lens: hooks keep the answer positions of every layer, then
           final norm + unembedding on those vectors only;
  naive    TransformerBridge.run_with_cache, accumulated_resid(apply_ln=True),
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
        if method == "lens":
            items = [
                Item(str(b), "bench", " ".join(f"t{int(t)}" for t in tokens[b]), " t2", " t3")
                for b in range(batch)
            ]

            def step() -> None:
                read_options(model, items, batch_size=batch)

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


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="tiny shape only, fewer repeats")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--length", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--child", nargs=2, metavar=("METHOD", "SHAPE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        result = run_method(args.child[0], args.child[1], args.batch, args.length, args.repeats)
        print(json.dumps(result))
        return
    shapes = ["tiny"] if args.quick else list(SHAPES)
    repeats = 2 if args.quick else args.repeats
    print(f"batch {args.batch} x {args.length} tokens, median of {repeats} repeats, one process per method")
    for shape in shapes:
        results = {}
        for method in ("forward", "lens", "naive"):
            command = [
                sys.executable,
                __file__,
                "--child",
                method,
                shape,
                "--batch",
                str(args.batch),
                "--length",
                str(args.length),
                "--repeats",
                str(repeats),
            ]
            output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
            results[method] = json.loads(output.strip().splitlines()[-1])
        forward, lens, naive = results["forward"], results["lens"], results["naive"]
        print(f"\n{shape}")
        for method, result in results.items():
            print(f"  {method:8s} {result['seconds']:8.3f} s   peak +{result['peak_bytes'] / 2**20:8.1f} MiB")
        print(f"  lens / forward time          {lens['seconds'] / forward['seconds']:.2f}x  (target <= 1.15)")
        print(f"  naive / lens time            {naive['seconds'] / lens['seconds']:.2f}x  (target >= 3)")
        memory_ratio = naive["peak_bytes"] / max(lens["peak_bytes"], 1)
        print(f"  naive / lens peak memory     {memory_ratio:.1f}x  (target >= 10)")


if __name__ == "__main__":
    main()
