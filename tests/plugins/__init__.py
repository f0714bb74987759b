"""Toy plugins, one file each, that tests drop into :mod:`probes.lenses` and :mod:`probes.model`."""
