"""The depth ladder: its training recipe, trainer and catalogue (``python -m experiments.depth.train``)."""
