"""A lens and a backend are each one new file: dropped into their package, they are found and used."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import probes
import probes.lenses
import probes.model
from probes.lenses.registry import lens_names
from probes.model.backend import backends

PLUGINS = Path(__file__).resolve().parents[1] / "plugins"


@pytest.fixture
def dropped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The toy files copied into a folder that extends the packages' search path, as if added there."""
    for package, name in ((probes.lenses, "half_lens"), (probes.model, "echo_backend")):
        folder = tmp_path / package.__name__
        folder.mkdir()
        shutil.copy(PLUGINS / f"{name}.py", folder / f"{name}.py")
        monkeypatch.setattr(package, "__path__", [*package.__path__, str(folder)])
    yield
    for name in ("probes.lenses.half_lens", "probes.model.echo_backend"):
        sys.modules.pop(name, None)


def test_without_the_files_neither_is_known():
    assert "half" not in lens_names() and "echo" not in backends()


def test_a_dropped_lens_is_a_lens_the_sweep_runs(dropped, tmp_path):
    assert lens_names() == ["half", "logit", "tuned"]
    options = {"models": ["organism:1x8"], "n_items": 4, "variants": ["prize"], "progress": False}
    halved = probes.run(**options, lens="half", out=tmp_path / "store")
    plain = probes.run(**options, out=tmp_path / "store")
    assert sorted(p.name for p in (tmp_path / "store" / "shards").iterdir()) == ["half", "logit"]
    assert set(halved["lens"]) == {"half"} and len(halved) == len(plain)
    assert not np.allclose(halved["log_odds"], plain["log_odds"])  # it read something else


def test_a_dropped_backend_loads_models_and_gives_the_bridge_s_numbers(dropped, tmp_path):
    assert {"bridge", "echo", "nnsight"} <= set(backends())
    options = {"models": ["organism:1x8"], "n_items": 4, "variants": ["prize"], "progress": False}
    echoed = probes.run(**options, backend="echo", out=tmp_path / "echo")
    bridged = probes.run(**options, out=tmp_path / "bridge")
    assert sys.modules["probes.model.echo_backend"].WRAPPED == ["organism:1x8"]
    np.testing.assert_allclose(echoed["log_odds"], bridged["log_odds"], atol=1e-6)


def test_an_unknown_lens_or_backend_names_the_known_ones(tmp_path):
    with pytest.raises(probes.ProbesError, match=r"unknown lens 'half'.*logit"):
        probes.run(models=["organism:1x8"], n_items=2, lens="half", out=tmp_path / "a", progress=False)
    with pytest.raises(probes.ProbesError, match=r"--backend .echo. is unknown.*bridge"):
        probes.run(models=["organism:1x8"], n_items=2, backend="echo", out=tmp_path / "b", progress=False)
