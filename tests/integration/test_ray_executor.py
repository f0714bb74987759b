"""``--executor ray``: a local cluster of 2 workers writes the store a serial run writes.

Starting a local Ray cluster takes ~15 s here (2 shared cores), so the default suite starts one:
the Ray run of the built-in ladder's two smallest rungs, in which one unit kills its own worker
once (a marker file says it did), must be retried, and a unit another live process holds must be
waited for and recovered once that process dies; the store must equal the serial run's, rows
and manifests, less the fields of time, host and executor. The command line (`probes run`,
`probes lens train`), `ablate` and `perplexity` through Ray are in the slow tier.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from probes.jobs import ray_executor
from probes.jobs.runner import execute
from probes.jobs.sweep import SweepOptions, plan, run_sweep, sweep_compute
from probes.jobs.units import shard_path
from probes.store import claims
from probes.store.store import Store
from probes.store.verify import verify_store

pytest.importorskip("ray")

MODELS = ["organism:1x4", "organism:1x8"]
#: Manifest fields that say when, where and how a shard was made, not what it holds.
CIRCUMSTANCES = ("created", "torch_threads", "python", "packages")
#: Options that say where the units ran (and the store's own folder).
EXECUTION = ("executor", "address", "workers", "gpu_memory_gib", "out")


def _options(out: Path, **changes) -> SweepOptions:
    options = SweepOptions(models=list(MODELS), n_items=4, out=out, progress=False, batch_size=4)
    return dataclasses.replace(options, **changes)


def _manifest(store: Store) -> pd.DataFrame:
    records = store.manifest().drop(columns=list(CIRCUMSTANCES))
    records["options"] = [
        json.dumps({k: v for k, v in options.items() if k not in EXECUTION}, sort_keys=True)
        for options in records["options"]
    ]
    return records.sort_values(["model", "task", "variant"]).reset_index(drop=True)


def assert_same_store(serial: Path, other: Path) -> None:
    """Rows equal exactly; manifests equal less the circumstances; every shard verifies."""
    a, b = Store(serial), Store(other)
    pd.testing.assert_frame_equal(a.read(), b.read())
    pd.testing.assert_frame_equal(_manifest(a), _manifest(b))
    assert all(finding.status == "ok" for finding in verify_store(other))
    assert not list(other.rglob(".*.lock")) and not list(other.rglob(".*.tmp*"))


def test_a_killed_worker_is_retried_and_the_ray_store_equals_the_serial_one(tmp_path, monkeypatch):
    serial_store, _ = run_sweep(_options(tmp_path / "serial"))
    options = _options(tmp_path / "ray", executor="ray", workers=2)
    marker, log = tmp_path / "killed-once", tmp_path / "loads.log"
    compute = sweep_compute(options)

    def compute_or_die_once(model, pending):
        for unit in pending:
            with log.open("a") as handle:  # which worker computed which unit, with which model object
                handle.write(f"{os.getpid()} {id(model)} {unit.model.label}\n")
            if unit.model.label == MODELS[1] and unit.variant == "prize" and not marker.exists():
                marker.write_text(str(os.getpid()))
                os.kill(os.getpid(), signal.SIGKILL)  # the worker dies holding the unit's claim
        yield from compute(model, pending)

    units = plan(options)
    other = subprocess.Popen(["sleep", "600"])  # another live process holds one unit's claim ...
    held = shard_path(Store(options.out), units[1])
    held.parent.mkdir(parents=True)
    owner = {"host": claims.HOST, "pid": other.pid}
    claims.lock_path(held).write_text(json.dumps(owner))
    tell = ray_executor._tell_waiting

    def release_when_waited_for(store, waiting):  # ... and dies once the driver waits for it
        assert [shard_path(store, unit) for unit in waiting] == [held]
        other.kill()
        other.wait()
        return tell(store, waiting)

    monkeypatch.setattr(ray_executor, "_tell_waiting", release_when_waited_for)
    execute(units, options, compute_or_die_once, "shards")
    assert other.returncode is not None  # the held unit was waited for, then recovered

    assert marker.exists()  # the worker died once ...
    lines = [line.split() for line in log.read_text().splitlines()]
    assert len(lines) == len(units) + 1  # ... and its unit ran again, in another process
    assert {pid for pid, _, _ in lines} - {marker.read_text()}
    for pid in {pid for pid, _, _ in lines}:  # a worker keeps its last model: it reloads one only
        runs = [(obj, label) for p, obj, label in lines if p == pid]  # after loading another between
        for (obj, label), (next_obj, next_label) in zip(runs, runs[1:]):
            assert next_label != label or next_obj == obj, runs
    assert_same_store(serial_store.root, tmp_path / "ray")


@pytest.mark.slow
def test_probes_run_executor_ray_writes_the_serial_store(tmp_path):
    from probes.cli.main import main

    common = ["run", "--models", *MODELS, "--n-items", "4", "--no-report", "--no-progress"]
    assert main([*common, "--out", str(tmp_path / "serial")]) == 0
    assert main([*common, "--out", str(tmp_path / "ray"), "--executor", "ray", "--workers", "2"]) == 0
    assert_same_store(tmp_path / "serial", tmp_path / "ray")
    assert main([*common, "--out", str(tmp_path / "ray"), "--executor", "ray", "--workers", "2"]) == 0


@pytest.mark.slow
def test_lens_train_executor_ray_trains_the_serial_lenses(tmp_path):
    from probes.cli.main import main

    common = ["lens", "train", "--models", *MODELS, "--train-steps", "3", "--train-sequences", "8"]
    common += ["--held-out-sequences", "4", "--sequence-length", "16", "--no-progress"]
    assert main([*common, "--out", str(tmp_path / "serial")]) == 0
    assert main([*common, "--out", str(tmp_path / "ray"), "--executor", "ray", "--workers", "2"]) == 0
    serial = sorted((tmp_path / "serial").rglob("lens.safetensors"))
    assert len(serial) == len(MODELS)
    for path in serial:
        twin = tmp_path / "ray" / path.relative_to(tmp_path / "serial")
        assert twin.read_bytes() == path.read_bytes()


@pytest.mark.slow
def test_ablate_and_perplexity_through_ray_write_the_serial_tables(tmp_path):
    import logging

    import ray

    from probes.ablate.study import AblateOptions, run_ablation_study
    from probes.jobs.perplexity import PerplexityOptions, run_perplexity

    text = tmp_path / "text.txt"
    text.write_text(" ".join(["the cat sat on the mat"] * 40))
    ablate = AblateOptions(models=list(MODELS), n_items=4, progress=False, ks=[1, 2], draws=1)
    perplexity = PerplexityOptions(models=list(MODELS), text=text, progress=False)
    root = str(Path(__file__).resolve().parents[2])
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        logging_level=logging.ERROR,
        runtime_env={"env_vars": {"PYTHONPATH": root}},
    )
    try:  # the executor runs on the cluster this process joined
        for executor in ("serial", "ray"):
            run_ablation_study(
                dataclasses.replace(ablate, out=tmp_path / f"ablate-{executor}", executor=executor)
            )
            run_perplexity(
                dataclasses.replace(perplexity, out=tmp_path / f"ppl-{executor}", executor=executor)
            )
    finally:
        ray.shutdown()
    for kind in ("attribution", "ablation", "patching", "patching_unpaired"):
        serial, other = (
            Store(tmp_path / "ablate-serial").read(kind),
            Store(tmp_path / "ablate-ray").read(kind),
        )
        pd.testing.assert_frame_equal(serial, other)
    serial, other = (
        Store(tmp_path / "ppl-serial").read("perplexity"),
        Store(tmp_path / "ppl-ray").read("perplexity"),
    )
    pd.testing.assert_frame_equal(serial.drop(columns=["created"]), other.drop(columns=["created"]))
