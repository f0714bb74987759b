"""The ablation study on the built-in ladder: store, resume, command line and figures."""

from __future__ import annotations

import json

import pytest

from probes.ablate.study import UNPAIRED, AblateOptions, run_ablation_study
from probes.cli.main import main
from probes.errors import ProbesError, StoreError
from probes.report.ablations import (
    ablation_figures,
    ablation_markdown,
    load_ablation_tables,
    write_ablation_page,
)
from probes.store.store import Store

MODELS = ["organism:1x32", "organism:2x48"]


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> Store:
    options = AblateOptions(
        models=MODELS, n_items=8, ks=[1, 2, 8], draws=2, out=tmp_path_factory.mktemp("ablate"), progress=False
    )
    return run_ablation_study(options)


def test_the_study_writes_every_table_with_a_manifest(study):
    assert study.kinds() == ["ablation", "attribution", "patching", UNPAIRED]
    for kind in ("ablation", "attribution", "patching"):
        table = study.read(kind)
        assert set(table["model"]) == set(MODELS)
        for column in ("model", "revision", "task", "variant", "analysis", "lens", "toolkit_version"):
            assert column in table.columns and table[column].notna().all()
        manifest = study.manifest(kind)
        assert set(manifest["analysis"]) == {kind} and manifest["fingerprint"].str.len().eq(64).all()
        assert set(manifest["parameters"]) and (manifest["ladder"] == "organism").all()
    ablation = study.read("ablation")
    assert set(ablation["selection"]) == {"single", "top", "random"}
    assert set(ablation["method"]) == {"zero", "mean", "resample"}
    # k beyond a model's head count is skipped; k equal to it has only the top set
    heads_1x32 = ablation[(ablation["model"] == "organism:1x32") & (ablation["selection"] != "single")]
    assert set(heads_1x32["k"]) <= {1, 2}
    patching = study.read("patching")
    assert set(patching["positions"]) == {"answer", "suffix"}
    assert study.read(UNPAIRED).empty  # every organism item has its twin


def test_a_rerun_resumes_and_other_inputs_are_refused(study):
    before = {p: p.stat().st_mtime_ns for kind in study.kinds() for p in study.shard_paths(kind)}
    options = AblateOptions(models=MODELS, n_items=8, ks=[1, 2, 8], draws=2, out=study.root, progress=False)
    run_ablation_study(options)
    assert before == {p: p.stat().st_mtime_ns for kind in study.kinds() for p in study.shard_paths(kind)}
    with pytest.raises(StoreError, match="--overwrite"):
        run_ablation_study(AblateOptions(models=MODELS[:1], n_items=4, out=study.root, progress=False))


def test_adding_an_analysis_or_a_model_resumes(tmp_path):
    first = AblateOptions(
        models=MODELS[:1], n_items=4, analyses=["attribution"], out=tmp_path, progress=False
    )
    run_ablation_study(first)
    more = AblateOptions(
        models=MODELS, n_items=4, analyses=["attribution", "patching"], out=tmp_path, progress=False
    )
    store = run_ablation_study(more)
    assert set(store.read("patching")["model"]) == set(MODELS)


def test_bad_options_are_refused_before_any_model_loads(tmp_path, monkeypatch):
    import probes.jobs.units as units_module

    def no_loading(*args, **kwargs):
        raise AssertionError("a model was loaded")

    monkeypatch.setattr(units_module, "load_model", no_loading)
    for options, message in (
        (AblateOptions(ks=[0, 2]), "--ks"),
        (AblateOptions(batch_size=0), "--batch-size"),
        (AblateOptions(n_items=1), "at least 2 items"),
        (AblateOptions(analyses=["dla"]), "unknown analyses"),
        (AblateOptions(methods=["knockout"]), "unknown ablation methods"),
        (AblateOptions(positions=["middle"]), "positions"),
        (AblateOptions(variant="no_distractor"), "twin"),
        (AblateOptions(components=["head3"]), "L<block>H<head>"),
    ):
        with pytest.raises(ProbesError, match=message):
            run_ablation_study(options)


def test_figures_and_page(study, tmp_path):
    tables, order = load_ablation_tables(study.root)
    assert order == MODELS
    figures = ablation_figures(tables, order)
    assert set(figures) == {
        "attribution",
        "ablation",
        "patching",
        "patching-heads-answer",
        "patching-heads-suffix",
    }
    heatmaps = [trace for trace in figures["attribution"].data if trace.type == "heatmap"]
    assert [len(trace.x) for trace in heatmaps] == [3, 4]  # heads + MLP: 2 and 3 heads
    markdown = ablation_markdown(tables, order)
    assert "push the distractor" in markdown and "| organism:1x32 |" in markdown
    page = write_ablation_page(tables, tmp_path, order, png=False)
    assert "Direct logit attribution" in page.read_text()


def test_command_line(tmp_path, capsys):
    out = tmp_path / "store"
    code = main(
        ["ablate", "--models", "organism:1x32", "--n-items", "6", "--analyses", "attribution", "patching",
         "--positions", "answer", "--out", str(out), "--no-progress"]
    )  # fmt: skip
    printed = capsys.readouterr().out
    assert code == 0 and "pushes the distractor" in printed and (out / "report" / "ablations.html").is_file()
    assert len(printed.strip().splitlines()) <= 10 and "| organism" not in printed  # the tables: show, report
    assert f"probes show {out}" in printed
    assert Store(out).kinds() == ["attribution", "patching", UNPAIRED]
    assert main(["show", str(out)]) == 0  # an ablation-only store: its tables, within 100 columns
    shown = capsys.readouterr().out
    assert "push the distractor" in shown and "residual patching" in shown
    assert max(map(len, shown.splitlines())) <= 100 and "nan" not in shown.lower()
    assert main(["show", str(out), "--format", "json", "--table", "pushers"]) == 0
    assert {row["model"] for row in json.loads(capsys.readouterr().out)} == {"organism:1x32"}
    assert main(["show", str(out), "--format", "csv", "--table", "effects"]) == 2  # no ablation ran
    assert "holds no effects table" in capsys.readouterr().err
    assert main(["report", str(out), "--no-png"]) == 0
    assert main(["ablate", "--models", "organism:1x32", "--components", "L5H0", "--out", str(out / "x"),
                 "--analyses", "ablation", "--no-progress"]) == 2  # fmt: skip
    assert "has blocks L0..L0" in capsys.readouterr().err


def test_the_bar_counts_forward_passes_per_analysis():
    """Ablation and patching cost many passes per item, attribution one: the bar's work follows."""
    from probes.ablate.study import forward_passes

    options = AblateOptions()
    passes = {kind: forward_passes(kind, 4, 4, options) for kind in ("attribution", "ablation", "patching")}
    # ablation: clean + reference, 12 single parts × 3 methods, top and 5 random sets of k < 16, top 16
    assert passes == {"attribution": 1, "ablation": 2 + 36 + 4 * 6 + 1, "patching": 2 * (2 + 5 + 16)}
    assert forward_passes("patching", 4, 4, AblateOptions(patch_heads=False, positions=["answer"])) == 7


def test_patching_leaves_gaps_too_small_to_normalise_missing():
    """A twin 1e-6 nats from its item would make any rounding 'restored = 1': below MIN_GAP, no share."""
    import pandas as pd

    from probes.ablate.summary import MIN_GAP, patching_curve

    rows = pd.DataFrame(
        [
            {"model": m, "task": "t", "variant": "prize", "positions": "answer", "site": "resid",
             "component": "L0", "layer": 0, "head": None, "item_id": f"i{i}", "log_odds_clean": 0.0,
             "log_odds_twin": gap, "log_odds_patched": gap}
            for m, gap in (("wide", 2.0), ("narrow", MIN_GAP / 10))
            for i in range(3)
        ]
    )  # fmt: skip
    restored = patching_curve(rows).set_index("model")["restored"]
    assert restored["wide"] == 1.0 and pd.isna(restored["narrow"])
