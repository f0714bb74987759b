"""`probes models check PATH_OR_ID`: the matrix's exactness check on a user's own model, and the
default backend's fallback seen from the command line."""

from __future__ import annotations

import pytest
from families import BY_NAME
from gguf_files import tiny_gguf
from tiny_models import save_tiny_folder

from probes.cli.main import main

pytest.importorskip("nnsight")


def test_a_saved_folder_checks_exact(tmp_path, tokenizer, capsys):
    folder = save_tiny_folder(tmp_path / "tiny-llama", "llama", tokenizer, n_layers=2)
    assert main(["models", "check", str(folder)]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "LlamaForCausalLM" in out and "via bridge" in out
    assert "lens yes" in out and "prompt cache yes" in out and "NO" not in out


def test_a_gguf_file_checks_exact(tmp_path, capsys):
    pytest.importorskip("gguf")
    path = tiny_gguf(tmp_path, "falcon")  # a family the bridge refused from GGUF before
    assert main(["models", "check", str(path)]) == 0
    out = capsys.readouterr().out
    assert "FalconForCausalLM" in out and "via bridge" in out and "lens yes" in out


@pytest.fixture
def codegen_folder(tmp_path, tokenizer):
    """A family TransformerLens wraps but cannot run under transformers 5.x."""
    folder = tmp_path / "tiny-codegen"
    BY_NAME["codegen"].build().save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def test_the_default_falls_back_to_nnsight_in_one_line(codegen_folder, capsys):
    assert main(["models", "check", str(codegen_folder)]) == 0
    captured = capsys.readouterr()
    assert "via nnsight" in captured.out and "lens yes" in captured.out
    notes = [line for line in captured.err.splitlines() if line.startswith("probes:")]
    assert (
        len(notes) == 1 and "CodeGenForCausalLM" in notes[0] and "runs with the nnsight backend" in notes[0]
    )


def test_an_explicit_bridge_fails_naming_the_architecture_and_the_alternative(codegen_folder, capsys):
    assert main(["models", "check", str(codegen_folder), "--backend", "bridge"]) == 2
    (error,) = [line for line in capsys.readouterr().err.splitlines() if line.startswith("probes:")]
    assert error.startswith("probes: error:")
    assert "CodeGenForCausalLM" in error and "--backend nnsight" in error
