"""The tuned lens (Belrose et al. 2023): per-layer affine translators trained to match the final distribution.

* :class:`TunedLens` — a :class:`probes.lenses.base.Lens`; ``probes run --lens tuned`` uses it
  (:data:`LENS`: found in ``--lens-dir`` or among the shipped lenses, :mod:`~probes.lenses.tuned.lookup`).
* :func:`train_lens` with :func:`training_windows` — training on a file, a dataset or the model's samples.
* :func:`save_lens` / :func:`load_lens` — safetensors + ``lens.json``, refused on another model.
* :func:`load_tuned_lens_format` — the ``tuned-lens`` library's ``config.json`` + ``params.pt``.
"""

from probes.lenses.tuned.artifacts import LensFileError, load_lens, read_info, save_lens
from probes.lenses.tuned.lens import LensMismatchError, TunedLens
from probes.lenses.tuned.library_format import load_tuned_lens_format, save_tuned_lens_format
from probes.lenses.tuned.lookup import LENS
from probes.lenses.tuned.text import TokenWindows, training_windows
from probes.lenses.tuned.training import TrainingSettings, held_out_kl, train_lens
from probes.lenses.tuned.translator import Translators

__all__ = [
    "LENS",
    "LensFileError",
    "LensMismatchError",
    "TokenWindows",
    "TrainingSettings",
    "Translators",
    "TunedLens",
    "held_out_kl",
    "load_lens",
    "load_tuned_lens_format",
    "read_info",
    "save_lens",
    "save_tuned_lens_format",
    "train_lens",
    "training_windows",
]
