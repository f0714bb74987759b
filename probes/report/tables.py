"""The tables the report draws: pure functions of the per-layer results, no plotting, no I/O.

The per-layer table (:func:`probes.analysis.metrics.layer_table`) says nothing of a model's size, so
:func:`attach_sizes` first joins each model's size columns from the store's manifest (and its
measured perplexity, when there is one). Every other function here takes that joined table
(the *results*) and returns one row per what a figure plots: a model on a task and variant
(:func:`scaling_table`, with the tested shape of each curve from :func:`scaling_shapes`), a
layer of one (:func:`layer_summary`), or an item (:func:`item_flips`). A store may hold several
lenses side by side: each of these takes a ``lens`` and draws one at a time (the logit lens by
default, :func:`one_lens`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from probes.analysis.decision import decision_summary, divergence_summary
from probes.analysis.metrics import accuracy_interval, bootstrap_interval
from probes.analysis.metrics import (
    wilson_interval as wilson_interval,  # re-exported: the report's tests use it
)
from probes.analysis.scoring import per_layer_credit, per_layer_score
from probes.analysis.shape import ScalingShape, scaling_shape
from probes.errors import ProbesError
from probes.tasks.variants import VARIANTS

#: Size axes a scaling figure can use, as column -> axis title (Wei et al. 2022, "Emergent
#: abilities of large language models", plot emergence against the last three).
SIZE_AXES: dict[str, str] = {
    "parameters": "parameters",
    "non_embedding_parameters": "non-embedding parameters",
    "training_flops": "training FLOPs",
    "perplexity": "perplexity on held-out text",
}

#: Columns of the manifest that describe a model's size and training.
MANIFEST_SIZE_COLUMNS = (
    "parameters",
    "non_embedding_parameters",
    "training_tokens",
    "training_flops",
    "training_step",
    "d_model",
)

#: The lens drawn when results hold several and none is asked for.
DEFAULT_LENS = "logit"

#: Keys of one scaling point: a model on one task and variant.
POINT = ["model", "task", "variant"]


class ReportError(ProbesError):
    """Results that cannot be drawn as asked (a missing size column, an unknown task ...)."""


def attach_sizes(
    table: pd.DataFrame, manifest: pd.DataFrame, perplexity: pd.DataFrame | None = None
) -> pd.DataFrame:
    """The per-layer table with each model's size columns (and perplexity) joined in.

    Args:
        table: Per-layer rows (:meth:`probes.store.store.Store.read`).
        manifest: One row per shard (:meth:`probes.store.store.Store.manifest`); its
            :data:`MANIFEST_SIZE_COLUMNS` are taken per model.
        perplexity: Rows of :func:`probes.jobs.perplexity.read_perplexity`, if any. When several
            texts were measured, the one measured for the most models is used (ties: the
            latest measurement), so that every model's value comes from the same text.
            Without it, the manifest's ``held_out_perplexity`` (from the ladder's catalogue,
            measured on its own held-out text at training time) is used where present.

    Returns:
        ``table`` with the size columns added (NaN where the manifest lacks them).
    """
    sizes = pd.DataFrame({"model": pd.unique(table["model"])})
    if len(manifest):
        present = [c for c in MANIFEST_SIZE_COLUMNS if c in manifest.columns]
        per_model = manifest[["model", *present]].drop_duplicates("model", keep="last")
        sizes = sizes.merge(per_model, on="model", how="left")
    if perplexity is not None:
        perplexity = perplexity[perplexity["model"].isin(sizes["model"])]
    if perplexity is not None and len(perplexity):
        sizes = sizes.merge(_one_text(perplexity), on="model", how="left")
    elif len(manifest) and "held_out_perplexity" in manifest.columns:
        # Ladders that measured it at training time (the built-in organism) need no extra run.
        catalogued = manifest[["model", "held_out_perplexity"]].drop_duplicates("model", keep="last")
        sizes = sizes.merge(
            catalogued.rename(columns={"held_out_perplexity": "perplexity"}), on="model", how="left"
        )
    for column in [*MANIFEST_SIZE_COLUMNS, "perplexity"]:
        if column not in sizes.columns:
            sizes[column] = np.nan
        sizes[column] = pd.to_numeric(sizes[column], errors="coerce").astype(float)
    kept = table.drop(columns=[c for c in sizes.columns if c != "model" and c in table.columns])
    return kept.merge(sizes, on="model", how="left")


def _one_text(perplexity: pd.DataFrame) -> pd.DataFrame:
    """Per model, its perplexity on the text (and window, token cap, dtype) measured for the most models."""
    if "created" not in perplexity.columns:
        perplexity = perplexity.assign(created="")
    setting = [c for c in ("text_sha256", "max_tokens", "window", "dtype") if c in perplexity.columns]
    groups = perplexity.groupby(setting, dropna=False)  # missing values (no token cap) are a setting too
    coverage = groups.agg(models=("model", "nunique"), last=("created", "max")).reset_index(drop=True)
    best = coverage.sort_values(["models", "last"], kind="stable").index[-1]
    mask = (groups.ngroup() == best).to_numpy()
    chosen = perplexity[mask].sort_values("created", kind="stable")
    return chosen.drop_duplicates("model", keep="last")[["model", "perplexity"]]


def model_order(results: pd.DataFrame) -> list[str]:
    """Models smallest first: by parameters, then training FLOPs (checkpoints), then name."""
    columns = [c for c in ("parameters", "training_flops") if c in results.columns]
    models = results[["model", *columns]].drop_duplicates("model")
    return list(models.sort_values([*columns, "model"], kind="stable", na_position="last")["model"])


def variant_order(results: pd.DataFrame) -> list[str]:
    """Variants in report order (prize, one-shot, CoT, no-distractor), then any others."""
    present = list(pd.unique(results["variant"]))
    return [v for v in VARIANTS if v in present] + [v for v in present if v not in VARIANTS]


def task_order(results: pd.DataFrame) -> list[str]:
    """Tasks in order of first appearance."""
    return list(pd.unique(results["task"]))


def model_sizes(results: pd.DataFrame) -> pd.DataFrame:
    """One row per model (smallest first) with its size columns, indexed by model."""
    columns = [c for c in [*SIZE_AXES, "n_layers"] if c in results.columns]
    sizes = results[["model", *columns]].drop_duplicates("model").set_index("model")
    return sizes.loc[model_order(results)]


def available_axes(results: pd.DataFrame) -> list[str]:
    """The :data:`SIZE_AXES` known (positive) for at least one model of the results."""
    sizes = model_sizes(results)
    return [axis for axis in SIZE_AXES if axis in sizes.columns and (sizes[axis] > 0).any()]


def check_axis(results: pd.DataFrame, axis: str) -> None:
    """Raise a :class:`ReportError` that says what to do when ``axis`` cannot be drawn."""
    if axis not in SIZE_AXES:
        raise ReportError(f"unknown size axis {axis!r}; use one of {list(SIZE_AXES)}.")
    if axis in available_axes(results):
        return
    if axis == "perplexity":
        hint = "measure it with `probes perplexity --models ... --text FILE --out STORE` first."
    elif axis == "parameters":
        hint = "join the manifest: probes.report.attach_sizes(table, store.manifest()) or load_results(root)."
    else:
        hint = "the ladder catalogue has no such figure for these models; use the parameters axis."
    raise ReportError(f"no model of these results has a {SIZE_AXES[axis]} value; {hint}")


def lenses(results: pd.DataFrame) -> list[str]:
    """The lenses the results hold, the default one (:data:`DEFAULT_LENS`) first."""
    if "lens" not in results.columns:
        return []
    present = sorted(str(lens) for lens in pd.unique(results["lens"]))
    return sorted(present, key=lambda lens: lens != DEFAULT_LENS)


def one_lens(results: pd.DataFrame, lens: str | None = None) -> pd.DataFrame:
    """The rows of one lens, so that figures never pool lenses.

    Args:
        results: Per-layer rows, possibly of several lenses side by side.
        lens: The lens to keep (a lens id such as ``tuned-1a2b3c4d``, or ``tuned`` when the
            results hold one tuned lens); by default the only one present, or the logit lens
            when several are.

    Raises:
        ReportError: ``lens`` is not in the results (or names several), or several lenses but
            no logit lens.
    """
    present = lenses(results)
    if lens is None:
        if len(present) <= 1:
            return results
        lens = DEFAULT_LENS
    if lens not in present:
        matches = [name for name in present if name.startswith(f"{lens}-")]
        if len(matches) != 1:
            raise ReportError(f"the results hold lenses {present}, not {lens!r}; choose one of them.")
        lens = matches[0]
    return results[results["lens"] == lens]


def last_layer(results: pd.DataFrame) -> pd.DataFrame:
    """The rows of each model's deepest layer read (its output when all layers were read)."""
    deepest = results.groupby("model")["layer"].transform("max")
    return results[results["layer"] == deepest]


def chance_accuracy(results: pd.DataFrame) -> pd.DataFrame:
    """Per task and variant: the accuracy of guessing uniformly among each item's options."""
    options = results.drop_duplicates(["task", "variant", "item_id"])
    counts = options["option_logprobs"].map(len)
    chance = (1.0 / counts).groupby([options["task"], options["variant"]]).mean()
    return chance.rename("chance").reset_index()


def scaling_table(
    results: pd.DataFrame, n_resamples: int = 1000, seed: int = 0, lens: str | None = None
) -> pd.DataFrame:
    """One row per (model, task, variant) at the model's last layer: the scaling curves' points.

    Columns: ``n_items``; ``accuracy`` (a tie is half right) with its Wilson 95% interval; ``mean_log_odds``
    (true − distractor) and ``mean_cross_entropy`` (−log p of the true answer's tokens, in
    nats), each with a bootstrap 95% interval; ``chance``; and the size columns. Rows of one
    lens only (:func:`one_lens`).
    """
    results = one_lens(results, lens)
    rows = []
    for (model, task, variant), group in last_layer(results).groupby(POINT, sort=False):
        n = len(group)
        accuracy, accuracy_low, accuracy_high = accuracy_interval(group["correct"].to_numpy())
        odds_low, odds_high = bootstrap_interval(group["log_odds"].to_numpy(), n_resamples, seed=seed)
        entropy = -group["true_logprob"].to_numpy()
        entropy_low, entropy_high = bootstrap_interval(entropy, n_resamples, seed=seed)
        rows.append(
            {
                "model": model,
                "task": task,
                "variant": variant,
                "layer": int(group["layer"].iloc[0]),
                "n_items": n,
                "accuracy": accuracy,
                "accuracy_low": accuracy_low,
                "accuracy_high": accuracy_high,
                "mean_log_odds": float(group["log_odds"].mean()),
                "mean_log_odds_low": odds_low,
                "mean_log_odds_high": odds_high,
                "mean_cross_entropy": float(entropy.mean()),
                "mean_cross_entropy_low": entropy_low,
                "mean_cross_entropy_high": entropy_high,
            }
        )
    table = pd.DataFrame(rows).merge(chance_accuracy(results), on=["task", "variant"], how="left")
    return table.merge(model_sizes(results).reset_index(), on="model", how="left")


def layer_summary(results: pd.DataFrame, lens: str | None = None, score: str | None = None) -> pd.DataFrame:
    """Per (model, task, variant, layer) of one lens: accuracy and mean log-odds, p(true), p(distractor).

    ``mean_log_odds`` is the mean of ``score`` (by default the length-fair score where the
    results have it, :func:`probes.analysis.scoring.per_layer_score`) and ``accuracy`` the mean
    of its credit (``fair_correct``; ``correct`` for the summed score); ``score`` and ``credit``
    name them.
    """
    results = one_lens(results, lens)
    score = score or per_layer_score(results)
    credit = per_layer_credit(results) if score == "fair_log_odds" else "correct"
    grouped = results.groupby([*POINT, "layer"], sort=False)
    summary = grouped.agg(
        n_layers=("n_layers", "first"),
        relative_depth=("relative_depth", "first"),
        n_items=("item_id", "size"),
        accuracy=(credit, "mean"),
        mean_log_odds=(score, "mean"),
        mean_p_true=("p_true", "mean"),
        mean_p_distractor=("p_distractor", "mean"),
    )
    summary = summary.reset_index().assign(score=score, credit=credit)
    return summary.sort_values([*POINT, "layer"], kind="stable").reset_index(drop=True)


def decision_table(
    results: pd.DataFrame,
    lens: str | None = None,
    score: str | None = None,
    n_resamples: int = 1000,
    seed: int = 0,
) -> pd.DataFrame:
    """Per (model, task, variant) of one lens: the decision layer's median and 95% interval,
    where the model is above chance, and the share of items that have one
    (:func:`probes.analysis.decision.decision_summary`), with the size columns."""
    table = decision_summary(one_lens(results, lens), score, n_resamples, seed)
    table = table.drop(columns=["revision", "lens"])
    sizes = model_sizes(results).drop(columns="n_layers", errors="ignore")
    return table.merge(sizes.reset_index(), on="model", how="left")


def divergence_table(
    results: pd.DataFrame,
    lens: str | None = None,
    score: str | None = None,
    n_resamples: int = 1000,
    seed: int = 0,
) -> pd.DataFrame:
    """Per (model, task) of one lens: the divergence layer and its 95% interval
    (:func:`probes.analysis.decision.divergence_summary`), with the size columns; empty without
    prize / no_distractor pairs."""
    table = divergence_summary(one_lens(results, lens), score, n_resamples, seed)
    if table.empty:
        return table
    table = table.drop(columns=["revision", "lens"])
    sizes = model_sizes(results).drop(columns="n_layers", errors="ignore")
    return table.merge(sizes.reset_index(), on="model", how="left")


def item_flips(results: pd.DataFrame, lens: str | None = None) -> pd.DataFrame:
    """One row per item (task, variant, item): its last-layer verdict per model and its flips.

    Columns: ``task``, ``variant``, ``item_id``, the answers (and ``prompt`` when the
    results carry it), ``verdicts`` (per model, smallest first: the true answer's credit, 1 right,
    0 wrong, 0.5 a tie), ``counted`` (per model, whether its verdict is compared for flips),
    ``compared`` (how many are), ``flips`` (how often the compared verdict changes from one size
    to the next), ``log_odds_by_model`` (per model, the item's log-odds at every layer read).
    Items that flip come first, most flips first; ties keep the order of tasks, variants
    (:func:`variant_order`) and items. Rows of one lens only (:func:`one_lens`).

    A verdict is compared only where it says something: not a tie (neither answer chosen), and
    at a size whose last-layer accuracy on that task and variant differs from chance (the
    Wilson 95% interval excludes it, :func:`decided_sizes`). At a size at chance the verdicts
    are coin flips (or ties, when a model scores both answers alike), and counting their changes
    would count noise; a size significantly *below* chance is kept, because there the distractor
    wins systematically (the dip of a U).
    """
    results = one_lens(results, lens)
    order = model_order(results)
    rank = {model: i for i, model in enumerate(order)}
    keys = ["task", "variant", "item_id"]
    results = results.assign(model_rank=results["model"].map(rank))
    results = results.sort_values(["model_rank", "layer"], kind="stable")
    final = last_layer(results)
    verdicts = final.groupby(keys, sort=False)[["model", "correct"]].agg(list)
    odds = results.groupby([*keys, "model"], sort=False)["log_odds"].agg(lambda s: s.astype(float).tolist())
    first = results.drop_duplicates(keys).set_index(keys)
    rationales = _rationales(final, keys)
    decided = decided_sizes(final)
    rows = []
    for key, (models, correct) in verdicts.iterrows():
        marks = [float(c) for c in correct]
        counted = [(key[0], key[1], m) in decided and c in (0.0, 1.0) for m, c in zip(models, marks)]
        compared = [c for c, count in zip(marks, counted) if count]
        row = {
            **dict(zip(keys, key)),
            "true_answer": first.at[key, "true_answer"],
            "distractor_answer": first.at[key, "distractor_answer"],
            "models": list(models),
            "verdicts": marks,
            "counted": counted,
            "compared": len(compared),
            "flips": int(sum(a != b for a, b in zip(compared, compared[1:]))),
            "log_odds_by_model": {m: odds[(*key, m)] for m in models},
        }
        if "prompt" in first.columns:
            row["prompt"] = _question(first.at[key, "prompt"], first.get("rationale", {}).get(key, ""))
        if key in rationales:
            row["rationale_by_model"] = rationales[key]
        rows.append(row)
    table = pd.DataFrame(rows)
    tasks = {task: i for i, task in enumerate(task_order(results))}
    variants = {variant: i for i, variant in enumerate(variant_order(results))}
    ranks = table.assign(task_rank=table["task"].map(tasks), variant_rank=table["variant"].map(variants))
    order = ranks.sort_values(
        ["flips", "task_rank", "variant_rank"], ascending=[False, True, True], kind="stable"
    ).index
    return table.loc[order].reset_index(drop=True)


def decided_sizes(final: pd.DataFrame) -> set[tuple[str, str, str]]:
    """The (task, variant, model) whose last-layer accuracy differs from chance: the Wilson 95%
    interval of the accuracy (a tie half right) excludes the chance accuracy (the mean over items
    of 1 / options). ``final`` holds last-layer rows (:func:`last_layer`)."""
    decided = set()
    for key, group in final.groupby(["task", "variant", "model"], sort=False):
        _, low, high = accuracy_interval(group["correct"].to_numpy())
        chance = float((1.0 / group["option_logprobs"].map(len)).mean())
        if low > chance or high < chance:
            decided.add(key)
    return decided


def _question(prompt: str, rationale: object) -> str:
    """The prompt as the task wrote it: a chain-of-thought prompt without its model's rationale."""
    from probes.tasks.variants import ANSWER_CUE

    written = f"{rationale}{ANSWER_CUE}"
    return prompt[: -len(written)] if rationale and prompt.endswith(written) else prompt


def _rationales(final: pd.DataFrame, keys: list[str]) -> dict[tuple, dict[str, str]]:
    """Per item that has any: each model's own rationale (chain-of-thought prompts differ per model)."""
    if "rationale" not in final.columns:
        return {}
    written = final[final["rationale"].astype(str) != ""]
    return {
        key: dict(zip(group["model"], group["rationale"].astype(str)))
        for key, group in written.groupby(keys, sort=False)
    }


def scaling_shapes(
    results: pd.DataFrame, lens: str | None = None, order: Sequence[str] | None = None
) -> dict[tuple[str, str], ScalingShape]:
    """Per (task, variant) of one lens: the tested shape of last-layer accuracy across sizes.

    :func:`probes.analysis.shape.scaling_shape` on each model's count of right answers (a tie
    is half right) out of its items, models smallest first (``order``, default
    :func:`model_order`; models not in ``order`` go last by name); a task and variant that only
    some models ran use the models that ran it.
    """
    results = one_lens(results, lens)
    present = set(results["model"])
    order = list(order) if order is not None else model_order(results)
    models = [m for m in order if m in present] + sorted(present - set(order))
    counts = last_layer(results).groupby(["task", "variant", "model"])["correct"].agg(["sum", "size"])
    shapes = {}
    for task in task_order(results):
        for variant in variant_order(results[results["task"] == task]):
            if (task, variant) not in counts.index.droplevel("model"):
                continue
            rows = counts.loc[(task, variant)].reindex(models).dropna()
            shapes[(task, variant)] = scaling_shape(rows["sum"].to_numpy(), rows["size"].to_numpy())
    return shapes
