"""Benchmark (CUDA only): tokens/s of the lens against the bare forward pass on a
Pythia-1.4B-shaped random GPT-NeoX in bfloat16 (float32 readout), eager and with compiled MLPs,
the batch size chosen from free memory (:func:`probes.gpu.batch_size_for`).

Run: ``python benchmarks/bench_gpu.py`` (``--length``, ``--rounds``). Without CUDA it says so and
exits 0: nothing here is measured on a CPU machine.

Methods, each on the same batch of random prompts, timed with ``torch.cuda.synchronize``, the
minimum over interleaved rounds: ``forward`` (plain transformers forward with logits),
``lens`` (probes' lens over every layer at the last position, two single-token options), and
``lens_compiled`` (the same with :func:`probes.gpu.compile_mlps`, warmed up first). Peak memory
is ``torch.cuda.max_memory_allocated`` over the method's run.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

#: layers, d_model, heads, vocab of Pythia-1.4B
SHAPE = (24, 2048, 16, 50304)


def main() -> None:
    import torch

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--length", type=int, default=512)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--rows", type=int, default=0, help="rows per batch (0: from free memory)")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("skipped: no CUDA device (the GPU benchmark runs only where one is present)")
        return
    from lens_methods import options as _options
    from lens_methods import word_tokenizer as _tokenizer
    from transformers import GPTNeoXConfig, GPTNeoXForCausalLM

    from probes.gpu import batch_size_for, compile_mlps
    from probes.lens import read_options
    from probes.models import from_hf_model
    from probes.tasks import Item

    layers, d_model, heads, vocab = SHAPE
    torch.manual_seed(0)
    config = GPTNeoXConfig(
        num_hidden_layers=layers,
        hidden_size=d_model,
        num_attention_heads=heads,
        intermediate_size=4 * d_model,
        vocab_size=vocab,
        max_position_embeddings=2048,
    )
    hf_model = GPTNeoXForCausalLM(config).to("cuda", torch.bfloat16).eval()
    model = from_hf_model(hf_model, _tokenizer(vocab, Path(tempfile.mkdtemp())), name="pythia-1.4b-shaped")
    rows = args.rows or batch_size_for(model, args.length)
    tokens = torch.randint(2, vocab, (rows, args.length), device="cuda")
    items = []
    for b, row in enumerate(tokens.tolist()):
        options = _options(2, 1, seed=b)
        items.append(Item(str(b), "bench", " ".join(f"t{t}" for t in row), options[0], options[1]))

    def forward() -> None:
        with torch.inference_mode():
            hf_model(input_ids=tokens, use_cache=False).logits.float().log_softmax(-1)[:, -1, 2].sum()

    def lens() -> None:
        read_options(model, items, batch_size=rows)

    methods = {"forward": forward, "lens": lens}
    times: dict[str, list[float]] = {"forward": [], "lens": [], "lens_compiled": []}
    peaks = dict.fromkeys(times, 0)
    for round_index in range(args.rounds):
        if round_index == 0:
            forward(), lens()  # warm-up
        for name, step in methods.items():
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            start = time.perf_counter()
            step()
            torch.cuda.synchronize()
            times[name].append(time.perf_counter() - start)
            peaks[name] = max(peaks[name], torch.cuda.max_memory_allocated())
    compile_mlps(model)
    lens()  # compiles
    for _ in range(args.rounds):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        start = time.perf_counter()
        lens()
        torch.cuda.synchronize()
        times["lens_compiled"].append(time.perf_counter() - start)
        peaks["lens_compiled"] = max(peaks["lens_compiled"], torch.cuda.max_memory_allocated())
    print(f"{torch.cuda.get_device_name()}; {rows} rows x {args.length} tokens; bf16 model, float32 readout")
    print("| method | tokens/s | peak memory |\n|---|---:|---:|")
    for name, measured in times.items():
        print(f"| {name} | {rows * args.length / min(measured):,.0f} | {peaks[name] / 2**30:.1f} GiB |")
    print(
        f"lens / forward time: {min(times['lens']) / min(times['forward']):.2f}x; "
        f"compiled: {min(times['lens_compiled']) / min(times['forward']):.2f}x"
    )


if __name__ == "__main__":
    main()
