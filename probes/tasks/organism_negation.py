"""The ``organism_negation`` task: probe items about the held-out entities of the organism's world.

The world is the one the built-in ``organism`` ladder was trained on: its config is read from the
``world`` block of that ladder folder's ``catalogue.json`` (data, found through
:func:`probes.builtin.folders.builtin_catalogue`), so this task needs no ladder code, and a retrained
ladder with another world gives items about that world.
"""

from __future__ import annotations

import random
from functools import cache

from probes.builtin.folders import builtin_catalogue
from probes.errors import UnknownTaskError
from probes.tasks.items import Item
from probes.tasks.organism_world import DELIMITER, Entity, World, WorldConfig

#: The built-in ladder folder whose world the task asks about.
LADDER_FOLDER = "organism"

#: Task name of every organism item.
TASK = "organism_negation"

#: The variants :func:`make_items` knows, with what each asks.
VARIANTS: dict[str, str] = {
    "prize": "negated question about a held-out entity; true = opposite value, distractor = value",
    "no_distractor": "plain recall question about the same entity; true = value, foil = opposite",
    "one_shot": "prize question after one solved negated statement about a negation entity",
}


def _meta(entity: Entity) -> dict[str, object]:
    return {
        "entity": entity.index,
        "name": entity.name,
        "value": entity.value,
        "opposite": entity.opposite,
    }


def _example_entity(world: World, entity: Entity) -> Entity:
    """The negation entity whose solved statement precedes ``entity``'s one-shot question.

    Its value comes from another value pair, so the example's answer is neither option.
    """
    pair = {entity.value, entity.opposite}
    candidates = [e for e in world.negation_entities if e.value not in pair]
    rng = random.Random(f"{world.config.seed}-one-shot-{entity.index}")
    return candidates[rng.randrange(len(candidates))]


def make_item(world: World, entity: Entity, variant: str) -> Item:
    """The item of ``variant`` about ``entity``."""
    meta = _meta(entity)
    if variant == "prize":
        prompt, true_answer, distractor = entity.negated_question(), entity.opposite, entity.value
    elif variant == "no_distractor":
        prompt, true_answer, distractor = entity.question(), entity.value, entity.opposite
    elif variant == "one_shot":
        example = _example_entity(world, entity)
        prompt = f"{example.negated_statement()} {DELIMITER} {entity.negated_question()}"
        true_answer, distractor = entity.opposite, entity.value
        meta["example_entity"] = example.index
    else:
        raise UnknownTaskError(f"organism variant {variant!r} is unknown; use one of {sorted(VARIANTS)}.")
    return Item(
        id=f"entity{entity.index:04d}",
        task=TASK,
        prompt=prompt,
        true_answer=f" {true_answer}",
        distractor_answer=f" {distractor}",
        variant=variant,
        meta=meta,
    )


def make_items(world: World, variant: str = "prize", n: int | None = None, seed: int = 0) -> list[Item]:
    """Items of ``variant`` about the held-out entities, ordered by entity index.

    Args:
        world: The world whose held-out entities are asked about.
        variant: One of :data:`VARIANTS`.
        n: How many items; ``None`` gives one per held-out entity. A smaller ``n`` draws
            a subset with ``seed``; the same ``(n, seed)`` gives the same entities in every
            variant.
        seed: Seed of the subset draw.

    Returns:
        The items, with ids ``entity<index>`` that are stable across variants and worlds
        of the same config.
    """
    entities = world.held_out
    if n is not None:
        if not 0 < n <= len(entities):
            raise UnknownTaskError(
                f"asked for {n} organism items; there are {len(entities)} held-out entities."
            )
        entities = sorted(random.Random(seed).sample(entities, n), key=lambda e: e.index)
    return [make_item(world, entity, variant) for entity in entities]


@cache
def catalogue_world() -> World:
    """The world of the built-in organism ladder, built from its catalogue's ``world`` config."""
    return World(WorldConfig.from_dict(builtin_catalogue(LADDER_FOLDER).data["world"]))


def items(variant: str = "prize", n: int | None = None, seed: int = 0) -> list[Item]:
    """Held-out probe items of the built-in organism ladder's world.

    Args:
        variant: ``"prize"`` (negated question), ``"no_distractor"`` (plain recall of the
            same entities) or ``"one_shot"`` (prize after one solved negated example).
        n: How many items; ``None`` gives all of them (one per held-out entity).
        seed: Seed of the subset draw when ``n`` is given.
    """
    return make_items(catalogue_world(), variant, n, seed)
