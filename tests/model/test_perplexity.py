"""Perplexity on a held-out text: windows, the NLL against plain transformers, the stored table."""

from __future__ import annotations

import sys

import pandas as pd
import pytest
import torch
from tiny_models import build_tokenizer, tiny_hf_model

from probes.cli.main import main
from probes.jobs import perplexity as module
from probes.jobs.perplexity import (
    PERPLEXITY,
    PerplexityError,
    negative_log_likelihood,
    read_perplexity,
    text_from_dataset,
    windows,
)
from probes.model.loading import from_hf_model
from probes.report.tables import attach_sizes

TEXT = " ".join(f"w{(7 * i) % 200}" for i in range(50))


def test_windows_cover_every_token_once():
    with_prefix = windows(list(range(10, 20)), window=4, prefix=0)
    assert [w.tolist() for w, _ in with_prefix] == [
        [0, 10, 11, 12],
        [0, 13, 14, 15],
        [0, 16, 17, 18],
        [0, 19],
    ]
    assert sum(n for _, n in with_prefix) == 10
    without = windows(list(range(10, 20)), window=4, prefix=None)
    assert [w.tolist() for w, _ in without] == [[10, 11, 12, 13], [14, 15, 16, 17], [18, 19]]
    assert [n for _, n in without] == [3, 3, 1]
    with pytest.raises(PerplexityError, match="at least 2"):
        windows([1, 2], window=1, prefix=None)


@pytest.fixture(scope="module")
def gpt2(tmp_path_factory):
    # A tokenizer of its own: TransformerBridge gives the tokenizer it wraps a BOS token, which
    # must not leak into the session's `tokenizer` that `model_folders` saves.
    tokenizer = build_tokenizer(tmp_path_factory.mktemp("tokenizer"))
    return from_hf_model(tiny_hf_model("gpt2", seed=3), tokenizer, name="tiny-gpt2")


def reference_nll(tokenizer, window: int) -> tuple[float, int]:
    """Mean NLL by plain transformers, one window at a time, each led by the BOS token."""
    model = tiny_hf_model("gpt2", seed=3)
    ids = tokenizer(TEXT, add_special_tokens=False)["input_ids"]
    total, count = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(ids), window - 1):
            chunk = torch.tensor([[tokenizer.bos_token_id, *ids[start : start + window - 1]]])
            loss = model(input_ids=chunk, labels=chunk).loss
            total += float(loss) * (chunk.shape[1] - 1)
            count += chunk.shape[1] - 1
    return total / count, count


def test_nll_matches_transformers_in_one_window_and_in_many(gpt2):
    tokenizer = gpt2.tokenizer
    assert tokenizer.bos_token_id is not None
    nll, count = negative_log_likelihood(gpt2, TEXT)
    assert count == 50  # every text token predicted, the first one from BOS
    assert nll == pytest.approx(reference_nll(tokenizer, window=64)[0], abs=1e-5)
    windowed, count = negative_log_likelihood(gpt2, TEXT, window=8)
    expected, expected_count = reference_nll(tokenizer, window=8)
    assert (windowed, count) == (pytest.approx(expected, abs=1e-5), expected_count)
    batched, _ = negative_log_likelihood(gpt2, TEXT, window=8, batch_size=3)
    assert batched == pytest.approx(windowed, abs=1e-5)
    capped, count = negative_log_likelihood(gpt2, TEXT, max_tokens=10)
    assert count == 10 and capped != pytest.approx(nll)


def test_perplexity_command_measures_each_model_and_skips_measured_ones(
    model_folders, tmp_path, capsys, monkeypatch
):
    text = tmp_path / "held-out.txt"
    text.write_text(TEXT)
    store = tmp_path / "store"
    args = ["perplexity", "--models", *map(str, model_folders), "--text", str(text), "--out", str(store)]
    assert main(args) == 0
    assert f"perplexity: {store / 'analyses' / PERPLEXITY}" in capsys.readouterr().out
    rows = read_perplexity(store)
    assert list(rows["model"]) == ["tiny-gpt2", "tiny-llama"]
    assert (rows["text_name"] == "held-out.txt").all() and (rows["n_tokens"] == 50).all()
    assert rows["perplexity"].between(50, 1000).all()  # random models over a 202-word vocabulary
    assert set(rows.columns) >= {"revision", "text_sha256", "window", "toolkit_version", "nll", "created"}

    def fail(*args, **kwargs):
        raise AssertionError("measured again")

    monkeypatch.setattr(module, "measure", fail)
    assert main(args) == 0  # both models already measured on this text
    # beside a sweep, perplexity becomes a size axis of the report
    table = pd.DataFrame({"model": ["tiny-gpt2", "tiny-llama"], "layer": [0, 0]})
    sizes = attach_sizes(table, pd.DataFrame(), rows)
    assert list(sizes["perplexity"]) == pytest.approx(list(rows["perplexity"]))


def test_text_and_dataset_errors_are_clear(tmp_path, capsys, monkeypatch):
    text = tmp_path / "t.txt"
    text.write_text("w1 w2")
    assert main(["perplexity", "--models", "x/y", "--text", str(text), "--dataset", "wikitext"]) == 2
    assert "exactly one of --text FILE or --dataset NAME" in capsys.readouterr().err
    assert main(["perplexity", "--models", "x/y", "--text", str(tmp_path / "missing.txt")]) == 2
    assert "cannot read the text file" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "datasets", None)
    with pytest.raises(PerplexityError, match="pip install datasets"):
        text_from_dataset("wikitext", "wikitext-103-raw-v1")
