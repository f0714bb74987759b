"""Studies that use the library, each runnable from the repository root as ``python -m experiments.<name>``."""
