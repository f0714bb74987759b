"""A checksum inside each Parquet shard that covers every byte of the file, itself excepted.

A shard's manifest lives in its Parquet footer, so the checksum cannot be a separate file
that a rename could separate from its data. The file is serialised once with a placeholder
of 64 zeros under :data:`CHECKSUM_KEY` in its key-value metadata; the SHA-256 of those bytes
is then written over the placeholder (same length, so the footer stays valid). To verify,
the digest is read back, zeroed again and the file hashed: a flipped bit anywhere (data
pages, schema, statistics, manifest) or a truncation gives another digest.
"""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

#: Key of the checksum in the Parquet key-value metadata.
CHECKSUM_KEY = b"probes_sha256"
_PLACEHOLDER = b"0" * 64
_MAGIC = b"PAR1"


class Damaged(Exception):
    """A shard whose bytes do not match its checksum, or that is not a whole Parquet file."""


def parquet_bytes(table: pa.Table, metadata: dict[bytes, bytes]) -> bytes:
    """``table`` as Parquet bytes with ``metadata`` and a checksum of the whole file."""
    metadata = {**metadata, CHECKSUM_KEY: _PLACEHOLDER}
    buffer = io.BytesIO()
    pq.write_table(table.replace_schema_metadata(metadata), buffer)
    data = bytearray(buffer.getvalue())
    at = _checksum_offset(bytes(data))
    if at is None or at < 0:  # pragma: no cover - pyarrow always writes the key-value metadata
        raise RuntimeError("pyarrow did not write the checksum placeholder")
    data[at : at + 64] = hashlib.sha256(bytes(data)).hexdigest().encode()
    return bytes(data)


def verify_bytes(data: bytes) -> bool:
    """Whether ``data`` (a whole shard) matches its checksum; False when it has none.

    Raises:
        Damaged: The file is truncated, not Parquet, or its bytes do not match the checksum.
    """
    if len(data) < 12 or data[:4] != _MAGIC or data[-4:] != _MAGIC:
        raise Damaged(f"not a whole Parquet file ({len(data)} bytes; truncated?)")
    footer = int.from_bytes(data[-8:-4], "little")
    if footer + 12 > len(data):
        raise Damaged(f"its footer claims {footer} bytes of a {len(data)}-byte file (truncated?)")
    at = _checksum_offset(data)
    if at is None:
        return False
    if at < 0:
        raise Damaged("its checksum field is damaged")
    stored = data[at : at + 64]
    zeroed = data[:at] + _PLACEHOLDER + data[at + 64 :]
    if hashlib.sha256(zeroed).hexdigest().encode() != stored:
        raise Damaged("its bytes do not match the checksum written with it (a flipped or torn byte)")
    return True


def read_verified(path: Path) -> tuple[pa.Table, dict[str, Any] | None, bool]:
    """A shard's table, its manifest record (None when it has none) and whether it had a checksum.

    Raises:
        Damaged: The file does not verify or does not decode.
        OSError: The file cannot be read.
    """
    data = path.read_bytes()
    checked = verify_bytes(data)
    try:
        table = pq.read_table(pa.BufferReader(data))
    except (OSError, pa.ArrowException) as err:
        raise Damaged(f"it does not decode ({err})") from None
    metadata = table.schema.metadata or {}
    try:
        record = json.loads(metadata[b"probes"]) if b"probes" in metadata else None
    except ValueError:
        raise Damaged("its manifest record is not valid JSON") from None
    if not checked and record is not None and record.get("checksum"):
        raise Damaged("its manifest says it carries a checksum, but the checksum is missing")
    return table, record, checked


def _checksum_offset(data: bytes) -> int | None:
    """Offset of the checksum's 64 hex digits in the footer (None: none; -1: a damaged field)."""
    footer = int.from_bytes(data[-8:-4], "little")
    start = max(0, len(data) - 8 - footer)
    key = data.rfind(CHECKSUM_KEY, start)
    if key < 0:
        return None
    at = key + len(CHECKSUM_KEY) + 2  # Thrift compact: the value's field header, then its length (64)
    if data[at - 1] != 64 or at + 64 > len(data) - 8:
        return -1
    return at
