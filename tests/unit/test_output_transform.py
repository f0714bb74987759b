"""The post-unembedding transform the nnsight backend reads from a model's config."""

from __future__ import annotations

import pytest
import torch
from transformers import (
    CohereConfig,
    FalconH1Config,
    Gemma2Config,
    GraniteConfig,
    HyperCLOVAXConfig,
    LlamaConfig,
    MptConfig,
)

from probes.model.output_transform import output_transform

LOGITS = torch.linspace(-50, 50, 11)


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        (GraniteConfig(logits_scaling=4.0), LOGITS / 4),
        (HyperCLOVAXConfig(logits_scaling=4.0), LOGITS * 4),  # the same field, the other way
        (CohereConfig(logit_scale=0.5), LOGITS * 0.5),
        (FalconH1Config(lm_head_multiplier=2.0), LOGITS * 2),
        (Gemma2Config(final_logit_softcapping=30.0), 30 * torch.tanh(LOGITS / 30)),
    ],
    ids=["granite", "hyperclovax", "cohere", "falcon-h1", "gemma2"],
)
def test_each_family_s_transform(config, expected):
    transform = output_transform(config)
    assert transform is not None
    torch.testing.assert_close(transform(LOGITS), expected)


@pytest.mark.parametrize(
    "config",
    [
        LlamaConfig(),
        GraniteConfig(logits_scaling=1.0),
        Gemma2Config(final_logit_softcapping=None),
        MptConfig(logit_scale=2.0),  # MPT's forward never applies it
    ],
    ids=["llama", "granite-unscaled", "gemma2-uncapped", "mpt"],
)
def test_no_transform_where_the_forward_applies_none(config):
    assert output_transform(config) is None
