"""Direct logit attribution to unembed(true) - unembed(distractor), per head, MLP and layer.

At the answer position the last residual stream is a sum of parts: the embeddings
(the direct path), each head's output ``z_h W_O[h]``, each attention layer's output
bias, each MLP's output. The final norm is not linear, but with its scale frozen at
the value of the clean run it is an affine map, so the log-odds

    logit(true) - logit(distractor)
        = sum over parts of norm_frozen(part) . (W_U[:, true] - W_U[:, distractor])
          + (norm bias . that direction) + b_U[true] - b_U[distractor]

holds exactly for the clean run: the parts plus the constant term (``kind == "constant"``)
reconstruct the model's own log-odds. What the frozen scale approximates is each part's
*own* effect: were a part removed, the norm's scale would change too (ablation measures
that). Each row carries ``reconstruction_error`` so the identity is checked on every item.

TransformerLens's ``direct_logit_attribution`` needs the bridge in compatibility mode with the
final norm folded into the unembedding; this module works on the model as loaded (exact
logits, LayerNorm or RMSNorm) through :class:`~probes.model.loading.HookedModel`: its head, attention
and MLP output hook points and the final norm's scale, each kept at the answer position only,
its ``W_O`` and ``W_U``, and its frozen final norm (where LayerNorm and RMSNorm differ).
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import torch
from jaxtyping import Float

from probes.ablate.prompts import Prompt, batches, encode_prompts, run
from probes.errors import ProbesError
from probes.model.loading import HookedModel
from probes.tasks.items import Item

#: Largest tolerated gap, relative to max(1, |log-odds|) per item, between the parts' sum and the
#: model's own log-odds, by dtype, before the decomposition is declared unsupported.
MAX_RECONSTRUCTION_ERROR = {torch.float32: 1e-3, torch.float64: 1e-6}
#: The same for half-precision models, whose own sums round at ~1e-2.
MAX_RECONSTRUCTION_ERROR_HALF = 5e-2


class AttributionError(ProbesError):
    """The model's residual stream does not decompose as this attribution assumes."""


def _cache_names(model: HookedModel) -> list[str]:
    per_layer = [
        name
        for layer in range(model.n_layers)
        for name in (model.head_hook(layer), model.attn_out_hook(layer), model.mlp_out_hook(layer))
    ]
    return [model.resid_hook(0), *per_layer, model.resid_hook(model.n_layers), model.final_norm_scale_hook]


def _parts(
    model: HookedModel, cache: dict[str, torch.Tensor]
) -> tuple[list[tuple[str, str, int | None, int | None]], Float[torch.Tensor, "part batch d_model"]]:
    """Every part of the last residual stream at the answer positions, with its labels.

    ``cache`` holds each hook point's activation at the answer positions only (``batch ...``).
    """
    labels: list[tuple[str, str, int | None, int | None]] = [("embed", "embed", None, None)]
    vectors = [cache[model.resid_hook(0)]]
    weight_out = model.head_output_weights  # layer head d_head d_model
    for layer in range(model.n_layers):
        z = cache[model.head_hook(layer)]  # batch head d_head
        heads = torch.einsum("bhd,hdm->hbm", z, weight_out[layer].to(z.dtype))
        for head in range(heads.shape[0]):
            labels.append((f"L{layer}H{head}", "head", layer, head))
            vectors.append(heads[head])
        labels.append((f"L{layer}.attn_bias", "attn_bias", layer, None))
        vectors.append(cache[model.attn_out_hook(layer)] - heads.sum(0))
        labels.append((f"L{layer}.mlp", "mlp", layer, None))
        vectors.append(cache[model.mlp_out_hook(layer)])
    return labels, torch.stack(vectors).float()


def attribute(model: HookedModel, items: Sequence[Item], batch_size: int = 8) -> pd.DataFrame:
    """Per item, each part's direct contribution to the log-odds of true over distractor.

    Returns:
        One row per (item, part): ``item_id``, ``component`` (``embed``, ``L2H3``,
        ``L2.attn_bias``, ``L2.mlp``, ``constant``), ``kind``, ``layer``, ``head``,
        ``attribution``; per item ``log_odds`` (the model's own, at the answer position),
        ``reconstruction_error`` and ``answer_tokens`` (``first`` for multi-token answers).

    Raises:
        AttributionError: the parts do not sum to the model's log-odds (an architecture whose
            blocks write to the residual stream through something other than attention and MLP
            outputs, such as a post-attention norm).
    """
    with torch.no_grad():
        return _attribute(model, encode_prompts(items, model), batch_size)


def _attribute(model: HookedModel, prompts: list[Prompt], batch_size: int) -> pd.DataFrame:
    if model.final_norm is None:
        raise AttributionError(f"{model.name} has no final norm; attribution expects one.")
    unembed_weight = model.unembedding_weights.float()
    unembed_bias = model.unembedding_bias
    norm_bias = model.final_norm_bias
    records: list[dict[str, object]] = []
    for batch in batches(prompts, batch_size, model.device):
        readout, cache = run(model, batch, cache_names=_cache_names(model), answer_only=True)
        labels, vectors = _parts(model, cache)
        final = cache[model.resid_hook(model.n_layers)].float()
        tolerance = MAX_RECONSTRUCTION_ERROR.get(model.dtype, MAX_RECONSTRUCTION_ERROR_HALF)
        if not torch.allclose(vectors.sum(0), final, atol=tolerance, rtol=tolerance):
            raise AttributionError(
                f"{model.name}: embeddings plus attention and MLP outputs do not add up to the last "
                "residual stream; this architecture writes to it through other paths (e.g. norms after "
                "attention), which attribution does not cover yet. Run the other analyses alone: "
                "--analyses patching, or ablation with --ks left to the chosen components."
            )
        true_tokens = torch.tensor([p.true_token for p in batch.prompts], device=vectors.device)
        distractor_tokens = torch.tensor([p.distractor_token for p in batch.prompts], device=vectors.device)
        direction = (unembed_weight[:, true_tokens] - unembed_weight[:, distractor_tokens]).T  # batch d_model
        scale = cache[model.final_norm_scale_hook].float()  # batch 1
        contributions = (model.frozen_final_norm(vectors, scale) * direction).sum(-1)  # part batch
        constant = torch.zeros(len(batch.prompts), device=vectors.device)
        if norm_bias is not None:
            constant = constant + direction @ norm_bias.float()
        if unembed_bias is not None:
            constant = constant + (unembed_bias[true_tokens] - unembed_bias[distractor_tokens]).float()
        total = contributions.sum(0) + constant
        log_odds = readout.log_odds
        errors = (total.cpu() - log_odds).abs()
        if bool((errors > tolerance * log_odds.abs().clamp(min=1.0)).any()):
            raise AttributionError(
                f"{model.name}: the parts sum to log-odds that differ from the model's by up to "
                f"{float(errors.max()):.3g}; its final norm is not one this attribution models "
                "(LayerNorm or RMSNorm with a plain weight). Run --analyses patching instead, or load "
                "the model in float32 if it is in half precision."
            )
        columns = contributions.T.cpu()  # batch part
        for row, prompt in enumerate(batch.prompts):
            common = {
                "item_id": prompt.item.id,
                "log_odds": float(log_odds[row]),
                "reconstruction_error": float(errors[row]),
                "answer_tokens": prompt.answer_tokens,
            }
            for (component, kind, layer, head), value in zip(labels, columns[row].tolist()):
                records.append(
                    {**common, "component": component, "kind": kind, "layer": layer, "head": head,
                     "attribution": value}
                )  # fmt: skip
            records.append(
                {**common, "component": "constant", "kind": "constant", "layer": None, "head": None,
                 "attribution": float(constant[row])}
            )  # fmt: skip
    table = pd.DataFrame.from_records(records)
    return table.astype({"layer": "Int64", "head": "Int64"})


def mean_head_attribution(table: pd.DataFrame) -> pd.DataFrame:
    """Mean attribution of every head over items, most distractor-promoting (most negative) first."""
    heads = table[table["kind"] == "head"]
    means = heads.groupby(["component", "layer", "head"], as_index=False)["attribution"].mean()
    return means.sort_values(["attribution", "layer", "head"]).reset_index(drop=True)
