"""Waiting for the shards other processes hold: a unit another process has claimed is waited
for (:func:`wait_for`), then looked at again (whether a shard is finished:
:func:`probes.jobs.fingerprint.is_finished`)."""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from pathlib import Path

from probes.store import claims


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
