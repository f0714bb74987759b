"""The registry of named ladders: the hub catalogue, the built-in ladder folders, and runtime additions.

The hub catalogue is data, not code: ``probes/data/ladders.json`` lists each hub ladder's rungs
(hub id, total and non-embedding parameters, layers, ``d_model``, heads, vocabulary, context,
training tokens, training FLOPs) and says where every figure comes from. Its ``conventions`` block
defines each figure (e.g. FLOPs = 6 · N · D with N the non-embedding parameters, as in Kaplan et
al. 2020).

The built-in ladders are data too: every ``catalogue.json`` on :func:`probes.builtin.folders.search_path`
adds the ladders it defines (:mod:`probes.ladders.builtin`), listed before or after the hub
ladders as its ``provides.listed`` says; a folder added later (``register_builtin_folder``)
is picked up on the next lookup. Code can add ladders at runtime with :func:`register_ladder`,
or defer building one until it is first asked for with :func:`register_ladder_provider`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

from probes.builtin.folders import builtin_catalogues, search_path
from probes.errors import BuiltinWeightsError, LadderError, UnknownLadderError
from probes.ladders.builtin import catalogue_ladders
from probes.ladders.model import Ladder

__all__ = [
    "get_ladder",
    "ladder_names",
    "load_catalogue",
    "read_catalogue",
    "register_ladder",
    "register_ladder_provider",
]

logger = logging.getLogger(__name__)

#: The hub catalogue file, relative to the ``probes`` package.
CATALOGUE_PATH = ("data", "ladders.json")

#: Schema version of the hub catalogue this module reads.
SCHEMA_VERSION = 1

_LADDERS: dict[str, Ladder] = {}
_PROVIDERS: dict[str, Callable[[], Ladder]] = {}
_ORDER: list[str] = []
_HUB_LOADED = False
_SEARCHED: tuple[Path, ...] | None = None
_FOLDERS_LOADED: set[Path] = set()


def _ensure_catalogue() -> None:
    """Load the hub and built-in ladders into the registry on first use, and any built-in folder
    that appeared on the search path since."""
    global _HUB_LOADED, _SEARCHED
    searched = tuple(search_path())
    if _HUB_LOADED and searched == _SEARCHED:
        return
    before, after = [], []
    for catalogue in builtin_catalogues():
        if catalogue.folder in _FOLDERS_LOADED:
            continue
        _FOLDERS_LOADED.add(catalogue.folder)
        try:
            ladders = catalogue_ladders(catalogue)
        except (BuiltinWeightsError, KeyError, LadderError) as error:  # missing or malformed catalogue
            logger.warning("built-in ladder %s unavailable: %s", catalogue.folder, error)
            continue
        (before if catalogue.provides["listed"] == "before_hub" else after).extend(ladders)
    hub = [] if _HUB_LOADED else load_catalogue()
    if _HUB_LOADED:
        # A folder added later: its "before_hub" ladders go before the first hub ladder.
        hub_names = [ladder["name"] for ladder in read_catalogue()["ladders"]]
        first_hub = min((_ORDER.index(n) for n in hub_names if n in _ORDER), default=len(_ORDER))
        for offset, ladder in enumerate(before):
            _add(ladder, at=first_hub + offset)
    else:
        for ladder in before:
            _add(ladder)
    for ladder in [*hub, *after]:
        _add(ladder)
    _HUB_LOADED, _SEARCHED = True, searched


def _add(ladder: Ladder, at: int | None = None) -> None:
    if ladder.name in _LADDERS or ladder.name in _PROVIDERS:
        logger.warning("built-in ladder %s is shadowed by one of the same name", ladder.name)
        return
    _LADDERS[ladder.name] = ladder
    _ORDER.insert(len(_ORDER) if at is None else at, ladder.name)


def read_catalogue() -> dict[str, Any]:
    """The catalogue file shipped with the package, as parsed JSON.

    Raises:
        LadderError: If the file's schema version is not the one this module reads.
    """
    resource = resources.files("probes")
    for part in CATALOGUE_PATH:
        resource = resource / part
    data = json.loads(resource.read_text(encoding="utf-8"))
    if data.get("schema_version") != SCHEMA_VERSION:
        raise LadderError(
            f"probes/data/ladders.json has schema_version {data.get('schema_version')!r}; "
            f"this version of probes reads {SCHEMA_VERSION}. Reinstall probes."
        )
    return data


def load_catalogue() -> list[Ladder]:
    """The built-in ladders, read from the catalogue file (not the runtime registry)."""
    return [Ladder.from_dict(entry) for entry in read_catalogue()["ladders"]]


def register_ladder(ladder: Ladder, replace: bool = False) -> None:
    """Make a ladder available by name (to ``get_ladder``, ``probes ladders`` and ``probes run``).

    Args:
        ladder: The ladder.
        replace: Whether to replace a ladder (or provider) already registered under that name.

    Raises:
        LadderError: If the name is taken and ``replace`` is False.
    """
    _ensure_catalogue()
    if not replace and (ladder.name in _LADDERS or ladder.name in _PROVIDERS):
        raise LadderError(
            f"a ladder named {ladder.name!r} is already registered; pass replace=True to replace it."
        )
    _PROVIDERS.pop(ladder.name, None)
    _LADDERS[ladder.name] = ladder
    if ladder.name not in _ORDER:
        _ORDER.append(ladder.name)


def register_ladder_provider(name: str, build: Callable[[], Ladder], replace: bool = False) -> None:
    """Register a ladder that is built only when first asked for (by ``get_ladder(name)``).

    Args:
        name: The ladder's name; ``build()`` must return a ladder of this name.
        build: Builds the ladder; called at most once.
        replace: Whether to replace a ladder (or provider) already registered under that name.

    Raises:
        LadderError: If the name is taken and ``replace`` is False.
    """
    _ensure_catalogue()
    if not replace and (name in _LADDERS or name in _PROVIDERS):
        raise LadderError(f"a ladder named {name!r} is already registered; pass replace=True to replace it.")
    _LADDERS.pop(name, None)
    _PROVIDERS[name] = build
    if name not in _ORDER:
        _ORDER.append(name)


def ladder_names() -> list[str]:
    """Names of every known ladder: the catalogue's, in file order, then those registered at runtime."""
    _ensure_catalogue()
    return [name for name in _ORDER if name in _LADDERS or name in _PROVIDERS]


def get_ladder(name: str) -> Ladder:
    """The ladder of that name (building it first if it comes from a provider).

    Raises:
        UnknownLadderError: If no ladder has that name.
        LadderError: If a provider builds a ladder with a different name.
    """
    _ensure_catalogue()
    if name in _LADDERS:
        return _LADDERS[name]
    if name in _PROVIDERS:
        ladder = _PROVIDERS[name]()
        if ladder.name != name:
            raise LadderError(
                f"the provider registered for ladder {name!r} built a ladder named {ladder.name!r}."
            )
        _LADDERS[name] = ladder
        del _PROVIDERS[name]
        return ladder
    raise UnknownLadderError(
        f"unknown ladder {name!r}; known ladders: {ladder_names()}. Pick one of these (`probes ladders` "
        f"lists their rungs), or register your own with probes.ladders.register_ladder()."
    )
