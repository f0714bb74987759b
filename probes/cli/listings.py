"""The listing commands' output: ``probes ladders`` and ``probes tasks`` for people and scripts.

For people: one block per ladder (or task), lines that fit 100 columns, human units, missing
figures as ``–`` with the catalogue's reason under the block. For scripts (``--format csv|json``):
one record per rung (or per task variant) with the raw figures. No model library is imported.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from probes.cli.display import MISSING, human_count, human_flops, records_text, text_table, wrapped

#: The columns of the people's ladder table: key -> header.
LADDER_COLUMNS = {
    "model": "model",
    "parameters": "params",
    "non_embedding_parameters": "non-emb",
    "layers": "layers",
    "d_model": "d_model",
    "heads": "heads",
    "context_length": "context",
    "training_tokens": "tokens",
    "training_flops": "FLOPs",
    "held_out_perplexity": "perplexity",
}

#: Columns shown only when some rung of the ladder has the figure (built-in ladders measure it).
_OPTIONAL_COLUMNS = ("held_out_perplexity",)

_FIELD_WORDS = {
    "parameters": "parameters",
    "non_embedding_parameters": "non-embedding parameters",
    "training_tokens": "training tokens",
    "training_flops": "training FLOPs",
    "held_out_perplexity": "held-out perplexity",
}


def _reason(source: str | None) -> str:
    """Why a figure is missing, from its catalogue source (``"null: not published ..."``)."""
    if not source:
        return "not in the catalogue"
    return source.removeprefix("null:").strip()


def ladders_text(names: Sequence[str] | None = None) -> str:
    """The ladders as blocks of at most 100 columns: heading, rung table, reasons for gaps."""
    from probes.ladders import get_ladder, ladder_names

    blocks = []
    for name in names or ladder_names():
        ladder = get_ladder(name)
        lines = wrapped(ladder.description, indent=0, first=f"{ladder.name}: ")
        if ladder.checkpoint_steps:
            lines.append(f"  {len(ladder.checkpoint_steps)} checkpoints per rung (choose with --steps)")
        rows, gaps = [], {}
        columns = {
            field: header
            for field, header in LADDER_COLUMNS.items()
            if field not in _OPTIONAL_COLUMNS or any(getattr(r, field) is not None for r in ladder.rungs)
        }
        for rung in ladder.rungs:
            row: dict[str, Any] = {"model": rung.spec}
            for field in columns:
                if field == "model":
                    continue
                value = getattr(rung, field)
                if value is None:
                    words = _FIELD_WORDS.get(field, field.replace("_", " "))
                    gaps.setdefault((words, _reason(rung.sources.get(field))), []).append(rung.label)
                elif field in ("parameters", "non_embedding_parameters", "training_tokens"):
                    value = human_count(value)
                elif field == "training_flops":
                    value = human_flops(value)
                elif field == "held_out_perplexity":
                    value = f"{value:.2f}"
                row[field] = value
            rows.append(row)
        lines += text_table(rows, columns, right=list(columns)[1:], shrink="model")
        if "held_out_perplexity" in columns:
            lines += wrapped("held-out perplexity: per token, on the rung's own held-out text", indent=2)
        for (words, reason), labels in gaps.items():
            who = "" if len(labels) == len(ladder.rungs) else f" ({', '.join(labels)})"
            lines += wrapped(reason, indent=2, first=f"{MISSING} {words}{who}: ")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def ladders_output(names: Sequence[str] | None, form: str) -> str:
    """``probes ladders`` in ``form``: text for people, csv or json for scripts."""
    from probes.ladders.table import ladder_records

    return ladders_text(names) if form == "text" else records_text(ladder_records(names or None), form)


def _shorten(text: str, width: int) -> str:
    """``text`` on one line, cut in the middle to at most ``width`` characters."""
    text = text.replace("\n", "⏎")
    if len(text) <= width:
        return text
    half = (width - 5) // 2
    return f"{text[:half]} ... {text[-half:]}"


def task_records(names: Sequence[str]) -> list[dict[str, Any]]:
    """One record per task and variant, with the first generated item as a sample."""
    from probes.tasks import get_task, task_names

    records = []
    for name in names or task_names():
        task = get_task(name)
        for variant in task.variants:
            sample = task.items(variant, n_items=1, seed=0)[0]
            records.append(
                {
                    "task": task.name,
                    "variant": variant,
                    "description": task.description,
                    "distractor": task.distractor,
                    "source": task.source or None,
                    "sample_prompt": sample.prompt,
                    "true_answer": sample.true_answer,
                    "distractor_answer": sample.distractor_answer,
                }
            )
    return records


def tasks_text(names: Sequence[str], full: bool) -> str:
    """Tasks as blocks: description, distractor, source, one sample per variant (100 columns)."""
    blocks: dict[str, list[str]] = {}
    for record in task_records(names):
        if record["task"] not in blocks:
            lines = wrapped(record["description"], indent=0, first=f"{record['task']}: ")
            lines += wrapped(record["distractor"], indent=2, first="distractor: ")
            if record["source"]:
                lines += wrapped(record["source"], indent=2, first="follows: ")
            blocks[record["task"]] = lines
        answers = f"→ true {record['true_answer']!r}, distractor {record['distractor_answer']!r}"
        prompt = record["sample_prompt"]
        head = f"  [{record['variant']}] "
        if full:
            blocks[record["task"]] += [head + repr(prompt), "    " + answers]
        else:
            blocks[record["task"]] += [head + repr(_shorten(prompt, 96 - len(head))), "    " + answers]
    return "\n\n".join("\n".join(lines) for lines in blocks.values())


def tasks_output(names: Sequence[str], form: str, full: bool) -> str:
    """``probes tasks`` in ``form``: text for people, csv or json for scripts."""
    return tasks_text(names, full) if form == "text" else records_text(task_records(names), form)
