"""The shipped tuned lenses: training, shipping and their held-out KL (``python -m experiments.tuned_lens.<name>``)."""
