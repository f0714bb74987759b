"""--device-map: a model split by accelerate (here: some blocks offloaded to disk) reads as the
whole model does, under both backends; kept vectors go to the unembedding's device."""

from __future__ import annotations

import importlib.util

import pytest
import torch
from tiny_models import save_tiny_folder

from probes.errors import InvalidOptionError
from probes.lenses.reading import read_options, right_padded
from probes.model.loading import load_model
from probes.model.placement import device_map_of
from probes.tasks.items import Item

BACKENDS = ["bridge", *(["nnsight"] if importlib.util.find_spec("nnsight") else [])]

#: A tiny GPT-NeoX split between the CPU and disk offload (accelerate streams blocks 1 and 2 in).
SPLIT = {
    "gpt_neox.embed_in": "cpu",
    "gpt_neox.emb_dropout": "cpu",
    "gpt_neox.layers.0": "cpu",
    "gpt_neox.layers.1": "disk",
    "gpt_neox.layers.2": "disk",
    "gpt_neox.final_layer_norm": "cpu",
    "gpt_neox.rotary_emb": "cpu",
    "lm_head": "cpu",
}


@pytest.fixture(scope="module")
def folder(tmp_path_factory, tokenizer):
    return save_tiny_folder(tmp_path_factory.mktemp("split") / "tiny-neox", "neox", tokenizer, seed=5)


def _items() -> list[Item]:
    return [
        Item(f"i{i}", "toy", f"w{i} w{i + 1} w{i + 2}", f" w{i + 20} w3", f" w{i + 30}") for i in range(4)
    ]


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_split_model_reads_as_the_whole_one(folder, backend):
    whole = read_options(load_model(str(folder)), _items())
    model = load_model(str(folder), device_map=SPLIT, backend=backend)
    offloaded = [name for name, p in model.backend.hf_model.named_parameters() if p.is_meta]  # type: ignore[attr-defined]
    assert offloaded and all(".layers.1." in name or ".layers.2." in name for name in offloaded)
    split = read_options(model, _items())
    for ours, theirs in zip(split.logprobs, whole.logprobs):
        torch.testing.assert_close(ours, theirs, atol=4e-5, rtol=0)
    assert model.describe()["device"] == "cpu"


def test_kept_vectors_are_moved_to_the_unembedding_s_device(folder):
    """The move itself, to a device unlike the blocks' (``meta`` stands in for a second GPU)."""
    from probes.model.bridge.residual_catcher import ResidualCatcher

    model = load_model(str(folder), device_map=SPLIT)
    assert model.backend.unembedding_device == torch.device("cpu")  # type: ignore[attr-defined]
    input_ids, attention_mask = right_padded([[3, 4, 5], [6, 7]])
    catcher = ResidualCatcher(model.hf_model, model.blocks, [1, 3], device=torch.device("meta"))
    with torch.inference_mode(), catcher:
        resid = catcher.run(input_ids, attention_mask, torch.tensor([0, 1]), torch.tensor([2, 1]))
    assert resid.device.type == "meta" and resid.shape == (2, 2, model.d_model)


def test_auto_places_a_model_that_fits_on_what_the_machine_has(folder):
    model = load_model(str(folder), device_map="auto")
    expected = load_model(str(folder))
    input_ids, attention_mask = right_padded([[3, 4, 5]])
    with torch.inference_mode():
        torch.testing.assert_close(
            model.logits(input_ids.to(model.device), attention_mask.to(model.device)).cpu(),
            expected.logits(input_ids, attention_mask),
        )


def test_device_maps_from_the_command_line():
    assert device_map_of("auto") == "auto" and device_map_of(None) is None
    assert device_map_of('{"model.layers.0": 0, "lm_head": "cpu"}') == {"model.layers.0": 0, "lm_head": "cpu"}
    for bad in ("everywhere", "[1, 2]", "{}"):
        with pytest.raises(InvalidOptionError, match="--device-map"):
            device_map_of(bad)


def test_bad_backend_options_are_one_clear_line(tmp_path, capsys):
    from probes.cli.main import main

    for args, message in (
        (["--backend", "jax"], "--backend 'jax' is unknown"),
        (["--remote"], "add --backend nnsight"),
        (["--device-map", "everywhere"], "--device-map"),
    ):
        assert main(["run", "--models", "organism:1x32", "--out", str(tmp_path), *args]) == 2
        error = capsys.readouterr().err
        assert error.startswith("probes: error:") and message in error and "Traceback" not in error
