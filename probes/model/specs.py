"""Model specs: what a user's model string names, and the registry of model sources behind prefixes.

Specs a user may give (:func:`parse_spec`):

* a hub id, with an optional revision or training step: ``EleutherAI/pythia-160m``,
  ``EleutherAI/pythia-160m@step3000``;
* a local folder in Hugging Face format (``config.json``, ``*.safetensors``, tokenizer);
* a GGUF file (``path/to/model.gguf``);
* a rung of a built-in ladder, ``<prefix><rung>`` (``organism:4x96``, ``depth:2x64``): the prefix
  names a model source in this module's registry, which every built-in ladder folder's catalogue
  fills in (:mod:`probes.builtin.folders`), and code can extend with :func:`register_model_source`.

A :class:`ModelSpec` planned from a ladder (:meth:`probes.ladders.Ladder.model_specs`) also
carries its ladder, rung and training step, so its metadata need not be searched for again.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from probes.builtin.folders import builtin_catalogues
from probes.errors import UnknownModelError

__all__ = ["ModelSource", "ModelSpec", "model_source", "model_sources", "parse_spec", "register_model_source"]

#: File suffixes of weights that are unpickled on load.
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")

#: Sources that are not in the registry: the hub, local folders and files, in-memory models.
PLAIN_SOURCES = ("hub", "folder", "gguf", "memory")


@dataclass(frozen=True)
class ModelSource:
    """Where the rungs behind a spec prefix live.

    Attributes:
        prefix: Specs that start with this name this source (``"organism:"``).
        name: The source's name, stored in :attr:`ModelSpec.source` (``"organism"``).
        folder: The verified Hugging Face folder of a spec of this source.
        check: Raises :class:`~probes.errors.UnknownModelError` for a spec that names no rung of
            this source, without reading any weights (so :func:`parse_spec` refuses an unknown
            rung before any work starts); None: unknown rungs fail when loaded.
    """

    prefix: str
    name: str
    folder: Callable[[str], Path]
    check: Callable[[str], object] | None = None


_SOURCES: dict[str, ModelSource] = {}


def register_model_source(source: ModelSource, replace: bool = False) -> None:
    """Let specs ``<source.prefix><rung>`` load from ``source``.

    Raises:
        UnknownModelError: the prefix is taken (and ``replace`` is False) or names a plain source.
    """
    if source.name in PLAIN_SOURCES:
        raise UnknownModelError(f"model source name {source.name!r} is reserved; pick another.")
    taken = _SOURCES.get(source.prefix)
    if taken is not None and taken != source and not replace:
        raise UnknownModelError(
            f"model-spec prefix {source.prefix!r} is already registered (source {taken.name!r}); "
            "pass replace=True to replace it."
        )
    _SOURCES[source.prefix] = source


def model_sources() -> dict[str, ModelSource]:
    """Every registered source by prefix, the built-in ladder folders' among them."""
    for catalogue in builtin_catalogues():
        if catalogue.model_prefix not in _SOURCES:
            _SOURCES[catalogue.model_prefix] = ModelSource(
                catalogue.model_prefix, catalogue.name, catalogue.rung_path, catalogue.catalogue_name
            )
    return dict(_SOURCES)


def model_source(name: str) -> ModelSource:
    """The registered source of that name.

    Raises:
        UnknownModelError: no source has that name.
    """
    for source in model_sources().values():
        if source.name == name:
            return source
    raise UnknownModelError(f"no model source named {name!r}; known: {sorted(_names())}.")


def _names() -> list[str]:
    return [source.name for source in model_sources().values()]


@dataclass(frozen=True)
class ModelSpec:
    """Where a model comes from: enough to load it again and to label its results.

    Attributes:
        name: Hub id, folder or file name, or the built-in spec (``"organism:4x96"``).
        source: ``"hub"``, ``"folder"``, ``"gguf"``, ``"memory"`` or a registered source's name.
        revision: Hub revision, if any.
        path: Resolved path of a folder or GGUF file.
        ladder: The ladder this spec was planned from (None for a user's string).
        rung: Its rung's name in that ladder.
        training_step: The training step of these weights, where the ladder knows it.
    """

    name: str
    source: str
    revision: str | None = None
    path: str | None = None
    ladder: str | None = None
    rung: str | None = None
    training_step: int | None = None

    @property
    def label(self) -> str:
        """The model's name as results show it (with its revision, if any)."""
        return f"{self.name}@{self.revision}" if self.revision else self.name

    @property
    def text(self) -> str:
        """The spec as a user string that :func:`parse_spec` reads back to the same model."""
        if self.source in ("folder", "gguf") and self.path:
            return self.path
        return self.label

    def __str__(self) -> str:
        """The spec as the user string it stands for (:attr:`text`), e.g. in manifests."""
        return self.text


def parse_spec(spec: str | ModelSpec) -> ModelSpec:
    """Turn a user's model string into a :class:`ModelSpec` (no loading, no network).

    A :class:`ModelSpec` is returned as it is.

    Raises:
        UnknownModelError: the string is empty, a missing path, or an unknown ``<prefix>:`` spec or
            rung.
    """
    if isinstance(spec, ModelSpec):
        return spec
    spec = spec.strip()
    if not spec:
        raise UnknownModelError("empty model spec; give a hub id, a folder, a .gguf file or organism:<rung>.")
    sources = model_sources()
    for prefix, source in sources.items():
        if spec.startswith(prefix):
            if source.check is not None:
                source.check(spec.partition("@")[0])  # an unknown rung fails here, before any work
            return ModelSpec(name=spec, source=source.name)
    path = Path(spec).expanduser()
    if spec.endswith(".gguf"):
        if not path.is_file():
            raise UnknownModelError(f"GGUF file {spec} does not exist; check the path.")
        return ModelSpec(name=path.stem, source="gguf", path=str(path.resolve()))
    if path.is_dir():
        return ModelSpec(name=path.name, source="folder", path=str(path.resolve()))
    looks_like_path = spec.startswith((".", "/", "~")) or os.sep in spec.replace("/", "", 1)
    if looks_like_path or path.suffix in (".safetensors", *PICKLE_SUFFIXES):
        raise UnknownModelError(
            f"model {spec!r} is neither an existing folder nor a .gguf file; "
            "check the path (a hub id looks like 'org/name' or 'org/name@revision')."
        )
    name, _, revision = spec.partition("@")
    return ModelSpec(name=name, source="hub", revision=revision or None)
