"""The built-in ladders: one data folder each (catalogue, weights, tuned lenses) and their code.

:mod:`~probes.builtin.folders` finds and verifies the folders; :mod:`~probes.builtin.training`,
:mod:`~probes.builtin.word_tokenizer` and :mod:`~probes.builtin.training_check` are what their
trainers (``experiments/*/train.py``) share.
"""
