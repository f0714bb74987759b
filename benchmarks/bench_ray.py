"""Units per minute of ``--executor ray`` with 1 and 2 workers on the built-in ladder, as a ratio.

In one run, interleaved ``--rounds`` times: a local Ray cluster of 1 CPU and one of 2 CPUs
(each started, timed apart, and shut down), each running the default job (the built-in
ladder, 6 rungs x 3 variants = 18 units of ``--n-items`` items) into a fresh store; and a
serial run of the same job for reference. A run's time counts from submitting the units to
the last shard written: model loads count; the cluster's own start does not (it is printed
apart), nor, unless ``--cold``, the workers' import of torch and the model libraries (each
worker imports them once, before the clock starts). The best round of each is kept.

    OMP_NUM_THREADS=1 python -m benchmarks.bench_ray --n-items 24 --rounds 1

The 2-worker / 1-worker ratio is the speed-up of the units' work when two CPUs are free for
it; on a machine whose cores other jobs share it shows less (see benchmarks/README.md).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import tempfile
import time
from pathlib import Path

import ray
import torch

from probes.jobs.runner import execute
from probes.jobs.sweep import SweepOptions, plan, sweep_compute


@ray.remote(num_cpus=1)
def _import_libraries() -> int:
    """Import what a unit needs (torch, transformers, probes), then hold the CPU a moment so that
    each of the cluster's workers runs one of these."""
    import probes.jobs.sweep  # noqa: F401

    time.sleep(2.0)
    return os.getpid()


def timed_run(options: SweepOptions, workers: int | None, warm: bool) -> tuple[float, float, int]:
    """(cluster start s, run s, units) of one run into a fresh store; ``workers`` None: serial.

    ``warm``: the workers import the model libraries before the run is timed.
    """
    with tempfile.TemporaryDirectory() as folder:
        options = dataclasses.replace(options, out=Path(folder) / "store")
        start = time.perf_counter()
        if workers is not None:
            options = dataclasses.replace(options, executor="ray")
            root = str(Path(__file__).resolve().parents[1])
            ray.init(
                num_cpus=workers,
                include_dashboard=False,
                logging_level=logging.ERROR,
                runtime_env={"env_vars": {"PYTHONPATH": root, "OMP_NUM_THREADS": "1"}},
            )
            if warm:  # every worker imports the model libraries before the clock starts
                ray.get([_import_libraries.remote() for _ in range(workers)])
        started = time.perf_counter()
        units = plan(options)
        execute(units, options, sweep_compute(options), "shards")
        finished = time.perf_counter()
        if workers is not None:
            ray.shutdown()
        return started - start, finished - started, len(units)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n-items", type=int, default=24, help="Items per task and variant.")
    parser.add_argument("--rounds", type=int, default=1, help="Interleaved rounds; the best is kept.")
    parser.add_argument(
        "--cold", action="store_true", help="Count the workers' imports (torch ...) in the run's time."
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    options = SweepOptions(n_items=args.n_items, progress=False)
    best: dict[str, float] = {}
    startup: dict[str, float] = {}
    units = 0
    for _ in range(args.rounds):
        for name, workers in (("ray-1", 1), ("ray-2", 2), ("serial", None)):
            start, seconds, units = timed_run(options, workers, warm=not args.cold)
            best[name] = min(best.get(name, float("inf")), seconds)
            startup[name] = start
            print(
                f"{name}: cluster start (+ warm-up) {start:.1f} s, {units} units in {seconds:.1f} s",
                flush=True,
            )
    per_minute = {name: units / seconds * 60 for name, seconds in best.items()}
    figures = {
        "units": units,
        "n_items": args.n_items,
        "workers_warm": not args.cold,
        "cpus": os.cpu_count(),
        "load_average_1min": os.getloadavg()[0],
        "units_per_minute": {name: round(value, 2) for name, value in per_minute.items()},
        "ratio_2_workers_to_1": round(per_minute["ray-2"] / per_minute["ray-1"], 3),
        "ratio_1_worker_to_serial": round(per_minute["ray-1"] / per_minute["serial"], 3),
        "cluster_start_and_warm_up_s": {n: round(v, 1) for n, v in startup.items() if n != "serial"},
    }
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
