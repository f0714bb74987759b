"""The progress bar class every module draws with: tqdm's notebook bar where it can work, text elsewhere.

``tqdm.auto`` picks the notebook (widget) bar inside Jupyter, and when ipywidgets is missing it
warns (``TqdmWarning: IProgress not found``) and falls back to the text bar. Choosing here, once,
gives the same bar without the warning: the widget bar where ipywidgets is installed (the
``[notebooks]`` extra has it), the text bar otherwise.
"""

from __future__ import annotations

import importlib.util

if importlib.util.find_spec("ipywidgets") is not None:
    from tqdm.auto import tqdm
else:
    from tqdm.std import tqdm

__all__ = ["tqdm"]
