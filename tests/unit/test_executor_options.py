"""The executor's options and resources, without Ray: checks, GPU shares, the missing-Ray error."""

from __future__ import annotations

import sys

import pytest

from probes.errors import InvalidOptionError
from probes.jobs.options import RunOptions
from probes.jobs.resources import MAX_PER_GPU, Resources, catalogue_parameters, unit_resources
from probes.jobs.validation import check_options, joins_cluster
from probes.model.specs import parse_spec


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"executor": "dask"}, "--executor 'dask' is unknown"),
        ({"address": "auto"}, "belong to --executor ray"),
        ({"workers": 2}, "belong to --executor ray"),
        ({"executor": "ray", "workers": 0}, "--workers 0"),
        ({"executor": "ray", "workers": 2, "address": "auto"}, "has its own CPUs"),
        ({"executor": "ray", "gpu_memory_gib": 0.0}, "--gpu-memory-gib 0.0"),
    ],
)
def test_bad_executor_options_are_refused_with_the_fix(tmp_path, changes, message):
    with pytest.raises(InvalidOptionError, match=message):
        check_options(RunOptions(out=tmp_path, **changes))


def test_a_joined_cluster_checks_the_device_on_its_workers_not_here(tmp_path, monkeypatch):
    import probes.jobs.validation

    # The device check is the subject, not Ray: stand in for its import so the test runs without it.
    monkeypatch.setattr(probes.jobs.validation, "import_ray", lambda: None)
    joined = RunOptions(out=tmp_path, executor="ray", address="head:6379", device="cuda:7")
    assert joins_cluster(joined)
    check_options(joined)  # this machine need not have the cluster's GPUs
    with pytest.raises(InvalidOptionError, match="--device"):
        check_options(RunOptions(out=tmp_path, executor="ray", device="cuda:7"))  # a local cluster


def test_cpu_runs_take_one_cpu_per_unit_whatever_the_size():
    assert unit_resources(10**6, "float32", "cpu", 80.0) == Resources(num_cpus=1.0, num_gpus=0.0)
    assert unit_resources(None, "bfloat16", "cpu", 80.0) == Resources(num_cpus=1.0, num_gpus=0.0)


def test_gpu_shares_grow_with_the_model_and_pack_whole_gpus():
    # 1.5 x the weights: a 1B float32 model needs 5.6 GiB, 7% of an 80 GiB GPU -> the smallest share
    assert unit_resources(10**9, "float32", "cuda", 80.0).num_gpus == 1 / MAX_PER_GPU
    # 7B bfloat16: 19.6 GiB, 24% -> a quarter; 12B bfloat16: 33.5 GiB, 42% -> a half
    assert unit_resources(7 * 10**9, "bfloat16", "cuda", 80.0).num_gpus == 0.25
    assert unit_resources(12 * 10**9, "bfloat16", "cuda", 80.0).num_gpus == 0.5
    # 70B bfloat16: 195.6 GiB -> 3 whole GPUs; 405B: 1131.6 GiB -> 15
    assert unit_resources(70 * 10**9, "bfloat16", "cuda:1", 80.0).num_gpus == 3
    assert unit_resources(405 * 10**9, "bfloat16", "cuda", 80.0).num_gpus == 15
    # a smaller GPU: 12B bfloat16 no longer fits one 24 GiB GPU
    assert unit_resources(12 * 10**9, "bfloat16", "cuda", 24.0).num_gpus == 2
    assert unit_resources(None, "float32", "cuda", 80.0).num_gpus == 1  # unknown size: a whole GPU


def test_parameters_come_from_the_ladder_catalogue():
    assert catalogue_parameters(parse_spec("organism:4x96")) == 467136
    assert catalogue_parameters(parse_spec("organism:1x4")) == 1068


def test_without_ray_the_executor_says_how_to_install_it(tmp_path, monkeypatch):
    from probes.jobs.validation import import_ray

    monkeypatch.setitem(sys.modules, "ray", None)  # import ray fails as if it were not installed
    with pytest.raises(InvalidOptionError, match=r"pip install 'probes\[ray\]'"):
        import_ray()


def test_probes_run_with_executor_ray_but_no_ray_is_one_error_line(tmp_path, monkeypatch, capsys):
    from probes.cli.main import main

    monkeypatch.setitem(sys.modules, "ray", None)
    code = main(
        ["run", "--models", "organism:1x4", "--n-items", "2", "--out", str(tmp_path), "--executor", "ray"]
    )
    assert code == 2
    assert "pip install 'probes[ray]'" in capsys.readouterr().err
    assert not list(tmp_path.rglob("*.parquet"))


def test_torch_threads_leave_the_busy_cpus_to_their_work(monkeypatch):
    """Threads = the CPUs the load leaves free (at least 1, at most torch's default); a user's
    PROBES_THREADS or OMP_NUM_THREADS wins."""
    import torch

    from probes.jobs import resources

    free = resources.free_cpus
    assert [free(16, 0.3), free(2, 7.9), free(8, 3.4)] == [16, 1, 5]
    before = torch.get_num_threads()
    try:
        for name in resources.THREAD_VARIABLES:
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setattr(resources.os, "getloadavg", lambda: (1e6, 0.0, 0.0), raising=False)
        assert resources.set_torch_threads() == 1 == torch.get_num_threads()  # a saturated machine
        monkeypatch.setenv("PROBES_THREADS", "2")
        assert resources.set_torch_threads() == 2 == torch.get_num_threads()
    finally:
        torch.set_num_threads(before)
