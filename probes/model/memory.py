"""Sizes read from files checked against the memory there is, before anything is allocated.

A model's ``config.json`` or a lens's ``lens.json`` is a few hundred bytes that decide how many
gigabytes get allocated: a ``vocab_size`` of 2e9 makes transformers allocate tens of GB before
any shape check. Each loader here reads the size the file asks for, compares it with the memory
the device has free, and refuses with one line (:class:`MemoryCheckError`) when it does not fit.
``--no-memory-check`` (:attr:`probes.jobs.options.LoadOptions.memory_check`) skips the check, for
a machine whose free memory is misreported (swap, overcommit) or a model placed with a device map.

A model's size is its parameter count as transformers builds it on the ``meta`` device (no
memory), times the bytes of the dtype; a lens's is its tensors' element count (from the
``lens.json`` shape) times 4 bytes.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from probes.errors import ProbesError, UnknownModelError

#: What a loaded model needs beyond its weights (activations, the bridge's split copies), as a
#: factor of its weights; a check, not a forecast: it only has to catch sizes far off.
OVERHEAD = 1.2


class MemoryCheckError(ProbesError):
    """A model or lens file that asks for more memory than the device has free."""


def available_bytes(device: str) -> int | None:
    """Free memory of a device in bytes (None when it cannot be told)."""
    kind = torch.device(device).type
    if kind == "cuda":
        try:
            free, _ = torch.cuda.mem_get_info(torch.device(device))
        except (RuntimeError, AssertionError, ValueError):
            return None
        return int(free)
    if kind != "cpu":
        return None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def _gib(n_bytes: float) -> str:
    return f"{n_bytes / 2**30:.1f} GiB"


def check_fits(n_bytes: int, device: str, what: str, source: Path | str, override: bool = True) -> None:
    """Raise when ``n_bytes`` (times :data:`OVERHEAD`) exceed the free memory of ``device``.

    Args:
        override: Whether the message names ``--no-memory-check`` (for what a run's loader reads).

    Raises:
        MemoryCheckError: Naming ``source`` (the file the size came from), the sizes and the fix.
    """
    free = available_bytes(device)
    if free is None or n_bytes * OVERHEAD <= free:
        return
    fix = (
        "use a smaller dtype or another device, or pass --no-memory-check (memory_check=False) "
        "to load it anyway"
        if override
        else "free some memory"
    )
    raise MemoryCheckError(
        f"{what} needs about {_gib(n_bytes)} (from {source}), but {device} has {_gib(free)} free; "
        f"check that file's sizes, or {fix}."
    )


def model_bytes(config: Any, dtype: torch.dtype) -> int:
    """Bytes of the weights of the model a transformers config describes, built on ``meta``."""
    from transformers import AutoModelForCausalLM

    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config, trust_remote_code=False)
    return sum(p.numel() for p in model.parameters()) * torch.empty((), dtype=dtype).element_size()


def check_model_memory(config: Any, dtype: torch.dtype, device: str, source: Path | str) -> None:
    """Refuse a model whose config asks for more memory than ``device`` has free.

    Raises:
        MemoryCheckError: See :func:`check_fits`.
        UnknownModelError: The config describes no causal LM transformers can build (named by file).
    """
    try:
        n_bytes = model_bytes(config, dtype)
    except (
        ValueError,
        TypeError,
        KeyError,
        IndexError,
        AttributeError,
        RuntimeError,
        ArithmeticError,
        AssertionError,
    ) as err:
        raise UnknownModelError(f"{source} describes no model transformers can build ({err}).") from None
    check_fits(n_bytes, device, "the model", source)
