"""Which lens reads a model: ``--lens logit|tuned``, and for ``tuned`` where its weights come from.

A tuned lens for a model is looked up, in order, in ``--lens-dir`` (the ``--out`` of
`probes lens train`: one subfolder per model, in probes's format or the ``tuned-lens``
library's) and among the lenses shipped with a built-in ladder's rungs. The identity of a
lens (its name and the sha256 of its weights) is known before the model is loaded, so
finished shards are skipped without loading anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from probes.errors import ProbesError
from probes.lenses.reading import Lens, LogitLens
from probes.lenses.tuned.artifacts import INFO_FILE, load_lens, read_info
from probes.lenses.tuned.lens import weights_sha256
from probes.lenses.tuned.library_format import CONFIG_FILE, PARAMS_FILE, load_params, load_tuned_lens_format
from probes.model.loading import HookedModel
from probes.store.store import slug

#: Lens names ``--lens`` accepts.
LENS_NAMES = ("logit", "tuned")


class UnknownLensError(ProbesError):
    """A lens name that is not known, or a tuned lens that cannot be found for a model."""


@dataclass(frozen=True)
class LensChoice:
    """A lens for one model, before the model is loaded: its name, weights hash and folder."""

    name: str
    weights_hash: str | None = None
    folder: Path | None = None
    #: A lens object given by a Python caller (used as it is).
    lens: Lens | None = None

    def build(self, model: HookedModel) -> Lens:
        """The lens itself, checked against the loaded model."""
        if self.lens is not None:
            check = getattr(self.lens, "check", None)
            if callable(check):
                check(model)
            return self.lens
        if self.name == "logit":
            return LogitLens()
        assert self.folder is not None
        if (self.folder / INFO_FILE).is_file():
            return load_lens(self.folder, model)
        return load_tuned_lens_format(self.folder, model)


def shipped_lens_folder(model_label: str) -> Path | None:
    """The folder of the tuned lens shipped with a built-in rung, verified; ``None`` if none is."""
    from probes.lenses.tuned.shipped import shipped_lens

    return shipped_lens(model_label)


def choose_lens(name: str, model_label: str, lens_dir: Path | None = None) -> LensChoice:
    """The lens ``name`` for the model labelled ``model_label`` (see the module's lookup order).

    Raises:
        UnknownLensError: ``name`` is unknown, or no tuned lens exists for the model.
    """
    if name not in LENS_NAMES:
        raise UnknownLensError(f"unknown lens {name!r}; use one of {list(LENS_NAMES)}.")
    if name == "logit":
        return LensChoice("logit")
    candidates = []
    if lens_dir is not None:
        candidates.append(Path(lens_dir) / slug(model_label))
    for folder in candidates:
        if (folder / INFO_FILE).is_file():
            return LensChoice("tuned", read_info(folder)["weights_sha256"], folder)
        if (folder / CONFIG_FILE).is_file() and (folder / PARAMS_FILE).is_file():
            state = load_params(folder / PARAMS_FILE)  # a pickled file is refused with our own error
            return LensChoice("tuned", weights_sha256(state), folder)
    shipped = shipped_lens_folder(model_label)
    if shipped is not None:
        return LensChoice("tuned", read_info(shipped)["weights_sha256"], shipped)
    where = f"in {Path(lens_dir) / slug(model_label)}" if lens_dir is not None else "(no --lens-dir given)"
    raise UnknownLensError(
        f"no tuned lens for {model_label} {where}, and none ships with it; train one with "
        f"`probes lens train --models {model_label} --out LENSES` and pass --lens-dir LENSES."
    )


def lens_fields(lens: Lens) -> dict[str, Any]:
    """What a shard's manifest says of a trained lens: where it came from and its held-out KL."""
    info = getattr(lens, "info", None)
    if not isinstance(info, dict):
        return {}
    fields = {"lens_path": info.get("path"), "lens_text": info.get("text"), "lens_steps": info.get("steps")}
    if info.get("held_out_kl"):
        fields["lens_held_out_kl"] = info["held_out_kl"]
    return fields
