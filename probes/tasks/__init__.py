"""Tasks: named sources of items (built-in generators, the built-in ladder's probes, item files)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from probes.errors import UnknownTaskError
from probes.tasks import organism_negation
from probes.tasks.files import read_items
from probes.tasks.items import Item, check_unique_ids, write_items
from probes.tasks.prize import read_prize_file

__all__ = [
    "Item",
    "Task",
    "get_task",
    "load_items",
    "read_item_file",
    "read_items",
    "read_prize_file",
    "register_task",
    "task_names",
    "write_items",
]

#: Builds a task's items: (variant, number of items or None for the default, seed) -> items.
Builder = Callable[[str, int | None, int], list[Item]]


@dataclass(frozen=True)
class Task:
    """A named family of items: its true task, its distractor task, and its prompt variants.

    ``source`` names the public description a generated task follows.
    """

    name: str
    description: str
    distractor: str
    variants: tuple[str, ...]
    build: Builder
    source: str = ""

    def items(self, variant: str, n_items: int | None = None, seed: int = 0) -> list[Item]:
        """The task's items in one variant."""
        if variant not in self.variants:
            raise UnknownTaskError(
                f"task {self.name!r} has no variant {variant!r}; it offers {list(self.variants)}."
            )
        return self.build(variant, n_items, seed)


_TASKS: dict[str, Task] = {}


def register_task(task: Task) -> None:
    """Make a task available by name (to `probes run --tasks` and `probes tasks`)."""
    _TASKS[task.name] = task


def task_names() -> list[str]:
    """Names of every registered task."""
    return sorted(_TASKS)


def get_task(name: str) -> Task:
    """The registered task of that name."""
    if name not in _TASKS:
        raise UnknownTaskError(
            f"unknown task {name!r}; known tasks: {task_names()} (or give a .jsonl/.csv item file)."
        )
    return _TASKS[name]


def load_items(
    tasks: Sequence[str], variants: Sequence[str] | None = None, n_items: int | None = None, seed: int = 0
) -> list[Item]:
    """Items of the named tasks (or item files) in the given variants (default: every variant).

    An item file contributes its items as they are; ``variants`` then filters them, and
    ``n_items`` keeps the first ``n_items`` of each (task, variant) it holds, in file order, as
    for a generated task. Ids are namespaced by task: two files may both number items from 0.

    Raises:
        UnknownTaskError: ``tasks`` is empty or not a list of names, a name is unknown, or a file
            has no items of the variants asked for.
    """
    if isinstance(tasks, str) or not tasks or not all(isinstance(name, str) and name for name in tasks):
        raise UnknownTaskError(
            f"tasks must be a non-empty list of task names or item files, got {tasks!r:.80}; "
            "e.g. tasks=['organism_negation'] (`probes tasks` lists them)."
        )
    items: list[Item] = []
    sources: list[str] = []
    for name in tasks:
        if name.endswith((".jsonl", ".csv")) or Path(name).is_file():
            loaded = read_items(name)
            chosen = [i for i in loaded if variants is None or i.variant in variants]
            if not chosen:
                raise UnknownTaskError(f"item file {name} has no items of variants {list(variants or [])}.")
            if n_items:
                counts: dict[tuple[str, str], int] = {}
                kept = []
                for item in chosen:
                    key = (item.task, item.variant)
                    counts[key] = counts.get(key, 0) + 1
                    if counts[key] <= n_items:
                        kept.append(item)
                chosen = kept
            items.extend(chosen)
            sources.extend([name] * len(chosen))
            continue
        task = get_task(name)
        for variant in variants or task.variants:
            built = task.items(variant, n_items, seed)
            items.extend(built)
            sources.extend([f"task {name}"] * len(built))
    check_unique_ids(items, sources)
    return items


def read_item_file(path: str | Path) -> list[Item]:
    """Items from a file in our item schema or in the Inverse Scaling Prize's format (:func:`read_items`)."""
    return read_items(path)


def _organism_items(variant: str, n_items: int | None, seed: int) -> list[Item]:
    return organism_negation.items(variant=variant, n=n_items, seed=seed)


def _register_generated() -> None:
    from functools import partial

    from probes.tasks.generators import specs
    from probes.tasks.variants import generated_items, offered_variants

    for spec in specs():
        register_task(
            Task(
                name=spec.name,
                description=spec.description,
                distractor=spec.distractor,
                variants=offered_variants(spec),
                build=partial(generated_items, spec),
                source=spec.source,
            )
        )


register_task(
    Task(
        name="organism_negation",
        description=(
            "The built-in ladder's negated questions: 'not <entity> is' → the opposite of the entity's value."
        ),
        distractor="recall the entity's value and ignore the 'not'",
        variants=tuple(organism_negation.VARIANTS),
        build=_organism_items,
    )
)

_register_generated()
