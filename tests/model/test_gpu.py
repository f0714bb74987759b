"""The GPU path: batch size from free memory everywhere; bf16 on CUDA, compiled MLPs (CUDA only)."""

from __future__ import annotations

import pytest
import torch
from tiny_models import tiny_hf_model

from probes.errors import InvalidOptionError
from probes.lenses.reading import read_options
from probes.model.gpu import batch_size_for, compile_mlps, readout_bytes, row_bytes
from probes.model.loading import from_hf_model
from probes.tasks import Item

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
ITEMS = [
    Item("a", "t", "w1 w2 w3 w4", " w5", " w6 w7"),
    Item("b", "t", "w8 w9", " w10 w11 w12", " w13", options=(" w10 w11 w12", " w13", " w14")),
]


def test_batch_size_follows_free_memory(tiny_model):
    per_row = row_bytes(tiny_model, 100)
    base = readout_bytes(tiny_model)
    assert batch_size_for(tiny_model, 100, fraction=1.0, free_bytes=base + 7 * per_row) == 7
    assert batch_size_for(tiny_model, 100, fraction=1.0, free_bytes=base + 7 * per_row, largest=4) == 4
    assert batch_size_for(tiny_model, 100, free_bytes=0) == 1
    assert row_bytes(tiny_model, 100, keep_cache=False) < per_row
    if not torch.cuda.is_available():
        with pytest.raises(InvalidOptionError, match="device='cuda'"):
            batch_size_for(tiny_model, 100)


@cuda
def test_bf16_on_cuda_reads_close_to_float32_on_cpu(tokenizer):
    cpu = from_hf_model(tiny_hf_model("llama"), tokenizer, name="cpu")
    gpu = from_hf_model(tiny_hf_model("llama").to("cuda", torch.bfloat16), tokenizer, name="gpu")
    expected = read_options(cpu, ITEMS)
    got = read_options(gpu, ITEMS, batch_size=batch_size_for(gpu, 16))
    assert all(t.dtype == torch.float32 for t in got.logprobs)
    for fast, slow in zip(got.logprobs, expected.logprobs):
        torch.testing.assert_close(fast, slow, atol=0.1, rtol=0.05)  # bf16 forward pass


@cuda
def test_compiled_mlps_read_what_eager_reads(tokenizer):
    eager = from_hf_model(tiny_hf_model("neox").to("cuda"), tokenizer, name="eager")
    compiled = from_hf_model(tiny_hf_model("neox").to("cuda"), tokenizer, name="compiled")
    assert compile_mlps(compiled) == compiled.n_layers
    for fast, slow in zip(read_options(compiled, ITEMS).logprobs, read_options(eager, ITEMS).logprobs):
        torch.testing.assert_close(fast, slow, atol=1e-4, rtol=0)
