"""The result store: one Parquet shard per (lens, model, task, variant), each carrying its manifest.

Lens sweeps write ``shards/<lens>/<model>/<task>/<variant>.parquet``, so the readouts of
several lenses of the same models and items live side by side; a lens with trained weights is
stored under its name and a short hash of its weights (``shards/tuned-<hash8>/``,
:func:`lens_store_name`), so two tuned lenses of one model live side by side too (stores
written before that, with ``shards/tuned/``, are still read and resumed); other analyses of the same
models and items (attribution, ablation, patching) write tables of their own kind under
``analyses/<kind>/<model>/<task>/<variant>.parquet``, with the same manifest rules.

A shard is written to a temporary file in its final folder and renamed into
place (:func:`write_atomically`), so it either exists whole or not at all: a killed sweep
loses at most the shard in progress, and any number of processes (a SLURM array, Ray tasks)
can write disjoint shards of one store at once. Each shard's manifest record
(model, revision, parameters, layers, lens, variant, dtype, device, seed,
versions, and a fingerprint of its inputs) lives in the Parquet file's own
metadata, so no shared index file can be torn or raced.

Each shard carries a SHA-256 of its own bytes (:mod:`probes.store.checksums`): a shard is finished
only if it verifies, a damaged one is named and recomputed by the next run (or refused by
``show``/``report`` with the command that recomputes it), and :func:`verify_store`
(``probes verify STORE``) checks a whole store. Before a shard is computed it is claimed
(:meth:`Store.claim`, a lock file with host and pid, :mod:`probes.store.claims`), and at write time
the shard on disk is checked again, so two runs with different settings cannot both write one
shard and two identical runs split the work.

``store.json`` names the layout's format (:data:`STORE_FORMAT`); a store of another format is
refused with a message that says to compute it again into a new folder.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from probes.errors import DamagedShardError, StoreError
from probes.store import claims
from probes.store.checksums import Damaged, parquet_bytes, read_verified
from probes.store.rerun import fix_hint

#: Key of the manifest record in each shard's Parquet metadata.
METADATA_KEY = b"probes"
#: Layout version of the store, as ``store.json`` names it.
STORE_FORMAT = 2
#: Where the lens shards of a store of :data:`STORE_FORMAT` live.
LAYOUT = "shards/<lens>/<model>/<task>/<variant>.parquet"
#: How to repair a damaged ``store.json``.
_MARKER_FIX = (
    f'a store written by this toolkit holds {{"format": {STORE_FORMAT}, '
    f'"layout": "{LAYOUT}"}} there; restore that (or the file from a backup), '
    "or give another --out folder"
)
#: The kind of the lens sweep's per-layer tables (stored under ``shards/``).
LENS = "lens"


def lens_store_name(lens: str, weights: str | None = None) -> str:
    """The name a lens's shards and rows are stored under: ``lens``, or ``lens-<first 8 of weights>``.

    A lens without weights (the logit lens) is its name; a trained lens (a tuned lens) adds
    the first 8 hex digits of its weights' sha256, so that two of them never share a shard.
    """
    return f"{lens}-{weights[:8]}" if weights else lens


def write_atomically(path: Path, write: Callable[[IO[bytes]], None]) -> Path:
    """Write a file through a temporary sibling renamed into place: it exists whole or not at all.

    ``write`` gets an open binary handle; the data is flushed to disk before the rename and the
    folder after it, so a killed process (or a power cut) leaves at most a hidden temporary file
    named after its host and pid (:func:`temporary_owner`), never a torn one.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.stem}~{claims.HOST}~{os.getpid()}~{uuid.uuid4().hex}.tmp")
    try:
        with temporary.open("wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
        fsync_folder(path.parent)
    finally:
        temporary.unlink(missing_ok=True)
    return path


def fsync_folder(folder: Path) -> None:
    """Flush a folder's entries (a rename into it) to disk, where the platform allows it."""
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass  # some file systems do not fsync folders
    finally:
        os.close(descriptor)


#: Our temporary files: ``.<stem>~<host>~<pid>~<uuid4 hex>.tmp`` (:func:`write_atomically`) and the
#: older ``.<stem>.<pid>.<uuid4 hex>.tmp``; nothing else is taken for ours.
_TEMPORARY = re.compile(r"\.(?P<stem>.+)~(?P<host>[^~/]+)~(?P<pid>[0-9]+)~[0-9a-f]{32}\.tmp")


def temporary_owner(path: Path) -> claims.Owner | None:
    """The writer of a temporary file ``.<stem>~<host>~<pid>~<hex>.tmp``; None for another kind of file."""
    match = _TEMPORARY.fullmatch(path.name)
    if match:
        return claims.Owner(match["host"], int(match["pid"]))
    return None


def write_text_atomically(path: Path, text: str) -> Path:
    """Write a UTF-8 text file atomically (reports, summaries): whole or not at all."""
    return write_atomically(path, lambda handle: handle.write(text.encode("utf-8")))


def slug(name: str) -> str:
    """A file-name-safe form of a model, task or variant name."""
    return re.sub(r"[^A-Za-z0-9._-]+", "__", name).strip("_") or "_"


class Store:
    """A folder of result shards."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    @property
    def format(self) -> int:
        """The store's layout format (:data:`STORE_FORMAT` for a new or empty store)."""
        marker = self.root / "store.json"
        if not marker.exists():
            return STORE_FORMAT
        try:
            data = json.loads(marker.read_text("utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as err:
            raise StoreError(f"{marker} cannot be read as JSON ({err}); {_MARKER_FIX}") from None
        found = data.get("format", 1) if isinstance(data, dict) else None
        if isinstance(found, bool) or not isinstance(found, int) or found < 1:
            raise StoreError(f"{marker} names no known store format (it holds {data!r:.80}); {_MARKER_FIX}")
        return int(found)

    def folder(self, kind: str = LENS) -> Path:
        """The folder of one kind of table (``shards`` for the lens sweep)."""
        return self.root / "shards" if kind == LENS else self.root / "analyses" / slug(kind)

    def shard_path(self, model: str, task: str, variant: str, kind: str = LENS, lens: str = "logit") -> Path:
        """Where the shard of one (model, task, variant) of a kind of table lives (lens tables: per lens)."""
        folder = self.folder(kind)
        if kind == LENS:
            folder = folder / slug(lens)
        return folder / slug(model) / slug(task) / f"{slug(variant)}.parquet"

    def lens_shard_path(
        self, model: str, task: str, variant: str, kind: str, lens: str, weights: str | None
    ) -> Path:
        """The shard of a lens with ``weights`` (:func:`lens_store_name`: ``shards/tuned-<hash8>/...``)."""
        return self.shard_path(model, task, variant, kind, lens_store_name(lens, weights))

    def finished_at(
        self,
        path: Path,
        fingerprint: str,
        replace: bool = False,
    ) -> bool:
        """Whether the shard at ``path`` is written, verifies, and was made from these inputs.

        Args:
            fingerprint: The inputs' fingerprint.
            replace: A shard made from other inputs is not finished (it will be replaced)
                instead of refused.

        Raises:
            DamagedShardError: The shard exists but does not verify (it is to be recomputed).
            StoreError: The shard exists but was made from other inputs (and not ``replace``).
        """
        self._check_format()
        if not path.exists():
            return False
        record = self.verified_record(path)
        if record.get("fingerprint") == fingerprint:
            return True
        if replace:
            return False
        raise StoreError(
            f"{path} holds results made with other items or settings ({_said(record)}); "
            "write this sweep to a new --out folder, or pass --overwrite to replace them."
        )

    def verified_record(self, path: Path) -> dict[str, Any]:
        """The manifest record of a shard that verifies against its checksum.

        Raises:
            DamagedShardError: The shard is truncated, damaged or not ours.
        """
        try:
            _, record, checked = read_verified(path)
        except (Damaged, OSError) as err:
            raise DamagedShardError(f"{path} is damaged ({err})") from None
        if record is None:
            raise DamagedShardError(f"{path} has no probes manifest; it was not written by this toolkit")
        problem = self.problem(path, record, checked)
        if problem:
            raise DamagedShardError(f"{path} is damaged ({problem})")
        return record

    def problem(self, path: Path, record: dict[str, Any] | None, checked: bool) -> str | None:
        """Why a shard that decodes is still not to be trusted (None when it is).

        A shard must carry its checksum (one without was stripped or predates checksums: its
        bytes cannot be vouched for) and lie where its manifest's model, task, variant (and
        lens) put it: a shard copied over another's path would otherwise be read as that one.
        """
        if not checked:
            return "it carries no checksum (stripped, or written before checksums): its bytes are unchecked"
        if record is None:
            return "it has no probes manifest; it was not written by this toolkit"
        try:
            relative = path.relative_to(self.root)
        except ValueError:
            return None
        try:
            model, task, variant = (str(record[key]) for key in ("model", "task", "variant"))
        except KeyError:
            return "its manifest names no model, task and variant"
        if relative.parts[0] == "analyses" and len(relative.parts) > 1:
            expected = {self.shard_path(model, task, variant, relative.parts[1])}
        elif self.format < 2:
            expected = {self.folder() / slug(model) / slug(task) / f"{slug(variant)}.parquet"}
        else:
            lens = str(record.get("lens", "logit"))
            ids = {lens, str(record.get("lens_id") or lens_store_name(lens, record.get("lens_weights")))}
            expected = {self.shard_path(model, task, variant, LENS, name) for name in ids}
        if path in expected:
            return None
        place = min(expected).relative_to(self.root)
        return (
            f"its manifest is of model {model}, task {task}, variant {variant}, whose shard lies at "
            f"{place}: it was copied or moved here"
        )

    @contextlib.contextmanager
    def claim(self, path: Path) -> Iterator[bool]:
        """Claim one shard (by its path) while computing it; yields False when another process has it.

        See :func:`probes.store.claims.claim`; :meth:`write` refuses a shard another process claims.
        """
        with claims.claim(path) as mine:
            yield mine

    def write(
        self, table: pd.DataFrame, record: dict[str, Any], kind: str = LENS, replace: bool = False
    ) -> Path:
        """Write one shard atomically, with a checksum; ``record`` names its model, task, variant (and lens).

        The shard on disk is checked again first: one that another process has claimed, or one
        made from other inputs (a different ``record["fingerprint"]``; allowed with ``replace``),
        is refused, so concurrent runs with different settings cannot overwrite each other.

        Raises:
            StoreError: The shard is claimed by another live process, or holds other inputs.
        """
        self._check_format()
        lens = lens_store_name(str(record.get("lens", "logit")), record.get("lens_weights"))
        record = {**record, "lens_id": lens} if kind == LENS else record
        path = self.shard_path(record["model"], record["task"], record["variant"], kind, lens)
        owner = claims.owner_of(claims.lock_path(path))
        if owner is not None and owner != claims.Owner.me() and not claims.dead_writer(owner):
            raise StoreError(f"{path} is being computed by {owner}; let that run finish, then re-run.")
        if path.exists() and not replace and record.get("fingerprint") is not None:
            with contextlib.suppress(DamagedShardError):  # a damaged shard is replaced
                if self.verified_record(path).get("fingerprint") != record["fingerprint"]:
                    raise StoreError(
                        f"{path} was written meanwhile by another run with other settings; "
                        "write this sweep to a new --out folder, or pass --overwrite to replace it."
                    )
        if path.is_dir() or path.is_symlink():
            raise StoreError(
                f"{path} is a {'folder' if path.is_dir() else 'symbolic link'} where a shard belongs; "
                "move it out of the store (the toolkit removes only files it made), then re-run."
            )
        arrow = pa.Table.from_pandas(table, preserve_index=False)
        metadata = dict(arrow.schema.metadata or {})
        record = {**record, "checksum": "sha256 of the file with this digest zeroed"}
        metadata[METADATA_KEY] = json.dumps(record, sort_keys=True, default=str).encode()
        data = parquet_bytes(arrow, metadata)
        try:
            self._write_store_file()
            return write_atomically(path, lambda handle: handle.write(data))
        except OSError as err:
            raise StoreError(
                f"cannot write {path} ({err.strerror or err}); "
                + ("free some disk space, " if err.errno in (errno.ENOSPC, errno.EDQUOT) else "fix that, ")
                + "then re-run the same command: the shards already written are kept."
            ) from None

    def leftovers(self) -> list[tuple[Path, claims.Owner | None]]:
        """Temporary files and locks of this toolkit's writers in the store, with their owners.

        Only files the toolkit makes are listed: in the folders it writes (``shards/``,
        ``analyses/``, ``report/`` and the store's own folder, not below it), named as it names
        them (:func:`temporary_owner`; locks ``.<shard>.parquet.lock``), and for a lock, holding
        a lock's record (:func:`probes.store.claims.is_our_lock`). A user's ``notes/.editor.lock``
        or ``.x~host~1~*.tmp`` elsewhere under ``--out`` is never listed, so never removed.
        """
        folders = [self.root / name for name in ("shards", "analyses", "report")]
        candidates = list(self.root.glob(".*")) if self.root.is_dir() else []
        for folder in folders:
            if folder.is_dir() and not folder.is_symlink():
                candidates += folder.glob("**/.*")
        found = []
        for path in sorted(set(candidates)):
            if not path.is_file() or path.is_symlink():
                continue
            owner = temporary_owner(path)
            if owner is not None:
                found.append((path, owner))
            elif claims.is_our_lock(path):
                found.append((path, claims.owner_of(path)))
        return found

    def clean_temporary(self) -> list[Path]:
        """Remove temporary files and locks that dead writers on this host left; the paths removed.

        Only what :meth:`leftovers` lists (files this toolkit made) is ever removed.
        """
        removed = []
        for path, owner in self.leftovers():
            dead = claims.stale(path) if path.name.endswith(".lock") else claims.dead_writer(owner)
            if dead:
                path.unlink(missing_ok=True)
                removed.append(path)
        return removed

    def _check_format(self) -> None:
        if self.format != STORE_FORMAT:
            raise StoreError(
                f"{self.root / 'store.json'} says format {self.format}: the store was written by "
                "another version of probes; "
                f"this one reads and writes format {STORE_FORMAT} ({LAYOUT}): compute the results "
                "again into a new --out folder."
            )

    def shard_paths(self, kind: str = LENS) -> list[Path]:
        """Every finished shard of a kind (temporary files of unfinished ones are not listed)."""
        self._check_format()
        pattern = "*/*/*/*.parquet" if kind == LENS else "*/*/*.parquet"
        return sorted(p for p in self.folder(kind).glob(pattern) if not p.name.startswith("."))

    def kinds(self) -> list[str]:
        """The kinds of tables the store holds (``lens`` first when present)."""
        kinds = [LENS] if self.shard_paths() else []
        return kinds + sorted(p.name for p in (self.root / "analyses").glob("*") if self.shard_paths(p.name))

    @staticmethod
    def read_manifest_record(path: Path) -> dict[str, Any]:
        """The manifest record stored in one shard."""
        try:
            metadata = pq.read_schema(path).metadata or {}
        except (OSError, pa.ArrowInvalid) as err:
            raise StoreError(
                f"{path} is not a readable Parquet shard ({err}); delete it and re-run."
            ) from err
        if METADATA_KEY not in metadata:
            raise StoreError(f"{path} has no probes manifest; it was not written by this toolkit.")
        return json.loads(metadata[METADATA_KEY])

    def manifest(self, kind: str = LENS) -> pd.DataFrame:
        """One row per finished shard of a kind: what produced it."""
        return pd.DataFrame([self.read_manifest_record(p) for p in self.shard_paths(kind)])

    def read(self, kind: str = LENS) -> pd.DataFrame:
        """All rows of one kind of table (the lens sweep's per-layer rows by default), in a stable order.

        Raises:
            DamagedShardError: A shard does not verify; the message names it and the command that
                recomputes it.
        """
        paths = self.shard_paths(kind)
        if not paths:
            command = "probes run" if kind == LENS else "probes ablate"
            raise StoreError(f"{self.root} holds no {kind} results; run `{command} --out {self.root}` first.")
        return pd.concat([self.read_shard(p) for p in paths], ignore_index=True)

    def read_shard(self, path: Path) -> pd.DataFrame:
        """The rows of one shard, verified against its checksum and its place (:meth:`problem`)."""
        try:
            table, record, checked = read_verified(path)
        except (Damaged, OSError) as err:
            raise DamagedShardError(f"{path} is damaged ({err}); {self.fix(path)}") from None
        problem = self.problem(path, record, checked)
        if problem:
            raise DamagedShardError(f"{path} is damaged ({problem}); {self.fix(path)}")
        return table.to_pandas()

    def fix(self, path: Path) -> str:
        """How to recompute one shard: the command, from its manifest if that still reads."""
        return fix_hint(self, path)

    def _write_store_file(self) -> None:
        marker = self.root / "store.json"
        if not marker.exists():
            self.root.mkdir(parents=True, exist_ok=True)
            temporary = marker.with_name(f".store.{uuid.uuid4().hex}.tmp")
            temporary.write_text(json.dumps({"format": STORE_FORMAT, "layout": LAYOUT}))
            os.replace(temporary, marker)


def _said(record: dict[str, Any]) -> str:
    """The settings a shard's manifest names, for a refusal message."""
    options = record.get("options") or {}
    said = {
        "n_items": record.get("n_items"),
        "seed": record.get("seed"),
        "dtype": options.get("dtype"),
        "batch_size": record.get("batch_size"),
        "layers": options.get("layers"),
    }
    return "it was made with " + ", ".join(f"{k} {v}" for k, v in said.items() if v is not None)
