"""The command that recomputes one shard, from the options its manifest recorded.

Named in every message about a damaged or stale shard (``probes show``, ``probes verify``), so
that the fix is one command the user can paste.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import TYPE_CHECKING, Any

from probes.errors import StoreError

if TYPE_CHECKING:
    from probes.store.store import Store


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
