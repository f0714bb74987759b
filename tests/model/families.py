"""The architecture matrix as data: one tiny random config per decoder-only family.

Each entry names the transformers classes, the config fields that make the family differ (what
the matrix is there to cover: embedding scales, tied or untied unembedding, final-norm variants,
parallel attention, partial rotary, ALiBi, sliding windows, post-norms, ``project_out``, logit
soft caps and scales). Every model has 2 layers, width 32, the test vocabulary of :mod:`conftest`
and float32 weights, seeded (OPT's with project_out at a wider initial spread, so that their
outputs are far from uniform).

Both backends are expected to take a family unless ``refused`` names one and says why (the
matrix checks the refusal is the clear error it should be).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
import transformers

#: Words w0 ... w199 plus [UNK] and [PAD] (conftest.VOCAB).
VOCAB_SIZE = 202
PAD = 1

LLAMA_LIKE = {
    "hidden_size": 32,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "intermediate_size": 64,
    "num_hidden_layers": 2,
    "max_position_embeddings": 64,
}
GPT2_LIKE = {"n_layer": 2, "n_embd": 32, "n_head": 4, "n_positions": 64}


@dataclass(frozen=True)
class Family:
    """One family of the matrix: how to build a tiny model of it and what it exercises."""

    name: str
    model_class: str
    config_class: str
    fields: dict[str, Any]
    covers: str
    #: backend -> why it refuses the family
    refused: dict[str, str] = field(default_factory=dict)

    def build(self, seed: int = 0) -> torch.nn.Module:
        """The tiny random model, in float32 and eval mode, its vectors (norms, biases) random too."""
        config = getattr(transformers, self.config_class)(
            vocab_size=VOCAB_SIZE, pad_token_id=PAD, bos_token_id=None, eos_token_id=None, **self.fields
        )
        torch.manual_seed(seed)
        model = getattr(transformers, self.model_class)(config).float().eval()
        with torch.no_grad():  # norms and biases start as constants (weights 1, biases 0): make them
            for parameter in model.parameters():  # vary, so a readout that skipped one would show
                if parameter.ndim == 1:
                    parameter.uniform_(0.5, 1.5)
        return model


FAMILIES = [
    Family("gpt2", "GPT2LMHeadModel", "GPT2Config", GPT2_LIKE, "LayerNorm, learned positions, tied, Conv1D"),
    Family(
        "gpt_neox",
        "GPTNeoXForCausalLM",
        "GPTNeoXConfig",
        {
            "num_hidden_layers": 2,
            "hidden_size": 32,
            "num_attention_heads": 4,
            "intermediate_size": 64,
            "max_position_embeddings": 64,
        },
        "Pythia: parallel attention, partial rotary (0.25), untied",
    ),
    Family(
        "opt",
        "OPTForCausalLM",
        "OPTConfig",
        {
            "num_hidden_layers": 2,
            "hidden_size": 32,
            "num_attention_heads": 4,
            "ffn_dim": 64,
            "max_position_embeddings": 64,
        },
        "OPT-125m's shape: learned positions (offset 2), final norm declared before the blocks",
    ),
    Family(
        "opt_350m",
        "OPTForCausalLM",
        "OPTConfig",
        {
            "num_hidden_layers": 2,
            "hidden_size": 32,
            "num_attention_heads": 4,
            "ffn_dim": 64,
            "word_embed_proj_dim": 16,
            "init_std": 0.2,
            "do_layer_norm_before": False,
            "max_position_embeddings": 64,
        },
        "OPT-350m's shape: post-norms, no final norm, project_out before the unembedding",
    ),
    Family(
        "opt_project_out",
        "OPTForCausalLM",
        "OPTConfig",
        {
            "num_hidden_layers": 2,
            "hidden_size": 32,
            "num_attention_heads": 4,
            "ffn_dim": 64,
            "word_embed_proj_dim": 16,
            "init_std": 0.2,
            "max_position_embeddings": 64,
        },
        "pre-norm OPT with project_out after the final norm (no released checkpoint has it)",
        refused={"bridge": "the bridge does not expose the final norm before its project_out"},
    ),
    Family("llama", "LlamaForCausalLM", "LlamaConfig", LLAMA_LIKE, "RMSNorm, rotary, grouped-query, untied"),
    Family("qwen2", "Qwen2ForCausalLM", "Qwen2Config", LLAMA_LIKE, "qkv biases"),
    Family("qwen3", "Qwen3ForCausalLM", "Qwen3Config", {**LLAMA_LIKE, "head_dim": 8}, "q/k norms"),
    Family(
        "gemma",
        "GemmaForCausalLM",
        "GemmaConfig",
        {**LLAMA_LIKE, "head_dim": 8},
        "embeddings times sqrt(d_model), RMSNorm (1 + w), tied",
    ),
    Family(
        "gemma2",
        "Gemma2ForCausalLM",
        "Gemma2Config",
        {
            **LLAMA_LIKE,
            "head_dim": 8,
            "sliding_window": 4,
            "final_logit_softcapping": 3.0,
            "attn_logit_softcapping": 5.0,
        },
        "logit and attention soft caps, post-norms, sliding window",
    ),
    Family(
        "gemma3",
        "Gemma3ForCausalLM",
        "Gemma3TextConfig",
        {**LLAMA_LIKE, "head_dim": 8, "sliding_window": 4},
        "q/k norms, post-norms, local and global rotary, sliding window",
    ),
    Family(
        "phi",
        "PhiForCausalLM",
        "PhiConfig",
        {**LLAMA_LIKE, "partial_rotary_factor": 0.5},
        "parallel attention, partial rotary, LayerNorm, unembedding bias",
    ),
    Family("phi3", "Phi3ForCausalLM", "Phi3Config", LLAMA_LIKE, "fused qkv and gate-up projections"),
    Family(
        "mistral",
        "MistralForCausalLM",
        "MistralConfig",
        {**LLAMA_LIKE, "sliding_window": 4},
        "sliding window",
    ),
    Family("olmo", "OlmoForCausalLM", "OlmoConfig", LLAMA_LIKE, "LayerNorm without weights"),
    Family("olmo2", "Olmo2ForCausalLM", "Olmo2Config", LLAMA_LIKE, "post-norms only, q/k norms"),
    Family(
        "falcon",
        "FalconForCausalLM",
        "FalconConfig",
        {"num_hidden_layers": 2, "hidden_size": 32, "num_attention_heads": 4, "parallel_attn": True},
        "parallel attention, multi-query, rotary",
    ),
    Family(
        "falcon_alibi",
        "FalconForCausalLM",
        "FalconConfig",
        {
            "num_hidden_layers": 2,
            "hidden_size": 32,
            "num_attention_heads": 4,
            "parallel_attn": True,
            "alibi": True,
        },
        "Falcon's ALiBi variant",
    ),
    Family(
        "gptj",
        "GPTJForCausalLM",
        "GPTJConfig",
        {**GPT2_LIKE, "rotary_dim": 4},
        "parallel attention, partial rotary (interleaved), unembedding bias",
    ),
    Family(
        "bloom",
        "BloomForCausalLM",
        "BloomConfig",
        {"n_layer": 2, "hidden_size": 32, "n_head": 4},
        "ALiBi, embedding LayerNorm",
        refused={"nnsight": "its attention and MLP add the residual stream to their own output"},
    ),
    Family("smollm3", "SmolLM3ForCausalLM", "SmolLM3Config", LLAMA_LIKE, "layers without rotary (NoPE)"),
    Family("stablelm", "StableLmForCausalLM", "StableLmConfig", LLAMA_LIKE, "LayerNorm, partial rotary"),
    Family(
        "gpt_neo",
        "GPTNeoForCausalLM",
        "GPTNeoConfig",
        {
            "num_layers": 2,
            "hidden_size": 32,
            "num_heads": 4,
            "attention_types": [[["global", "local"], 1]],
            "window_size": 4,
            "max_position_embeddings": 64,
            "intermediate_size": 64,
        },
        "local attention layers (a window of 4), attention nested one module deeper",
    ),
    Family(
        "granite",
        "GraniteForCausalLM",
        "GraniteConfig",
        {
            **LLAMA_LIKE,
            "logits_scaling": 4.0,
            "embedding_multiplier": 3.0,
            "residual_multiplier": 0.5,
            "attention_multiplier": 0.3,
        },
        "logits divided by logits_scaling, embedding and residual multipliers",
    ),
    Family(
        "cohere",
        "CohereForCausalLM",
        "CohereConfig",
        {**LLAMA_LIKE, "logit_scale": 0.5},
        "logits times logit_scale, parallel attention, LayerNorm without bias",
    ),
    Family("starcoder2", "Starcoder2ForCausalLM", "Starcoder2Config", LLAMA_LIKE, "LayerNorm, biases, GQA"),
    Family("gpt_bigcode", "GPTBigCodeForCausalLM", "GPTBigCodeConfig", GPT2_LIKE, "multi-query attention"),
    Family(
        "codegen",
        "CodeGenForCausalLM",
        "CodeGenConfig",
        {**GPT2_LIKE, "rotary_dim": 4, "n_ctx": 64},
        "parallel attention, fused qkv, partial rotary",
        refused={"bridge": "TransformerLens 4.3's adapter reads a rotary table transformers 5.x moved"},
    ),
    Family(
        "mpt",
        "MptForCausalLM",
        "MptConfig",
        {"n_layers": 2, "d_model": 32, "n_heads": 4, "max_seq_len": 64},
        "ALiBi, LayerNorm without bias",
        refused={"nnsight": "its MLP adds the residual stream to its own output"},
    ),
    Family("olmo3", "Olmo3ForCausalLM", "Olmo3Config", LLAMA_LIKE, "post-norms, sliding window"),
    Family(
        "mixtral",
        "MixtralForCausalLM",
        "MixtralConfig",
        {**LLAMA_LIKE, "num_local_experts": 4},
        "mixture of experts (top-2 of 4)",
    ),
]

#: Families only the GGUF tests build (tests/model/gguf_files.py): mixtures of experts that
#: transformers reads from GGUF.
GGUF_ONLY = [
    Family(
        "qwen3_moe",
        "Qwen3MoeForCausalLM",
        "Qwen3MoeConfig",
        {**LLAMA_LIKE, "num_experts": 4, "num_experts_per_tok": 2},
        "mixture of experts (transformers' default expert width: GGUF does not carry it back)",
    ),
    Family(
        "qwen2_moe",
        "Qwen2MoeForCausalLM",
        "Qwen2MoeConfig",
        {**LLAMA_LIKE, "num_experts": 4, "num_experts_per_tok": 2},
        "mixture of experts with a shared expert (default widths, as above)",
    ),
]

BY_NAME = {family.name: family for family in FAMILIES + GGUF_ONLY}
