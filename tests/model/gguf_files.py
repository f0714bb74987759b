"""Tiny GGUF files written in the tests: a family's tiny random model (tests/model/families.py) under
GGUF tensor names, its config under the GGUF keys transformers reads back, and a small byte-pair
tokenizer in the metadata. Values need not survive the round trip (transformers permutes or
splits some tensors on load): the lens is compared with plain transformers reading the same file.
"""

from __future__ import annotations

from pathlib import Path

import torch

#: A GGUF file's name -> (the family of tests/model/families.py whose shape it stores, its GGUF
#: architecture, config fields changed where transformers reads the GGUF keys otherwise: GPT-2's
#: position table is sized by n_positions, and Qwen3's head width is not read back, so it keeps
#: transformers' default of 128). Mistral is left out: llama.cpp stores it as a llama file, and
#: transformers reads it back as LlamaForCausalLM.
GGUF_FAMILIES: dict[str, tuple[str, str, dict[str, int]]] = {
    "llama": ("llama", "llama", {}),
    "qwen2": ("qwen2", "qwen2", {}),
    "qwen3": ("qwen3", "qwen3", {"head_dim": 128}),
    "phi3": ("phi3", "phi3", {}),
    "gpt2": ("gpt2", "gpt2", {"n_positions": 1024, "n_ctx": 1024}),
    "bloom": ("bloom", "bloom", {}),
    "falcon": ("falcon", "falcon", {}),
    "stablelm": ("stablelm", "stablelm", {}),
    "starcoder2": ("starcoder2", "starcoder2", {}),
    "gemma2": ("gemma2", "gemma2", {}),
    "gemma3": ("gemma3", "gemma3", {}),
    "qwen3_moe": ("qwen3_moe", "qwen3moe", {"head_dim": 128}),
    "qwen2_moe": ("qwen2_moe", "qwen2moe", {}),
}

#: The tokenizer: byte-level BPE over printable ASCII (so any English prompt tokenizes, a
#: character or so a token), a space and a newline, and merges of the test words' starts.
CHARACTERS = [chr(code) for code in range(33, 127)]
SPACE, NEWLINE = "\u0120", "\u010a"  # byte-level BPE's space and newline
MERGES = [f"{SPACE} w", *(f"{SPACE}w {digit}" for digit in "0123456789")]
TOKENS = ["<|endoftext|>", *CHARACTERS, SPACE, NEWLINE, *(merge.replace(" ", "") for merge in MERGES)]

#: HF weights stored transposed in GGUF (GPT-2's Conv1D is in x out; llama.cpp stores out x in).
TRANSPOSED = {"gpt2": ("c_attn", "c_proj", "c_fc")}


def tiny_gguf(folder: Path, name: str, seed: int = 0) -> Path:
    """A tiny random model of ``GGUF_FAMILIES[name]`` written to ``folder/<name>.gguf``."""
    import transformers
    from families import BY_NAME

    family_name, architecture, changes = GGUF_FAMILIES[name]
    family = BY_NAME[family_name]
    config = getattr(transformers, family.config_class)(
        vocab_size=len(TOKENS), bos_token_id=0, eos_token_id=0, pad_token_id=0, **{**family.fields, **changes}
    )
    torch.manual_seed(seed)
    hf_model = getattr(transformers, family.model_class)(config).float().eval()
    with torch.no_grad():  # norms start as constants (Gemma's at 0, read back as -1): make them vary
        for parameter in hf_model.parameters():
            if parameter.ndim == 1:
                parameter.uniform_(0.5, 1.5)
    return write_gguf(folder / f"{name}.gguf", architecture, hf_model, f"tiny-{name}")


def write_gguf(path: Path, architecture: str, hf_model: torch.nn.Module, name: str) -> Path:
    """Write ``hf_model`` (its vocabulary the size of :data:`TOKENS`) as a float32 GGUF file of
    ``architecture`` named ``name``."""
    import gguf
    from transformers.integrations.ggml import GGUF_CONFIG_MAPPING

    config = hf_model.config
    writer = gguf.GGUFWriter(str(path), architecture)
    writer.add_name(name)
    # transformers keys the config fields of GGUF's "qwen3moe" as "qwen3_moe"
    mapping = (
        GGUF_CONFIG_MAPPING.get(architecture) or GGUF_CONFIG_MAPPING[architecture.replace("moe", "_moe")]
    )
    for key, field in mapping.items():
        value = getattr(config, field, None) if field else None
        if value is None or isinstance(value, (list, dict)):
            continue
        name = f"{architecture}.{key}"
        if isinstance(value, float):
            writer.add_float32(name, value)
        else:
            writer.add_uint32(name, int(value))
    if getattr(config, "final_logit_softcapping", None):
        writer.add_float32(f"{architecture}.final_logit_softcapping", float(config.final_logit_softcapping))
    writer.add_tokenizer_model("gpt2")
    writer.add_token_list(TOKENS)
    writer.add_token_types([gguf.TokenType.CONTROL] + [gguf.TokenType.NORMAL] * (len(TOKENS) - 1))
    writer.add_token_merges(MERGES)
    writer.add_bos_token_id(0)
    writer.add_eos_token_id(0)
    writer.add_pad_token_id(0)
    arch = next(key for key, value in gguf.MODEL_ARCH_NAMES.items() if value == architecture)
    names = gguf.get_tensor_name_map(arch, config.num_hidden_layers)
    tied = getattr(config, "tie_word_embeddings", False)
    for hf_name, tensor in hf_model.state_dict().items():
        if tied and hf_name.endswith("lm_head.weight"):
            continue
        values = tensor.float()
        if hf_name.endswith("experts.gate_up_proj"):  # stored as two: experts x d_ff x d_model each
            block = hf_name.split(".layers.")[1].split(".")[0]
            gate, up = values.chunk(2, dim=1)
            writer.add_tensor(f"blk.{block}.ffn_gate_exps.weight", gate.contiguous().numpy())
            writer.add_tensor(f"blk.{block}.ffn_up_exps.weight", up.contiguous().numpy())
            continue
        name = names.get_name(hf_name, try_suffixes=(".weight", ".bias"))
        if name is None:
            continue  # buffers (rotary tables, masks) are rebuilt from the config
        if not name.endswith((".weight", ".bias")):
            name += ".weight"  # fused expert tensors are parameters without a suffix in transformers
        if any(part in hf_name for part in TRANSPOSED.get(architecture, ())) and values.ndim == 2:
            values = values.T
        if name.endswith("ffn_gate_inp_shexp.weight"):
            values = values.reshape(-1)  # llama.cpp stores the shared expert's gate as a vector
        writer.add_tensor(name, values.contiguous().numpy())
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path
