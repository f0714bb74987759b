"""The organism ladder's trainer (``python -m experiments.organism.train``)."""
