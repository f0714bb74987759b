"""Studies that use the library (``python -m experiments.<name>`` from the repository root)."""
