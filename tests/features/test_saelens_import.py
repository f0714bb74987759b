"""SAELens imports beside TransformerLens 4 through stand-ins that live only during the import."""

from __future__ import annotations

import sys

import pytest

from probes.features import saelens


def test_missing_sae_lens_is_one_clear_error(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "sae_lens" else real(name, *a)
    )
    saelens.sae_lens.cache_clear()
    try:
        with pytest.raises(saelens.FeaturesUnavailableError, match="pip install --no-deps 'sae-lens=="):
            saelens.sae_lens()
        assert not saelens.installed()
    finally:
        saelens.sae_lens.cache_clear()


def test_stand_ins_exist_only_during_the_import():
    if not saelens.installed():
        pytest.skip(f"SAELens is optional: {saelens.INSTALL}")
    import transformer_lens

    module = saelens.sae_lens()
    assert module.__version__.startswith(saelens.TESTED_VERSIONS)
    assert hasattr(module, "SAE") and hasattr(module, "SAETrainer")
    assert "transformer_lens.HookedTransformer" not in sys.modules
    assert "HookedTransformer" not in vars(transformer_lens)
    with pytest.raises(ImportError, match="removed in TransformerLens 4"):  # TL's own migration message again
        transformer_lens.HookedTransformer  # noqa: B018


def test_the_hooked_transformer_stand_in_refuses_to_be_built():
    if not saelens.installed():
        pytest.skip(f"SAELens is optional: {saelens.INSTALL}")
    with saelens._transformer_lens_3_paths():
        from transformer_lens.HookedTransformer import HookedTransformer

        with pytest.raises(saelens.FeaturesUnavailableError, match="transformer-lens < 4"):
            HookedTransformer()


def test_the_command_without_sae_lens_writes_nothing(monkeypatch, tmp_path, capsys):
    import importlib.util

    from probes.cli.main import main

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "sae_lens" else real(name, *a)
    )
    saelens.sae_lens.cache_clear()
    try:
        out = tmp_path / "store"
        assert main(["features", "--models", "organism:1x32", "--out", str(out)]) == 2
        expected = f"probes: error: SAE features need SAELens, which is not installed: {saelens.INSTALL}."
        assert capsys.readouterr().err.strip() == expected
        assert not out.exists()
    finally:
        saelens.sae_lens.cache_clear()
