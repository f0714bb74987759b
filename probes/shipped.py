"""Ladders trained by this package and shipped inside it: catalogue files and verified weight folders.

A shipped ladder (``organism``, ``depth``) is a ``catalogue.json`` that lists its rungs, each with
the sha256 of every file of its Hugging Face folder under ``weights/``. A folder is handed out only
after its files match the catalogue, so a changed or truncated file never loads silently.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from probes.errors import ProbesError, UnknownModelError

if TYPE_CHECKING:
    from probes.ladders import Rung


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks (the catalogue's file hashes)."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_catalogue_file(path: Path, error: type[ProbesError], remedy: str) -> dict[str, Any]:
    """The parsed catalogue at ``path``.

    Raises:
        error: the file is missing (the message ends with ``remedy``).
    """
    if not path.is_file():
        raise error(f"{path} is missing; {remedy}.")
    return json.loads(path.read_text("utf-8"))


def catalogue_name(name: str, known: list[str], model_prefix: str, name_prefix: str) -> str:
    """The catalogue name of a rung given by catalogue name, short name or model spec.

    ``"organism:4x96"``, ``"4x96"`` and ``"organism-4x96"`` all give ``"organism-4x96"``.

    Raises:
        UnknownModelError: the name is not among ``known``.
    """
    name = name.removeprefix(model_prefix)
    if not name.startswith(name_prefix):
        name = name_prefix + name
    if name not in known:
        ladder = name_prefix.rstrip("-")
        raise UnknownModelError(
            f"{ladder} rung {name!r} is unknown; choose among {known} (`probes ladders` lists them)."
        )
    return name


def verified_folder(folder: Path, files: dict[str, str], error: type[ProbesError], remedy: str) -> Path:
    """``folder``, after checking each of ``files`` (name -> expected sha256) in it.

    Raises:
        error: a file is missing or its sha256 differs (the message ends with ``remedy``).
    """
    for file_name, expected in files.items():
        path = folder / file_name
        if not path.is_file():
            raise error(f"{path} is missing; {remedy}.")
        actual = sha256_file(path)
        if actual != expected:
            raise error(
                f"{path} has sha256 {actual[:12]}..., the catalogue expects {expected[:12]}...; "
                f"the file was changed or corrupted: {remedy}."
            )
    return folder


def shipped_rung(
    entry: dict[str, Any], model: str, display_name: str, vocabulary: int, context: int, source: str
) -> Rung:
    """The :class:`probes.ladders.Rung` of a catalogue entry of a shipped ladder.

    Args:
        entry: The rung's catalogue entry (sizes, tokens, FLOPs, ``training_config``, ...).
        model: Its model spec (``"organism:4x96"``, ``"depth:3x64"``).
        display_name: Its name in tables and figures.
        vocabulary: The ladder's vocabulary size.
        context: The longest sequence the rung accepts.
        source: Where the figures come from (the training script and catalogue).
    """
    from probes.ladders import Rung  # probes.ladders builds the shipped ladders lazily: no import cycle

    architecture = entry["training_config"]["rung"]
    return Rung(
        name=entry["name"],
        model=model,
        display_name=display_name,
        parameters=entry["parameters"],
        non_embedding_parameters=entry["non_embedding_parameters"],
        layers=entry["layers"],
        d_model=entry["d_model"],
        heads=entry["heads"],
        vocab_size=vocabulary,
        context_length=context,
        training_tokens=entry["tokens_seen"],
        training_flops=entry["training_flops_non_embedding"],
        training_flops_total_parameters=entry["training_flops"],
        architecture={"model_type": "gpt_neox", **architecture},
        sources={
            field: source
            for field in ("parameters", "training_tokens", "training_flops", "held_out_perplexity")
        },
        notes=f"step {entry['step']} of training seed {entry['seed']}",
        held_out_perplexity=entry["held_out_perplexity"],
        training_step=entry["step"],
    )
