"""The tuned lens from the command line: `probes lens train`, `probes run --lens`, the report."""

from __future__ import annotations

import json

import torch
from tiny_models import save_tiny_folder, tiny_hf_model

from probes.cli.main import main
from probes.lenses.tuned import Translators, TunedLens, save_lens
from probes.lenses.tuned.access import model_fingerprint
from probes.model.loading import from_hf_model, load_model
from probes.store.store import Store
from probes.tasks import Item
from probes.tasks.items import write_items


def test_lens_train_then_both_lenses_side_by_side_in_one_store(tokenizer, tmp_path, capsys):
    folder = save_tiny_folder(tmp_path / "tiny-gpt2", "gpt2", tokenizer, seed=1, n_layers=2)
    text = tmp_path / "text.txt"
    text.write_text(" ".join(f"w{(i * 7) % 200}" for i in range(2000)))
    lenses, store = tmp_path / "lenses", tmp_path / "store"
    args = ["lens", "train", "--models", str(folder), "--text", str(text), "--train-steps", "3"]
    args += ["--sequence-length", "16", "--held-out-sequences", "4", "--out", str(lenses), "--no-progress"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "held-out KL" in printed and "text.txt" in printed
    info = json.loads((lenses / "tiny-gpt2" / "lens.json").read_text())
    assert info["steps"] == 3 and len(info["held_out_kl"]["tuned"]) == 3 and info["text"] == "text.txt"
    items = write_items(
        [Item(f"i{i}", "toy", f"w{i} w{i + 1} w{i + 2}", f" w{i + 20}", f" w{i + 30}") for i in range(4)],
        tmp_path / "toy.csv",
    )
    run = [
        "run",
        "--models",
        str(folder),
        "--tasks",
        str(items),
        "--out",
        str(store),
        "--no-progress",
        "--no-report",
    ]
    assert main([*run, "--lens", "tuned", "--lens-dir", str(lenses)]) == 0
    assert main([*run, "--lens", "logit"]) == 0
    rows = Store(store).read()
    tuned = f"tuned-{info['weights_sha256'][:8]}"  # the lens id: its name and its weights' hash
    assert sorted(rows["lens"].unique()) == ["logit", tuned]
    assert sorted(p.name for p in (store / "shards").iterdir()) == ["logit", tuned]
    last = rows[rows["layer"] == rows["n_layers"]].pivot_table(
        index="item_id", columns="lens", values="log_odds"
    )
    torch.testing.assert_close(
        torch.tensor(last["logit"].values), torch.tensor(last[tuned].values), atol=1e-4, rtol=0
    )
    manifest = Store(store).manifest().set_index("lens")
    assert manifest.loc["tuned", "lens_weights"] == info["weights_sha256"]
    assert manifest.loc["tuned", "lens_id"] == tuned
    assert manifest.loc["tuned", "lens_held_out_kl"] == info["held_out_kl"]
    # Resuming skips both lenses' finished shards.
    written = {p: p.stat().st_mtime_ns for p in Store(store).shard_paths()}
    assert main([*run, "--lens", "tuned", "--lens-dir", str(lenses)]) == 0
    assert {p: p.stat().st_mtime_ns for p in Store(store).shard_paths()} == written

    # A second tuned lens of the same model (another seed) lives beside the first, not refused.
    other = tmp_path / "lenses-seed1"
    assert main([*args[:-3], "--seed", "1", "--out", str(other), "--no-progress"]) == 0
    second = json.loads((other / "tiny-gpt2" / "lens.json").read_text())["weights_sha256"]
    assert second != info["weights_sha256"]
    assert main([*run, "--lens", "tuned", "--lens-dir", str(other)]) == 0
    lens_ids = sorted(Store(store).read()["lens"].unique())
    assert lens_ids == sorted(["logit", tuned, f"tuned-{second[:8]}"])
    assert main(["report", str(store), "--no-png"]) == 0
    summary = (store / "report" / "summary.md").read_text()
    assert f"## Lenses compared (logit, {', '.join(lens_ids[1:])})" in summary
    for lens_id in lens_ids:
        assert f"| {lens_id} |" in summary  # its KL row, decision layers and disagreement rows
    html = (store / "report" / "report.html").read_text()
    assert all(f"{lens_id} lens" in html for lens_id in lens_ids)
    assert "The other figures read the logit lens." in summary
    # --lens chooses the main figures' lens: a lens id, or `tuned` only where it names one lens.
    assert main(["report", str(store), "--no-png", "--lens", tuned, "--out", str(tmp_path / "r")]) == 0
    assert f"The other figures read the {tuned} lens." in (tmp_path / "r" / "summary.md").read_text()
    assert main(["report", str(store), "--no-png", "--lens", "tuned", "--out", str(tmp_path / "r2")]) == 2
    assert "choose one of them" in capsys.readouterr().err


def test_run_with_a_missing_or_foreign_tuned_lens_is_one_clear_error(tokenizer, tmp_path, capsys):
    folder = save_tiny_folder(tmp_path / "tiny-neox", "neox", tokenizer, seed=3, n_layers=3)
    items = write_items([Item("i0", "toy", "w1 w2 w3", " w4", " w5")], tmp_path / "toy.csv")
    run = [
        "run",
        "--models",
        str(folder),
        "--tasks",
        str(items),
        "--out",
        str(tmp_path / "s"),
        "--no-progress",
    ]
    assert main([*run, "--lens", "tuned", "--lens-dir", str(tmp_path / "none")]) == 2
    assert "no tuned lens for tiny-neox" in capsys.readouterr().err
    other = from_hf_model(tiny_hf_model("neox", seed=0), tokenizer, name="tiny-neox")
    lens = TunedLens(
        Translators(other.n_layers, other.d_model), {"model_fingerprint": model_fingerprint(other)}
    )
    save_lens(lens, tmp_path / "lenses" / "tiny-neox")  # made for another tiny neox
    assert main([*run, "--lens", "tuned", "--lens-dir", str(tmp_path / "lenses")]) == 2
    assert "other weights" in capsys.readouterr().err
    assert main([*run, "--lens", "sideways"]) == 2
    assert "unknown lens" in capsys.readouterr().err


def test_lens_train_under_nnsight_gives_a_lens_the_bridge_accepts(tmp_path, capsys):
    """`--backend nnsight` trains on the same residuals (to float rounding) and stamps the same
    weights fingerprint, so its lens loads under either backend; a bad backend is refused first."""
    import pytest

    pytest.importorskip("nnsight")
    from probes.jobs.lens_training import lens_folder
    from probes.lenses.tuned import load_lens, read_info

    out = {}
    for backend in ("bridge", "nnsight"):
        args = ["lens", "train", "--models", "organism:1x4", "--train-steps", "4", "--train-sequences", "16"]
        args += ["--held-out-sequences", "4", "--backend", backend, "--out", str(tmp_path / backend)]
        assert main([*args, "--no-progress"]) == 0
        out[backend] = read_info(lens_folder(tmp_path / backend, "organism:1x4"))
    assert out["bridge"]["model_fingerprint"] == out["nnsight"]["model_fingerprint"]
    for a, b in zip(out["bridge"]["held_out_kl"]["tuned"], out["nnsight"]["held_out_kl"]["tuned"]):
        assert abs(a - b) <= 1e-3 * max(1.0, abs(a))
    load_lens(
        lens_folder(tmp_path / "nnsight", "organism:1x4"), load_model("organism:1x4")
    )  # bridge loads it
    capsys.readouterr()
    bad = ["lens", "train", "--models", "organism:1x4", "--backend", "vllm", "--out", str(tmp_path / "x")]
    assert main(bad) != 0 and "--backend 'vllm' is unknown" in capsys.readouterr().err
