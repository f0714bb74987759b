"""Benchmark (CUDA only): tokens/s of the lens against the bare forward pass on a
Pythia-1.4B-shaped random GPT-NeoX in bfloat16 (float32 readout), eager and with compiled MLPs,
the batch size chosen from free memory (:func:`probes.model.gpu.batch_size_for`).

Run: ``python -m benchmarks.bench_gpu`` (``--length``, ``--rounds``). Without CUDA it says so and
exits 0: nothing here is measured on a CPU machine.

Methods, each on the same batch of random prompts, timed with ``torch.cuda.synchronize``, the
minimum over interleaved rounds: ``forward`` (plain transformers forward with logits),
``lens`` (probes' lens over every layer at the last position, two single-token options), and
``lens_compiled`` (the same with :func:`probes.model.gpu.compile_mlps`, warmed up first). Peak memory
is ``torch.cuda.max_memory_allocated`` over the method's run.
"""

from __future__ import annotations

import argparse
import copy
import tempfile
import time
from pathlib import Path
from typing import Any


def main() -> None:
    import torch

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--length", type=int, default=512)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--rows", type=int, default=0, help="rows per batch (0: from free memory)")
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="a tiny model on the CPU: checks the script runs, measures nothing",
    )
    args = parser.parse_args()
    device = "cpu" if args.smoke else "cuda"
    if not args.smoke and not torch.cuda.is_available():
        print("skipped: no CUDA device (the GPU benchmark runs only where one is present)")
        return
    from benchmarks.lens_methods import SHAPES, _items, random_model
    from benchmarks.lens_methods import word_tokenizer as _tokenizer
    from probes.lenses.reading import read_options
    from probes.model.gpu import batch_size_for, compile_mlps
    from probes.model.loading import from_hf_model

    shape = "tiny" if args.smoke else "pythia-1.4b-shaped"
    vocab = SHAPES[shape][3]
    dtype = torch.float32 if args.smoke else torch.bfloat16
    hf_model = random_model(shape)  # seed 0
    # The baseline runs a twin that is never bridged: from_hf_model swaps the bridge's components
    # into hf_model in place, and the forward timed through them (before h19-perf3) was not bare.
    plain = copy.deepcopy(hf_model).to(device, dtype)
    model = from_hf_model(hf_model.to(device, dtype), _tokenizer(vocab, Path(tempfile.mkdtemp())), name="gpu")
    rows = args.rows or (2 if args.smoke else batch_size_for(model, args.length))
    tokens = torch.randint(2, vocab, (rows, args.length))
    items = _items(model, tokens, 2, 1)  # the prompts tokenize back to exactly these rows
    tokens = tokens.to(device)

    def synchronize() -> None:
        if device == "cuda":
            torch.cuda.synchronize()

    def forward() -> None:
        with torch.inference_mode():
            plain(input_ids=tokens, use_cache=False).logits.float().log_softmax(-1)[:, -1, 2].sum()

    def lens() -> None:
        read_options(model, items, batch_size=rows)

    def timed(name: str, step: Any) -> None:
        synchronize()
        if device == "cuda":
            torch.cuda.reset_peak_memory_stats()
        start = time.perf_counter()
        step()
        synchronize()
        times[name].append(time.perf_counter() - start)
        if device == "cuda":
            peaks[name] = max(peaks[name], torch.cuda.max_memory_allocated())

    times: dict[str, list[float]] = {"forward": [], "lens": [], "lens_compiled": []}
    peaks = dict.fromkeys(times, 0)
    forward(), lens()  # warm-up
    for _ in range(args.rounds):
        timed("forward", forward)
        timed("lens", lens)
    if not args.smoke:  # compiling on a CPU takes minutes and says nothing about a GPU
        compile_mlps(model)
        lens()  # compiles
        for _ in range(args.rounds):
            timed("lens_compiled", lens)
    where = (
        torch.cuda.get_device_name() if device == "cuda" else "CPU (smoke run: no figure here means anything)"
    )
    print(f"{where}; {rows} rows x {args.length} tokens; {dtype} model, float32 readout")
    print("| method | tokens/s | peak memory |\n|---|---:|---:|")
    for name, measured in times.items():
        if measured:
            print(f"| {name} | {rows * args.length / min(measured):,.0f} | {peaks[name] / 2**30:.1f} GiB |")
    ratio = min(times["lens"]) / min(times["forward"])
    compiled = (
        f"; compiled: {min(times['lens_compiled']) / min(times['forward']):.2f}x"
        if times["lens_compiled"]
        else ""
    )
    print(f"lens / forward time: {ratio:.2f}x{compiled}")


if __name__ == "__main__":
    main()
