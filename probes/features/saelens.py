"""SAELens, the one library probes trains and loads sparse autoencoders with: its only import site.

SAELens 6.x pins ``transformer-lens < 4`` and imports four TransformerLens 3 module paths at
import time (``transformer_lens.HookedTransformer``, ``.utils``, ``.components`` and
``.components.mlps.can_be_used_as_mlp``; upstream issue decoderesearch/SAELens#738). probes uses
TransformerLens 4, so it installs SAELens without its dependencies (``docs/features.md``) and,
only while ``import sae_lens`` runs, puts those paths in place: TransformerLens 4 still has
``HookedRootModule`` (SAELens's ``SAE`` base class) and ``utilities`` (the old ``utils``);
``HookedTransformer`` is a stand-in that refuses to be built. Afterwards the stand-ins are
removed again, so TransformerLens's own migration error answers anybody else who asks for
``HookedTransformer``. SAELens imports none of these inside functions, and probes uses only
its SAE classes, its trainer on activations probes supplies, and its on-disk format; its
model wrappers (``HookedSAETransformer``, ``ActivationsStore``, the LM runners) need
TransformerLens 3 and are never called.
"""

from __future__ import annotations

import contextlib
import sys
import types
from collections.abc import Iterator
from functools import cache
from typing import Any

from probes.errors import ProbesError

#: The SAELens releases these stand-ins were checked against (the import paths they fill).
TESTED_VERSIONS = ("6.54",)
#: How to install the optional engine (SAELens's pin on TransformerLens 3 rules out a plain extra).
INSTALL = "pip install 'probes[features]' && pip install --no-deps 'sae-lens==6.54.12'"


class FeaturesUnavailableError(ProbesError):
    """SAELens is not installed, or is a release whose imports probes has not checked."""


@contextlib.contextmanager
def _transformer_lens_3_paths() -> Iterator[None]:
    """The TransformerLens 3 module paths SAELens imports, present only inside this block."""
    import transformer_lens
    import transformer_lens.utilities as utilities
    from transformer_lens.HookedRootModule import HookedRootModule

    if "HookedTransformer" in vars(transformer_lens):
        yield  # TransformerLens 3: nothing to stand in for
        return

    class HookedTransformer(HookedRootModule):  # type: ignore[misc]
        """Stand-in: SAELens's model wrappers need TransformerLens 3 and are not used by probes."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            raise FeaturesUnavailableError(
                "SAELens's HookedTransformer wrappers need transformer-lens < 4; probes runs SAEs "
                "through its own hooks (probes.features)."
            )

    hooked = types.ModuleType("transformer_lens.HookedTransformer")
    hooked.__dict__.update(
        HookedRootModule=HookedRootModule, HookedTransformer=HookedTransformer, Loss=object, Output=object
    )
    mlp = types.ModuleType("transformer_lens.components.mlps.can_be_used_as_mlp")
    mlp.__dict__["CanBeUsedAsMLP"] = type("CanBeUsedAsMLP", (), {})
    added = {
        "transformer_lens.HookedTransformer": hooked,
        "transformer_lens.utils": utilities,
        "transformer_lens.components": types.ModuleType("transformer_lens.components"),
        "transformer_lens.components.mlps": types.ModuleType("transformer_lens.components.mlps"),
        "transformer_lens.components.mlps.can_be_used_as_mlp": mlp,
    }
    present = {name: sys.modules[name] for name in added if name in sys.modules}
    sys.modules.update(added)
    transformer_lens.__dict__["HookedTransformer"] = HookedTransformer
    try:
        yield
    finally:
        for name in added:
            sys.modules.pop(name, None)
        sys.modules.update(present)
        transformer_lens.__dict__.pop("HookedTransformer", None)


@cache
def sae_lens() -> types.ModuleType:
    """The ``sae_lens`` module, imported once with the stand-ins it needs on TransformerLens 4.

    Raises:
        FeaturesUnavailableError: SAELens is missing, cannot be imported, or is an untested release.
    """
    from importlib.util import find_spec

    if find_spec("sae_lens") is None:
        raise FeaturesUnavailableError(f"SAE features need SAELens, which is not installed: {INSTALL}.")
    try:
        with _transformer_lens_3_paths():
            import sae_lens as module
    except ImportError as err:  # a dependency SAELens imports that --no-deps left out
        raise FeaturesUnavailableError(
            f"SAELens is installed but cannot be imported ({err}); install its dependencies: {INSTALL}."
        ) from None
    version = str(getattr(module, "__version__", "?"))
    if not version.startswith(TESTED_VERSIONS):
        raise FeaturesUnavailableError(
            f"SAELens {version} is installed; probes is tested with {', '.join(TESTED_VERSIONS)}.x, whose "
            f"imports it knows: {INSTALL}."
        )
    return module


def installed() -> bool:
    """Whether SAELens can be imported (for tests and help texts; never raises)."""
    try:
        sae_lens()
    except FeaturesUnavailableError:
        return False
    return True
