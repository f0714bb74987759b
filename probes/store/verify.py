"""``probes verify STORE``: check every shard of a store against its checksum.

Each shard is read whole and hashed (:mod:`probes.store.checksums`); the check also lists temporary
files and locks that writers left (those of dead writers on this host are what
:meth:`probes.store.store.Store.clean_temporary` removes) and shards written before checksums, which
can only be decoded, not verified.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

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
