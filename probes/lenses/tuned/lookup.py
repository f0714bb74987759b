"""Where a model's tuned lens comes from (``--lens tuned``), and the lens kind that finds and builds it.

A tuned lens for a model is looked up, in order, in ``--lens-dir`` (the ``--out`` of
`probes lens train`: one subfolder per model, in probes's format or the ``tuned-lens``
library's) and among the lenses shipped with a built-in ladder's rungs. The identity of a
lens (its name and the sha256 of its weights) is known before the model is loaded, so
finished shards are skipped without loading anything.
"""

from __future__ import annotations

from pathlib import Path

from probes.lenses.base import Lens, LensChoice, LensKind, UnknownLensError
from probes.lenses.tuned.artifacts import INFO_FILE, load_lens, read_info
from probes.lenses.tuned.lens import weights_sha256
from probes.lenses.tuned.library_format import CONFIG_FILE, PARAMS_FILE, load_params, load_tuned_lens_format
from probes.lenses.tuned.shipped import shipped_lens
from probes.model.hooked import HookedModel
from probes.store.store import slug


def choose_tuned_lens(model_label: str, lens_dir: Path | None = None) -> LensChoice:
    """The tuned lens of the model labelled ``model_label`` (see the module's lookup order).

    Raises:
        UnknownLensError: No tuned lens exists for the model.
    """
    if lens_dir is not None:
        folder = Path(lens_dir) / slug(model_label)
        if (folder / INFO_FILE).is_file():
            return LensChoice("tuned", read_info(folder)["weights_sha256"], folder)
        if (folder / CONFIG_FILE).is_file() and (folder / PARAMS_FILE).is_file():
            state = load_params(folder / PARAMS_FILE)  # a pickled file is refused with our own error
            return LensChoice("tuned", weights_sha256(state), folder)
    shipped = shipped_lens(model_label)
    if shipped is not None:
        return LensChoice("tuned", read_info(shipped)["weights_sha256"], shipped)
    where = f"in {Path(lens_dir) / slug(model_label)}" if lens_dir is not None else "(no --lens-dir given)"
    raise UnknownLensError(
        f"no tuned lens for {model_label} {where}, and none ships with it; train one with "
        f"`probes lens train --models {model_label} --out LENSES` and pass --lens-dir LENSES."
    )


def build_tuned_lens(choice: LensChoice, model: HookedModel) -> Lens:
    """The tuned lens in ``choice.folder``, in either format, checked against ``model``."""
    assert choice.folder is not None
    if (choice.folder / INFO_FILE).is_file():
        return load_lens(choice.folder, model)
    return load_tuned_lens_format(choice.folder, model)


LENS = LensKind(
    name="tuned",
    summary="per-layer affine translators trained to match the final layer (Belrose et al. 2023)",
    choose=choose_tuned_lens,
    build=build_tuned_lens,
)
