"""Where SAEs come from: shipped (verified), SAELens folders, releases; refused where they do not fit."""

from __future__ import annotations

import dataclasses
import json
import shutil

import pytest

from probes.features import saelens

if not saelens.installed():
    pytest.skip(f"SAELens is optional: {saelens.INSTALL}", allow_module_level=True)

import probes
from probes.features.dictionary import SAEError, layer_of_hook
from probes.features.sources import (
    INDEX_FILE,
    load_sources,
    saes_for,
    shipped_folders,
    shipped_index,
    source_sha256,
)
from probes.features.training import SAETraining, train_saes


@pytest.fixture(scope="module")
def small():
    return probes.load_model("organism:1x8")


def test_every_shipped_sae_is_indexed_verified_and_fits_its_rung():
    from probes.builtin.folders import builtin_catalogue

    catalogue = builtin_catalogue("organism")
    index = shipped_index(catalogue)["saes"]
    assert set(index) == {"organism-1x4", "organism-1x8", "organism-1x32", "organism-2x48", "organism-3x64",
                          "organism-4x96"}  # fmt: skip
    for rung, layers in index.items():
        n_layers = int(rung.split("-")[1].split("x")[0])
        assert sorted(map(int, layers)) == list(range(1, n_layers + 1))
        for entry in layers.values():
            quality = entry["quality"]
            assert quality["fve"] > 0.9 and quality["loss_recovered"] > 0.9, (rung, quality)
    assert list(shipped_folders("organism:2x48")) == [1, 2]


def test_a_changed_shipped_file_is_refused(tmp_path, monkeypatch, small):
    from probes.builtin import folders

    catalogue = folders.builtin_catalogue("organism")
    copy = tmp_path / "organism"
    shutil.copytree(catalogue.folder, copy, ignore=shutil.ignore_patterns("weights", "tuned-lenses"))
    (copy / "saes" / "organism-1x8" / "layer-1" / "cfg.json").write_text("{}")
    fake = dataclasses.replace(catalogue, folder=copy)
    monkeypatch.setattr(folders, "builtin_catalogues", lambda: [fake])
    with pytest.raises(SAEError, match=f"differs from {INDEX_FILE}"):
        shipped_folders("organism:1x8")


def test_an_sae_of_other_weights_is_refused(small):
    other = probes.load_model("organism:1x32-step300")
    mine = saes_for(probes.load_model("organism:1x32"), None)
    with pytest.raises(SAEError, match="fingerprint"):
        mine[0].check(other)
    with pytest.raises(SAEError, match="width"):
        mine[0].check(small)


def test_a_trained_folder_loads_back_and_fits_only_its_model(tmp_path, small):
    settings = SAETraining(steps=60, windows=64, held_out_windows=8, window_length=16, batch_size=64)
    quality = train_saes(small, [1], tmp_path / "saes", settings)[0]
    assert quality.layer == 1 and 0 < quality.l0 <= settings.k_for(small.d_model)
    again = train_saes(small, [1], tmp_path / "again", settings)[0]
    weights = "layer-1/sae_weights.safetensors"
    assert (tmp_path / "saes" / weights).read_bytes() == (tmp_path / "again" / weights).read_bytes()
    assert quality.fve == again.fve
    config = json.loads((tmp_path / "saes" / "layer-1" / "cfg.json").read_text())
    assert config["metadata"]["hook_name"] == "blocks.0.hook_resid_post"
    assert config["metadata"]["model_name"] == small.name
    (loaded,) = load_sources([str(tmp_path / "saes")])
    assert loaded.layer == 1 and saes_for(small, [loaded])[0] is loaded
    assert source_sha256(str(tmp_path / "saes")) == source_sha256(str(tmp_path / "again"))
    with pytest.raises(SAEError, match="none of the SAEs given .* reads vectors of width 8"):
        saes_for(probes.load_model("organism:1x4"), [loaded])


def test_bad_sources_are_one_clear_error(tmp_path):
    with pytest.raises(SAEError, match="no such folder, and not a SAELens release/id"):
        load_sources(["nowhere"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(SAEError, match="no SAE folder"):
        load_sources([str(tmp_path / "empty")])
    with pytest.raises(SAEError, match="not a SAELens release"):
        load_sources(["no-such-release/blocks.0.hook_resid_pre"])
    with pytest.raises(SAEError, match="has no SAE"):
        load_sources(["gpt2-small-res-jb/blocks.99.hook_resid_pre"])


def test_a_pretrained_release_offline_says_how_to_go_on(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(SAEError, match="cannot fetch it"):
        load_sources(["gpt2-small-res-jb/blocks.0.hook_resid_pre"])


def test_hook_names_map_to_residual_layers():
    assert layer_of_hook("blocks.0.hook_resid_pre") == 0
    assert layer_of_hook("blocks.3.hook_resid_post") == 4
    with pytest.raises(SAEError, match="residual-stream SAEs only"):
        layer_of_hook("blocks.3.attn.hook_z")
    with pytest.raises(SAEError, match="has 2 blocks"):
        layer_of_hook("blocks.5.hook_resid_pre", n_layers=2)


def _shipped_copy(tmp_path, name: str, edit=None):
    """A copy of organism-1x8's shipped layer-1 SAE, its cfg.json changed by ``edit``."""
    (folder,) = [shipped_folders("organism:1x8")[1]]
    copy = tmp_path / name
    shutil.copytree(folder, copy)
    if edit is not None:
        config = json.loads((copy / "cfg.json").read_text())
        edit(config)
        (copy / "cfg.json").write_text(json.dumps(config))
    return copy


def test_broken_sae_folders_are_one_clear_error(tmp_path):
    weights = _shipped_copy(tmp_path, "whole") / "sae_weights.safetensors"
    with pytest.raises(SAEError, match="is a file; give the folder"):
        load_sources([str(weights)])
    truncated = _shipped_copy(tmp_path, "truncated")
    (truncated / "sae_weights.safetensors").write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(SAEError, match="cannot read the SAE in .*truncated"):
        load_sources([str(truncated)])
    rescaled = _shipped_copy(
        tmp_path, "rescaled", lambda c: c.update(normalize_activations="constant_norm_rescale")
    )
    with pytest.raises(SAEError, match="constant_norm_rescale.*not affine"):
        load_sources([str(rescaled)])
    attention = _shipped_copy(
        tmp_path, "attention", lambda c: c["metadata"].update(hook_name="blocks.0.attn.hook_z")
    )
    with pytest.raises(SAEError, match="attention.*residual-stream SAEs only"):
        load_sources([str(attention)])
    too_many = _shipped_copy(tmp_path, "too_many", lambda c: c.update(k=10**6))
    with pytest.raises(SAEError, match="too_many: its cfg.json asks for k = 1000000"):
        load_sources([str(too_many)])
    nameless = _shipped_copy(tmp_path, "nameless", lambda c: c["metadata"].pop("hook_name"))
    with pytest.raises(SAEError, match="nameless.*names no metadata.hook_name"):
        load_sources([str(nameless)])
