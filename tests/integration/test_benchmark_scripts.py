"""The GPU benchmark runs where no GPU is: its ``--smoke`` run (tiny model, CPU) catches a script
broken by a change elsewhere (bench_gpu imports bench_lens's helpers), which no GPU-less CI would."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_bench_gpu_smoke_run_prints_its_table():
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.bench_gpu", "--smoke", "--length", "32", "--rounds", "1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "smoke run" in done.stdout and "lens / forward time" in done.stdout
