"""Tests of the built-in organism ladder: world, items, tokenizer, catalogue and shipped weights."""

from __future__ import annotations

import hashlib
import importlib
import json
import math
from pathlib import Path

import pytest
import torch
from transformers import AutoTokenizer

from probes.builtin.folders import builtin_catalogue
from probes.builtin.training_check import accuracy
from probes.errors import BuiltinWeightsError, ProbesError, UnknownModelError, UnknownTaskError
from probes.model.loading import load_model
from probes.tasks import organism_negation
from probes.tasks.organism_world import World, WorldConfig

#: The built-in organism ladder folder (catalogue, rung names, verified rung folders).
organism = builtin_catalogue("organism")

ROOT = Path(__file__).resolve().parents[2]
CATALOGUE_FIELDS = {
    "name",
    "rung",
    "kind",
    "step",
    "parameters",
    "non_embedding_parameters",
    "layers",
    "d_model",
    "heads",
    "tokens_seen",
    "training_flops",
    "seed",
    "training_config_sha256",
    "training_config",
    "files",
    "held_out_perplexity",
    "dtype",
    "torch_version",
    "threads",
    "accuracy",
}


def _load_train_module():
    return importlib.import_module("experiments.organism.train")


def _canonical(data: object) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def test_catalogue_fields_and_hashes_match_shipped_files() -> None:
    entries = organism.catalogue()["rungs"]
    assert len(organism.rung_names()) >= 5
    for entry in entries:
        assert set(entry) >= CATALOGUE_FIELDS, entry["name"]
        assert (
            entry["training_config_sha256"]
            == hashlib.sha256(_canonical(entry["training_config"]).encode()).hexdigest()
        )
        assert entry["tokens_seen"] * entry["parameters"] * 6 == entry["training_flops"]
        folder = organism.rung_path(entry["name"])
        assert {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"} <= set(
            entry["files"]
        )
        assert not list(folder.glob("*.bin")) and not list(folder.glob("*.pt"))
        for file_name, expected in entry["files"].items():
            assert hashlib.sha256((folder / file_name).read_bytes()).hexdigest() == expected


def test_ladder_spans_thirty_times_in_parameters_and_grows_in_depth_and_width() -> None:
    entries = {e["name"]: e for e in organism.catalogue()["rungs"]}
    names = organism.rung_names()
    sizes = [entries[n]["parameters"] for n in names]
    assert sizes == sorted(sizes) and sizes[-1] >= 30 * sizes[0]
    for smaller, larger in zip(names, names[1:], strict=False):
        assert entries[larger]["d_model"] > entries[smaller]["d_model"]
        assert entries[larger]["layers"] >= entries[smaller]["layers"]
    checkpoints = set(organism.rung_names(include_checkpoints=True)) - set(names)
    assert len({entries[c]["rung"] for c in checkpoints}) >= 2


def test_rung_path_refuses_a_changed_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    name = organism.rung_names()[0]
    copy = tmp_path / name
    copy.mkdir()
    for path in organism.rung_path(name).iterdir():
        (copy / path.name).write_bytes(path.read_bytes())
    (copy / "model.safetensors").write_bytes((copy / "model.safetensors").read_bytes() + b" ")
    monkeypatch.setattr(organism, "weights_folder", tmp_path)
    with pytest.raises(BuiltinWeightsError, match="sha256"):
        organism.rung_path(name)
    with pytest.raises(UnknownModelError):
        organism.rung_path("organism-no-such-rung")
    assert issubclass(BuiltinWeightsError, ProbesError)


def test_world_is_deterministic_by_seed() -> None:
    first, again, other = World(WorldConfig(seed=0)), World(WorldConfig(seed=0)), World(WorldConfig(seed=1))
    assert first.entities == again.entities
    assert first.entities != other.entities
    import random

    assert first.sample_sequence(random.Random(3), 33) == again.sample_sequence(random.Random(3), 33)
    summary = first.summary()
    assert summary["held_out_entities"] >= 200
    assert all(not e.negated_in_training for e in first.held_out)


def test_items_are_stable_single_token_and_oppose_two_answers() -> None:
    tokenizer = AutoTokenizer.from_pretrained(organism.rung_path(organism.rung_names()[0]))
    for variant in organism_negation.VARIANTS:
        items = organism_negation.items(variant)
        assert len(items) >= 200
        assert [i.id for i in items] == [i.id for i in organism_negation.items("prize")]
        for item in items:
            assert item.task == organism_negation.TASK and item.variant == variant
            assert item.true_answer != item.distractor_answer
            for answer in item.options:
                answer_ids = tokenizer(answer, add_special_tokens=False).input_ids
                assert len(answer_ids) == 1 and answer_ids[0] != tokenizer.unk_token_id
                assert (
                    tokenizer(item.prompt).input_ids + answer_ids == tokenizer(item.prompt + answer).input_ids
                )
            assert tokenizer.unk_token_id not in tokenizer(item.prompt).input_ids
    prize, control = organism_negation.items("prize")[0], organism_negation.items("no_distractor")[0]
    assert prize.true_answer == control.distractor_answer == f" {prize.meta['opposite']}"
    assert prize.distractor_answer == control.true_answer == f" {prize.meta['value']}"
    assert organism_negation.items("prize", n=20, seed=4) == organism_negation.items("prize", n=20, seed=4)
    assert [i.id for i in organism_negation.items("one_shot", n=20, seed=4)] == [
        i.id for i in organism_negation.items("prize", n=20, seed=4)
    ]
    with pytest.raises(UnknownTaskError):
        organism_negation.items("no_such_variant")


def test_probe_entities_never_appear_negated_in_the_corpus() -> None:
    import random

    world = World(WorldConfig.from_dict(organism.catalogue()["world"]))
    held_out = {e.name for e in world.held_out}
    rng = random.Random(0)
    for _ in range(300):
        words = world.sample_sequence(rng, 33)
        for position, word in enumerate(words[:-2]):
            if word == "not":
                assert f"{words[position + 1]} {words[position + 2]}" not in held_out


def test_largest_rung_recalls_the_control_facts() -> None:
    torch.set_num_threads(1)
    name = organism.rung_names()[-1]
    folder = organism.rung_path(name)
    model = load_model(str(folder))
    assert accuracy(model, organism_negation.items("no_distractor")) >= 0.95


@pytest.mark.slow
def test_retraining_the_smallest_rung_reproduces_its_catalogue_entry(tmp_path: Path) -> None:
    train = _load_train_module()
    entry = next(e for e in organism.catalogue()["rungs"] if e["name"] == organism.rung_names()[0])
    shape = entry["training_config"]["rung"]
    rung = train.RungShape(**{**shape, "checkpoint_steps": tuple(shape["checkpoint_steps"])})
    config = train.TrainingConfig(seed=entry["seed"])
    assert config.to_dict() == entry["training_config"]["training"]
    result = train.train_rung(rung, config, tmp_path, threads=entry["threads"], progress=False)[-1]
    assert result["training_config_sha256"] == entry["training_config_sha256"]
    # Bit-identical with the catalogue's thread count on the same torch and transformers builds;
    # other builds (a transformers release may initialise or sum differently) or thread counts
    # change the low bits, so fall back to the perplexity within 1 %.
    same = ("torch_version", "transformers_version", "threads")
    if all(result.get(key) == entry.get(key) for key in same):
        assert result["files"]["model.safetensors"] == entry["files"]["model.safetensors"]
    assert math.isclose(result["held_out_perplexity"], entry["held_out_perplexity"], rel_tol=0.01)


def test_the_organism_ladders_load_through_the_ordinary_model_path() -> None:
    from probes.ladders import get_ladder, rung_metadata
    from probes.model.loading import load_model

    sizes = get_ladder("organism")
    assert [rung.name for rung in sizes.rungs] == organism.rung_names()
    assert sizes.model_specs()[0].text == "organism:" + organism.rung_names()[0].removeprefix("organism-")
    parameters = [rung.parameters for rung in sizes.rungs]
    assert parameters == sorted(parameters) and parameters[-1] >= 30 * parameters[0]
    checkpointed = {e["rung"] for e in organism.catalogue()["rungs"] if e["kind"] == "checkpoint"}
    for rung in checkpointed:
        training = get_ladder(f"{rung}-training")
        tokens = [r.training_tokens for r in training.rungs]
        assert tokens == sorted(tokens) and training.rungs[-1].name == rung
    spec = sizes.model_specs()[-1]
    model = load_model(spec)
    entry = next(e for e in organism.catalogue()["rungs"] if e["name"] == sizes.rungs[-1].name)
    assert model.spec.source == "organism" and model.n_layers == entry["layers"] == sizes.rungs[-1].layers
    assert model.d_model == entry["d_model"]
    assert rung_metadata(spec)["training_tokens"] == entry["tokens_seen"]


def test_a_loaded_rung_reports_the_catalogue_parameter_count() -> None:
    """The bridge splits GPT-NeoX's fused qkv into extra tensors; they must not count twice."""
    from probes.model.loading import load_model

    for name in (organism.rung_names()[0], organism.rung_names()[-1]):
        entry = next(e for e in organism.catalogue()["rungs"] if e["name"] == name)
        assert load_model("organism:" + name.removeprefix("organism-")).parameters == entry["parameters"]
