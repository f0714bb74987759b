"""``probes verify STORE``: check every shard of a store against its checksum.

Each shard is read whole and hashed (:mod:`probes.store.checksums`); the check also lists temporary
files and locks that writers left (those of dead writers on this host are what
:meth:`probes.store.store.Store.clean_temporary` removes) and shards written before checksums, which
can only be decoded, not verified.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from probes.errors import StoreError
from probes.store import claims
from probes.store.checksums import Damaged, read_verified
from probes.store.store import Store, temporary_owner


@dataclass(frozen=True)
class Finding:
    """One file of a store and what the check found."""

    path: Path
    status: str  # "ok", "unverified", "damaged", "leftover"
    detail: str = ""


def verify_store(root: str | Path) -> list[Finding]:
    """Every shard of every kind, and every leftover temporary file or lock, of a store.

    Raises:
        StoreError: ``root`` is no result store.
    """
    store = Store(root)
    if not store.root.is_dir() or not (store.root / "store.json").exists() and not store.kinds():
        raise StoreError(f"{root} is not a result store (no store.json, no shards); check the path.")
    findings = []
    paths = store.shard_paths() + [
        p for folder in sorted((store.root / "analyses").glob("*")) for p in store.shard_paths(folder.name)
    ]
    for path in paths:
        try:
            _, record, checked = read_verified(path)
        except (Damaged, OSError) as err:
            findings.append(Finding(path, "damaged", f"{err}; {store.fix(path)}"))
            continue
        if record is None:
            findings.append(Finding(path, "damaged", "no probes manifest; not written by this toolkit"))
        elif not checked:
            findings.append(Finding(path, "unverified", "written before checksums; decodes whole"))
        else:
            findings.append(Finding(path, "ok"))
    for path in sorted(store.root.glob("**/.*")):
        owner = temporary_owner(path) if path.name.endswith(".tmp") else None
        if path.name.endswith(".lock"):
            owner = claims.owner_of(path)
        elif owner is None:
            continue
        state = "dead" if claims.dead_writer(owner) else "running or on another host"
        findings.append(Finding(path, "leftover", f"left by {owner or 'an unknown writer'} ({state})"))
    return findings


def fix_hint(store: Store, path: Path) -> str:
    """How to recompute one shard: the command, from its manifest if that still reads."""
    try:
        record = store.read_manifest_record(path)
    except StoreError:
        record = {}
    if not record.get("options"):
        return f"delete it and re-run the command that wrote {store.root}"
    kind = path.relative_to(store.root).parts[1] if path.is_relative_to(store.root / "analyses") else None
    return f"a re-run of `{rerun_command(record, store.root, kind)}` recomputes it"


#: The command that writes each kind of analysis table (lens shards: ``probes run``).
COMMANDS = {"perplexity": "perplexity"}


def rerun_command(record: dict[str, Any], root: Path, kind: str | None = None) -> str:
    """The command that recomputes just the shard a manifest record describes.

    Args:
        record: The shard's manifest record (its ``options`` are the run's).
        root: The store's folder.
        kind: The shard's kind of analysis table (None: a lens shard).
    """
    options = dict(record.get("options") or {})
    command = ["probes", "run" if kind is None else COMMANDS.get(kind, "ablate")]
    options.update(out=str(root), models=[record.get("spec") or record.get("model")], ladder=None, steps=None)
    for name in ("shard", "overwrite", "progress"):
        options.pop(name, None)  # their defaults: the whole (one-unit) list, keep, bars
    task = record.get("task")
    if "tasks" in options:
        options["tasks"] = [t for t in options["tasks"] if t == task or Path(t).stem == task] or options[
            "tasks"
        ]
    if "variants" in options:
        options["variants"] = [record.get("variant")]
    analysis = record.get("analysis")
    if analysis and analysis in (options.get("analyses") or []):
        options["analyses"] = [analysis]
    for name, value in options.items():
        flag = "--" + name.replace("_", "-")
        if value is None or value == []:
            continue
        if isinstance(value, bool):
            command.append(flag if value else f"--no-{flag[2:]}")
        elif isinstance(value, list):
            command += [flag, *map(str, value)]
        else:
            command += [flag, str(value)]
    return shlex.join(command)
