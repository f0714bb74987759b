"""Run ``probes run`` (or ``ablate``, ``perplexity``) as a SLURM job array, with submitit.

Array task ``i`` of ``N`` runs the same command with ``--shard i/N`` into one store on a shared
file system: each computes its contiguous slice of the work list, claims keep tasks that
overlap (after a requeue) from computing a shard twice, and the task that finds the last
shard written writes the report. A task that SLURM kills or preempts is resumed by running
this script again with the same arguments: finished shards are skipped.

    pip install submitit
    python examples/slurm/probes_array.py --shards 8 --partition gpu --gpus 1 -- \
        run --ladder pythia --tasks negation_qa --device cuda --out /shared/results
    python examples/slurm/probes_array.py --shards 8 --dry-run -- run --ladder pythia  # print only
"""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def shard_commands(
    probes_arguments: Sequence[str], shards: int, python: str = sys.executable
) -> list[list[str]]:
    """The command of each array task: the probes command with ``--shard i/N`` and no bar."""
    if not probes_arguments or probes_arguments[0] not in ("run", "ablate", "perplexity"):
        raise SystemExit("after --, give a probes command that takes --shard: run, ablate or perplexity.")
    if any(argument.startswith("--shard") for argument in probes_arguments):
        raise SystemExit("leave --shard out: the script gives each array task its own.")
    if shards < 1:
        raise SystemExit(f"--shards {shards}: give at least 1.")
    command = [python, "-m", "probes.cli.main", *probes_arguments]
    return [[*command, "--shard", f"{index}/{shards}", "--no-progress"] for index in range(shards)]


def slurm_parameters(arguments: argparse.Namespace) -> dict[str, Any]:
    """submitit's SlurmExecutor parameters of every array task."""
    parameters: dict[str, Any] = {
        "job_name": "probes",
        "time": arguments.minutes,
        "cpus_per_task": arguments.cpus,
        "mem": f"{arguments.mem_gb}GB",
        "array_parallelism": arguments.parallel or arguments.shards,
    }
    if arguments.partition:
        parameters["partition"] = arguments.partition
    if arguments.gpus:
        parameters["gpus_per_node"] = arguments.gpus
    return parameters


def parser() -> argparse.ArgumentParser:
    """The script's options; everything after ``--`` is the probes command."""
    options = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    options.add_argument("--shards", type=int, required=True, help="Array tasks (N of --shard i/N).")
    options.add_argument("--partition", default=None, help="SLURM partition.")
    options.add_argument("--gpus", type=int, default=0, help="GPUs per array task.")
    options.add_argument("--cpus", type=int, default=4, help="CPUs per array task.")
    options.add_argument("--mem-gb", type=int, default=32, help="Memory per array task, GB.")
    options.add_argument("--minutes", type=int, default=240, help="Time limit per array task.")
    options.add_argument("--parallel", type=int, default=None, help="Array tasks at once (all by default).")
    options.add_argument("--logs", type=Path, default=Path("slurm-logs"), help="submitit's folder.")
    options.add_argument("--dry-run", action="store_true", help="Print the commands; submit nothing.")
    return options


def main(argv: Sequence[str] | None = None) -> int:
    """Submit the array (or print its commands with ``--dry-run``)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    ours, probes_arguments = (
        (argv[: argv.index("--")], argv[argv.index("--") + 1 :]) if "--" in argv else (argv, [])
    )
    arguments = parser().parse_args(ours)
    commands = shard_commands(probes_arguments, arguments.shards)
    if arguments.dry_run:
        print("\n".join(shlex.join(command) for command in commands))
        return 0
    import submitit

    executor = submitit.SlurmExecutor(folder=arguments.logs)
    executor.update_parameters(**slurm_parameters(arguments))
    with executor.batch():  # one sbatch --array for all the tasks
        jobs = [executor.submit(submitit.helpers.CommandFunction(command)) for command in commands]
    print(f"submitted {len(jobs)} array task(s): {jobs[0].job_id.split('_')[0]} (logs: {arguments.logs})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
