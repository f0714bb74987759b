"""Built-in ladders as data: folders of ``catalogue.json`` plus sha256-verified weight folders.

A built-in ladder is a folder ``<root>/<ladder>/`` holding ``catalogue.json`` and one Hugging Face
folder per rung under ``weights/<rung>/``. Nothing about a ladder is code: its catalogue says

* ``provides.model_prefix`` (``"organism:"``): model specs ``<prefix><rung>`` load its rungs;
* ``provides.name_prefix`` (``"organism-"``): catalogue and folder names of its rungs;
* ``provides.ladders``: the ladders it defines, each a name, description, notes and the rung
  names in order (e.g. the organism size ladder and one training-step ladder per checkpointed rung);
* ``provides.listed``: ``"before_hub"`` or ``"after_hub"`` (where ``probes ladders`` lists them);
* ``provides.family``, ``vocabulary``, ``context_length`` and ``trainer`` (named in error messages);
* ``rungs``: one entry per weight folder (sizes, tokens, FLOPs, ``files``: name -> sha256).

Roots are searched in order: the package's own ``probes/builtin/``, then the folders in the
``PROBES_LADDER_PATH`` environment variable (``os.pathsep``-separated), then those given to
:func:`register_builtin_folder`. Adding a ladder means adding such a folder, not code.
A folder is handed out only after its files match the catalogue, so a changed or truncated file
never loads silently.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from probes.errors import BuiltinWeightsError, UnknownModelError

__all__ = [
    "ENV_VAR",
    "BuiltinCatalogue",
    "builtin_catalogue",
    "builtin_catalogues",
    "register_builtin_folder",
    "search_path",
    "sha256_file",
]

logger = logging.getLogger(__name__)

#: The package's own built-in ladders.
PACKAGE_ROOT = Path(__file__).resolve().parent

#: Environment variable with more roots of built-in ladders (``os.pathsep``-separated).
ENV_VAR = "PROBES_LADDER_PATH"

#: File name of a built-in ladder's catalogue.
CATALOGUE_FILE = "catalogue.json"

_REGISTERED: list[Path] = []
_OPENED: dict[Path, BuiltinCatalogue] = {}


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks (the catalogue's file hashes)."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def mismatched_file(folder: Path, expected: dict[str, str]) -> Path | None:
    """The first of ``expected``'s files (name → sha256) missing from ``folder`` or differing, else None."""
    for file_name, digest in expected.items():
        path = folder / file_name
        if not path.is_file() or sha256_file(path) != digest:
            return path
    return None


def register_builtin_folder(path: str | Path) -> None:
    """Search ``path`` for built-in ladders too (each ``<path>/<ladder>/catalogue.json``).

    Raises:
        BuiltinWeightsError: ``path`` is not a folder.
    """
    folder = Path(path).expanduser().resolve()
    if not folder.is_dir():
        raise BuiltinWeightsError(f"{folder} is not a folder; give a folder of <ladder>/catalogue.json.")
    if folder not in _REGISTERED:
        _REGISTERED.append(folder)


def search_path() -> list[Path]:
    """The roots searched for built-in ladders, in order (package, ``PROBES_LADDER_PATH``, registered)."""
    from_env = [Path(p).expanduser().resolve() for p in os.environ.get(ENV_VAR, "").split(os.pathsep) if p]
    roots: list[Path] = []
    for root in [PACKAGE_ROOT, *from_env, *_REGISTERED]:
        if root not in roots:
            roots.append(root)
    return roots


@dataclass
class BuiltinCatalogue:
    """One built-in ladder folder: its catalogue data and its verified weight folders.

    Attributes:
        folder: ``<root>/<ladder>``, holding ``catalogue.json`` and ``weights/``.
        weights_folder: The rungs' Hugging Face folders lie here (``<folder>/weights``).
    """

    folder: Path
    weights_folder: Path = field(init=False)

    def __post_init__(self) -> None:
        self.weights_folder = self.folder / "weights"

    @property
    def name(self) -> str:
        """The folder's name, also the model source name of its rungs (``"organism"``)."""
        return self.folder.name

    @property
    def path(self) -> Path:
        """The catalogue file."""
        return self.folder / CATALOGUE_FILE

    @cached_property
    def data(self) -> dict[str, Any]:
        """The parsed catalogue (the same dict on every call; copy it before changing it)."""
        if not self.path.is_file():
            raise BuiltinWeightsError(f"{self.path} is missing; reinstall probes or retrain the ladder.")
        data = json.loads(self.path.read_text("utf-8"))
        missing = [key for key in ("provides", "rungs") if key not in data]
        missing += [f"provides.{k}" for k in _PROVIDES_KEYS if k not in data.get("provides", {})]
        if missing:
            raise BuiltinWeightsError(
                f"{self.path} lacks {missing}; see probes/builtin/folders.py for the format."
            )
        return data

    def catalogue(self) -> dict[str, Any]:
        """The parsed catalogue (as :attr:`data`)."""
        return self.data

    @property
    def provides(self) -> dict[str, Any]:
        """What the catalogue defines: prefixes, ladders, family, vocabulary, context, trainer."""
        return self.data["provides"]

    @property
    def model_prefix(self) -> str:
        """Model specs of its rungs start with this (``"organism:"``)."""
        return self.provides["model_prefix"]

    @property
    def name_prefix(self) -> str:
        """Catalogue and folder names of its rungs start with this (``"organism-"``)."""
        return self.provides["name_prefix"]

    @property
    def entries(self) -> dict[str, dict[str, Any]]:
        """Catalogue entries by name."""
        return {entry["name"]: entry for entry in self.data["rungs"]}

    def rung_names(self, include_checkpoints: bool = False) -> list[str]:
        """Names of the rungs, in the order of the ladders that list them; with checkpoints, every
        entry in catalogue order (each rung's checkpoints in step order, then the rung)."""
        if include_checkpoints:
            return [entry["name"] for entry in self.data["rungs"]]
        names: list[str] = []
        for ladder in self.provides["ladders"]:
            for name in ladder["rungs"]:
                if name not in names and self.entries[name].get("kind", "rung") == "rung":
                    names.append(name)
        return names

    def model_spec(self, name: str) -> str:
        """The model spec of the entry ``name`` (``"organism-1x4-step300"`` -> ``"organism:1x4-step300"``)."""
        return self.model_prefix + name.removeprefix(self.name_prefix)

    def catalogue_name(self, name: str) -> str:
        """The catalogue name of a rung given by catalogue name, short name or model spec.

        ``"organism:4x96"``, ``"4x96"`` and ``"organism-4x96"`` all give ``"organism-4x96"``.

        Raises:
            UnknownModelError: no entry has that name.
        """
        known = self.rung_names(include_checkpoints=True)
        name = name.removeprefix(self.model_prefix)
        if not name.startswith(self.name_prefix):
            name = self.name_prefix + name
        if name not in known:
            raise UnknownModelError(
                f"{self.name} rung {name!r} is unknown; choose among {known} (`probes ladders` lists them)."
            )
        return name

    def rung_path(self, name: str) -> Path:
        """Folder of the rung or checkpoint ``name``, after checking its files against the catalogue.

        ``name`` may be the catalogue name, the short one or a model spec (see :meth:`catalogue_name`).

        Raises:
            UnknownModelError: ``name`` is not in the catalogue.
            BuiltinWeightsError: a file is missing or its sha256 differs from the catalogue's.
        """
        name = self.catalogue_name(name)
        folder = self.weights_folder / name
        remedy = f"reinstall probes or retrain with {self.provides['trainer']}"
        for file_name, expected in self.entries[name]["files"].items():
            path = folder / file_name
            if not path.is_file():
                raise BuiltinWeightsError(f"{path} is missing; {remedy}.")
            actual = sha256_file(path)
            if actual != expected:
                raise BuiltinWeightsError(
                    f"{path} has sha256 {actual[:12]}..., the catalogue expects {expected[:12]}...; "
                    f"the file was changed or corrupted: {remedy}."
                )
        return folder


#: Keys every ``provides`` block has.
_PROVIDES_KEYS = ("model_prefix", "name_prefix", "ladders", "listed", "trainer")


def builtin_catalogues() -> list[BuiltinCatalogue]:
    """Every readable built-in ladder folder on the search path, in search order (then by name).

    A folder whose catalogue is unreadable is skipped with a warning, so a checkout in the middle
    of retraining one ladder still offers the others. A later folder of the same name as an
    earlier one is skipped too.
    """
    found: dict[str, BuiltinCatalogue] = {}
    for root in search_path():
        if not root.is_dir():
            continue
        for folder in sorted(p for p in root.iterdir() if (p / CATALOGUE_FILE).is_file()):
            catalogue = _OPENED.setdefault(folder, BuiltinCatalogue(folder))
            if catalogue.name in found:
                logger.warning("built-in ladder %s in %s is shadowed by an earlier one", catalogue.name, root)
                continue
            try:
                catalogue.data  # noqa: B018 - read (and check) it now
            except (BuiltinWeightsError, json.JSONDecodeError) as error:
                logger.warning("built-in ladder %s unavailable: %s", folder, error)
                continue
            found[catalogue.name] = catalogue
    return list(found.values())


def catalogue_of(model_label: str) -> BuiltinCatalogue | None:
    """The built-in ladder folder whose rungs ``model_label`` names (by its model prefix), or None."""
    for catalogue in builtin_catalogues():
        if model_label.startswith(catalogue.model_prefix):
            return catalogue
    return None


def builtin_catalogue(name: str) -> BuiltinCatalogue:
    """The built-in ladder folder of that name (``"organism"``, ``"depth"``).

    Raises:
        BuiltinWeightsError: no folder of that name is on the search path.
    """
    for catalogue in builtin_catalogues():
        if catalogue.name == name:
            return catalogue
    raise BuiltinWeightsError(
        f"no built-in ladder folder {name!r} on the search path {[str(p) for p in search_path()]}; "
        f"reinstall probes, or add its folder with {ENV_VAR} or register_builtin_folder()."
    )
