"""Fixtures of tiny random models built from configs (tests/tiny_models.py), so no test downloads anything."""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before transformers is imported: never reach a hub

import pytest
from tiny_models import build_tokenizer, save_tiny_folder, tiny_hf_model

from probes.model.loading import HookedModel, from_hf_model


@pytest.fixture(scope="session")
def tokenizer(tmp_path_factory):
    return build_tokenizer(tmp_path_factory.mktemp("tokenizer"))


@pytest.fixture(scope="session", params=["gpt2", "neox", "llama"])
def tiny_model(request, tokenizer) -> HookedModel:
    return from_hf_model(tiny_hf_model(request.param), tokenizer, name=f"tiny-{request.param}")


@pytest.fixture(scope="session")
def model_folders(tmp_path_factory, tokenizer) -> list[Path]:
    """Two tiny models of different families saved as local folders (a two-rung ladder)."""
    root = tmp_path_factory.mktemp("models")
    return [
        save_tiny_folder(root / "tiny-gpt2", "gpt2", tokenizer, seed=1, n_layers=2),
        save_tiny_folder(root / "tiny-llama", "llama", tokenizer, seed=2, n_layers=3),
    ]
