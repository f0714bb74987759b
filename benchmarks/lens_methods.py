"""The random-model methods of ``bench_lens.py``: the ``random`` group (one prompt length) and the
``lengths`` group (multi-token options against prompt length). Imported by its workers only.

A random GPT-NeoX (nothing downloaded) is built twice from one seed: one copy goes behind the
bridge (``from_hf_model`` wraps its modules in place) and is what probes and TransformerLens
read; the other is never bridged, so ``forward``, ``forward_sdpa`` and ``floor`` time plain
transformers on the very same weights.
"""

from __future__ import annotations

import argparse
import contextlib
import random
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: layers, d_model, heads, vocabulary
SHAPES = {
    "tiny": (4, 128, 4, 4096),
    "pythia-160m-shaped": (12, 768, 12, 50304),
    "pythia-1.4b-shaped": (24, 2048, 16, 50304),
}
#: method -> (options per item, tokens per option, how read_options runs them)
LENS_METHODS = {
    "lens": (2, 1, {}),
    "1x4": (4, 1, {}),
    "5x2": (2, 5, {}),
    "5x4": (4, 5, {}),
    "unpacked5x2": (2, 5, {"pack_continuations": False}),
    "unpacked5x4": (4, 5, {"pack_continuations": False}),
    "rows5x2": (2, 5, {"reuse_prompts": False}),
    "rows5x4": (4, 5, {"reuse_prompts": False}),
}
#: the methods of the ``lengths`` group, at every prompt length
LENGTH_METHODS = ["lens", "1x4", "5x2", "5x4"]


def random_model(shape: str) -> Any:
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


def word_tokenizer(vocab: int, folder: Path) -> Any:
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    # Special tokens are matched inside words before the split: named "t0"/"t1" they cut "t123"
    # into "t1" + "23" (unknown), so prompts grew ~25% and "t16" became two tokens (before h19-perf3).
    words = {"<unk>": 0, "<pad>": 1, **{f"t{i}": i for i in range(2, vocab)}}
    backend = Tokenizer(models.WordLevel(words, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    fast = PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="<unk>", pad_token="<pad>")
    fast.save_pretrained(folder)
    return AutoTokenizer.from_pretrained(folder)


def options(count: int, tokens: int, seed: int) -> list[str]:
    """``count`` options of ``tokens`` random word tokens each (distinct first tokens)."""
    rng = random.Random(seed)
    return [
        " " + " ".join(f"t{2 + o * 7 + (rng.randrange(1000) if j else 0)}" for j in range(tokens))
        for o in range(count)
    ]


@dataclass(frozen=True)
class RepeatingLens:
    """The logit lens as it read at d72451a: TransformerLens's ``logit_readout`` per read (its
    entropy and ranks too), each vector repeated per target (no ``read_at``)."""

    name: str = "logit"
    chunk_size: int = 256

    def read(self, model: Any, resid: Any, layers: Any, targets: Any) -> Any:
        return model.log_probs(resid, targets, self.chunk_size).float()


class _Stop(Exception):
    pass


def _bridged(shape: str) -> tuple[Any, Any]:
    """The bridged model (probes' view of it) and its vocabulary size."""
    from probes.model.loading import from_hf_model

    vocab = SHAPES[shape][3]
    tokenizer = word_tokenizer(vocab, Path(tempfile.mkdtemp()))
    return from_hf_model(random_model(shape), tokenizer, name=shape), vocab


def _items(model: Any, tokens: Any, count: int, answer_tokens: int) -> list:
    """Items whose prompts tokenize to ``tokens``' rows exactly (the lens reads what forward and
    TL read) and whose options are ``answer_tokens`` tokens each."""
    from probes.tasks import Item

    out = []
    for b, row in enumerate(tokens):
        prompt = " ".join(f"t{int(t)}" for t in row)
        chosen = options(count, answer_tokens, seed=b)
        assert model.tokenizer(prompt).input_ids == row.tolist(), "the prompt does not tokenize back"
        for option in chosen:
            assert len(model.tokenizer(option, add_special_tokens=False).input_ids) == answer_tokens
        out.append(Item(str(b), "bench", prompt, chosen[0], chosen[1], options=tuple(chosen)))
    return out


def _lens_step(model: Any, chosen: list, batch: int, **read: Any) -> Any:
    from probes.lenses.reading import read_options

    def step(small: bool) -> None:
        read_options(model, chosen[:1] if small else chosen, batch_size=batch, **read)

    return step


def random_steps(args: argparse.Namespace) -> dict:
    """Every method of the ``random`` group: ``method -> step(small)``."""
    import torch

    shape = "tiny" if args.quick else "pythia-160m-shaped"
    model, vocab = _bridged(shape)
    plain = random_model(shape)  # the same weights, never bridged
    torch.manual_seed(1)
    tokens = torch.randint(2, vocab, (args.batch, args.length))

    def forward(attention: str, hf_model: Any = plain) -> Any:
        def step(small: bool) -> None:
            if hf_model is plain:
                plain.set_attn_implementation(attention)
            with torch.inference_mode():
                hf_model(input_ids=tokens[:1] if small else tokens, use_cache=False).logits.sum()

        return step

    def floor(small: bool) -> None:
        """Plain hooks on the never-bridged blocks: the last position of every layer, stop after
        the last block, no vocabulary head, no readout."""
        plain.set_attn_implementation("sdpa")
        layers, kept = plain.gpt_neox.layers, []

        def keep(module: Any, args: Any, output: Any, last: bool = False) -> None:
            kept.append((output[0] if isinstance(output, tuple) else output)[:, -1].clone())
            if last:
                raise _Stop

        handles = [layers[0].register_forward_pre_hook(lambda m, a: kept.append(a[0][:, -1].clone()))]
        last = len(layers) - 1
        handles += [
            layer.register_forward_hook(lambda m, a, o, final=i == last: keep(m, a, o, final))
            for i, layer in enumerate(layers)
        ]
        try:
            with torch.inference_mode(), contextlib.suppress(_Stop):
                plain(input_ids=tokens[:1] if small else tokens, use_cache=False)
        finally:
            for handle in handles:
                handle.remove()

    def tl(small: bool) -> None:
        from transformer_lens.tools.analysis import logit_lens

        with torch.inference_mode():
            batch = tokens[:1] if small else tokens
            logit_lens(model.bridge, batch, positions=-1, targets=[2, 3], return_type="log_probs")

    steps = {
        "forward": forward("eager"),
        "forward_sdpa": forward("sdpa"),
        "forward_bridged": forward("eager", model.hf_model),
        "floor": floor,
        "tl": tl,
        "lens_d72451a": _lens_step(model, _items(model, tokens, 2, 1), args.batch, lens=RepeatingLens()),
    }
    for method, (count, answer_tokens, how) in LENS_METHODS.items():
        chosen = _items(model, tokens, count, answer_tokens)
        steps[method] = _lens_step(model, chosen, args.batch, **how)
        if method in ONE_BLOCK_METHODS:
            steps[f"oneblock{method}"] = _one_vocabulary_block(steps[method], vocab)
    return steps


#: Methods also timed with the readout's normaliser over the whole vocabulary in one block
#: (``oneblock5x2``, ``oneblock5x4``: how the CPU read before 2026-11-30 session 8).
ONE_BLOCK_METHODS = ("5x2", "5x4")


def _one_vocabulary_block(step: Any, vocab: int) -> Any:
    """``step`` with ``probes.model.bridge.readout.CPU_VOCAB_BLOCK`` set to the whole vocabulary."""
    from probes.model.bridge import readout

    def run(small: bool) -> None:
        kept, readout.CPU_VOCAB_BLOCK = readout.CPU_VOCAB_BLOCK, vocab
        try:
            step(small)
        finally:
            readout.CPU_VOCAB_BLOCK = kept

    return run


def length_steps(args: argparse.Namespace) -> dict:
    """The ``lengths`` group: single-token and 5-token options at every prompt length of
    ``--lengths`` (``method@L``), one model, ``--batch`` prompts each."""
    import torch

    shape = "tiny" if args.quick else "pythia-160m-shaped"
    model, vocab = _bridged(shape)
    steps = {}
    for length in args.lengths:
        torch.manual_seed(length)
        tokens = torch.randint(2, vocab, (args.batch, length))
        for method in LENGTH_METHODS:
            count, answer_tokens, _ = LENS_METHODS[method]
            steps[f"{method}@{length}"] = _lens_step(
                model, _items(model, tokens, count, answer_tokens), args.batch
            )
    return steps
