"""Plugins found by their file: every module of a package that defines a given attribute.

Tasks (``probes/tasks/generators/``, ``SPEC``), lenses (``probes/lenses/``, ``LENS``) and
backends (``probes/model/``, ``BACKEND``) register themselves this way, so adding one is one new
file in its package.
"""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType
from typing import TypeVar

T = TypeVar("T")


def defined_in(package: ModuleType, attribute: str, kind: type[T]) -> list[T]:
    """The ``attribute`` of every module directly in ``package`` (by module name) that is a ``kind``."""
    found = []
    for name in sorted(module.name for module in pkgutil.iter_modules(package.__path__)):
        value = getattr(importlib.import_module(f"{package.__name__}.{name}"), attribute, None)
        if isinstance(value, kind):
            found.append(value)
    return found
