# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Where does a U come from? A worked example with `probes`
#
# **Question.** On the built-in `organism` ladder, accuracy on negated questions
# ("not bak tano is ...") is U-shaped in model size: small models cannot recall the fact,
# middle models recall it and ignore the "not", large models recall it and flip it. Which
# layers carry the distractor (the recalled fact), where does the true answer take over, and
# which components apply the "not"?
#
# Everything below uses the public Python API (`probes`, `probes.report`, `probes.ablate`),
# runs offline on a CPU in well under a minute, and every sentence of the conclusion is
# formatted from numbers this notebook computes.

# %%
import tempfile
from pathlib import Path

import pandas as pd
import plotly.io as pio

import probes
from probes import report
from probes.ablate.study import AblateOptions, run_ablation_study
from probes.ablate.summary import ablation_effects, distractor_pushers, patching_curve
from probes.decision import decision_summary, divergence_summary
from probes.report import ablations as ablation_report
from probes.report.tables import layer_summary, scaling_shape

pio.renderers.default = "notebook"  # figures inline, plotly.js embedded: opens offline
WORK = Path(tempfile.mkdtemp(prefix="u_shape-"))  # result stores of this notebook
print("probes", probes.__version__)

# %% [markdown]
# ## 1. The ladder, the task, three prompt variants
#
# `probes.run` sweeps every model of a ladder over a task's items in each prompt variant, reads
# the logit lens at every layer and returns one row per (model, item, layer). `prize` is the
# zero-shot prompt; `one_shot` puts one solved example first; `no_distractor` removes the "not"
# (the control: the recalled fact is then the right answer).

# %%
ORGANISM = WORK / "organism"
N_ITEMS = 64  # items per variant: enough for accuracies to +-0.1, small enough for CI on 2 cores
rows = probes.run(
    ladder="organism",
    tasks=["organism_negation"],
    variants=["prize", "one_shot", "no_distractor"],
    n_items=N_ITEMS,
    out=ORGANISM,
    progress=False,
)
results = report.load_results(ORGANISM)  # the same rows with each model's size joined in
n_models, n_items = rows["model"].nunique(), rows["item_id"].nunique()
print(f"{len(rows)} rows: {n_models} models, {n_items} items, every layer, 3 variants")
columns = ["model", "variant", "item_id", "layer", "true_answer", "distractor_answer", "log_odds", "correct"]
rows[columns].head()

# %% [markdown]
# ## 2. The U: last-layer accuracy against size

# %%
scaling = report.scaling_table(results)
order = list(dict.fromkeys(scaling.sort_values("parameters")["model"]))
accuracy = scaling.pivot_table(index="model", columns="variant", values="accuracy").loc[order]
chance = float(scaling["chance"].iloc[0])
shape = {variant: scaling_shape(accuracy[variant].tolist()) for variant in accuracy.columns}
print(f"chance: {chance:.2f}; shape by variant: {shape}")
accuracy.round(3)

# %%
report.scaling_curve(results)

# %% [markdown]
# ## 3. Along depth: the per-layer heat map and trajectories
#
# Blue cells: the true answer wins at that layer; red: the distractor does.

# %%
report.depth_heatmap(results)

# %%
report.layer_trajectories(results, task="organism_negation", variant="prize")

# %%
layers = layer_summary(results)
prize_layers = layers[layers["variant"] == "prize"]
# the layer of each model where the distractor wins by the most (most negative mean log-odds)
worst = prize_layers.loc[prize_layers.groupby("model")["mean_log_odds"].idxmin()]
worst = worst.set_index("model").loc[order]
worst[["n_layers", "layer", "relative_depth", "mean_log_odds", "accuracy"]]

# %% [markdown]
# **Decision layer** (per item: the first block from which the true answer stays ahead through
# the last; reported as the median over items, only where the model is above chance) and
# **divergence layer** (per model: the first block where the prize prompt's score falls
# significantly below its no-"not" twin's, paired over items: where the distractor starts to
# act). Both read the length-fair score and carry bootstrap 95% intervals.

# %%
decisions = decision_summary(results).set_index(["model", "variant"])
divergence = divergence_summary(results).set_index("model").loc[order]
decision_columns = ["accuracy", "above_chance", "share_with_decision_layer", "decision_layer"]
decision_columns += ["decision_layer_low", "decision_layer_high"]
decisions.xs("prize", level="variant").loc[order, decision_columns]

# %%
divergence_columns = ["n_layers", "divergence_layer", "divergence_layer_low", "divergence_layer_high"]
divergence[[*divergence_columns, "share_diverging"]]

# %% [markdown]
# ## 4. Which components apply the "not"? Attribution, ablation, patching
#
# `run_ablation_study` runs three analyses on every model of the ladder on the `prize` items:
# direct logit attribution of every head and MLP to `logit(true) - logit(distractor)`; mean
# ablation of every block, attention layer and MLP alone (and of the top-k heads by
# attribution against k random heads); and patching of the residual stream from each item's
# `no_distractor` twin (the same prompt without the "not") at every position the two share.
# (`probes ablate` and `experiments/ablations.py` run the fuller study: zero and resample
# ablation too, head patching, more random draws.)

# %%
ABLATIONS = WORK / "ablations"
options = AblateOptions(
    ladder="organism",
    tasks=["organism_negation"],
    n_items=N_ITEMS,
    methods=["mean"],
    ks=[1, 2, 4],
    draws=2,
    positions=["suffix"],
    patch_heads=False,
    out=ABLATIONS,
    progress=False,
)
run_ablation_study(options)
tables, ablation_order = ablation_report.load_ablation_tables(ABLATIONS)
pushers = distractor_pushers(tables["attribution"], top=3)
pushers[["model", "component", "attribution"]]

# %%
ablation_report.attribution_heatmap(tables["attribution"], ablation_order)

# %%
effects = ablation_effects(tables["ablation"])
single = effects[(effects["selection"] == "single") & (effects["method"] == "mean")]
mean_single = single[single["components"].str.contains(r"\.(?:attn|mlp)$")]  # attention layers and MLPs
# per model, the attention layer or MLP whose mean ablation lowers accuracy the most
drop = mean_single.loc[mean_single.groupby("model")["accuracy_change"].idxmin()]
drop = drop.set_index("model").loc[ablation_order]
drop[["components", "accuracy_clean", "accuracy_ablated", "delta"]]

# %%
ablation_report.ablation_figure(tables["ablation"], ablation_order)

# %%
curve = patching_curve(tables["patching"])
resid = curve[(curve["site"] == "resid") & (curve["positions"] == "suffix")]
restored = resid.pivot_table(index="model", columns="layer", values="restored").loc[ablation_order]
restored.round(2)

# %%
ablation_report.patching_figure(tables["patching"], ablation_order)

# %% [markdown]
# ## 5. Conclusion (written from the numbers above)
#
# The text below is formatted from the tables this notebook computed; each claim is worded
# from a comparison in the code, so a different run prints a different (still true) sentence.


# %%
def by_size(frame, column: str, models: list[str]) -> str:
    """One number per model, smallest first."""
    return ", ".join(f"{model.split(':')[-1]} {frame.at[model, column]:.2f}" for model in models)


def layer_text(layer: float) -> str:
    """A layer number, or a word where there is none (NaN)."""
    return "none" if pd.isna(layer) else f"{layer:.0f}"


large = order[-1]
middle = accuracy["prize"].idxmin()
ignores = accuracy.at[middle, "no_distractor"] - accuracy.at[middle, "prize"] >= 0.5
large_pushers = pushers[pushers["model"] == large]
gap_layers = [int(layer) for layer in restored.columns]
first_restoring = next((layer for layer in gap_layers if restored.at[large, layer] >= 0.5), None)
lines = [
    f"- Accuracy at the last layer, prize variant, by size: {by_size(accuracy, 'prize', order)}: "
    f"{shape['prize']} (chance {chance:.2f}). One-shot: {by_size(accuracy, 'one_shot', order)} "
    f"({shape['one_shot']}). Control without the 'not': {by_size(accuracy, 'no_distractor', order)} "
    f"({shape['no_distractor']}).",
    f"- The worst size, {middle}, scores {accuracy.at[middle, 'prize']:.2f} on negated questions and "
    f"{accuracy.at[middle, 'no_distractor']:.2f} without the 'not': "
    + ("it recalls the fact and ignores the negation." if ignores else "its failure is not only the 'not'."),
    f"- In {large} the distractor leads most at layer {int(worst.at[large, 'layer'])} of "
    f"{int(worst.at[large, 'n_layers'])} (mean log-odds {worst.at[large, 'mean_log_odds']:+.2f}); "
    f"its decision layer (median over items, true answer ahead from there on) is "
    f"{decisions.at[(large, 'prize'), 'decision_layer']:.0f} "
    f"(95% {decisions.at[(large, 'prize'), 'decision_layer_low']:.0f}-"
    f"{decisions.at[(large, 'prize'), 'decision_layer_high']:.0f}); its divergence layer "
    f"(where the 'not' prompt falls below its twin) is "
    f"{layer_text(divergence.at[large, 'divergence_layer'])}.",
    f"- Strongest distractor pushers in {large} (direct logit attribution): "
    + ", ".join(f"{r.component} ({r.attribution:+.2f})" for r in large_pushers.itertuples())
    + ".",
    f"- The attention layer or MLP whose mean ablation hurts {large} most is "
    f"{drop.at[large, 'components']}: accuracy {drop.at[large, 'accuracy_clean']:.2f} -> "
    f"{drop.at[large, 'accuracy_ablated']:.2f}.",
    f"- Patching {large}'s residual stream from the no-'not' twin restores "
    + ", ".join(f"{restored.at[large, layer]:.2f}" for layer in gap_layers)
    + f" of the gap at layers {', '.join(map(str, gap_layers))}: "
    + (
        f"the residual stream first carries the difference the 'not' makes at layer {first_restoring}, "
        f"the output of block L{first_restoring - 1}."
        if first_restoring is not None
        else "no single layer carries it."
    ),
]
print("\n".join(lines))
