"""Start-up time of the `probes` command, as ratios to a bare `python -c pass`.

Every command runs in a fresh interpreter, interleaved with the bare one, ``--repeats`` times;
the minimum of each is kept (the least disturbed run on a shared machine) and divided by the
bare interpreter's minimum. Run it from the checkout to measure::

    python -m benchmarks.bench_cli_startup --repeats 5
    python -m benchmarks.bench_cli_startup --store probes-results   # and `probes show` of a store

A ratio near 1 means the command costs little more than starting Python; the model libraries
(torch, transformers, TransformerLens) alone cost 10-30 bare starts.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

COMMANDS = {
    "python -c pass": ["-c", "pass"],
    "import probes.cli.main": ["-c", "import probes.cli.main"],
    "probes --help": ["-m", "probes.cli.main", "--help"],
    "probes ladders": ["-m", "probes.cli.main", "ladders"],
    "probes tasks": ["-m", "probes.cli.main", "tasks"],
}


def seconds(arguments: list[str]) -> float:
    """Wall-clock seconds of one fresh ``python`` with ``arguments`` (output discarded)."""
    start = time.perf_counter()
    subprocess.run([sys.executable, *arguments], check=True, stdout=subprocess.DEVNULL, env=os.environ)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--store", default=None, help="A result store: also time `probes show STORE` (no model library)."
    )
    args = parser.parse_args()
    commands = dict(COMMANDS)
    if args.store:
        commands["probes show STORE"] = ["-m", "probes.cli.main", "show", args.store]
    best = {name: float("inf") for name in commands}
    for _ in range(args.repeats):
        for name, arguments in commands.items():
            best[name] = min(best[name], seconds(arguments))
    bare = best["python -c pass"]
    for name, value in best.items():
        print(f"{name:<20} {value:7.3f} s  {value / bare:6.1f} × python -c pass")


if __name__ == "__main__":
    main()
