"""The result store: one Parquet shard per (lens, model, task, variant), each carrying its manifest.

Lens sweeps write ``shards/<lens>/<model>/<task>/<variant>.parquet``, so the readouts of
several lenses of the same models and items live side by side; other analyses of the same
models and items (attribution, ablation, patching) write tables of their own kind under
``analyses/<kind>/<model>/<task>/<variant>.parquet``, with the same manifest rules.

A shard is written to a temporary file in its final folder and renamed into
place (:func:`write_atomically`), so it either exists whole or not at all: a killed sweep
loses at most the shard in progress, and any number of processes (a SLURM array, Ray tasks)
can write disjoint shards of one store at once. Each shard's manifest record
(model, revision, parameters, layers, lens, variant, dtype, device, seed,
versions, and a fingerprint of its inputs) lives in the Parquet file's own
metadata, so no shared index file can be torn or raced.

``store.json`` names the layout's format. Stores of format 1 (``shards/<model>/<task>/
<variant>.parquet``, before the lens was a dimension) are still read; writing to one is
refused until :func:`upgrade_store` (``probes upgrade STORE``) moves its shards into place.
"""

from __future__ import annotations

import json
import os
import re
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from probes.errors import StoreError

#: Key of the manifest record in each shard's Parquet metadata.
METADATA_KEY = b"probes"
#: Layout version of the store (1: ``shards/<model>/...``; 2: ``shards/<lens>/<model>/...``).
STORE_FORMAT = 2
#: The layout of each format's lens shards, as ``store.json`` names it.
LAYOUTS = {
    1: "shards/<model>/<task>/<variant>.parquet",
    2: "shards/<lens>/<model>/<task>/<variant>.parquet",
}
#: The kind of the lens sweep's per-layer tables (stored under ``shards/``).
LENS = "lens"


def write_atomically(path: Path, write: Callable[[IO[bytes]], None]) -> Path:
    """Write a file through a temporary sibling renamed into place: it exists whole or not at all.

    ``write`` gets an open binary handle; the data is flushed to disk before the rename, so a
    killed process leaves at most a hidden temporary file, never a torn one.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.stem}.{os.getpid()}.{uuid.uuid4().hex}.tmp")
    try:
        with temporary.open("wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    return path


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
        return int(json.loads(marker.read_text()).get("format", 1))

    def folder(self, kind: str = LENS) -> Path:
        """The folder of one kind of table (``shards`` for the lens sweep)."""
        return self.root / "shards" if kind == LENS else self.root / "analyses" / slug(kind)

    def shard_path(self, model: str, task: str, variant: str, kind: str = LENS, lens: str = "logit") -> Path:
        """Where the shard of one (model, task, variant) of a kind of table lives (lens tables: per lens)."""
        folder = self.folder(kind)
        if kind == LENS:
            folder = folder / slug(lens)
        return folder / slug(model) / slug(task) / f"{slug(variant)}.parquet"

    def finished(
        self, model: str, task: str, variant: str, fingerprint: str, kind: str = LENS, lens: str = "logit"
    ) -> bool:
        """Whether that shard is already written for these inputs.

        Raises:
            StoreError: The shard exists but was made from other inputs, or the store has an
                older layout.
        """
        self._check_writable()
        path = self.shard_path(model, task, variant, kind, lens)
        if not path.exists():
            return False
        record = self.read_manifest_record(path)
        if record.get("fingerprint") != fingerprint:
            raise StoreError(
                f"{path} holds results of {model} / {task} / {variant} made with other items or "
                f"settings (lens, layers, dtype, item count); write this sweep to a new --out "
                "folder, or pass --overwrite to replace them."
            )
        return True

    def write(self, table: pd.DataFrame, record: dict[str, Any], kind: str = LENS) -> Path:
        """Write one shard atomically; ``record`` must name its model, task and variant (and lens)."""
        self._check_writable()
        lens = str(record.get("lens", "logit"))
        path = self.shard_path(record["model"], record["task"], record["variant"], kind, lens)
        self._write_store_file()
        arrow = pa.Table.from_pandas(table, preserve_index=False)
        metadata = dict(arrow.schema.metadata or {})
        metadata[METADATA_KEY] = json.dumps(record, sort_keys=True, default=str).encode()
        arrow = arrow.replace_schema_metadata(metadata)
        return write_atomically(path, lambda handle: pq.write_table(arrow, handle))

    def _check_writable(self) -> None:
        if self.format != STORE_FORMAT:
            raise StoreError(
                f"{self.root} is a format-{self.format} store ({LAYOUTS.get(self.format, '?')}); this "
                f"toolkit writes format {STORE_FORMAT} ({LAYOUTS[STORE_FORMAT]}). Upgrade it with "
                f"`probes upgrade {self.root}`, or write to a new --out folder."
            )

    def shard_paths(self, kind: str = LENS) -> list[Path]:
        """Every finished shard of a kind (temporary files of unfinished ones are not listed)."""
        pattern = "*/*/*/*.parquet" if kind == LENS and self.format >= 2 else "*/*/*.parquet"
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
        """All rows of one kind of table (the lens sweep's per-layer rows by default), in a stable order."""
        paths = self.shard_paths(kind)
        if not paths:
            command = "probes run" if kind == LENS else "probes ablate"
            raise StoreError(f"{self.root} holds no {kind} results; run `{command} --out {self.root}` first.")
        tables = [pq.read_table(p).to_pandas() for p in paths]
        table = pd.concat(tables, ignore_index=True)
        return table

    def _write_store_file(self) -> None:
        marker = self.root / "store.json"
        if not marker.exists():
            self.root.mkdir(parents=True, exist_ok=True)
            temporary = marker.with_name(f".store.{uuid.uuid4().hex}.tmp")
            temporary.write_text(json.dumps({"format": STORE_FORMAT, "layout": LAYOUTS[STORE_FORMAT]}))
            os.replace(temporary, marker)


def upgrade_store(root: str | Path) -> int:
    """Move a format-1 store's lens shards to ``shards/<lens>/...`` (format 2); how many moved.

    Each shard's lens comes from its own manifest record; analyses keep their layout.
    """
    store = Store(root)
    if store.format >= STORE_FORMAT:
        return 0
    moved = 0
    for path in store.shard_paths():
        record = store.read_manifest_record(path)
        target = store.folder() / slug(str(record.get("lens", "logit"))) / path.relative_to(store.folder())
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(path, target)
        moved += 1
    marker = store.root / "store.json"
    temporary = marker.with_name(f".store.{uuid.uuid4().hex}.tmp")
    temporary.write_text(json.dumps({"format": STORE_FORMAT, "layout": LAYOUTS[STORE_FORMAT]}))
    os.replace(temporary, marker)
    return moved
