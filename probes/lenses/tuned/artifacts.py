"""A trained tuned lens on disk: ``lens.safetensors`` plus ``lens.json`` (what it is for, how it was made).

``lens.json`` holds the format version, the model's label and weights fingerprint,
its layers and width, the training text (name and sha256), steps and seed, the
held-out KL per layer of both lenses, the sha256 of the weights and the toolkit
version. Loading checks the weights against that sha256, and — given the model —
refuses a model with another fingerprint.
"""

from __future__ import annotations

import json
import math
import os
import uuid
from pathlib import Path
from typing import Any

from safetensors.torch import load_file, save_file

from probes.errors import ProbesError
from probes.lenses.tuned.lens import TunedLens, weights_sha256
from probes.lenses.tuned.translator import Translators
from probes.model.loading import HookedModel
from probes.version import __version__

#: File names of a lens folder.
WEIGHTS_FILE = "lens.safetensors"
INFO_FILE = "lens.json"
#: Version of the lens folder's layout.
LENS_FORMAT = 1


class LensFileError(ProbesError):
    """A tuned-lens folder that is missing, incomplete, corrupted or of an unknown format."""


def save_lens(lens: TunedLens, folder: str | Path) -> Path:
    """Write ``lens`` to ``folder`` (created) as safetensors + JSON; returns the folder."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = lens.translators.state()
    info = {k: v for k, v in lens.info.items() if k != "path"}
    info.update(
        format=LENS_FORMAT,
        lens="tuned",
        n_layers=lens.translators.n_layers,
        d_model=lens.translators.d_model,
        bias=lens.translators.layer_translators[0].bias is not None if lens.translators.n_layers else True,
        weights_sha256=weights_sha256(state),
        toolkit_version=info.get("toolkit_version", __version__),
    )
    _atomic(folder / WEIGHTS_FILE, lambda path: save_file(state, str(path), metadata={"format": "pt"}))
    _atomic(
        folder / INFO_FILE, lambda path: path.write_text(json.dumps(info, indent=1, sort_keys=True) + "\n")
    )
    lens.info.update(info)
    return folder


def _atomic(path: Path, write: Any) -> None:
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        write(temporary)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def read_info(folder: str | Path) -> dict[str, Any]:
    """The ``lens.json`` of a lens folder.

    Raises:
        LensFileError: The folder has no ``lens.json`` or an unknown format.
    """
    path = Path(folder) / INFO_FILE
    if not path.is_file():
        raise LensFileError(
            f"{folder} has no {INFO_FILE}; it is not a tuned lens saved by probes "
            "(train one with `probes lens train`, or load a tuned-lens library folder with "
            "probes.lenses.tuned.load_tuned_lens_format)."
        )
    info = json.loads(path.read_text("utf-8"))
    if info.get("format") != LENS_FORMAT or info.get("lens") != "tuned":
        raise LensFileError(
            f"{path} is of format {info.get('format')!r}; this probes reads format {LENS_FORMAT}."
        )
    return info


def load_lens(folder: str | Path, model: HookedModel | None = None) -> TunedLens:
    """The tuned lens saved in ``folder``; checked against ``model`` when one is given.

    Raises:
        LensFileError: Files missing, or weights that differ from the sha256 in ``lens.json``.
        LensMismatchError: ``model`` is not the model the lens was trained for.
    """
    folder = Path(folder)
    info = read_info(folder)
    weights = folder / WEIGHTS_FILE
    if not weights.is_file():
        raise LensFileError(f"{weights} is missing; the lens folder is incomplete: train or copy it again.")
    n_layers, d_model, bias = _shape(info, folder)
    state = load_file(str(weights))
    if weights_sha256(state) != info["weights_sha256"]:
        raise LensFileError(
            f"{weights} does not match the weights_sha256 in {INFO_FILE}: the file was changed or "
            "corrupted; train or copy the lens again."
        )
    translators = Translators(n_layers, d_model, bias=bias)
    translators.load_state(state)
    lens = TunedLens(translators=translators, info={**info, "path": str(folder)})
    if model is not None:
        lens.check(model)
    return lens


def _shape(info: dict[str, Any], folder: Path) -> tuple[int, int, bool]:
    """The lens's ``(n_layers, d_model, bias)`` from ``lens.json``, checked before anything is allocated.

    The translators take ``n_layers * d_model * (d_model + bias)`` floats: the sizes must be whole
    numbers, agree with the weights file's own tensor shapes (read from its header, not its data)
    and fit the free memory; :meth:`TunedLens.check` then compares them with the model's.

    Raises:
        LensFileError: The sizes are not whole numbers or disagree with the weights file.
        MemoryCheckError: The lens does not fit the free memory (a ``lens.json`` can ask for any size).
    """
    from safetensors import SafetensorError, safe_open

    from probes.model.memory import check_fits

    path = folder / INFO_FILE
    n_layers, d_model, bias = info.get("n_layers"), info.get("d_model"), info.get("bias", True)
    for name, value in (("n_layers", n_layers), ("d_model", d_model)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise LensFileError(
                f"{path}: {name} {value!r} is not a positive whole number; train the lens again."
            )
    bias = bool(bias)
    weights = folder / WEIGHTS_FILE
    try:
        with safe_open(str(weights), "pt") as handle:
            stored = sum(math.prod(handle.get_slice(key).get_shape()) for key in handle.keys())  # noqa: SIM118 - a safe_open handle
    except (SafetensorError, OSError) as err:
        raise LensFileError(
            f"{weights} is damaged or truncated ({err}); train or copy the lens again."
        ) from None
    needed = n_layers * d_model * (d_model + int(bias))
    if stored != needed:
        raise LensFileError(
            f"{path} describes {n_layers} translators of width {d_model} ({needed} numbers), but {weights} "
            f"holds {stored}; the two files do not belong together: train or copy the lens again."
        )
    check_fits(2 * 4 * needed, "cpu", "the tuned lens", path, override=False)  # file tensors, translators
    return n_layers, d_model, bias
