"""The ladders as tables and row metadata: ``probes ladders``, and what a result row says of its rung."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from probes.ladders.model import NUMERIC_FIELDS, Ladder, _split_spec
from probes.ladders.registry import get_ladder, ladder_names
from probes.model.specs import ModelSpec

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["TABLE_COLUMNS", "ladder_records", "ladders_table", "rung_metadata"]

#: Columns of :func:`ladders_table`, in order.
TABLE_COLUMNS = (
    "ladder",
    "rung",
    "display_name",
    "model",
    "revision",
    *NUMERIC_FIELDS,
    "checkpoints",
)


def ladder_records(names: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """One record per rung of the named ladders (default: every known ladder), the columns of
    :data:`TABLE_COLUMNS`, without pandas (``probes ladders`` in text, CSV or JSON)."""
    records = []
    for ladder_name in ladder_names() if names is None else names:
        ladder = get_ladder(ladder_name)
        for rung in ladder.rungs:
            record: dict[str, Any] = {
                "ladder": ladder.name,
                "rung": rung.name,
                "display_name": rung.label,
                "model": rung.model,
                "revision": rung.revision,
            }
            record.update({name: getattr(rung, name) for name in NUMERIC_FIELDS})
            record["checkpoints"] = len(ladder.checkpoint_steps or [])
            records.append(record)
    return records


def ladders_table(names: list[str] | None = None) -> pd.DataFrame:
    """One row per rung of the named ladders (default: every known ladder), for ``probes ladders``.

    Integer figures use pandas' nullable ``Int64`` (missing = ``<NA>``); FLOPs are ``float64``
    because they overflow 64-bit integers. ``checkpoints`` is the number of published training
    steps of the rung's ladder (0 without a steps axis).

    Raises:
        UnknownLadderError: If a name is not a known ladder.
    """
    rows = ladder_records(names)
    import pandas as pd  # here: `probes ladders` lists the catalogue without pandas

    table = pd.DataFrame(rows, columns=list(TABLE_COLUMNS))
    for name in NUMERIC_FIELDS:
        if name.startswith("training_flops"):
            table[name] = table[name].astype("float64")
        else:
            table[name] = table[name].astype("Int64")
    table["checkpoints"] = table["checkpoints"].astype("int64")
    return table


def rung_metadata(spec: ModelSpec | str) -> dict[str, Any]:
    """What the catalogue says of the rung a model spec names (empty if no ladder has it).

    A :class:`~probes.model.specs.ModelSpec` planned from a ladder (:meth:`Ladder.model_specs`) is looked
    up in that ladder, so a rung that sits in two ladders (``organism-4x96`` in ``organism`` and
    ``organism-4x96-training``) gets the one it was planned from. A string, or a spec without a
    ladder, is looked up in every ladder in turn and gets the first that has it.

    For a checkpoint (``model@step<N>`` on a ladder with a steps axis) the training tokens
    and FLOPs are those seen up to that step.
    """
    if isinstance(spec, ModelSpec) and spec.ladder is not None and spec.rung is not None:
        ladder = get_ladder(spec.ladder)
        return _metadata(ladder, ladder.rung(spec.rung), spec.revision)
    text = spec.text if isinstance(spec, ModelSpec) else spec
    model, revision = _split_spec(text)
    for ladder_name in ladder_names():
        ladder = get_ladder(ladder_name)
        rung = ladder.rung_for(text)
        if rung is not None and rung.model == model:
            return _metadata(ladder, rung, revision)
    return {}


def _metadata(ladder: Ladder, rung: Any, revision: str | None) -> dict[str, Any]:
    tokens, flops = rung.training_tokens, rung.training_flops
    step = _step_of(ladder, revision)
    if step is not None:
        tokens = ladder.training_tokens_at(step)
        flops = (
            None
            if tokens is None or rung.non_embedding_parameters is None
            else (6 * rung.non_embedding_parameters * tokens)
        )
    return {
        "ladder": ladder.name,
        "rung": rung.name,
        "training_step": step if step is not None else rung.training_step,
        "published_parameters": rung.parameters,
        "non_embedding_parameters": rung.non_embedding_parameters,
        "training_tokens": tokens,
        "training_flops": flops,
        "held_out_perplexity": rung.held_out_perplexity,
    }


def _step_of(ladder: Ladder, revision: str | None) -> int | None:
    """The training step a revision names on a ladder with a steps axis, else None."""
    if revision is None or not ladder.has_checkpoints or ladder.revision_template is None:
        return None
    prefix, _, suffix = ladder.revision_template.partition("{step}")
    if revision.startswith(prefix) and revision.endswith(suffix):
        number = revision[len(prefix) : len(revision) - len(suffix)]
        if number.isdigit() and int(number) in (ladder.checkpoint_steps or []):
            return int(number)
    return None
