"""Speed and memory as ratios measured in one run, each runnable from the repository root as ``python -m benchmarks.<name>``."""
