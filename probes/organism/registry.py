"""The shipped organism ladder: its catalogue, its verified weight folders and its items."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from probes.errors import ProbesError
from probes.organism.probe_items import make_items
from probes.organism.world import World, WorldConfig
from probes.shipped import catalogue_name, read_catalogue_file, sha256_file, verified_folder
from probes.tasks.items import Item

#: Folder of this package: the catalogue lies here, the weights under ``weights/``.
PACKAGE_FOLDER = Path(__file__).resolve().parent
CATALOGUE_PATH = PACKAGE_FOLDER / "catalogue.json"
WEIGHTS_FOLDER = PACKAGE_FOLDER / "weights"

#: Model specs of the shipped rungs start with this (``"organism:4x96"``).
MODEL_PREFIX = "organism:"

#: Folder and catalogue names of the rungs start with this (``"organism-4x96"``).
NAME_PREFIX = "organism-"

#: The script that trains the ladder (named in error messages).
TRAINER = "experiments/organism/train.py"

__all__ = ["OrganismWeightsError", "catalogue", "items", "rung_names", "rung_path", "sha256_file"]


class OrganismWeightsError(ProbesError):
    """A shipped organism folder whose files are missing or differ from the catalogue."""


@cache
def catalogue() -> dict[str, Any]:
    """The parsed catalogue of the shipped ladder (``catalogue.json``).

    The same dict is returned on every call; copy it before changing it.
    """
    return read_catalogue_file(CATALOGUE_PATH, OrganismWeightsError, f"reinstall probes or run {TRAINER}")


def _entries() -> dict[str, dict[str, Any]]:
    return {entry["name"]: entry for entry in catalogue()["rungs"]}


def rung_names(include_checkpoints: bool = False) -> list[str]:
    """Names of the shipped rungs, small to large; with checkpoints, each rung's in step order."""
    entries = sorted(_entries().values(), key=lambda e: (e["parameters"], e["step"]))
    return [e["name"] for e in entries if include_checkpoints or e["kind"] == "rung"]


def rung_path(name: str) -> Path:
    """Folder of the rung or checkpoint ``name``, after checking its files against the catalogue.

    ``name`` may be the catalogue name (``"organism-4x96"``), the short one (``"4x96"``) or a
    model spec (``"organism:4x96"``); checkpoints add ``-step<N>``.

    Raises:
        UnknownModelError: ``name`` is not in the catalogue.
        OrganismWeightsError: a file is missing or its sha256 differs from the catalogue's.
    """
    entries = _entries()
    name = catalogue_name(name, rung_names(include_checkpoints=True), MODEL_PREFIX, NAME_PREFIX)
    remedy = f"reinstall probes or retrain with {TRAINER}"
    return verified_folder(WEIGHTS_FOLDER / name, entries[name]["files"], OrganismWeightsError, remedy)


@cache
def _world() -> World:
    return World(WorldConfig.from_dict(catalogue()["world"]))


def items(variant: str = "prize", n: int | None = None, seed: int = 0) -> list[Item]:
    """Held-out probe items of the shipped ladder's world.

    Args:
        variant: ``"prize"`` (negated question), ``"no_distractor"`` (plain recall of the
            same entities) or ``"one_shot"`` (prize after one solved negated example).
        n: How many items; ``None`` gives all of them (one per held-out entity).
        seed: Seed of the subset draw when ``n`` is given.
    """
    return make_items(_world(), variant, n, seed)
