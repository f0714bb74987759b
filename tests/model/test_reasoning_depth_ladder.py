"""The shipped depth ladder: catalogue, verified folders, the ordinary model path, and k = 1 accuracy.

The trainer's own checks (tokenizer, batches, curriculum) are in ``tests/test_depth_trainer.py``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from transformers import AutoTokenizer

from probes.builtin.folders import builtin_catalogue
from probes.errors import BuiltinWeightsError, ProbesError, UnknownModelError
from probes.ladders import get_ladder, ladder_names
from probes.lenses.reading import read_options
from probes.model.loading import load_model, parse_spec
from probes.tasks import load_items

#: The built-in depth ladder folder (catalogue, rung names, verified rung folders).
depth = builtin_catalogue("depth")

#: "Well above chance": at least this many times the chance accuracy of the options.
ABOVE_CHANCE = 3.0


def test_rungs_differ_only_in_depth_and_seed_and_ship_small_verified_weights() -> None:
    entries = depth.catalogue()["rungs"]
    assert [entry["layers"] for entry in entries] == sorted(entry["layers"] for entry in entries)
    assert len({(entry["layers"], entry["seed"]) for entry in entries}) == len(entries)
    # depths 1-8, two seeds each (issue 18: a ladder deep enough to bracket the answer)
    assert sorted((entry["layers"], entry["seed"]) for entry in entries) == [
        (layers, seed) for layers in range(1, 9) for seed in (0, 1)
    ]
    for field in ("d_model", "heads", "intermediate_size"):
        assert len({entry[field] for entry in entries}) == 1, field
    # the same recipe for every rung; each trains until its curriculum plateaus, so steps differ
    recipes = {
        str(
            {
                key: value
                for key, value in entry["training_config"]["training"].items()
                if key not in ("steps", "seed")
            }
        )
        for entry in entries
    }
    assert len(recipes) == 1, "same data, curriculum and optimiser for every rung"
    total = 0
    for entry in entries:
        folder = depth.rung_path(entry["name"])
        assert entry["dtype"] == "float32" and not list(folder.glob("*.bin"))
        assert entry["training_curve"] and entry["training_curve"][-1]["step"] == entry["step"]
        # every rung says why it stopped, under the rule its training_config states
        assert entry["stopped"] in ("solved", "plateau", "step budget", "time budget"), entry["stopped"]
        assert entry["step"] <= entry["training_config"]["training"]["steps"]
        total += sum(path.stat().st_size for path in folder.iterdir())
    # 16 fp32 rungs of 0.09-0.44 M parameters: about 17 MB
    assert total < 20 * 2**20, "weights ship small"


def test_the_ladder_is_listed_and_its_specs_load_through_the_ordinary_path() -> None:
    assert "depth" in ladder_names()
    ladder = get_ladder("depth")
    assert [rung.layers for rung in ladder.rungs] == sorted(rung.layers for rung in ladder.rungs)
    assert all(spec.text.startswith("depth:") for spec in ladder.model_specs())
    assert parse_spec("depth:1x64").source == "depth"
    model = load_model(ladder.model_specs()[0])
    assert model.n_layers == ladder.rungs[0].layers and model.describe()["source"] == "depth"


def test_items_tokenise_without_unknown_words_and_answers_are_single_tokens() -> None:
    tokenizer = AutoTokenizer.from_pretrained(depth.rung_path(depth.rung_names()[0]))
    for item in load_items(depth.catalogue()["tasks"], ["prize", "one_shot"], n_items=50):
        prompt = tokenizer(item.prompt).input_ids
        assert tokenizer.unk_token_id not in prompt, item.prompt
        for option in item.options:
            ids = tokenizer(option, add_special_tokens=False).input_ids
            assert len(ids) == 1 and prompt + ids == tokenizer(item.prompt + option).input_ids


def test_last_layer_accuracy_on_one_step_items_is_well_above_chance_for_every_rung() -> None:
    trained = depth.catalogue()["tasks"]  # the tasks the ladder was trained on
    # the task's default items are the held-out set (training never states one of their cycles)
    items = [item for item in load_items(trained, ["prize"]) if item.meta["steps"] == 1]
    chance = sum(1 / len(item.options) for item in items) / len(items)
    for spec in get_ladder("depth").model_specs():
        readout = read_options(load_model(spec), items, layers=[-1], batch_size=64)
        correct = [
            int(logprobs[-1].argmax()) == item.true_index for item, logprobs in zip(items, readout.logprobs)
        ]
        accuracy = sum(correct) / len(correct)
        assert accuracy >= ABOVE_CHANCE * chance, (
            f"{spec}: k = 1 accuracy {accuracy:.2f}, chance {chance:.2f}"
        )


def test_rung_path_refuses_a_changed_file_and_an_unknown_rung(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = depth.rung_names()[0]
    copy = tmp_path / name
    copy.mkdir()
    for path in depth.rung_path(name).iterdir():
        (copy / path.name).write_bytes(path.read_bytes())
    (copy / "model.safetensors").write_bytes((copy / "model.safetensors").read_bytes() + b" ")
    monkeypatch.setattr(depth, "weights_folder", tmp_path)
    with pytest.raises(BuiltinWeightsError, match="sha256"):
        depth.rung_path(name)
    (copy / "config.json").unlink()
    with pytest.raises(BuiltinWeightsError, match="missing"):
        depth.rung_path(name)
    with pytest.raises(UnknownModelError, match="depth rung"):
        depth.rung_path("depth-no-such-rung")
    assert issubclass(BuiltinWeightsError, ProbesError)
