"""The result store: Parquet shards with their manifests, checksums, claims and verification.

:mod:`~probes.store.store` (the :class:`Store`, atomic writes), :mod:`~probes.store.checksums`
(a SHA-256 inside each shard), :mod:`~probes.store.claims` (lock files per shard) and
:mod:`~probes.store.verify` (``probes verify``).
"""
