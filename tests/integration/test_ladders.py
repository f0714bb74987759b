"""The ladder catalogue: every figure sourced and consistent, specs and the runtime registry."""

from __future__ import annotations

import pandas as pd
import pytest
import torch
from transformers import AutoConfig, AutoModelForCausalLM

from probes import ladders
from probes.errors import UnknownLadderError, UnknownModelError
from probes.ladders import (
    NUMERIC_FIELDS,
    Ladder,
    Rung,
    get_ladder,
    ladder_names,
    ladders_table,
    load_catalogue,
    register_ladder,
    register_ladder_provider,
)
from probes.ladders import registry as ladder_registry

BUILT_IN = ["pythia", "gpt2", "opt", "qwen2.5", "smollm2"]

#: Non-embedding parameters as printed in the Pythia model cards ('Non-Embedding Params').
PYTHIA_CARD_NON_EMBEDDING = {
    "pythia-70m": 18_915_328,
    "pythia-160m": 85_056_000,
    "pythia-410m": 302_311_424,
    "pythia-1b": 805_736_448,
    "pythia-1.4b": 1_208_602_624,
    "pythia-2.8b": 2_517_652_480,
    "pythia-6.9b": 6_444_163_072,
    "pythia-12b": 11_327_027_200,
}

#: config.json keys holding each figure, per architecture family.
CONFIG_KEYS = {
    "gpt2": {"layers": "n_layer", "d_model": "n_embd", "heads": "n_head", "context_length": "n_positions"},
    "default": {
        "layers": "num_hidden_layers",
        "d_model": "hidden_size",
        "heads": "num_attention_heads",
        "context_length": "max_position_embeddings",
    },
}


@pytest.fixture
def registry(monkeypatch):
    """A private copy of the ladder registry, so tests that register ladders leave no trace."""
    ladders.ladder_names()  # load the catalogue first
    monkeypatch.setattr(ladder_registry, "_LADDERS", dict(ladder_registry._LADDERS))
    monkeypatch.setattr(ladder_registry, "_PROVIDERS", dict(ladder_registry._PROVIDERS))
    monkeypatch.setattr(ladder_registry, "_ORDER", list(ladder_registry._ORDER))


def all_rungs() -> list[tuple[str, Rung]]:
    return [(ladder.name, rung) for ladder in load_catalogue() for rung in ladder.rungs]


RUNGS = all_rungs()
RUNG_IDS = [f"{ladder_name}/{rung.name}" for ladder_name, rung in RUNGS]


def tiny_ladder(name: str = "tiny") -> Ladder:
    return Ladder(
        name=name,
        description="two rungs of the organism under other names",
        family="gpt2",
        rungs=[Rung(name="small", model="organism:1x4"), Rung(name="large", model="organism:4x96")],
    )


def test_every_built_in_ladder_loads():
    assert [ladder.name for ladder in load_catalogue()] == BUILT_IN
    names = ladder_names()
    assert names[0] == "organism", "the built-in, offline ladder comes first"
    assert [name for name in names if not name.startswith("organism")][: len(BUILT_IN)] == BUILT_IN
    for name in BUILT_IN:
        ladder = get_ladder(name)
        assert ladder.name == name and ladder.rungs and ladder.description and ladder.family


def test_ladders_have_the_requested_rungs():
    models = {name: [rung.model for rung in get_ladder(name).rungs] for name in BUILT_IN}
    sizes = ["14m", "31m", "70m", "160m", "410m", "1b", "1.4b", "2.8b", "6.9b", "12b"]
    assert models["pythia"] == [f"EleutherAI/pythia-{size}" for size in sizes]
    gpt2_names = ("gpt2", "gpt2-medium", "gpt2-large", "gpt2-xl")
    assert models["gpt2"] == [f"openai-community/{name}" for name in gpt2_names]
    assert models["opt"] == [f"facebook/opt-{size}" for size in ("125m", "350m", "1.3b", "2.7b", "6.7b")]
    assert models["qwen2.5"] == [f"Qwen/Qwen2.5-{size}" for size in ("0.5B", "1.5B", "3B", "7B")]
    assert models["smollm2"] == [f"HuggingFaceTB/SmolLM2-{size}" for size in ("135M", "360M", "1.7B")]


@pytest.mark.parametrize("name", BUILT_IN)
def test_rungs_are_ordered_by_parameters(name):
    parameters = [rung.parameters for rung in get_ladder(name).rungs]
    assert all(isinstance(count, int) for count in parameters)
    assert parameters == sorted(parameters) and len(set(parameters)) == len(parameters)


@pytest.mark.parametrize(("ladder_name", "rung"), RUNGS, ids=RUNG_IDS)
def test_flops_are_six_n_d(ladder_name, rung):
    if rung.training_tokens is None:
        assert rung.training_flops is None and rung.training_flops_total_parameters is None
        return
    assert rung.training_flops == 6 * rung.non_embedding_parameters * rung.training_tokens
    assert rung.training_flops_total_parameters == 6 * rung.parameters * rung.training_tokens
    assert 0 < rung.non_embedding_parameters < rung.parameters


@pytest.mark.parametrize(("ladder_name", "rung"), RUNGS, ids=RUNG_IDS)
def test_every_figure_has_a_source(ladder_name, rung):
    for name in NUMERIC_FIELDS:
        source = rung.sources.get(name, "")
        assert source.strip(), f"{ladder_name}/{rung.name}: {name} has no source"
        assert "{" not in source, f"{ladder_name}/{rung.name}: unfilled placeholder in {source!r}"
        if getattr(rung, name) is None:
            assert source.startswith("null"), f"{ladder_name}/{rung.name}: a null {name} must say why"


def test_unpublished_figures_are_null():
    for rung in get_ladder("gpt2").rungs:
        assert rung.training_tokens is None and rung.training_flops is None
        assert "not published" in rung.sources["training_tokens"]


def test_pythia_matches_the_model_cards():
    ladder = get_ladder("pythia")
    for name, count in PYTHIA_CARD_NON_EMBEDDING.items():
        assert ladder.rung(name).non_embedding_parameters == count
    assert {rung.training_tokens for rung in ladder.rungs} == {299_892_736_000}
    assert ladder.tokens_per_step == 1024 * 2048


def test_pythia_checkpoint_axis():
    steps = get_ladder("pythia").checkpoint_steps
    assert len(steps) == 154
    assert steps[:12] == [0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1000]
    assert steps[11:] == list(range(1000, 143_001, 1000))
    for name in BUILT_IN[1:]:
        assert get_ladder(name).checkpoint_steps is None


@pytest.mark.parametrize(("ladder_name", "rung"), RUNGS, ids=RUNG_IDS)
def test_figures_agree_with_the_architecture(ladder_name, rung):
    architecture = rung.architecture
    keys = CONFIG_KEYS["gpt2" if architecture["model_type"] == "gpt2" else "default"]
    for name, key in keys.items():
        assert getattr(rung, name) == architecture[key], f"{rung.name}: {name} vs config {key}"
    assert rung.vocab_size == architecture["vocab_size"]


def count_parameters(architecture: dict) -> tuple[int, int]:
    """(total, non-embedding) parameters of the model a config describes, built on the meta device."""
    config = AutoConfig.for_model(**architecture)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    unique = {id(parameter): parameter for parameter in model.parameters()}
    embeddings = {id(model.get_input_embeddings().weight)}
    output = model.get_output_embeddings()
    if output is not None:
        embeddings.add(id(output.weight))
    for name, parameter in model.named_parameters():
        if name.endswith("wpe.weight") or "embed_positions" in name:
            embeddings.add(id(parameter))
    total = sum(parameter.numel() for parameter in unique.values())
    return total, total - sum(unique[key].numel() for key in embeddings)


@pytest.mark.parametrize(("ladder_name", "rung"), RUNGS, ids=RUNG_IDS)
def test_parameter_counts_are_reproducible(ladder_name, rung):
    assert count_parameters(rung.architecture) == (rung.parameters, rung.non_embedding_parameters)


def test_opt_350m_notes_its_projections():
    rung = get_ladder("opt").rung("opt-350m")
    assert rung.architecture["word_embed_proj_dim"] == 512 != rung.d_model
    assert "project_out" in rung.notes and "project_in" in rung.notes


def test_unknown_ladder_names_the_known_ones():
    with pytest.raises(UnknownLadderError) as error:
        get_ladder("no-such-ladder")
    for name in BUILT_IN:
        assert repr(name) in str(error.value)
    assert "register_ladder" in str(error.value)


def test_model_specs():
    ladder = get_ladder("pythia")
    assert ladder.model_specs()[3].text == "EleutherAI/pythia-160m"
    specs = [spec.text for spec in ladder.model_specs([0, 3000, 143_000])]
    assert len(specs) == len(ladder.rungs) * 3
    assert specs[9:12] == [
        "EleutherAI/pythia-160m@step0",
        "EleutherAI/pythia-160m@step3000",
        "EleutherAI/pythia-160m@step143000",
    ]
    assert ladder.model_specs([]) == []
    assert [s.text for s in get_ladder("gpt2").model_specs()] == [
        rung.model for rung in get_ladder("gpt2").rungs
    ]
    assert ladder.revision_for(512) == "step512"
    assert ladder.training_tokens_at(3000) == 3000 * 2_097_152


def test_model_specs_refuse_unpublished_steps():
    with pytest.raises(UnknownModelError, match="no checkpoint at step 1500"):
        get_ladder("pythia").model_specs([1000, 1500])
    with pytest.raises(UnknownModelError, match="no training-steps axis"):
        get_ladder("qwen2.5").model_specs([1000])


def test_rung_for_ignores_the_revision():
    ladder = get_ladder("pythia")
    assert ladder.rung_for("EleutherAI/pythia-160m@step3000") is ladder.rung("pythia-160m")
    assert ladder.rung_for("EleutherAI/pythia-160m") is ladder.rung("pythia-160m")
    assert ladder.rung_for("facebook/opt-125m") is None
    assert get_ladder("qwen2.5").rung_for("qwen/qwen2.5-0.5b").name == "qwen2.5-0.5b"


def test_ladders_table():
    table = ladders_table()
    assert len(table) == sum(len(get_ladder(name).rungs) for name in ladder_names())
    assert list(table.columns) == list(ladders.TABLE_COLUMNS)
    row = table[table["rung"] == "pythia-160m"].iloc[0]
    assert row["parameters"] == 162_322_944 and row["checkpoints"] == 154
    assert pd.isna(table[table["rung"] == "gpt2"].iloc[0]["training_flops"])
    assert ladders_table(["smollm2"])["rung"].tolist() == ["smollm2-135m", "smollm2-360m", "smollm2-1.7b"]


def test_round_trip_through_dict():
    for ladder in load_catalogue():
        assert Ladder.from_dict(ladder.to_dict()) == ladder


def test_registered_provider_ladder(registry):
    calls = []

    def build() -> Ladder:
        calls.append(1)
        return tiny_ladder("tiny")

    register_ladder_provider("tiny", build)
    assert "tiny" in ladder_names() and calls == []
    ladder = get_ladder("tiny")
    assert get_ladder("tiny") is ladder and calls == [1]
    assert [spec.text for spec in ladder.model_specs()] == ["organism:1x4", "organism:4x96"]
    assert ladder.rung_for("organism:4x96").name == "large"
    assert ladders_table(["tiny"])["model"].tolist() == ["organism:1x4", "organism:4x96"]
    with pytest.raises(UnknownModelError, match="no training-steps axis"):
        ladder.model_specs([0])


def test_provider_must_build_the_named_ladder(registry):
    register_ladder_provider("mislabelled", lambda: tiny_ladder("other"))
    with pytest.raises(ValueError, match="built a ladder named 'other'"):
        get_ladder("mislabelled")


def test_register_ladder(registry):
    register_ladder(tiny_ladder("tiny"))
    assert ladder_names()[-1] == "tiny" and get_ladder("tiny").rungs[0].name == "small"
    with pytest.raises(ValueError, match="already registered"):
        register_ladder(tiny_ladder("tiny"))
    with pytest.raises(ValueError, match="already registered"):
        register_ladder_provider("pythia", lambda: tiny_ladder("pythia"))
    replacement = tiny_ladder("tiny")
    register_ladder(replacement, replace=True)
    assert get_ladder("tiny") is replacement


def test_ladder_validation():
    with pytest.raises(ValueError, match="no rungs"):
        Ladder(name="empty", description="", family="", rungs=[])
    with pytest.raises(ValueError, match="revision_template"):
        Ladder(name="steps", description="", family="", rungs=[Rung("a", "m")], checkpoint_steps=[0, 1])
    with pytest.raises(ValueError, match="unknown keys"):
        Rung.from_dict({"name": "a", "model": "m", "paramters": 3})
