"""The built-in ladder folders seen as ladders: every ladder each ``catalogue.json`` defines.

A folder's catalogue (:mod:`probes.builtin.folders`) lists its rungs and, under ``provides.ladders``, the
ladders it defines: e.g. the organism folder defines the size ladder ``organism`` and one ladder
over training steps per checkpointed rung (``organism-4x96-training``: "training checkpoints of
one model" is a ladder like any other). Nothing here knows any particular ladder.
"""

from __future__ import annotations

from typing import Any

from probes.builtin.folders import BuiltinCatalogue
from probes.ladders.model import Ladder, Rung

__all__ = ["catalogue_ladders", "shipped_rung"]


def shipped_rung(catalogue: BuiltinCatalogue, entry: dict[str, Any]) -> Rung:
    """The :class:`Rung` of one catalogue entry of a built-in ladder folder.

    Its figures (sizes, tokens, FLOPs, held-out perplexity, step) come from the entry; the model
    spec, display name, vocabulary and context from the catalogue's ``provides`` block.
    """
    provides = catalogue.provides
    source = f"computed by {provides['trainer']}; probes/builtin/{catalogue.name}/catalogue.json"
    return Rung(
        name=entry["name"],
        model=catalogue.model_spec(entry["name"]),
        display_name=entry["name"].removeprefix(catalogue.name_prefix),
        parameters=entry["parameters"],
        non_embedding_parameters=entry["non_embedding_parameters"],
        layers=entry["layers"],
        d_model=entry["d_model"],
        heads=entry["heads"],
        vocab_size=provides["vocabulary"],
        context_length=provides["context_length"],
        training_tokens=entry["tokens_seen"],
        training_flops=entry["training_flops_non_embedding"],
        training_flops_total_parameters=entry["training_flops"],
        architecture={"model_type": provides["family"], **entry["training_config"]["rung"]},
        sources={
            field: source
            for field in ("parameters", "training_tokens", "training_flops", "held_out_perplexity")
        },
        notes=f"step {entry['step']} of training seed {entry['seed']}",
        held_out_perplexity=entry["held_out_perplexity"],
        training_step=entry["step"],
    )


def catalogue_ladders(catalogue: BuiltinCatalogue) -> list[Ladder]:
    """Every ladder the catalogue's ``provides.ladders`` defines, in its order.

    Raises:
        KeyError: a ladder names a rung the catalogue has no entry for.
    """
    entries = catalogue.entries
    return [
        Ladder(
            name=definition["name"],
            description=definition["description"],
            family=catalogue.provides["family"],
            rungs=[shipped_rung(catalogue, entries[name]) for name in definition["rungs"]],
            notes=definition.get("notes") or "",
        )
        for definition in catalogue.provides["ladders"]
    ]
