"""What the toolkit concludes from per-layer readouts: scores, metrics and the tests behind them.

:mod:`~probes.analysis.scoring` (answer scores), :mod:`~probes.analysis.metrics` (per-item,
per-layer tables and aggregates), :mod:`~probes.analysis.decision` (decision and divergence
layers), :mod:`~probes.analysis.reasoning`, :mod:`~probes.analysis.solvable` and
:mod:`~probes.analysis.step_probe` (reasoning depth).
"""
