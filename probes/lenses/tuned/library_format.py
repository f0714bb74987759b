"""The ``tuned-lens`` library's published lens format: ``config.json`` + ``params.pt``.

Lenses published for Pythia, GPT-2, Llama and others (the ``AlignmentResearch/tuned-lens``
space on the Hugging Face hub) come in this format. ``params.pt`` is a pickled
``state_dict`` of the lens's ``layer_translators``; it is read with
``torch.load(weights_only=True)``, which accepts only tensors and plain containers and
never runs code from the file. The config's ``unembed_hash`` (a hash of the model's
unembedding matrix, as the library computes it) must match the model's, and so must its
layers and width: a lens for another model is refused, not merely warned about.
"""

from __future__ import annotations

import hashlib
import json
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import torch

from probes.cli.display import plural
from probes.lenses.tuned.access import model_fingerprint
from probes.lenses.tuned.artifacts import LensFileError
from probes.lenses.tuned.lens import LensMismatchError, TunedLens
from probes.lenses.tuned.translator import Translators
from probes.model.loading import HookedModel

CONFIG_FILE = "config.json"
PARAMS_FILE = "params.pt"
#: The only lens type of the format this loader reads.
LENS_TYPE = "linear_tuned_lens"


def unembed_hash(model: HookedModel) -> str:
    """The ``tuned-lens`` library's hash of the model's unembedding matrix (``[vocab, d_model]``).

    Its ``tensor_hash``: sha256 of numpy's summary string of the matrix at one decimal,
    with numpy's default print options.
    """
    weight = model.unembedding_weights.detach().T.to("cpu", torch.float32).contiguous().numpy()
    with np.printoptions(precision=1, threshold=1000, edgeitems=3, linewidth=75, suppress=False):
        text = np.array_str(weight, precision=1)
    return hashlib.sha256(text.encode()).hexdigest()


def load_params(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of a ``params.pt``, read with ``torch.load(weights_only=True)``.

    A file that holds anything but tensors in plain containers (a pickled object, whose loading
    could run code) is refused with our own message: probes never loads such a file, and the
    message suggests no way around that.

    Raises:
        LensFileError: The file is not a plain mapping of names to tensors, or is damaged.
    """
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, OSError, AttributeError):
        raise LensFileError(
            f"{path} is not a plain file of tensors (it is damaged, or holds pickled objects, whose "
            "loading could run code, which probes never does); use the lens published for the model, "
            "or train one: `probes lens train`."
        ) from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise LensFileError(f"{path} holds {type(state).__name__}, not a mapping of names to tensors.")
    return state


def load_tuned_lens_format(folder: str | Path, model: HookedModel) -> TunedLens:
    """A lens in the ``tuned-lens`` library's format, checked against ``model`` and bound to it.

    Raises:
        LensFileError: Files missing or unreadable, another lens type, or parameters that are
            not the layer translators the config describes.
        LensMismatchError: The lens's layers, width or unembedding hash differ from ``model``'s.
    """
    folder = Path(folder)
    config_path, params_path = folder / CONFIG_FILE, folder / PARAMS_FILE
    for path in (config_path, params_path):
        if not path.is_file():
            raise LensFileError(
                f"{path} is missing; a tuned-lens library lens folder holds {CONFIG_FILE} and {PARAMS_FILE}."
            )
    config = json.loads(config_path.read_text("utf-8"))
    lens_type = config.get("lens_type", LENS_TYPE)
    if lens_type != LENS_TYPE:
        raise LensFileError(
            f"{config_path}: lens_type {lens_type!r} is not supported; only {LENS_TYPE!r} is."
        )
    n_layers, d_model = int(config["num_hidden_layers"]), int(config["d_model"])
    base = config.get("base_model_name_or_path", "?")
    if (n_layers, d_model) != (model.n_layers, model.d_model):
        raise LensMismatchError(
            f"{folder} is a tuned lens for {base} ({plural(n_layers, 'layer')}, d_model {d_model}), not for "
            f"{model.name} ({plural(model.n_layers, 'layer')}, d_model {model.d_model}); "
            "use the lens published for it."
        )
    expected = config.get("unembed_hash")
    if expected and expected != unembed_hash(model):
        raise LensMismatchError(
            f"{folder} is a tuned lens for {base}, trained with another unembedding than {model.name}'s "
            "(unembed_hash differs); use the lens published for it, or train one: `probes lens train`."
        )
    state = load_params(params_path)
    translators = Translators(n_layers, d_model, bias=bool(config.get("bias", True)))
    try:
        translators.load_state({k: v.float() for k, v in state.items()})
    except (RuntimeError, AttributeError) as err:
        raise LensFileError(
            f"{params_path} does not hold the {n_layers} layer translators of {CONFIG_FILE}: {err}"
        ) from err
    info: dict[str, Any] = {
        "model": model.name,
        "model_fingerprint": model_fingerprint(model),
        "source": "tuned-lens",
        "base_model_name_or_path": base,
        "base_model_revision": config.get("base_model_revision"),
        "unembed_hash": expected,
        "path": str(folder),
    }
    return TunedLens(translators=translators, info=info)


def save_tuned_lens_format(lens: TunedLens, folder: str | Path, model: HookedModel) -> Path:
    """Write ``lens`` in the ``tuned-lens`` library's format (for that library, or to test the loader)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    config = {
        "base_model_name_or_path": model.spec.name,
        "d_model": lens.translators.d_model,
        "num_hidden_layers": lens.translators.n_layers,
        "bias": lens.translators.layer_translators[0].bias is not None,
        "base_model_revision": model.spec.revision,
        "unembed_hash": unembed_hash(model),
        "lens_type": LENS_TYPE,
    }
    torch.save(lens.translators.state(), folder / PARAMS_FILE)
    (folder / CONFIG_FILE).write_text(json.dumps(config))
    return folder
