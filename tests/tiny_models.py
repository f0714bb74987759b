"""Tiny random models built from configs, and their tokenizer, so no test downloads anything.

Test modules import these directly (``from tiny_models import tiny_hf_model``); ``conftest.py``
turns them into fixtures.
"""

from __future__ import annotations

from pathlib import Path

import torch
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import (
    AutoTokenizer,
    GPT2Config,
    GPT2LMHeadModel,
    GPTNeoXConfig,
    GPTNeoXForCausalLM,
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedTokenizerFast,
)

#: Words of the test vocabulary: w0 ... w199.
WORDS = [f"w{i}" for i in range(200)]
VOCAB = ["[UNK]", "[PAD]", *WORDS]


def build_tokenizer(folder: Path):
    """A word-level tokenizer saved and reloaded, so it carries a name_or_path."""
    backend = Tokenizer(models.WordLevel({w: i for i, w in enumerate(VOCAB)}, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    fast = PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="[UNK]", pad_token="[PAD]")
    fast.save_pretrained(folder)
    return AutoTokenizer.from_pretrained(folder)


def tiny_hf_model(family: str, seed: int = 0, n_layers: int = 3):
    """A random tiny causal LM of the given family (gpt2, neox or llama)."""
    torch.manual_seed(seed)
    vocab = len(VOCAB)
    if family == "gpt2":
        config = GPT2Config(
            n_layer=n_layers,
            n_embd=32,
            n_head=4,
            vocab_size=vocab,
            n_positions=64,
            bos_token_id=None,
            eos_token_id=None,
        )
        return GPT2LMHeadModel(config).eval()
    if family == "neox":
        config = GPTNeoXConfig(
            num_hidden_layers=n_layers,
            hidden_size=32,
            num_attention_heads=4,
            intermediate_size=64,
            vocab_size=vocab,
            max_position_embeddings=64,
        )
        return GPTNeoXForCausalLM(config).eval()
    if family == "llama":
        config = LlamaConfig(
            num_hidden_layers=n_layers,
            hidden_size=32,
            num_attention_heads=4,
            num_key_value_heads=2,
            intermediate_size=64,
            vocab_size=vocab,
            max_position_embeddings=64,
        )
        return LlamaForCausalLM(config).eval()
    raise ValueError(family)


def save_tiny_folder(folder: Path, family: str, tokenizer, seed: int = 0, n_layers: int = 3) -> Path:
    """A tiny random model saved as a Hugging Face folder (safetensors + tokenizer)."""
    tiny_hf_model(family, seed=seed, n_layers=n_layers).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
