"""One progress display per run, and the model libraries kept quiet behind it.

A run shows one bar: items done of the run's items (so tqdm's rate is items/s and its ETA covers
the whole run), with the model being loaded or computed (``model 2/6``), what it computes and the
units finished (``units 5/30``) beside it. Commands whose units cost different amounts per item
(``probes ablate``: attribution, ablation, patching) count estimated forward passes instead.
Units already in the store leave the total instead of counting as
instant work, so a resumed run's ETA is honest.

transformers' own "Loading weights" and GGUF de-quantization bars, its info logs, TransformerLens'
messages and the libraries' warnings are silenced while a run loads and reads models, unless the
user asks for them (``--verbose``).
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import logging
import sys
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol

from probes.progress_bar import tqdm

#: Loggers of the libraries a run loads models with; ERROR and above still show.
LIBRARY_LOGGERS = ("transformers", "transformer_lens", "huggingface_hub", "accelerate", "torch")

#: Modules whose own warnings a quiet run hides (a regular expression on the warning's module).
LIBRARY_WARNINGS = r"(transformers|transformer_lens|huggingface_hub|accelerate|torch|gguf)(\.|$)"

#: Modules that draw their own tqdm bars outside transformers' switch (its GGUF loader).
_OWN_BARS = ("transformers.modeling_gguf_pytorch_utils",)


class Progress(Protocol):
    """What the run layer tells a progress display (:class:`RunProgress`, or a worker's tally)."""

    def model(self, label: str, state: str = "") -> None:
        """The model the run is at, and what it does."""

    def skip(self, units: Sequence[Any]) -> None:
        """Units found finished in the store."""

    def done(self, unit: Any) -> None:
        """A unit computed and written."""


def items_of(unit: Any) -> float:
    """A unit's work for the bar by default: its items (each read once per layer pass)."""
    return len(unit.items)


class RunProgress:
    """The one bar of a run: work done, its rate, ETA, the current model and the units done.

    Args:
        units: Every unit of this process (anything with ``model.label`` and ``items``).
        description: The bar's label (e.g. ``"shards"``).
        enabled: Draw the bar at all (``--progress``).
        work: A unit's share of the work in the bar's ``unit_name``; by default its items. Units
            whose cost differs by kind (an ablation study's three analyses) give an estimate in
            forward passes, so that the rate and the ETA hold across kinds.
        unit_name: What ``work`` counts (tqdm shows its rate per second).
    """

    def __init__(
        self,
        units: Sequence[Any],
        description: str,
        enabled: bool = True,
        work: Callable[[Any], float] = items_of,
        unit_name: str = "item",
    ) -> None:
        self.models = list(dict.fromkeys(unit.model.label for unit in units))
        self.n_units = len(units)
        self.units_done = 0
        self.model_index = 0
        self.model_label = ""
        self.state = ""
        self.work = work
        self.description = description
        self.enabled = enabled
        self.computed = 0
        self.bar = tqdm(
            total=sum(work(unit) for unit in units),
            desc=description,
            unit=unit_name,
            disable=not enabled,
            dynamic_ncols=True,
        )
        self._show()

    def _show(self) -> None:
        if self.model_index:
            model = f"model {self.model_index}/{len(self.models)} {self.model_label}"
            state = f" {self.state}" if self.state else ""
        else:  # nothing loaded yet: no empty model name
            model, state = f"{len(self.models)} model(s)", " starting"
        self.bar.set_postfix_str(f"{model}{state} · units {self.units_done}/{self.n_units}")

    def model(self, label: str, state: str = "") -> None:
        """Say which model the run is at and what it does (``"loading"``, a task/variant ...)."""
        self.model_index = self.models.index(label) + 1 if label in self.models else self.model_index
        self.model_label, self.state = label, state
        self._show()

    def skip(self, units: Sequence[Any]) -> None:
        """Units already in the store: done, but not work of this run (they leave the total)."""
        self.units_done += len(units)
        self.bar.total -= sum(self.work(unit) for unit in units)
        self._show()
        self.bar.refresh()

    def done(self, unit: Any) -> None:
        """A unit is computed and written: its items count as done."""
        self.units_done += 1
        self.computed += 1
        self.bar.update(self.work(unit))
        self._show()

    def close(self) -> None:
        """Close the bar (leaving its last line on screen); a run that found every unit in the
        store says so in one line instead."""
        if self.n_units and not self.computed and self.units_done == self.n_units:
            self.bar.leave = False
            self.bar.close()
            if self.enabled:
                print(
                    f"{self.description}: all {self.n_units} unit(s) are already in the store; nothing to "
                    "compute (--overwrite recomputes them).",
                    file=sys.stderr,
                )
            return
        self.bar.close()


@contextlib.contextmanager
def quiet_libraries(quiet: bool = True) -> Iterator[None]:
    """While inside: no loading bars, info logs or warnings from the model libraries.

    Everything is restored on exit. With ``quiet=False`` (``--verbose``) nothing changes.
    """
    if not quiet:
        yield
        return
    with contextlib.ExitStack() as stack:
        levels = {name: logging.getLogger(name).level for name in LIBRARY_LOGGERS}
        stack.callback(lambda: [logging.getLogger(n).setLevel(level) for n, level in levels.items()])
        for name in LIBRARY_LOGGERS:
            logging.getLogger(name).setLevel(logging.ERROR)
        stack.enter_context(warnings.catch_warnings())
        warnings.filterwarnings("ignore", module=LIBRARY_WARNINGS)
        if "transformers" in sys.modules:
            stack.enter_context(_transformers_quiet())
        for name in _OWN_BARS if "transformers" in sys.modules else ():
            try:
                module = importlib.import_module(name)
            except ImportError:  # an older or newer transformers without this loader
                continue
            if hasattr(module, "tqdm"):
                stack.enter_context(_patched(module, "tqdm", functools.partial(tqdm, disable=True)))
        yield


@contextlib.contextmanager
def _transformers_quiet() -> Iterator[None]:
    """transformers' verbosity at ERROR and its (and the hub's) progress bars off, then restored."""
    from transformers.utils import logging as transformers_logging

    verbosity = transformers_logging.get_verbosity()
    bars = transformers_logging.is_progress_bar_enabled()
    transformers_logging.set_verbosity_error()
    transformers_logging.disable_progress_bar()
    try:
        yield
    finally:
        transformers_logging.set_verbosity(verbosity)
        if bars:
            transformers_logging.enable_progress_bar()


@contextlib.contextmanager
def _patched(module: Any, name: str, value: Any) -> Iterator[None]:
    original = getattr(module, name)
    setattr(module, name, value)
    try:
        yield
    finally:
        setattr(module, name, original)
