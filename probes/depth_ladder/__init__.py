"""The built-in depth ladder: tiny GPT-NeoX models that differ only in their number of layers.

Trained by ``experiments/depth/train.py`` on the k-step tasks (``variable_chain``, ``multi_hop``,
``arithmetic_steps``) so that "steps solved vs layers" can be measured offline; loaded as
``depth:<layers>x<d_model>`` model specs and listed as the ``depth`` ladder.
"""

from __future__ import annotations

from probes.depth_ladder.registry import DepthWeightsError, catalogue, rung_names, rung_path
from probes.depth_ladder.vocabulary import TASKS

__all__ = ["TASKS", "DepthWeightsError", "catalogue", "rung_names", "rung_path"]
