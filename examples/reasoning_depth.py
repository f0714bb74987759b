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
# # Do more layers buy more sequential steps? A reasoning-depth study with `probes`
#
# **Question.** Wei et al. (2022) argue that a task of k sequential steps needs O(k) layers;
# pointer doubling would need only O(log k). The built-in `depth` ladder holds GPT-NeoX models
# that differ *only* in their number of layers, trained on a pointer-chasing task (follow k
# arrows around a cycle whose arrows are stated in shuffled order); the task is the one its
# catalogue names. Per rung we measure accuracy per k,
# the largest k it solves, how that grows with depth, and at which layer each intermediate
# step's value can be read. The notebook reads the ladder's rungs from the ladder itself, so it
# stays right when they change; every sentence of the conclusion comes from the numbers below.

# %%
import math

import pandas as pd
import plotly.io as pio
from IPython.display import display
from tqdm import tqdm

import probes
from probes.analysis.reasoning import step_readout_summary, with_steps
from probes.analysis.solvable import (
    SOLVED_AT,
    SOLVED_AT_SENSITIVITY,
    accuracy_table,
    depth_logistic,
    fit_relations,
    last_layer_items,
    relation_curve,
    solvable_steps,
)
from probes.analysis.step_probe import (
    DECODABLE_AT,
    final_residuals,
    first_decodable_layers,
    lens_step_scores,
    probe_steps,
)
from probes.builtin.folders import builtin_catalogue
from probes.cli.display import plural
from probes.errors import InvalidItemError
from probes.jobs.model_rows import readout_rows, step_rows
from probes.ladders import get_ladder
from probes.report.solvable import accuracy_by_k, solvable_by_depth, step_decodability
from probes.tasks import load_items

pio.renderers.default = "notebook"
print("probes", probes.__version__)

# %% [markdown]
# ## 1. Items and models
#
# The pointer-chasing tasks cycle k over their items, so a multiple of the k range holds the same
# number of every k. The evaluation items (seed 0: the ladder's held-out set) are read through
# the logit lens at every layer; the linear probes train and test on separate items (another
# seed), 70% / 30%.
#
# By default the notebook runs a quick version of the study (a few minutes on 2 CPU cores): one
# training seed of every depth, 1 to 8 layers. Set `FULL_STUDY = True` for every rung of the
# ladder (both seeds of every depth: twice the work, and the check that seeds of one depth agree);
# the conclusion below is written from whichever rungs ran.

# %%
FULL_STUDY = False  # True: both training seeds of every depth (twice as long)
(TASK,) = builtin_catalogue("depth").catalogue()["tasks"]  # the ladder's training task
N_ITEMS, MAX_K = 192, 8  # evaluation items (k cycles over them), largest k tested
PROBED_K, PROBE_ITEMS = [2], 600  # k whose steps are probed (k = 2: one intermediate); items drawn
items = [i for i in load_items([TASK], ["prize"], N_ITEMS, seed=0) if i.meta["steps"] <= MAX_K]
probing = [i for i in load_items([TASK], ["prize"], PROBE_ITEMS, seed=2) if i.meta["steps"] in PROBED_K]
specs = get_ladder("depth").model_specs()
if not FULL_STUDY:  # rung names are depth:<layers>x<width>, "-s1" for the second seed
    specs = [spec for spec in specs if not spec.name.endswith("-s1")]
ks = sorted({i.meta["steps"] for i in items})
print(f"{TASK}: {len(items)} items (k = {ks[0]}..{ks[-1]}), {len(specs)} rungs; e.g. {items[0].prompt!r}")

# %%
rows, steps, probes_scores = [], [], []
for spec in tqdm(specs, desc="rungs (lens, step readouts, probes)", unit="rung"):
    model = probes.load_model(spec)  # once per rung: lens, step readouts and probes share it
    readout = probes.read_options(model, items, batch_size=32)
    rows.append(with_steps(readout_rows(model, readout), items))
    steps.append(step_rows(model, readout))
    layers = list(range(model.n_layers + 1))
    for k in PROBED_K:
        group = [item for item in probing if item.meta["steps"] == k]
        scores = probe_steps(final_residuals(model, group, layers), group, layers)
        probes_scores.append(scores.assign(model=model.name, n_layers=model.n_layers))
table = pd.concat(rows, ignore_index=True)
per_item = last_layer_items(table)
chance = float(table["options"].map(lambda options: 1 / len(options)).mean())
print(f"chance (one over the options): {chance:.2f}")

# %% [markdown]
# ## 2. Accuracy per k, with 95% Wilson intervals

# %%
accuracy = accuracy_table(per_item)
accuracy_by_k(accuracy, SOLVED_AT, chance)

# %%
accuracy.pivot_table(index="model", columns="steps", values="accuracy").round(2)

# %% [markdown]
# ## 3. Solvable k per depth, and which relation the data favour
#
# Solvable k: the largest k such that every k' ≤ k reaches accuracy `SOLVED_AT`, with a
# bootstrap interval over items. A rung that solves the largest k tested is *censored* (its
# solvable k is a lower bound) and is left out of the fits. A **bracket** is a rung that fails a
# k which a deeper rung solves: only then does the ladder say anything about whether depth buys
# steps. The fits (constant, log, linear in layers; AICc, Akaike weights, leave-one-out error)
# need three uncensored rungs of two depths at least.

# %%
solvable = solvable_steps(per_item).sort_values("n_layers").reset_index(drop=True)
brackets = [
    (shallow.model, deep.model, int(shallow.solvable_k) + 1)
    for shallow in solvable.itertuples()
    for deep in solvable.itertuples()
    if deep.n_layers > shallow.n_layers and deep.solvable_k > shallow.solvable_k
]
by_model = solvable.set_index("model")
# the brackets whose bootstrap intervals do not overlap
separated = [
    b for b in brackets if by_model.at[b[1], "solvable_k_low"] > by_model.at[b[0], "solvable_k_high"]
]
usable = solvable[~solvable["censored"]]
try:
    fits = fit_relations(usable["n_layers"], usable["solvable_k"])
except InvalidItemError as error:  # too few uncensored rungs or depths
    fits, why_no_fit = pd.DataFrame(), str(error)
display(solvable)

# %%
if fits.empty:
    print(f"no depth fit: {why_no_fit}")
else:
    depths = sorted({*solvable["n_layers"], *range(1, int(solvable["n_layers"].max()) + 1)})
    display(fits[["relation", "intercept", "slope", "aicc", "akaike_weight", "loo_rmse", "n_points"]])
    display(solvable_by_depth(solvable, fits, relation_curve(fits, depths)))

# %% [markdown]
# Solvable k hangs on its threshold: the same measure at several thresholds, with the depth fits'
# Akaike weights at each. The relation is also fitted item by item, which needs no threshold: a
# logistic regression of each item's correctness on k and depth with the training seed as a
# factor, intervals clustered by rung, since depth varies only between training runs
# (`depth_logistic`; `steps_per_layer` is how far the k reached at a fixed accuracy moves per layer).

# %%
seeds = {
    f"depth:{rung['rung'].removeprefix('depth-')}": rung["seed"]
    for rung in builtin_catalogue("depth").catalogue()["rungs"]
}
per_item = per_item.assign(seed=per_item["model"].map(seeds))
by_threshold = pd.concat([solvable_steps(per_item, t) for t in SOLVED_AT_SENSITIVITY], ignore_index=True)
display(by_threshold.pivot_table(index=["n_layers", "model"], columns="threshold", values="solvable_k"))
weights_by_threshold = {}
for threshold, group in by_threshold.groupby("threshold"):
    kept = group[~group["censored"]]
    try:
        fit = fit_relations(kept["n_layers"], kept["solvable_k"])
    except InvalidItemError:  # too few uncensored rungs at this threshold
        continue
    weights_by_threshold[threshold] = fit.set_index("relation")["akaike_weight"]
display(pd.DataFrame(weights_by_threshold).round(3))
try:
    relation = depth_logistic(per_item)
    display(relation[["model_form", "term", "estimate", "low", "high", "p_value"]].round(3))
except InvalidItemError as error:  # too few rungs or depths
    relation, why_no_model = pd.DataFrame(), str(error)

# %% [markdown]
# ## 4. Where does each step's value become decodable?
#
# For items of k steps, the value after step j (j = 0 is the start node, j = k the answer) is
# one of the options. Two readouts of the residual stream at the last prompt token, per layer:
# the logit lens (share of items where that value is the top option) and a linear probe
# (held-out accuracy; it can read any direction, the lens only the unembedding's). The first
# layer where a score reaches `DECODABLE_AT` is that step's decodable layer (none if never).

# %%
lens_scores = lens_step_scores(step_readout_summary(pd.concat(steps, ignore_index=True)))
scores = pd.concat(
    [lens_scores.assign(readout="logit lens"), pd.concat(probes_scores).assign(readout="linear probe")],
    ignore_index=True,
)
scores = scores[scores["steps"].isin(PROBED_K)]
first = first_decodable_layers(scores, DECODABLE_AT)
step_decodability(first, max(PROBED_K))

# %%
first.pivot_table(index=["readout", "model"], columns=["steps", "step"], values="first_layer")

# %% [markdown]
# ## 5. Conclusion (written from the numbers above)

# %%
probe_first = first[(first["readout"] == "linear probe") & (first["steps"] == max(PROBED_K))]
lens_first = first[(first["readout"] == "logit lens") & (first["steps"] == max(PROBED_K))]
lines = [
    "- Solvable k (accuracy ≥ "
    + f"{SOLVED_AT:g} at every k' ≤ k) by rung: "
    + ", ".join(
        f"{r.model} ({plural(r.n_layers, 'layer')}) {r.solvable_k}"
        + (f"+ (censored at k = {r.max_k_tested})" if r.censored else "")
        + f" [95% {r.solvable_k_low:g}-{r.solvable_k_high:g}]"
        for r in solvable.itertuples()
    )
    + ".",
]
if not brackets:
    lines.append(
        "- No bracket: no rung fails a k that a deeper rung solves. Whether more layers buy more "
        "sequential steps is **not determined** on this ladder."
    )
else:
    a, b, k = (separated or brackets)[0]  # an example that holds beyond item noise, if any does
    lines.append(
        f"- {len(brackets)} bracket(s), e.g. {a} ({plural(by_model.at[a, 'n_layers'], 'layer')}) fails "
        f"k = {k}, which {b} ({plural(by_model.at[b, 'n_layers'], 'layer')}) solves; {len(separated)} of "
        "them hold with non-overlapping bootstrap intervals"
        + ("." if separated else ", so the ordering is not established beyond item noise.")
    )
for k in range(2, int(solvable["solvable_k"].max()) + 2):  # which depths solve k: every rung, some, none
    solves = solvable.assign(solves=solvable["solvable_k"] >= k).groupby("n_layers")["solves"]
    every, some = solves.all(), solves.any()
    groups = {
        "every rung": every[every].index.tolist(),
        "some but not every rung": some[some & ~every].index.tolist(),
        "no rung": some[~some].index.tolist(),
    }
    lines.append(
        f"- k = {k} is solved by "
        + "; ".join(f"{who} of depth {', '.join(map(str, ds))}" for who, ds in groups.items() if ds)
        + "."
    )
spread = solvable.groupby("n_layers")["solvable_k"].agg(lambda k: sorted(set(k)))
split = {depth: ks for depth, ks in spread.items() if len(ks) > 1}
if split:  # rungs of one depth (other seeds) that solve different k
    lines.append(
        "- Rungs of the same depth disagree (solvable k by depth: "
        + "; ".join(f"{plural(depth, 'layer')}: {ks}" for depth, ks in split.items())
        + "): whatever depth buys here, not every training seed gets it."
    )
if not fits.empty and fits["akaike_weight"].isna().all():  # too few points for any AICc
    lines.append(f"- Depth fits on {int(fits['n_points'].iloc[0])} rungs: too few points to weigh them.")
elif not fits.empty:
    best = fits.loc[fits["akaike_weight"].idxmax()]
    unweighed = fits.loc[~fits["aicc"].map(math.isfinite), "relation"].tolist()  # too many parameters
    weights = ", ".join(f"{r.relation} {r.akaike_weight:.2f}" for r in fits.itertuples())
    lines.append(
        f"- Depth fits on {int(best['n_points'])} uncensored rungs, Akaike weights {weights}: "
        + (
            f"the {best['relation']} relation is favoured (leave-one-out RMSE {best['loo_rmse']:.2f})"
            if best["akaike_weight"] >= 0.9
            else "no relation is clearly favoured (none has weight ≥ 0.9)"
        )
        + (" and no bracket backs it" if not brackets else "")
        + (
            f"; {', '.join(unweighed)} cannot be weighed with so few points (no finite AICc)."
            if unweighed
            else "."
        )
    )
else:
    lines.append(f"- No depth fit: {why_no_fit}")
if weights_by_threshold:
    constant = ", ".join(f"{w['constant']:.2g} at {t:g}" for t, w in weights_by_threshold.items())
    lines.append(f"- Threshold sensitivity: the constant relation's Akaike weight is {constant}.")
if relation.empty:
    lines.append(f"- No item-level depth model: {why_no_model}")
else:
    additive = relation[relation["model_form"] == "additive"].set_index("term")
    depth, per_layer = additive.loc["n_layers"], additive.loc["steps_per_layer"]
    lines.append(
        f"- Item-level model (correct ~ k + depth + seed, intervals clustered by rung): "
        f"{depth['estimate']:+.2f} log-odds per layer [{depth['low']:.2f}, {depth['high']:.2f}], "
        f"{per_layer['estimate']:.2f} steps per layer [{per_layer['low']:.2f}, {per_layer['high']:.2f}]: "
        + (
            "depth helps."
            if depth["low"] > 0
            else "depth hurts."
            if depth["high"] < 0
            else "the effect of depth is not determined."
        )
    )
for name, frame in (("linear probe", probe_first), ("logit lens", lens_first)):
    reached = frame.dropna(subset=["first_layer"])
    lines.append(
        f"- {name}, k = {max(PROBED_K)}: {len(reached)} of {len(frame)} (rung, step) values become "
        f"decodable (score ≥ {DECODABLE_AT:g}) at some layer"
        + (
            "; first layers by step: "
            + "; ".join(
                f"{model}: " + ", ".join(f"j{int(r.step)}→L{int(r.first_layer)}" for r in group.itertuples())
                for model, group in reached.groupby("model", sort=False)
            )
            if len(reached)
            else ""
        )
        + "."
    )
print("\n".join(lines))

# %% [markdown]
# ## 6. On a hub ladder, with the internet
#
# Not executed here (it downloads the models). Replace the rungs and, on a GPU, the device:
#
# ```python
# TASK = "pointer_chase"                        # k = 1..16; the depth ladder's task is its own
# specs = get_ladder("pythia").model_specs()   # or ["path/to/model.gguf"] offline
# model = probes.load_model(spec, device="cuda")
# ```
#
# Hub models were not trained on this task's format, so test smaller k first (`MAX_K = 4`).
# The same study as a script, with a store that resumes:
# `python -m experiments.reasoning_depth --ladder pythia --steps 1 2 3 4 6 8 --out pythia-depth`.
