"""Model specs and loading: every source gives the same standard view; bad input, clear errors."""

from __future__ import annotations

import pytest
import torch
from tiny_models import tiny_hf_model

from probes.errors import UnknownModelError, UnsafeWeightsError
from probes.model.loading import from_hf_model, load_model, parse_spec


def test_parse_spec():
    assert parse_spec("EleutherAI/pythia-160m@step3000").revision == "step3000"
    assert parse_spec("EleutherAI/pythia-160m@step3000").label == "EleutherAI/pythia-160m@step3000"
    assert parse_spec("gpt2").source == "hub"
    assert parse_spec("organism:1x4").source == "organism"
    with pytest.raises(UnknownModelError, match="organism rung 'organism-small' is unknown"):
        parse_spec("organism:small")  # when parsed: before any claim is taken or model computed
    for missing in ("./no/such/folder", "/no/such/model.gguf", "weights.safetensors"):
        with pytest.raises(UnknownModelError, match="check the path"):
            parse_spec(missing)


def test_standard_view_of_a_folder(model_folders):
    model = load_model(str(model_folders[1]))
    assert model.spec.source == "folder" and model.name == "tiny-llama"
    assert (model.n_layers, model.d_model, model.n_ctx) == (3, 32, 64)
    assert len(model.blocks) == 3 and model.final_norm is not None and model.unembed is not None
    assert set(model.resid_hook_names) <= set(model.bridge.hook_dict)
    assert model.describe()["architecture"] == "LlamaForCausalLM"
    # the folder model is the in-memory one: same numbers
    in_memory = from_hf_model(tiny_hf_model("llama", seed=2), model.tokenizer, name="m")
    ids = torch.tensor([[3, 4, 5]])
    with torch.no_grad():
        torch.testing.assert_close(model.hf_model(ids).logits, in_memory.hf_model(ids).logits)


def test_pickle_weights_are_refused(tmp_path, tokenizer):
    folder = tmp_path / "pickled"
    tiny_hf_model("gpt2").save_pretrained(folder, safe_serialization=False)
    if any(folder.glob("*.safetensors")):  # transformers refuses to write pickles: make one by hand
        for path in folder.glob("*.safetensors"):
            path.unlink()
    (folder / "pytorch_model.bin").write_bytes(b"not loaded")
    with pytest.raises(UnsafeWeightsError, match="safetensors"):
        load_model(str(folder))


def test_folders_that_are_not_models(tmp_path):
    with pytest.raises(UnknownModelError, match="config.json"):
        load_model(str(tmp_path))


def test_unknown_hub_model_offline():
    with pytest.raises(UnknownModelError, match="hub"):
        load_model("no-such-org/no-such-model-xyz")


def test_tokenizer_without_a_name_is_refused(tokenizer):
    from transformers import PreTrainedTokenizerFast

    bare = PreTrainedTokenizerFast(tokenizer_object=tokenizer.backend_tokenizer)
    with pytest.raises(UnknownModelError, match="name_or_path"):
        from_hf_model(tiny_hf_model("gpt2"), bare)


def test_unknown_dtype(model_folders):
    with pytest.raises(UnknownModelError, match="dtype"):
        load_model(str(model_folders[0]), dtype="float8")
