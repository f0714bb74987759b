"""Built-in ladders are data: a catalogue plus weights in a folder on the search path is a ladder."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
import torch
from transformers import GPTNeoXConfig, GPTNeoXForCausalLM

from probes.builtin import folders as shipped
from probes.builtin.folders import builtin_catalogue
from probes.builtin.training import provides_block
from probes.errors import BuiltinWeightsError, UnknownModelError
from probes.ladders import get_ladder, ladder_names, register_builtin_folder, rung_metadata
from probes.ladders import registry as ladder_registry
from probes.model.loading import load_model, parse_spec

#: The depth ladder's tokenizer files, reused by the tiny ladder (any word tokenizer would do).
TOKENIZER_FROM = builtin_catalogue("depth")


@pytest.fixture
def isolated(monkeypatch):
    """Leave no registered folder, ladder or model source behind."""
    from probes.model import specs

    ladder_names()
    monkeypatch.setattr(shipped, "_REGISTERED", list(shipped._REGISTERED))
    monkeypatch.setattr(shipped, "_OPENED", dict(shipped._OPENED))
    monkeypatch.setattr(specs, "_SOURCES", dict(specs._SOURCES))
    for name in ("_LADDERS", "_PROVIDERS", "_ORDER", "_FOLDERS_LOADED"):
        value = getattr(ladder_registry, name)
        monkeypatch.setattr(ladder_registry, name, type(value)(value))
    monkeypatch.setattr(ladder_registry, "_SEARCHED", ladder_registry._SEARCHED)
    monkeypatch.delenv(shipped.ENV_VAR, raising=False)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _tiny_ladder_folder(root: Path, layers: tuple[int, ...] = (1, 2)) -> Path:
    """``root/tiny/``: a catalogue and one tiny random GPT-NeoX folder per rung (no code)."""
    folder = root / "tiny"
    tokenizer_folder = TOKENIZER_FROM.rung_path(TOKENIZER_FROM.rung_names()[0])
    vocabulary = TOKENIZER_FROM.provides["vocabulary"]
    entries = []
    for n_layers in layers:
        name = f"tiny-{n_layers}x8"
        torch.manual_seed(n_layers)
        config = GPTNeoXConfig(
            vocab_size=vocabulary,
            hidden_size=8,
            num_hidden_layers=n_layers,
            num_attention_heads=2,
            intermediate_size=32,
            max_position_embeddings=64,
        )
        out = folder / "weights" / name
        GPTNeoXForCausalLM(config).save_pretrained(out, safe_serialization=True)
        for file_name in ("tokenizer.json", "tokenizer_config.json"):
            shutil.copy(tokenizer_folder / file_name, out / file_name)
        parameters = sum(p.numel() for p in GPTNeoXForCausalLM(config).parameters())
        entries.append(
            {
                "name": name,
                "rung": name,
                "kind": "rung",
                "step": 0,
                "seed": n_layers,
                "parameters": parameters,
                "non_embedding_parameters": parameters - 2 * vocabulary * 8,
                "layers": n_layers,
                "d_model": 8,
                "heads": 2,
                "tokens_seen": 0,
                "training_flops": 0,
                "training_flops_non_embedding": 0,
                "held_out_perplexity": None,
                "training_config": {"rung": {"name": name, "layers": n_layers, "d_model": 8, "heads": 2}},
                "files": {p.name: _sha256(p) for p in sorted(out.iterdir())},
            }
        )
    catalogue = {
        "description": "Tiny test ladder: random GPT-NeoX models of 1 and 2 layers.",
        "provides": provides_block(
            "tiny",
            "Tiny test ladder.",
            "untrained",
            entries,
            "tests/model/test_builtin_folders.py",
            vocabulary,
            64,
            "after_hub",
        ),
        "rungs": entries,
    }
    (folder / "catalogue.json").write_text(json.dumps(catalogue, indent=1) + "\n", "utf-8")
    return folder


def test_a_third_built_in_ladder_is_data_only(isolated, tmp_path: Path) -> None:
    _tiny_ladder_folder(tmp_path)
    assert "tiny" not in ladder_names()
    with pytest.raises(UnknownModelError):
        load_model("tiny:2x8")  # no such prefix yet: read as a hub id, which offline does not load
    register_builtin_folder(tmp_path)
    assert ladder_names()[-1] == "tiny"
    ladder = get_ladder("tiny")
    assert [rung.name for rung in ladder.rungs] == ["tiny-1x8", "tiny-2x8"]
    specs = ladder.model_specs()
    assert [spec.text for spec in specs] == ["tiny:1x8", "tiny:2x8"]
    assert specs[1].ladder == "tiny" and specs[1].rung == "tiny-2x8" and specs[1].training_step == 0
    assert parse_spec("tiny:2x8").source == "tiny"
    model = load_model(specs[1])
    assert model.n_layers == 2 and model.d_model == 8 and model.describe()["source"] == "tiny"
    assert model.parameters == ladder.rungs[1].parameters
    assert rung_metadata(specs[1])["ladder"] == "tiny"


def test_a_folder_on_the_environment_path_is_found(isolated, tmp_path: Path, monkeypatch) -> None:
    _tiny_ladder_folder(tmp_path, layers=(1,))
    monkeypatch.setenv(shipped.ENV_VAR, str(tmp_path))
    assert "tiny" in ladder_names()
    assert load_model("tiny:1x8").n_layers == 1


def test_a_changed_weight_file_of_an_added_ladder_is_refused(isolated, tmp_path: Path) -> None:
    folder = _tiny_ladder_folder(tmp_path, layers=(1,))
    register_builtin_folder(tmp_path)
    weights = folder / "weights" / "tiny-1x8" / "model.safetensors"
    weights.write_bytes(weights.read_bytes() + b" ")
    with pytest.raises(BuiltinWeightsError, match="sha256"):
        load_model("tiny:1x8")


def test_register_builtin_folder_refuses_a_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(BuiltinWeightsError, match="not a folder"):
        register_builtin_folder(tmp_path / "nowhere")


def test_a_rung_in_two_ladders_keeps_the_ladder_it_was_planned_from() -> None:
    sizes, training = get_ladder("organism"), get_ladder("organism-4x96-training")
    from_sizes = next(spec for spec in sizes.model_specs() if spec.rung == "organism-4x96")
    from_training = training.model_specs()[-1]
    assert from_sizes.text == from_training.text == "organism:4x96"
    assert rung_metadata(from_sizes)["ladder"] == "organism"
    assert rung_metadata(from_training)["ladder"] == "organism-4x96-training"
    assert rung_metadata(from_training)["training_step"] == training.rungs[-1].training_step
    assert rung_metadata("organism:4x96")["ladder"] == "organism"  # a user string: first ladder that has it


def test_hub_specs_carry_ladder_rung_and_step() -> None:
    spec = next(s for s in get_ladder("pythia").model_specs([3000]) if s.rung == "pythia-160m")
    assert (spec.ladder, spec.rung, spec.training_step, spec.revision) == (
        "pythia",
        "pythia-160m",
        3000,
        "step3000",
    )
    assert spec.source == "hub" and spec.label == "EleutherAI/pythia-160m@step3000"


def test_the_shipped_provides_blocks_are_what_the_trainers_write() -> None:
    notes = {
        "organism": "Trained with the same data and order for every rung; see catalogue.json for the mix.",
        "depth": "Same width, data stream, curriculum, optimiser and stopping rule for every rung, two "
        "seeds per depth; each rung trained until its curriculum was done or its validation accuracy "
        "plateaued (or its step or time budget ran out: the rung's `stopped` field says which); steps, "
        "curve, device and seconds per rung in probes/builtin/depth/catalogue.json.",
    }
    for name, note in notes.items():
        catalogue = builtin_catalogue(name)
        data, provides = catalogue.data, catalogue.provides
        rebuilt = provides_block(
            name,
            data["description"],
            note,
            data["rungs"],
            provides["trainer"],
            provides["vocabulary"],
            provides["context_length"],
            provides["listed"],
        )
        assert rebuilt == provides
