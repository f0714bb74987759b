"""`probes sae train`, then `probes features --sae` on its output; a pretrained release from SAELens."""

from __future__ import annotations

import json

import pytest

from probes.features import saelens

if not saelens.installed():
    pytest.skip(f"SAELens is optional: {saelens.INSTALL}", allow_module_level=True)

from probes.cli.main import main
from probes.store.store import Store

MODELS = ["organism:1x8", "organism:1x32"]
QUICK = ["--train-steps", "40", "--windows", "64", "--held-out-windows", "8", "--window-length", "16"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("saes")
    assert main(["sae", "train", "--models", *MODELS, "--out", str(out), *QUICK]) == 0
    return out


def test_each_model_gets_its_saes_with_quality(trained, capsys):
    for folder in ("organism__1x8", "organism__1x32"):
        layer = trained / folder / "layer-1"
        assert {p.name for p in layer.iterdir()} == {"cfg.json", "sae_weights.safetensors", "quality.json"}
        quality = json.loads((layer / "quality.json").read_text())
        assert quality["layer"] == 1 and quality["settings"]["steps"] == 40
        assert 0 < quality["loss_recovered"] <= 1.01


def test_features_reads_every_model_with_its_own_saes(trained, tmp_path):
    out = tmp_path / "store"
    args = ["features", "--models", *MODELS, "--sae", str(trained), "--variants", "prize", "--n-items", "6"]
    assert main([*args, "--ks", "1", "--draws", "2", "--out", str(out), "--no-report", "--no-progress"]) == 0
    items = Store(out).read("feature_items")
    used = dict(zip(items["model"], items["sae"]))
    assert used == {m: str(trained / m.replace(":", "__") / "layer-1") for m in MODELS}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--layers", "3"], "has residual layers 0…1"),
        (["--train-steps", "0"], "must be at least 1"),
        (["--window-length", "1"], "--window-length at least 2"),
    ],
)
def test_bad_options_are_one_clear_error(tmp_path, capsys, args, message):
    assert main(["sae", "train", "--models", "organism:1x8", "--out", str(tmp_path), *QUICK, *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("probes: error:") and message in err


def test_a_pretrained_release_is_read_by_its_hook(trained, monkeypatch):
    """SAE.from_pretrained stands in for the download: the release's SAE has no probes fingerprint."""
    import probes
    from probes.features.sources import load_sources, saes_for

    library = saelens.sae_lens()
    downloaded = library.SAE.load_from_disk(trained / "organism__1x32" / "layer-1")
    del downloaded.cfg.metadata.__dict__["probes_fingerprint"]
    downloaded.cfg.metadata.hook_name = "blocks.0.hook_resid_pre"
    asked = []
    monkeypatch.setattr(
        library.SAE, "from_pretrained", lambda release, sae_id: asked.append((release, sae_id)) or downloaded
    )
    (sae,) = load_sources(["gpt2-small-res-jb/blocks.0.hook_resid_pre"])
    assert asked == [("gpt2-small-res-jb", "blocks.0.hook_resid_pre")]
    assert (
        sae.layer == 0
        and sae.fingerprint is None
        and sae.source == "gpt2-small-res-jb/blocks.0.hook_resid_pre"
    )
    model = probes.load_model(
        "organism:1x32-step300"
    )  # same width, other weights: a release has no fingerprint
    assert saes_for(model, [sae]) == [sae]
