"""The built-in ladders' answer log-odds at the last layer and per layer, read by the ordinary lens.

The organism trainer checks each rung it trains (accuracy curves, per-layer log-odds in the
catalogue) and the tests check the shipped rungs, both through :func:`probes.lenses.reading.read_options`
on a :class:`~probes.model.hooked.HookedModel`: the organism is scored exactly as a sweep scores it,
with no second hand-written lens. A model still in training is read through :func:`hooked_copy`,
which bridges a copy and leaves the model that trains (and the random state) untouched.
"""

from __future__ import annotations

import copy
import tempfile
from collections.abc import Sequence

import torch
from jaxtyping import Float
from transformers import AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from probes.analysis.metrics import option_credit
from probes.lenses.reading import read_options
from probes.model.hooked import HookedModel
from probes.model.loading import from_hf_model
from probes.tasks.items import Item


def hooked_copy(
    model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, name: str = "training"
) -> HookedModel:
    """A :class:`HookedModel` of a copy of ``model`` (a model being trained, say).

    The copy is bridged, not ``model``; the global random state is restored afterwards, so
    training goes on exactly as without the readout.
    """
    with torch.random.fork_rng(devices=[]), tempfile.TemporaryDirectory() as folder:
        if not getattr(tokenizer, "name_or_path", None):  # the bridge needs a saved tokenizer
            tokenizer.save_pretrained(folder)
            tokenizer = AutoTokenizer.from_pretrained(folder, trust_remote_code=False)
        return from_hf_model(copy.deepcopy(model).eval(), tokenizer, name=name)


def layer_log_odds(model: HookedModel, items: Sequence[Item]) -> Float[torch.Tensor, "layer item"]:
    """Logit-lens log-odds (true minus distractor) after every block, shape ``[layer, item]``.

    Row ``k`` reads the residual stream after block ``k + 1`` through the final norm and the
    unembedding; the last row equals the model's own output.
    """
    readout = read_options(model, items, layers=range(1, model.n_layers + 1))
    columns = [
        logprobs[:, item.true_index] - logprobs[:, item.distractor_index]
        for logprobs, item in zip(readout.logprobs, items)
    ]
    return torch.stack(columns, dim=1)


def accuracy(model: HookedModel, items: Sequence[Item]) -> float:
    """Mean credit of the true answer at the model's output (a tie is half right, as everywhere)."""
    readout = read_options(model, items, layers=[model.n_layers])
    credits = [float(option_credit(lp, item.true_index)[0]) for lp, item in zip(readout.logprobs, items)]
    return sum(credits) / len(credits)
