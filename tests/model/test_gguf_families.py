"""GGUF files of every decoder-only family transformers reads from GGUF (tests/model/gguf_files.py),
loaded as a user loads them (``load_model(path)``: the default backend, no flags): the lens
equals plain transformers reading the same file at every layer, with the prompt cache too."""

from __future__ import annotations

import pytest
from gguf_files import GGUF_FAMILIES, tiny_gguf

from probes.model.check import check_loaded, plain_model
from probes.model.loading import load_model
from probes.model.specs import parse_spec

pytest.importorskip("gguf")

#: The issue's bar for GGUF files.
TOLERANCE = 2e-4


@pytest.fixture(scope="module")
def gguf_folder(tmp_path_factory):
    return tmp_path_factory.mktemp("gguf")


@pytest.mark.parametrize("name", sorted(GGUF_FAMILIES))
def test_a_gguf_file_reads_as_plain_transformers_by_default(name, gguf_folder, capsys):
    path = tiny_gguf(gguf_folder, name)
    model = load_model(str(path))  # the default backend, as `probes run --models file.gguf`
    assert "runs with the nnsight backend" not in capsys.readouterr().err  # the bridge took it
    assert model.describe()["backend"] == "bridge"
    result = check_loaded(model, plain_model(parse_spec(str(path))), tuned=False)
    assert result.reference_difference <= TOLERANCE
    assert result.output_spread > 0.01  # not a model whose every readout is uniform
    assert len(result.layer_differences) == model.n_layers + 1
    assert max(result.layer_differences) <= TOLERANCE, result.line()
    assert result.cache_difference is None or result.cache_difference <= TOLERANCE, result.line()
    assert result.ablation_difference is None or result.ablation_difference <= TOLERANCE, result.line()


def test_probes_run_takes_a_gguf_file_with_no_backend_flag(gguf_folder, capsys):
    """The command a new user types (a family TransformerLens's bridge refused from GGUF before)."""
    from probes.cli.main import main
    from probes.store.store import Store

    path = tiny_gguf(gguf_folder, "falcon")
    out = gguf_folder / "run"
    assert main(["run", "--models", str(path), "--out", str(out), "--n-items", "2", "--no-report"]) == 0
    assert "probes: error" not in capsys.readouterr().err
    table = Store(out).read()
    assert len(table) > 0 and sorted(table["layer"].unique()) == [0, 1, 2]
