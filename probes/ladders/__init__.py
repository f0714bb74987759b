"""Named model ladders: ordered families of language models of one lineage, with their metadata.

* :mod:`probes.ladders.model`: the :class:`Ladder` and :class:`Rung` dataclasses and the specs
  a ladder plans (:meth:`Ladder.model_specs` gives :class:`probes.model.specs.ModelSpec` objects that
  carry their ladder, rung and training step);
* :mod:`probes.ladders.registry`: the named ladders: the hub catalogue ``probes/data/ladders.json``,
  the built-in ladder folders and ladders registered at runtime;
* :mod:`probes.ladders.builtin`: the ladders a built-in folder's ``catalogue.json`` defines
  (the folders themselves, their search path and weights: :mod:`probes.builtin.folders`);
* :mod:`probes.ladders.table`: ``probes ladders``'s table and the rung metadata of result rows.
"""

from __future__ import annotations

from probes.builtin.folders import register_builtin_folder
from probes.ladders.model import NUMERIC_FIELDS, REVISION_SEPARATOR, Ladder, Rung
from probes.ladders.registry import (
    CATALOGUE_PATH,
    SCHEMA_VERSION,
    get_ladder,
    ladder_names,
    load_catalogue,
    read_catalogue,
    register_ladder,
    register_ladder_provider,
)
from probes.ladders.table import TABLE_COLUMNS, ladders_table, rung_metadata

__all__ = [
    "CATALOGUE_PATH",
    "NUMERIC_FIELDS",
    "REVISION_SEPARATOR",
    "SCHEMA_VERSION",
    "TABLE_COLUMNS",
    "Ladder",
    "Rung",
    "get_ladder",
    "ladder_names",
    "ladders_table",
    "load_catalogue",
    "read_catalogue",
    "register_builtin_folder",
    "register_ladder",
    "register_ladder_provider",
    "rung_metadata",
]
