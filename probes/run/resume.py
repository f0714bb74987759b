"""The run layer's resume decisions: is a shard finished, and when have other processes let go.

A shard is finished for a run when it verifies against its checksum and was made from the
same inputs (its fingerprint); a damaged one is named on stderr and computed again. Units
that another process has claimed are waited for (:func:`wait_for`), then looked at again.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from probes.errors import DamagedShardError
from probes.run.validation import device_kind
from probes.store import claims
from probes.store.store import Store


def finished_or_damaged(
    store: Store,
    path: Path,
    fingerprint: str,
    legacy: str,
    replace: bool,
    batch_size: int,
    device: str,
    warn: bool = True,
) -> bool:
    """Whether the shard at ``path`` is written, verifies and holds these inputs.

    ``legacy`` is the fingerprint a shard written before batch size and device kind counted
    would carry; such a shard is finished when its manifest names the same batch size and
    device kind. ``warn``: name a damaged shard on stderr (once per run: not on the re-check).

    Raises:
        StoreError: The shard holds other inputs (and not ``replace``).
    """

    def same_run(record: dict[str, Any]) -> bool:
        recorded = str((record.get("options") or {}).get("device", "cpu"))
        return (
            record.get("fingerprint") == legacy
            and record.get("batch_size") == batch_size
            and device_kind(recorded) == device_kind(device)
        )

    try:
        return store.finished_at(path, fingerprint, replace=replace, also=same_run)
    except DamagedShardError as err:
        if warn:
            print(f"probes: warning: {err}; computing it again.", file=sys.stderr)
        return False


def wait_for(paths: Sequence[Path], poll: float = 0.5) -> None:
    """Wait until no live process holds the claim of any of these shards.

    Claims of dead processes on this host do not count (the next claimant recovers them); a
    claim of another host counts until its owner releases it or someone deletes the lock, which
    the message names.
    """
    locks = [claims.lock_path(path) for path in paths]
    told = False
    while True:
        live = [(lock, claims.owner_of(lock)) for lock in locks if lock.exists() and not claims.stale(lock)]
        if not live:
            return
        if not told:
            lock, owner = live[0]
            remote = owner is not None and owner.alive() is None
            hint = f" (delete {lock} if that process is gone)" if remote else ""
            print(
                f"probes: waiting for {len(live)} shard(s) that {owner or 'another process'} "
                f"is computing{hint}.",
                file=sys.stderr,
            )
            told = True
        time.sleep(poll)
