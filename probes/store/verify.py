"""``probes verify STORE``: check every shard of a store against its checksum.

Each shard is read whole and hashed (:mod:`probes.store.checksums`), and its manifest checked
against its place (:meth:`probes.store.store.Store.problem`): a shard without a checksum, or one
copied over another's path, is damaged. The check also lists temporary files and locks that
writers left (those of dead writers on this host are what
:meth:`probes.store.store.Store.clean_temporary` removes), also in a store whose run was stopped
before its first shard.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from probes.errors import StoreError
from probes.store import claims
from probes.store.checksums import Damaged, read_verified
from probes.store.store import Store


@dataclass(frozen=True)
class Finding:
    """One file of a store and what the check found."""

    path: Path
    status: str  # "ok", "damaged", "leftover"
    detail: str = ""


def verify_store(root: str | Path) -> list[Finding]:
    """Every shard of every kind, and every leftover temporary file or lock, of a store.

    Raises:
        StoreError: ``root`` is no result store.
    """
    store = Store(root)
    if not store.root.is_dir():
        raise StoreError(f"{root} is not a folder; give the folder of a result store.")
    if not (store.root / "store.json").exists() and not store.kinds() and not store.leftovers():
        raise StoreError(f"{root} is not a result store (no store.json, no shards); check the path.")
    store.format  # noqa: B018 - a malformed store.json is named here, before any shard is read
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
        problem = store.problem(path, record, checked)
        if problem:
            findings.append(Finding(path, "damaged", f"{problem}; {store.fix(path)}"))
        else:
            findings.append(Finding(path, "ok"))
    for path, owner in store.leftovers():
        state = "dead" if claims.dead_writer(owner) else "running or on another host"
        findings.append(Finding(path, "leftover", f"left by {owner or 'an unknown writer'} ({state})"))
    return findings
