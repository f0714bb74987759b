"""`probes features` on the built-in ladder: store, resume, command line, refusals."""

from __future__ import annotations

import pytest

from probes.features import saelens

if not saelens.installed():
    pytest.skip(f"SAELens is optional: {saelens.INSTALL}", allow_module_level=True)

from probes.cli.main import main
from probes.errors import StoreError
from probes.features.study import KINDS, FeatureOptions, run_feature_study
from probes.features.summary import ablation_comparison, identity_terms
from probes.report.features import PROMPTS, load_feature_tables
from probes.store.store import Store

MODELS = ["organism:1x32", "organism:2x48"]
ARGS = ["--models", *MODELS, "--variants", "prize", "--n-items", "8", "--ks", "1", "2", "--draws", "2"]


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> Store:
    out = tmp_path_factory.mktemp("features")
    assert main(["features", *ARGS, "--out", str(out), "--no-report", "--no-progress"]) == 0
    return Store(out)


def test_the_study_writes_its_tables_with_provenance(study, capsys):
    assert sorted(study.kinds()) == sorted(KINDS)
    for kind in KINDS:
        table = study.read(kind)
        assert set(table["model"]) == set(MODELS)
        for column in ("model", "revision", "task", "variant", "lens", "toolkit_version", "layer", "sae",
                       "sae_sha256"):  # fmt: skip
            assert column in table.columns and table[column].notna().all(), (kind, column)
        manifest = study.manifest(kind)
        assert manifest["fingerprint"].str.len().eq(64).all()
    items = study.read("feature_items")
    assert sorted(items.groupby("model")["layer"].unique().map(list).sum()) == [1, 1, 2]
    terms = identity_terms(study.read("features"), items)
    total = (
        terms["baseline"]
        + terms["error"]
        + terms["distractor_features"]
        + terms["true_features"]
        + terms["gap"]
    )
    assert (total - terms["log_odds"]).abs().max() < 1e-6
    assert set(ablation_comparison(study.read("feature_ablation"))["k"]) <= {1, 2}


def test_the_command_ends_with_its_verdict_table(tmp_path, capsys):
    out = tmp_path / "store"
    assert main(["features", *ARGS[:2], "--variants", "prize", "--n-items", "6", "--ks", "1", "--draws", "2",
                 "--out", str(out), "--no-report", "--no-progress"]) == 0  # fmt: skip
    printed = capsys.readouterr().out
    assert "top − random [95% CI]" in printed and "organism:1x32" in printed
    assert max(len(line) for line in printed.splitlines() if not line.startswith("results:")) <= 100


def test_a_rerun_resumes_and_other_inputs_are_refused(study):
    before = {p: p.stat().st_mtime_ns for kind in study.kinds() for p in study.shard_paths(kind)}
    options = FeatureOptions(
        models=MODELS, variants=["prize"], n_items=8, ks=[1, 2], draws=2, out=study.root, progress=False
    )
    run_feature_study(options)
    assert before == {p: p.stat().st_mtime_ns for kind in study.kinds() for p in study.shard_paths(kind)}
    options.draws = 3
    with pytest.raises(StoreError, match="--overwrite"):
        run_feature_study(options)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--models", "organism:1x32", "--sae", "no/such/thing"], "not a SAELens release"),
        (["--models", "organism:1x32", "--sae", "missing-folder"], "no such folder"),
        (["--models", "organism:1x32", "--layers", "5"], "has residual layers 0…1"),
        (["--models", "organism:1x32", "--layers", "0"], "no SAE for organism:1x32 reads layers [0]"),
        (["--models", "organism:1x32", "--n-items", "2"], "at least 4 items"),
        (["--models", "organism:1x32", "--draws", "0"], "--draws 0: give a whole number of at least 1"),
        (["--models", "organism:1x32", "--ks", "0"], "--ks [0]: give numbers of features of at least 1"),
        (["--models", "organism:1x32", "--variants", "cot"], "reads the answer right after the prompt"),
    ],
)
def test_bad_options_are_one_clear_error(tmp_path, capsys, args, message):
    assert main(["features", *args, "--out", str(tmp_path / "o"), "--no-report", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("probes: error:") and message in err and "Traceback" not in err


def test_an_item_file_too_short_to_cross_fit_is_one_clear_error(tmp_path, capsys):
    from probes.tasks import load_items
    from probes.tasks.items import write_items

    short = write_items(load_items(["organism_negation"], ["prize"], 3, 0), tmp_path / "three.jsonl")
    args = ["features", "--models", "organism:1x32", "--tasks", str(short), "--out", str(tmp_path / "o")]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "has 3 item(s); the cross-fitted ablation needs at least 4" in err[0]
    assert not (tmp_path / "o").exists()


def test_the_report_shows_the_feature_page_with_prompts_and_tokens(study, tmp_path):
    assert main(["report", str(study.root), "--out", str(tmp_path), "--no-png"]) == 0
    page = (tmp_path / "features.html").read_text("utf-8")
    assert "The log-odds in feature terms" in page and "Top-k against random-k" in page
    assert "Where the features read" in page and "loss recovered" in page  # the shipped SAEs' quality
    tables, order = load_feature_tables(study.root)
    assert order == MODELS
    assert set(tables[PROMPTS]["prompt"]) == set(study.read("feature_items")["prompt"])
    assert (tmp_path / "features.md").is_file()


def test_an_unwritable_report_folder_is_a_warning_after_the_study_and_an_error_in_report(
    study, tmp_path, capsys
):
    import shutil

    store = tmp_path / "store"
    shutil.copytree(study.root, store)
    (store / "report").write_text("a file where the report folder goes")
    assert main(["features", *ARGS, "--out", str(store), "--no-progress"]) == 0  # resumed: nothing to run
    err = capsys.readouterr().err
    assert "probes: warning: no features page written" in err and "Traceback" not in err
    assert main(["report", str(store), "--out", str(store / "report"), "--no-png"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("probes: error: cannot write") and "writable --out" in err[0]
    assert (store / "report").read_text() == "a file where the report folder goes"


def test_show_prints_no_part_of_the_closing_pointer_whatever_the_store_path(study, tmp_path, capsys):
    import shutil

    store = tmp_path / ("a-store-folder-with-a-rather-long-name-" * 2) / "store"
    shutil.copytree(study.root, store)
    assert main(["show", str(store)]) == 0
    printed = capsys.readouterr().out
    assert "every figure" not in printed and "top − random [95% CI]" in printed
    assert "\n\n\n" not in printed
