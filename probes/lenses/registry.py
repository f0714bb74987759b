"""The lenses ``--lens`` can name: every lens kind found in :mod:`probes.lenses`, plus registered ones.

Any module or subpackage directly inside :mod:`probes.lenses` that defines ``LENS``, a
:class:`~probes.lenses.base.LensKind`, is a lens (:mod:`probes.lenses.logit`,
:mod:`probes.lenses.tuned`), so adding one is one new file; code outside the package calls
:func:`register_lens`.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from probes.discovery import defined_in
from probes.lenses.base import LensChoice, LensKind, UnknownLensError

_REGISTERED: dict[str, LensKind] = {}


def register_lens(kind: LensKind) -> LensKind:
    """Add a lens kind defined outside :mod:`probes.lenses` (one inside defines ``LENS``)."""
    _REGISTERED[kind.name] = kind
    return kind


def lens_kinds() -> dict[str, LensKind]:
    """Every lens kind by name: the ``LENS`` of each module of :mod:`probes.lenses`, then registered ones."""
    import probes.lenses

    found = {kind.name: kind for kind in defined_in(probes.lenses, "LENS", LensKind)}
    return {**found, **_REGISTERED}


def lens_names() -> list[str]:
    """The names ``--lens`` accepts."""
    return sorted(lens_kinds())


def get_lens_kind(name: str) -> LensKind:
    """The lens kind called ``name``.

    Raises:
        UnknownLensError: No lens has that name.
    """
    kinds = lens_kinds()
    if name not in kinds:
        raise UnknownLensError(f"unknown lens {name!r}; use one of {sorted(kinds)}.")
    return kinds[name]


def choose_lens(name: str, model_label: str, lens_dir: Path | None = None) -> LensChoice:
    """The lens ``name`` for the model labelled ``model_label``, found before the model loads.

    Raises:
        UnknownLensError: ``name`` is unknown, or it has no lens for the model.
    """
    kind = get_lens_kind(name)
    return dataclasses.replace(kind.choose(model_label, lens_dir), builder=kind.build)
