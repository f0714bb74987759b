"""Checks of a run's options, made when they are parsed, before any item is built or model loaded.

Every command's options dataclass (:class:`probes.jobs.options.RunOptions` and its subclasses) is
checked by :func:`check_options`: numbers in range, a device this machine has, a dtype the
toolkit knows, and an ``--out`` that is (or can become) a writable folder. A bad option gives
one :class:`~probes.errors.InvalidOptionError` naming the option and the fix.
"""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from probes.errors import InvalidOptionError

#: dtypes accepted on the command line (mirrors :data:`probes.model.loading.DTYPES`).
DTYPE_NAMES = ("float32", "float16", "bfloat16")


def check_options(options: Any) -> None:
    """Check every option a run's options object has (fields it lacks are skipped).

    Raises:
        InvalidOptionError: The first option that cannot work, with the fix.
    """
    for name in ("batch_size", "n_items", "max_new_tokens"):
        value = getattr(options, name, None)
        if name != "batch_size" and value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            flag = "--" + name.replace("_", "-")
            raise InvalidOptionError(f"{flag} {value!r}: it must be a whole number of at least 1.")
    if hasattr(options, "dtype") and str(options.dtype) not in DTYPE_NAMES:
        raise InvalidOptionError(f"--dtype {options.dtype!r} is unknown; use one of {list(DTYPE_NAMES)}.")
    if hasattr(options, "executor"):
        check_executor(options)
    if hasattr(options, "device") and not joins_cluster(options):
        check_device(str(options.device))  # a cluster's workers check it on their own machines
    if hasattr(options, "backend"):
        check_backend(options)
    if hasattr(options, "shard"):
        from probes.jobs.validation import parse_shard

        parse_shard(options.shard)
    if hasattr(options, "out"):
        check_out_folder(Path(options.out))


def joins_cluster(options: Any) -> bool:
    """Whether the run's units run on the machines of a Ray cluster given by ``--address``."""
    return getattr(options, "executor", "serial") == "ray" and bool(getattr(options, "address", None))


def check_executor(options: Any) -> None:
    """Raise unless the executor is known and its options fit it (no Ray import here)."""
    from probes.jobs.options import EXECUTORS

    if options.executor not in EXECUTORS:
        raise InvalidOptionError(f"--executor {options.executor!r} is unknown; use one of {list(EXECUTORS)}.")
    if options.executor != "ray" and (options.address or options.workers):
        raise InvalidOptionError("--address and --workers belong to --executor ray; add it or drop them.")
    workers = options.workers
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise InvalidOptionError(f"--workers {workers!r}: it must be a whole number of at least 1.")
    if options.address and workers:
        raise InvalidOptionError(
            "--workers sizes a local Ray cluster; a cluster joined with --address has its own CPUs."
        )
    memory = options.gpu_memory_gib
    if memory is not None and not memory > 0:
        raise InvalidOptionError(f"--gpu-memory-gib {memory!r}: give the GPUs' memory in GiB, e.g. 80.")
    if options.executor == "ray":
        import_ray()  # not installed: say how, before any item is built


def check_backend(options: Any) -> None:
    """``--backend`` one the toolkit has (and installed), ``--remote`` only through nnsight,
    ``--device-map`` a named placement or a JSON map."""
    from probes.model.backend import AUTO, backends
    from probes.model.placement import device_map_of

    known = backends()
    if options.backend != AUTO and options.backend not in known:
        raise InvalidOptionError(
            f"--backend {options.backend!r} is unknown; use {AUTO} or one of {sorted(known)}."
        )
    kind = known.get(options.backend)
    if kind is not None:
        kind.check_installed()
    if getattr(options, "remote", False) and (kind is None or kind.load_remote is None):
        remote = [name for name, other in known.items() if other.load_remote is not None]
        raise InvalidOptionError(f"--remote runs models on NDIF: add --backend {' or '.join(remote)}.")
    device_map_of(getattr(options, "device_map", None))


def device_kind(device: str) -> str:
    """The kind of a device (``cpu``, ``cuda``, ``mps`` ...): what can change a run's numbers."""
    return torch.device(device).type


def check_device(device: str) -> None:
    """Raise unless ``device`` names a torch device this machine has."""
    try:
        parsed = torch.device(device)
    except (RuntimeError, ValueError):
        raise InvalidOptionError(
            f"--device {device!r} is not a torch device; use cpu, cuda, cuda:N or mps."
        ) from None
    if parsed.type == "cpu":
        return
    if parsed.type == "cuda":
        if not torch.cuda.is_available():
            why = "this torch is built without CUDA" if torch.version.cuda is None else "no GPU is visible"
            raise InvalidOptionError(f"--device {device}: {why}; use --device cpu.")
        count = torch.cuda.device_count()
        if parsed.index is not None and parsed.index >= count:
            raise InvalidOptionError(
                f"--device {device}: this machine has {count} CUDA device(s), cuda:0..cuda:{count - 1}."
            )
        return
    if parsed.type == "mps":
        available = torch.backends.mps.is_available()
    else:
        backend = getattr(torch, parsed.type, None)
        available = bool(backend is not None and getattr(backend, "is_available", lambda: False)())
    if not available:
        raise InvalidOptionError(
            f"--device {device}: no {parsed.type} device is available; use --device cpu."
        )


def check_out_folder(out: Path) -> None:
    """Raise unless ``out`` is a writable folder, or a folder that can be created.

    Nothing is created: the nearest existing folder is tested with a temporary file that is
    removed at once.
    """
    out = out.expanduser()
    _refuse_symlink_loop(out)
    existing = out
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if existing.exists() and not existing.is_dir():
        where = "is a file" if existing == out else f"is under {existing}, which is a file"
        raise InvalidOptionError(f"--out {out} {where}; give a folder for the result store.")
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as err:
        reason = err.strerror or type(err).__name__
        raise InvalidOptionError(
            f"--out {out}: cannot write in {existing} ({reason}); give a writable folder."
        ) from None


def parse_shard(shard: str) -> tuple[int, int]:
    """``"i/N"`` as ``(i, N)``, checked."""
    try:
        index, count = (int(part) for part in shard.split("/"))
    except ValueError:
        raise InvalidOptionError(f"--shard {shard!r} is not of the form i/N (e.g. 0/4).") from None
    if not 0 <= index < count:
        raise InvalidOptionError(f"--shard {shard!r}: i must be in 0..N-1 (and N at least 1).")
    return index, count


def import_ray() -> Any:
    """The ``ray`` module, or an :class:`InvalidOptionError` that says how to install it."""
    try:
        import ray
    except ImportError:
        raise InvalidOptionError(
            "--executor ray needs Ray: pip install 'probes[ray]' (or pip install 'ray[default]')."
        ) from None
    return ray


def _refuse_symlink_loop(out: Path) -> None:
    """Raise when ``out`` or a folder above it is a symbolic link that leads back to itself."""
    for path in reversed((out, *out.parents)):  # the top-most link that loops
        try:
            os.stat(path)
        except OSError as err:
            if err.errno == errno.ELOOP:
                raise InvalidOptionError(
                    f"--out {out}: {path} is a symbolic link that loops (it leads back to itself); "
                    "remove or fix that link, or give another folder."
                ) from None
