"""The readout takes each vector's normaliser over the vocabulary in blocks on the CPU
(``probes.model.bridge.readout.CPU_VOCAB_BLOCK``); the test vocabulary (202 tokens) is one block unless a
test makes the blocks smaller, as these do."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from tiny_models import VOCAB, tiny_hf_model
from transformers import Gemma2Config, Gemma2ForCausalLM, GraniteConfig, GraniteForCausalLM

from probes.errors import InvalidItemError
from probes.model.bridge import readout
from probes.model.loading import from_hf_model


@pytest.mark.parametrize("block", [7, 64, 202, 1024])
def test_blocks_equal_transformer_lens_readout(tiny_model, monkeypatch, block):
    monkeypatch.setattr(readout, "CPU_VOCAB_BLOCK", block)
    torch.manual_seed(0)
    resid = torch.randn(3, 5, tiny_model.d_model) * 4
    vector = torch.tensor([0, 0, 4, 2, 4, 1, 3])
    targets = torch.tensor([3, 9, 9, 2, 40, 7, 201])
    got = tiny_model.log_probs_at(resid, vector, targets, chunk_size=4)
    expected = tiny_model.log_probs(resid[:, vector], targets.expand(3, -1))  # TL's logit_readout
    torch.testing.assert_close(got, expected.float(), atol=2e-6, rtol=0)


#: A tiny decoder of either family (grouped-query attention, the test vocabulary).
TINY = dict(
    num_hidden_layers=2,
    hidden_size=32,
    num_attention_heads=4,
    num_key_value_heads=2,
    intermediate_size=64,
    vocab_size=len(VOCAB),
    max_position_embeddings=64,
)


def _gemma2() -> torch.nn.Module:
    config = Gemma2Config(
        **TINY,
        head_dim=8,
        sliding_window=16,
        final_logit_softcapping=0.3,
        architectures=["Gemma2ForCausalLM"],
    )
    return Gemma2ForCausalLM(config).eval()


def _granite() -> torch.nn.Module:
    config = GraniteConfig(**TINY, logits_scaling=0.05, architectures=["GraniteForCausalLM"])
    return GraniteForCausalLM(config).eval()


@pytest.mark.parametrize("backend", ["bridge", "nnsight"])
@pytest.mark.parametrize("build", [_gemma2, _granite], ids=["softcap", "logits-scaling"])
def test_output_transforms_apply_block_by_block(tokenizer, monkeypatch, build, backend):
    """Gemma-2's soft cap and Granite's logit scaling reach every block and the targets' logits
    (the bridge: TransformerLens's adapter; nnsight: :mod:`probes.model.output_transform`): the last
    layer's readout equals transformers' log-softmax of the model's own logits."""
    if backend == "nnsight":
        pytest.importorskip("nnsight")
    monkeypatch.setattr(readout, "CPU_VOCAB_BLOCK", 7)
    torch.manual_seed(0)
    hf = build()
    ids = tokenizer(["w1 w2 w3 w4 w5"], return_tensors="pt").input_ids
    with torch.no_grad():
        logits = hf(ids).logits[0, -1].float()
        hidden = hf(ids, output_hidden_states=True).hidden_states[-1][0, -1]
    expected = torch.log_softmax(logits, dim=-1)
    untransformed = torch.log_softmax(hf.lm_head(hidden).float(), dim=-1)
    assert (untransformed - expected).abs().max() > 1e-2  # the transform matters here
    model = from_hf_model(hf, tokenizer, name=build.__name__, backend=backend)
    with torch.inference_mode(), model.residual_reader([model.n_layers]) as reader:
        last = torch.tensor([ids.shape[1] - 1])
        resid = reader.run(ids, torch.ones_like(ids), torch.tensor([0]), last)
    targets = torch.arange(len(VOCAB))
    got = model.log_probs_at(resid, torch.zeros_like(targets), targets, chunk_size=4)[0]
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)


def _view(unembed: torch.Tensor) -> SimpleNamespace:
    return SimpleNamespace(W_U=unembed, adapter=None)  # no output transform


@pytest.mark.parametrize("vocab", [50304, 151936])
def test_a_dominant_token_is_read_as_accurately_as_float64(vocab):
    """Logits exact in float32 (multiples of 1/64 of few terms), one token far above the rest:
    the readout is within 2e-6 of float64's log-softmax, where a float32 ``log_softmax`` over the
    whole row is off by 5.4e-6 (50304 tokens) and 1.7e-5 (151936) here (docs/measures.md)."""
    generator = torch.Generator().manual_seed(0)
    normed = torch.randint(-8, 9, (6, 4), generator=generator).float() / 8
    unembed = torch.randint(-8, 9, (4, vocab), generator=generator).float() / 8
    normed[0], unembed[:, 7] = 1.0, 4.0  # token 7's logit in row 0 is 16, the others' at most 4
    vector = torch.tensor([0, 0, 1, 5, 3])
    targets = torch.tensor([7, vocab - 1, 7, 1023, 1024])
    got = readout._log_softmax_at(_view(unembed), None, normed, vector, targets)
    exact = torch.log_softmax((normed @ unembed).double(), dim=-1)[vector, targets]
    assert exact[0] > -0.05  # near-certain
    torch.testing.assert_close(got.double(), exact, atol=2e-6, rtol=0)


def test_masked_tokens_read_as_log_softmax_reads_them():
    """A bias of -inf (masked ids) over whole blocks: -inf for the masked, finite for the rest."""
    torch.manual_seed(0)
    normed, unembed = torch.randn(3, 8), torch.randn(8, 3000)
    bias = torch.zeros(3000)
    bias[2048:] = float("-inf")
    vector, targets = torch.tensor([0, 1, 2, 2]), torch.tensor([5, 2047, 2100, 2999])
    got = readout._log_softmax_at(_view(unembed), bias, normed, vector, targets)
    expected = torch.log_softmax(normed @ unembed + bias, dim=-1)[vector, targets]
    torch.testing.assert_close(got, expected, atol=2e-6, rtol=0)
    assert got[:2].isfinite().all() and (got[2:] == float("-inf")).all()


def test_gradients_flow_as_through_log_softmax():
    torch.manual_seed(0)
    unembed = torch.randn(8, 3000)
    normed = torch.randn(3, 8, requires_grad=True)
    vector, targets = torch.tensor([0, 1, 2, 2]), torch.tensor([5, 1500, 2100, 2999])
    readout._log_softmax_at(_view(unembed), None, normed, vector, targets).sum().backward()
    got, normed.grad = normed.grad, None
    torch.log_softmax(normed @ unembed, dim=-1)[vector, targets].sum().backward()
    torch.testing.assert_close(got, normed.grad, atol=1e-5, rtol=0)


@pytest.mark.parametrize("backend", ["bridge", "nnsight"])
@pytest.mark.parametrize("target", [-1, len(VOCAB), 1500])
def test_a_target_outside_the_unembedding_is_refused(tokenizer, backend, target):
    if backend == "nnsight":
        pytest.importorskip("nnsight")
    model = from_hf_model(tiny_hf_model("gpt2"), tokenizer, name="tiny-gpt2", backend=backend)
    resid = torch.randn(2, 3, model.d_model)
    with pytest.raises(InvalidItemError, match=f"token id {target} is outside tiny-gpt2's"):
        model.log_probs_at(resid, torch.tensor([0, 1]), torch.tensor([5, target]), chunk_size=4)
    with pytest.raises(InvalidItemError, match=f"token id {target} is outside"):
        model.log_probs(resid[:, :2], torch.tensor([5, target]).expand(2, -1), chunk_size=4)
