"""The shipped depth ladder: its catalogue and its sha256-verified weight folders."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from probes.errors import ProbesError
from probes.shipped import catalogue_name, read_catalogue_file, verified_folder

#: Folder of this package: the catalogue lies here, the weights under ``weights/``.
PACKAGE_FOLDER = Path(__file__).resolve().parent
CATALOGUE_PATH = PACKAGE_FOLDER / "catalogue.json"
WEIGHTS_FOLDER = PACKAGE_FOLDER / "weights"

#: Model specs of the shipped rungs start with this (``"depth:3x64"``).
MODEL_PREFIX = "depth:"

#: Folder and catalogue names of the rungs start with this (``"depth-3x64"``).
NAME_PREFIX = "depth-"

#: The script that trains the ladder (named in error messages).
TRAINER = "experiments/depth/train.py"

#: What the ladder is, for its catalogue and ``probes ladders``.
DESCRIPTION = (
    "Depth ladder: GPT-NeoX models of one width (d_model 64, 4 heads) that differ only in their number "
    "of layers, trained on the same k-step tasks (the catalogue's `tasks`; k = 1-5) in the same order; "
    "probe = the tasks' held-out items (true = answer after k steps, distractor = the value one step "
    "short)."
)


class DepthWeightsError(ProbesError):
    """A shipped depth-ladder folder whose files are missing or differ from the catalogue."""


@cache
def catalogue() -> dict[str, Any]:
    """The parsed catalogue of the shipped depth ladder (``catalogue.json``).

    The same dict is returned on every call; copy it before changing it.
    """
    return read_catalogue_file(CATALOGUE_PATH, DepthWeightsError, f"reinstall probes or run {TRAINER}")


def _entries() -> dict[str, dict[str, Any]]:
    return {entry["name"]: entry for entry in catalogue()["rungs"]}


def rung_names() -> list[str]:
    """Names of the shipped rungs, shallow to deep."""
    return [entry["name"] for entry in sorted(_entries().values(), key=lambda entry: entry["layers"])]


def rung_path(name: str) -> Path:
    """Folder of the rung ``name``, after checking its files against the catalogue.

    ``name`` may be the catalogue name (``"depth-3x64"``), the short one (``"3x64"``) or a model
    spec (``"depth:3x64"``).

    Raises:
        UnknownModelError: ``name`` is not in the catalogue.
        DepthWeightsError: a file is missing or its sha256 differs from the catalogue's.
    """
    entries = _entries()
    name = catalogue_name(name, rung_names(), MODEL_PREFIX, NAME_PREFIX)
    remedy = f"reinstall probes or retrain with {TRAINER}"
    return verified_folder(WEIGHTS_FOLDER / name, entries[name]["files"], DepthWeightsError, remedy)
