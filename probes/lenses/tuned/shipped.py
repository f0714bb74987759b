"""Tuned lenses shipped beside the rungs of the built-in ladders.

A built-in ladder folder (:mod:`probes.builtin.folders`) may hold, beside its ``weights/``, a folder
``tuned-lenses/<rung>/`` per rung with a lens (``lens.json``, ``lens.safetensors``) and the index
``tuned_lenses.json``: for each such rung the sha256 of each file and how it was trained.
A lens folder is handed out only after its files match that index, as the rungs' own weights
are. ``experiments/tuned_lens/ship.py`` trains and writes them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from probes.errors import UnknownModelError
from probes.lenses.tuned.artifacts import LensFileError

#: The index of a built-in ladder's shipped lenses, beside its catalogue.
INDEX_FILE = "tuned_lenses.json"
#: The folder of the shipped lenses (one subfolder per rung), beside ``weights/``.
LENS_FOLDER = "tuned-lenses"


def shipped_index(catalogue: Any) -> dict[str, Any]:
    """The parsed ``tuned_lenses.json`` of a built-in ladder (empty when it ships none)."""
    path = Path(catalogue.folder) / INDEX_FILE
    if not path.is_file():
        return {"lenses": {}}
    return json.loads(path.read_text("utf-8"))


def shipped_lens(model_label: str) -> Path | None:
    """The verified folder of the tuned lens shipped for a built-in rung, or ``None``.

    Raises:
        LensFileError: The rung's lens files are missing or differ from the index.
    """
    from probes.builtin.folders import catalogue_of, mismatched_file

    catalogue = catalogue_of(model_label)
    if catalogue is None:
        return None
    try:
        name = catalogue.catalogue_name(model_label)
    except UnknownModelError:
        return None
    entry = shipped_index(catalogue)["lenses"].get(name)
    if entry is None:
        return None
    folder = Path(catalogue.folder) / LENS_FOLDER / name
    path = mismatched_file(folder, entry["files"])
    if path is not None:
        raise LensFileError(
            f"{path} is missing or differs from {INDEX_FILE}: reinstall probes or re-ship the lenses "
            "with experiments/tuned_lens/ship.py."
        )
    return folder
