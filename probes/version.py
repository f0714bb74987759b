"""The toolkit's version and the versions of the packages that shape its numbers."""

from __future__ import annotations

from importlib import metadata

try:
    __version__ = metadata.version("probes")
except metadata.PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+source"

#: Packages whose versions every manifest records.
RECORDED_PACKAGES = ("torch", "transformers", "transformer-lens", "numpy", "pandas", "pyarrow")


def package_versions() -> dict[str, str]:
    """Installed versions of :data:`RECORDED_PACKAGES` ("missing" where absent)."""
    versions = {}
    for name in RECORDED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "missing"
    return versions
