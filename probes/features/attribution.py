"""Which SAE features carry the log-odds of true over distractor: attribution, splicing and its checks.

For one item, an SAE at residual layer ``L`` (:class:`~probes.features.dictionary.LayerSAE`)
writes that layer's vector at every position ``p`` it reads (all but a leading start token) as
``x_p = sum_f a_pf D_f + b + e_p``. The model's log-odds at the answer position,
``m = logit(true) - logit(distractor)`` (first tokens, as :mod:`probes.ablate.prompts` reads
them), is a function of those vectors. Along the straight path that scales features and error
together, ``x_p(α) = b + α (sum_f a_pf D_f + e_p)``, integrated gradients give

    m  =  m(α = 0)  +  sum_f attribution_f  +  error_attribution  (+ the integration's own error),

    attribution_f      = sum_p a_pf D_f · ḡ_p,      error_attribution = sum_p e_p · ḡ_p,

with ``ḡ_p`` the gradient of ``m`` with respect to ``x_p`` averaged over the path (refined
until the identity holds to 1%, :func:`path_gradient`). ``m(α = 0)`` is the ``baseline``: the
log-odds with every feature and the error off (the decoder's offset ``b`` at each read
position). Each feature's attribution is its activation times its effect through the rest of
the model, averaged along the path; the rows carry the gap of the identity above
(``completeness_gap``), so it is checked on every item.

Two further estimates per feature, for the checks of :mod:`probes.features.summary`:
``linear_attribution``, ``sum_p a_pf D_f · g_p`` with the gradient at the clean point
(attribution patching, Syed et al. 2023; what Marks et al. 2024 call the linear estimate of a
feature's indirect effect), and ``ablation_effect``, the exact change of ``m`` when the feature is
removed at every position (``x_p - a_pf D_f``: the error term stays, so nothing else moves),
measured for each item's ``check`` features of largest ``|attribution|``.

Splicing: ``spliced_log_odds`` is ``m`` with the SAE's reconstruction in place of the residual
(the error dropped), the change splicing the SAE in makes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd
import torch
from jaxtyping import Bool, Float, Int

from probes.ablate.prompts import Prompt, PromptBatch, batches, read_answers, run
from probes.features.dictionary import LayerSAE
from probes.lenses.tuned.text import start_token
from probes.model.loading import HookedModel

#: Intervals of the integrated-gradients path to start with (:func:`path_gradient`).
STEPS = 16
#: Most intervals the path is refined to.
MAX_STEPS = 512
#: Largest gap of the attribution identity, relative to ``max(1, |log-odds - baseline|)``, that
#: stops the refinement.
TOLERANCE = 0.01
#: Features per item whose attribution is checked against ablating them, by default.
CHECKED = 4


@dataclass(frozen=True)
class Decomposition:
    """One batch's residual at an SAE's layer, split into features, offset and error."""

    #: The clean residual at the layer (``batch pos d_model``, padded positions included).
    clean: Float[torch.Tensor, "batch pos d_model"]
    #: Positions the SAE reads: real tokens, not a leading start token.
    read: Bool[torch.Tensor, "batch pos"]
    #: Feature activations at the read positions (zero elsewhere).
    activations: Float[torch.Tensor, "batch pos feature"]
    #: Error term ``x - decode(encode(x))`` at the read positions (zero elsewhere).
    error: Float[torch.Tensor, "batch pos d_model"]
    sae: LayerSAE

    def residual(
        self,
        scale: float = 1.0,
        remove: Float[torch.Tensor, "batch pos feature"] | None = None,
        error: bool = True,
    ) -> Float[torch.Tensor, "batch pos d_model"]:
        """The layer's vectors with features and error scaled by ``scale`` at the read positions.

        Args:
            scale: ``α`` of the path (1 = the clean residual, 0 = the decoder's offset).
            remove: Activations to take away before decoding (``batch pos feature``), for ablations.
            error: Keep the error term (False: the SAE's reconstruction alone, as when spliced in).
        """
        activations = self.activations if remove is None else self.activations - remove
        written = activations @ self.sae.directions + (self.error if error else 0)
        inside = self.sae.offset + scale * written
        mask = self.read.unsqueeze(-1)
        return torch.where(mask, inside, self.clean)


def decompose(model: HookedModel, batch: PromptBatch, sae: LayerSAE) -> tuple[Decomposition, torch.Tensor]:
    """The clean pass of ``batch``: its SAE decomposition and the clean log-odds per row."""
    hook = model.resid_hook(sae.layer)
    readout, cache = run(model, batch, cache_names=[hook])
    clean = cache[hook].float().cpu()
    lengths = torch.tensor(batch.lengths)
    positions = torch.arange(clean.shape[1])
    read = positions.unsqueeze(0) < lengths.unsqueeze(1)
    first = start_token(model)
    if first is not None:
        read[:, 0] &= batch.input_ids[:, 0].cpu() != first
    activations = torch.zeros(*clean.shape[:2], sae.d_sae)
    error = torch.zeros_like(clean)
    codes, residue = sae.split(clean[read])
    activations[read], error[read] = codes, residue
    return Decomposition(clean, read, activations, error, sae), readout.log_odds


def log_odds_with(
    model: HookedModel, batch: PromptBatch, hook: str, residual: torch.Tensor, grad: bool = False
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
    """Log-odds per row with ``residual`` in place of the layer; its gradient there when ``grad``.

    Returns the log-odds, the gradient (or None), and each row's credit (1 right, 1/k tied, 0 wrong).
    """
    device = batch.input_ids.device
    value = residual.to(device).requires_grad_(grad)

    def replace(activation: torch.Tensor, hook: object) -> torch.Tensor:
        return value.to(activation.dtype)

    rows = torch.arange(len(batch.prompts), device=device)
    with torch.set_grad_enabled(grad):
        logits = model.run_with_hooks(batch.input_ids, batch.attention_mask, [(hook, replace)])
        at_answer = logits[rows, batch.answer_positions].float()
        true = torch.tensor([p.true_token for p in batch.prompts], device=device)
        distractor = torch.tensor([p.distractor_token for p in batch.prompts], device=device)
        log_odds = at_answer[rows, true] - at_answer[rows, distractor]
        gradient = torch.autograd.grad(log_odds.sum(), value)[0].float().cpu() if grad else None
    credit = read_answers(logits.detach(), batch).correct
    return log_odds.detach().cpu(), gradient, credit


def path_gradient(
    model: HookedModel,
    batch: PromptBatch,
    hook: str,
    parts: Decomposition,
    change: Float[torch.Tensor, " batch"],
    end_gradient: Float[torch.Tensor, "batch pos d_model"],
    steps: int = STEPS,
) -> tuple[Float[torch.Tensor, "batch pos d_model"], Int[torch.Tensor, " batch"]]:
    """The gradient of the log-odds averaged along the path ``α = 0 → 1``, and the intervals each row took.

    The integrand is steepest near ``α = 0``, where every read position holds the decoder's
    offset and the norms of later layers amplify small changes; so the path is walked in
    ``u = √α`` (``∫ g(α) dα = ∫ g(u²) 2u du``) with the trapezoid rule on ``steps`` intervals,
    doubled (reusing every point) until the identity's gap is at most :data:`TOLERANCE` of
    ``max(1, |change|)``, or :data:`MAX_STEPS` intervals are reached. Each row keeps the mean
    gradient of the first refinement at which its own gap is small enough, so a row's numbers do
    not depend on the other rows of its batch. ``end_gradient`` is the gradient at ``α = 1``
    (the clean point), already computed.
    """
    written = parts.residual(1.0) - parts.residual(0.0)

    def integrand(u: float) -> torch.Tensor:
        _, gradient, _ = log_odds_with(model, batch, hook, parts.residual(u * u), grad=True)
        return 2 * u * gradient

    interior = torch.zeros_like(end_gradient)
    for j in range(1, steps):
        interior += integrand(j / steps)
    intervals = steps
    mean_gradient = torch.zeros_like(end_gradient)
    used = torch.zeros(len(change), dtype=torch.long)
    pending = torch.ones(len(change), dtype=torch.bool)
    while True:
        refined = (interior + end_gradient) / intervals  # f(0) = 0; f(1) = 2 · end_gradient, halved
        gap = change - (written * refined).sum((1, 2))
        done = pending & ((gap.abs() <= TOLERANCE * change.abs().clamp(min=1)) | (intervals >= MAX_STEPS))
        mean_gradient[done], used[done] = refined[done], intervals
        pending &= ~done
        if not bool(pending.any()):
            return mean_gradient, used
        for j in range(intervals):
            interior += integrand((2 * j + 1) / (2 * intervals))
        intervals *= 2


def attribute_batch(
    model: HookedModel, batch: PromptBatch, sae: LayerSAE, steps: int = STEPS, checked: int = CHECKED
) -> tuple[pd.DataFrame, pd.DataFrame, Decomposition]:
    """Feature rows and item rows of one batch (see :func:`attribute_features`)."""
    hook = model.resid_hook(sae.layer)
    parts, clean_log_odds = decompose(model, batch, sae)
    directions = sae.directions
    log_odds, clean_gradient, credit = log_odds_with(model, batch, hook, parts.residual(1.0), grad=True)
    baseline, _, _ = log_odds_with(model, batch, hook, parts.residual(0.0))
    spliced, _, spliced_credit = log_odds_with(model, batch, hook, parts.residual(1.0, error=False))
    mean_gradient, used = path_gradient(model, batch, hook, parts, log_odds - baseline, clean_gradient, steps)
    mask = parts.read.unsqueeze(-1)
    attribution = (parts.activations * (mean_gradient @ directions.T) * mask).sum(1)  # batch feature
    linear = (parts.activations * (clean_gradient @ directions.T) * mask).sum(1)
    error_attribution = (parts.error * mean_gradient).sum((1, 2))
    gap = log_odds - (baseline + attribution.sum(-1) + error_attribution)
    # each item's most attributed features, removed one at a time (one per row and pass)
    active = parts.activations.amax(1)  # batch feature
    order = attribution.abs().masked_fill(active <= 0, -1).argsort(-1, descending=True)
    ablation = torch.full_like(attribution, float("nan"))
    for rank in range(min(checked, sae.d_sae)):
        features = order[:, rank]
        remove = torch.zeros_like(parts.activations)
        rows = torch.arange(len(batch.prompts))
        remove[rows, :, features] = parts.activations[rows, :, features]
        ablated, _, _ = log_odds_with(model, batch, hook, parts.residual(1.0, remove=remove))
        usable = active[rows, features] > 0
        ablation[rows[usable], features[usable]] = (ablated - log_odds)[usable]
    feature_rows, item_rows = [], []
    decoded = {t: model.tokenizer.decode([t]) for p in batch.prompts for t in set(p.tokens)}
    strongest = parts.activations.argmax(1)  # batch feature: position of each feature's largest activation
    for row, prompt in enumerate(batch.prompts):
        item_rows.append(
            {
                "item_id": prompt.item.id,
                "prompt": prompt.item.prompt,
                "true_answer": prompt.item.true_answer,
                "distractor_answer": prompt.item.distractor_answer,
                "log_odds": float(log_odds[row]),
                "model_log_odds": float(clean_log_odds[row]),
                "correct": float(credit[row]),
                "baseline": float(baseline[row]),
                "features_total": float(attribution[row].sum()),
                "error_attribution": float(error_attribution[row]),
                "completeness_gap": float(gap[row]),
                "ig_steps": int(used[row]),
                "spliced_log_odds": float(spliced[row]),
                "spliced_correct": float(spliced_credit[row]),
                "active_features": int((active[row] > 0).sum()),
                "read_positions": int(parts.read[row].sum()),
                "answer_tokens": prompt.answer_tokens,
            }
        )
        for feature in torch.nonzero(active[row] > 0).flatten().tolist():
            position = int(strongest[row, feature])
            feature_rows.append(
                {
                    "item_id": prompt.item.id,
                    "feature": feature,
                    "activation": float(active[row, feature]),
                    "active_positions": int((parts.activations[row, :, feature] > 0).sum()),
                    "position": position,
                    "from_end": len(prompt.tokens) - 1 - position,
                    "token": prompt.tokens[position],
                    "token_text": decoded[prompt.tokens[position]],
                    "attribution": float(attribution[row, feature]),
                    "linear_attribution": float(linear[row, feature]),
                    "ablation_effect": float(ablation[row, feature]),
                }
            )
    return pd.DataFrame.from_records(feature_rows), pd.DataFrame.from_records(item_rows), parts


def attribute_features(
    model: HookedModel,
    prompts: Sequence[Prompt],
    sae: LayerSAE,
    steps: int = STEPS,
    checked: int = CHECKED,
    batch_size: int = 16,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per item and active feature, its attribution to the log-odds; per item, the identity's terms.

    Returns:
        ``features``: one row per (item, feature active at some read position): ``activation``
        (its largest), ``active_positions``, ``position``/``from_end``/``token`` (where it is
        largest), ``attribution``, ``linear_attribution``, ``ablation_effect`` (NaN where not
        measured), ``token_text``. ``items``: one row per item: ``prompt``, ``true_answer``,
        ``distractor_answer``, ``log_odds``, ``correct``, ``baseline``,
        ``features_total``, ``error_attribution``, ``completeness_gap``, ``spliced_log_odds``,
        ``spliced_correct``, ``active_features``, ``read_positions``. Both with ``layer``.
    """
    features, items = [], []
    for batch in batches(prompts, batch_size, model.device):
        feature_rows, item_rows, _ = attribute_batch(model, batch, sae, steps, checked)
        features.append(feature_rows)
        items.append(item_rows)
    return (
        pd.concat(features, ignore_index=True).assign(layer=sae.layer),
        pd.concat(items, ignore_index=True).assign(layer=sae.layer),
    )
