"""`probes show` on a feature store: the top-feature table tells tasks apart and says when it is empty."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from probes.cli import closing


def _ranking(tasks: list[str], low: float) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {"model": "organism:2x48", "task": task, "variant": "prize", "layer": 2, "feature": 7 + index,
             "attribution": 1.0, "low": low, "high": 2.0, "p_holm": 0.01 if low > 0 else 0.2,
             "n_active": 8, "n_items": 8, "token": 3, "token_text": "not", "from_end": 3}
            for index, task in enumerate(tasks)
        ]
    )  # fmt: skip


def _shown(monkeypatch, capsys, ranking: pd.DataFrame) -> list[str]:
    monkeypatch.setattr(closing, "feature_closing_lines", lambda store, pointer=True: [""])
    monkeypatch.setattr(closing, "feature_show_tables", lambda store: {"feature-ranking": ranking})
    closing.print_feature_tables(Path("store"))
    return capsys.readouterr().out.splitlines()


def test_the_top_features_of_several_tasks_name_their_task(monkeypatch, capsys):
    lines = _shown(monkeypatch, capsys, _ranking(["negation", "copy"], low=0.5))
    header = next(line for line in lines if "attribution [95% CI]" in line)
    assert header.split()[0] == "task"
    assert any(line.split()[:1] == ["copy"] and "f8" in line for line in lines)
    one = _shown(monkeypatch, capsys, _ranking(["negation"], low=0.5))
    assert next(line for line in one if "attribution [95% CI]" in line).split()[0] == "model"


def test_no_significant_feature_is_said(monkeypatch, capsys):
    lines = _shown(monkeypatch, capsys, _ranking(["negation"], low=-0.5))
    assert lines[-1].strip() == "(none: no feature's mean differs from 0 after Holm's correction)"
