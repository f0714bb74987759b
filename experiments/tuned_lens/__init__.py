"""The shipped tuned lenses: training, shipping, held-out KL (``python -m experiments.tuned_lens.<name>``)."""
