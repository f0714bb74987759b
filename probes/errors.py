"""The toolkit's errors: every one says what went wrong and what to do about it."""

from __future__ import annotations


class ProbesError(Exception):
    """Base class of every error the toolkit raises on purpose."""


class UnknownModelError(ProbesError):
    """A model spec that names no hub model, local folder, GGUF file or built-in rung."""


class UnknownLadderError(ProbesError):
    """A ladder name that is not in the catalogue."""


class UnknownTaskError(ProbesError):
    """A task or variant name that no loader or generator provides."""


class ItemFileError(ProbesError):
    """An item file that is missing, unreadable or not in the expected schema."""


class InvalidItemError(ProbesError):
    """An item that cannot be scored (empty prompt, identical answers, too long ...)."""


class LayerError(ProbesError):
    """Layers asked for that the model does not have."""


class UnsafeWeightsError(ProbesError):
    """Weights in a pickle-based format, which the toolkit refuses to load."""


class CustomCodeError(ProbesError):
    """A model folder whose config asks for its own Python code (``auto_map``), which is never run."""


class OutOfMemoryError(ProbesError):
    """The device ran out of memory; a smaller batch size usually helps."""


class StoreError(ProbesError):
    """A result store whose contents do not match the requested sweep."""


class LadderError(ProbesError, ValueError):
    """A ladder or ladder catalogue that is malformed (duplicate rungs, bad steps, unknown keys ...).

    Also a ``ValueError``, which is what this was before it had a class of its own.
    """


class BuiltinWeightsError(ProbesError):
    """A built-in ladder's catalogue or weight folder that is missing or differs from its sha256."""


class DamagedShardError(StoreError):
    """A shard of a result store that is truncated or does not match its checksum."""


class InvalidOptionError(ProbesError):
    """A command-line or API option that cannot work (a batch size below 1, a missing device ...)."""


class DamagedWeightsError(ProbesError):
    """A weights file that is truncated or corrupt."""


class UnsupportedModelError(ProbesError):
    """A model whose readout path the lens cannot reproduce exactly."""
