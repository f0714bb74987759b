"""The rows ``probes.run`` stores, read from a model already loaded, without a store.

``probes.run`` loads each model of a ladder, reads its items and writes one shard per unit; that
suits ladders. A notebook that studies one large model several ways (lens, attribution,
patching) loads it once with :func:`probes.load_model` and reads it here, so the model is not
loaded again for each analysis::

    model = probes.load_model("path/to/model.gguf")
    rows = probes.read_layers(model, probes.tasks.load_items(["negation_qa"], ["prize"], 16))

The rows carry the same columns and provenance (model, revision, lens, toolkit version) as a
store's, so the report's tables and figures take them as they are.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from probes.analysis.metrics import layer_table
from probes.analysis.reasoning import step_readout_table
from probes.jobs.manifest import provenance
from probes.lenses.base import Lens
from probes.lenses.logit import LogitLens
from probes.lenses.reading import OptionReadout, read_options
from probes.model.loading import HookedModel
from probes.tasks import Item

__all__ = ["read_layers", "readout_rows", "step_rows"]


def read_layers(
    model: HookedModel,
    items: Sequence[Item],
    lens: Lens | None = None,
    layers: Sequence[int] | None = None,
    batch_size: int = 8,
) -> pd.DataFrame:
    """One row per (item, layer): the scores ``probes.run`` stores, from an already-loaded model.

    Args:
        model: The loaded model (:func:`probes.load_model`).
        items: Items of any tasks and variants.
        lens: The lens that reads the residual stream; the logit lens by default.
        layers: Layers to read (0 = embeddings, -1 = last); all by default.
        batch_size: Sequences per forward pass.
    """
    lens = lens or LogitLens()
    return readout_rows(model, read_options(model, items, lens, layers, batch_size), lens)


def readout_rows(model: HookedModel, readout: OptionReadout, lens: Lens | None = None) -> pd.DataFrame:
    """The per-(item, layer) rows of a readout already taken (:func:`probes.read_options`) through ``lens``.

    ``model`` only names the rows and gives the layer count; ``lens`` (the logit lens by default)
    only names them, so pass the lens the readout was taken through.
    """
    return layer_table(readout, provenance(model, (lens or LogitLens()).name), model.n_layers)


def step_rows(model: HookedModel, readout: OptionReadout, lens: Lens | None = None) -> pd.DataFrame:
    """Per (k-step item, step j, layer): the readout of the value after step j
    (:func:`probes.analysis.reasoning.step_readout_table`), with the rows' provenance."""
    return step_readout_table(readout, provenance(model, (lens or LogitLens()).name), model.n_layers)
