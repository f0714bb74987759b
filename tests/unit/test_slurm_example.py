"""examples/slurm/probes_array.py builds the array's commands and submitit parameters (no SLURM here)."""

from __future__ import annotations

import importlib.util
import inspect
from pathlib import Path

import pytest

from probes.cli.main import build_parser

SCRIPT = Path(__file__).resolve().parents[2] / "examples" / "slurm" / "probes_array.py"


def _script():
    spec = importlib.util.spec_from_file_location("probes_array", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_each_array_task_runs_its_own_shard_of_the_same_probes_command():
    commands = _script().shard_commands(["run", "--ladder", "pythia", "--out", "/shared/r"], 3, "python")
    assert len(commands) == 3
    for index, command in enumerate(commands):
        assert command[:3] == ["python", "-m", "probes.cli.main"]
        args = build_parser({"run"}).parse_args(command[3:])  # probes itself accepts the command
        assert (args.shard, args.ladder, str(args.out), args.progress) == (
            f"{index}/3",
            "pythia",
            "/shared/r",
            False,
        )


@pytest.mark.parametrize("arguments", [[], ["show", "x"], ["run", "--shard", "0/2"]])
def test_commands_without_a_shard_slot_are_refused(arguments):
    with pytest.raises(SystemExit):
        _script().shard_commands(arguments, 2)


def test_dry_run_prints_the_commands(capsys):
    assert _script().main(["--shards", "2", "--dry-run", "--", "ablate", "--out", "r"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split("--shard ")[1] for line in lines] == ["0/2 --no-progress", "1/2 --no-progress"]


def test_submitit_accepts_the_slurm_parameters(tmp_path):
    pytest.importorskip("submitit")
    from submitit.slurm.slurm import _make_sbatch_string  # what SlurmExecutor checks parameters by

    script = _script()
    arguments = script.parser().parse_args(
        ["--shards", "8", "--partition", "gpu", "--gpus", "1", "--parallel", "4"]
    )
    parameters = script.slurm_parameters(arguments)
    assert set(parameters) <= set(inspect.signature(_make_sbatch_string).parameters)
    sbatch = _make_sbatch_string(command="probes", folder=tmp_path, map_count=8, **parameters)
    assert "#SBATCH --partition=gpu" in sbatch and "#SBATCH --gpus-per-node=1" in sbatch
    assert "#SBATCH --array=0-7%4" in sbatch
