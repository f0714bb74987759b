"""The feature study of a ladder: SAE attribution, splicing and top-vs-random ablation, into the store.

For every model of the ladder, task and variant, and every SAE that reads the model (the ones
shipped with a built-in rung, or ``--sae``), it writes three tables to the result store, each
shard with a manifest record like the lens sweep's:

* ``features``: per item and active feature, its attribution to the log-odds of true over
  distractor and the checks (:mod:`probes.features.attribution`);
* ``feature_items``: per item, the terms of the attribution identity and the spliced log-odds;
* ``feature_ablation``: per item, the top-k distractor features against k random ones,
  cross-fitted (:mod:`probes.features.ablation`).

Rows carry ``layer``, ``sae`` (how to name the SAE again) and ``sae_sha256``. The study is a
client of :mod:`probes.jobs.runner`, so a re-run skips the shards already written for the same
inputs.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field

import pandas as pd

from probes.ablate.prompts import encode_prompts
from probes.errors import ProbesError
from probes.features.ablation import top_vs_random
from probes.features.attribution import CHECKED, STEPS, attribute_features
from probes.features.dictionary import LayerSAE
from probes.jobs.manifest import provenance
from probes.jobs.options import ItemOptions
from probes.jobs.runner import execute
from probes.jobs.units import Output, PlannedModel, Unit, model_specs, my_slice
from probes.jobs.validation import check_options
from probes.model.loading import HookedModel
from probes.store.store import Store
from probes.tasks import Item, load_items
from probes.tasks.items import task_and_variant

#: Kinds of the study's tables.
FEATURES, FEATURE_ITEMS, FEATURE_ABLATION = "features", "feature_items", "feature_ablation"
KINDS = (FEATURES, FEATURE_ITEMS, FEATURE_ABLATION)
#: What ``Unit.lens`` says for the study's shards (the SAEs' weights hash goes beside it).
SAE_LENS = "sae"
#: Fewest items per task and variant: two halves of at least two, to rank on one and ablate on the other.
MIN_ITEMS = 4


@dataclass
class FeatureOptions(ItemOptions):
    """What a feature study runs and where it writes."""

    variants: list[str] | None = field(
        default=None, metadata={"help": "Prompt variants to analyse; every variant but cot by default."}
    )
    sae: list[str] | None = field(
        default=None,
        metadata={
            "help": "SAEs: a SAELens release/id (online), an SAE folder or a folder of them; the SAEs "
            "shipped with the built-in rungs by default."
        },
    )
    layers: list[int] | None = field(
        default=None, metadata={"help": "Only the SAEs of these residual layers (-1 = last); all by default."}
    )
    ig_steps: int = field(
        default=STEPS,
        metadata={
            "help": "Intervals of the integrated-gradients path to start with (doubled per item until the "
            "attribution identity holds to 1%)."
        },
    )
    checked: int = field(
        default=CHECKED, metadata={"help": "Features per item whose attribution is checked by ablating them."}
    )
    ks: list[int] = field(
        default_factory=lambda: [1, 2, 4, 8],
        metadata={"help": "Numbers of features ablated together, top-k distractor features vs k random."},
    )
    draws: int = field(default=10, metadata={"help": "Random feature sets per k (and half of the items)."})
    batch_size: int = field(default=64, metadata={"help": "Prompts per forward pass."})

    def check(self) -> None:
        """Raise :class:`ProbesError` naming the first option that cannot work (or SAELens missing)."""
        from probes.features.saelens import sae_lens

        sae_lens()  # before anything is planned, loaded or written
        counts = {"--ig-steps": (self.ig_steps, 1), "--checked": (self.checked, 0),
                  "--draws": (self.draws, 1), "--batch-size": (self.batch_size, 1)}  # fmt: skip
        for flag, (value, least) in counts.items():
            if value < least:
                raise ProbesError(f"{flag} {value}: give a whole number of at least {least}.")
        if not self.ks or min(self.ks) < 1:
            raise ProbesError(f"--ks {self.ks}: give numbers of features of at least 1, e.g. --ks 1 2 4 8.")
        if self.n_items is not None and self.n_items < MIN_ITEMS:
            raise ProbesError(
                f"--n-items {self.n_items}: the cross-fitted ablation needs at least {MIN_ITEMS} items."
            )
        if self.variants is not None and "cot" in self.variants:
            raise ProbesError("--variants cot: the feature study reads the answer right after the prompt.")


def _sae_weights(options: FeatureOptions, model: PlannedModel) -> str:
    """A sha256 naming the SAEs a model will be read with, known before the model loads."""
    from probes.features.sources import shipped_entries, source_sha256

    if options.sae:
        payload: object = [source_sha256(source) for source in options.sae]
    else:
        entries = shipped_entries(model.label)
        if not entries:
            raise ProbesError(
                f"no SAEs are shipped for {model.label}; give --sae release/id (SAELens's pretrained SAEs) "
                "or --sae FOLDER (an SAE in SAELens's format, e.g. from probes sae train)."
            )
        payload = {layer: entry["files"] for layer, entry in entries.items()}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def _sae_count(options: FeatureOptions, model: PlannedModel) -> int:
    """How many SAEs read ``model``: the shipped ones (1 for ``--sae``, unknown before loading)."""
    from probes.features.sources import shipped_entries

    return 1 if options.sae else max(1, len(shipped_entries(model.label)))


def _groups(options: FeatureOptions) -> dict[tuple[str, str], list[Item]]:
    """The run's items by (task, variant), the chain-of-thought variant left out unless asked for."""
    variants = options.variants
    items = load_items(options.tasks, variants, options.n_items, options.seed)
    groups: dict[tuple[str, str], list[Item]] = {}
    for item in items:
        if variants is None and item.variant == "cot":
            continue
        groups.setdefault((item.task, item.variant), []).append(item)
    for (task, variant), chosen in groups.items():
        if len(chosen) < MIN_ITEMS:
            raise ProbesError(
                f"{task} ({variant}) has {len(chosen)} item(s); the cross-fitted ablation needs at least "
                f"{MIN_ITEMS}: give a longer item file or leave that variant out (--variants)."
            )
    return groups


def plan(options: FeatureOptions) -> list[Unit]:
    """One unit per (model, task, variant, table), then this process's slice of them."""
    models = model_specs(options)
    groups = _groups(options)
    settings = {
        "settings": {
            "sae": options.sae, "layers": options.layers, "ig_steps": options.ig_steps,
            "checked": options.checked, "ks": options.ks, "draws": options.draws, "seed": options.seed,
        }
    }  # fmt: skip
    units = []
    for model in models:
        weights = _sae_weights(options, model)
        for (task, variant), items in groups.items():
            for kind in (FEATURES, FEATURE_ABLATION):
                units.append(
                    Unit(model, task, variant, tuple(items), kind, SAE_LENS, weights, settings=settings)
                )
    return my_slice(units, options.shard)


def analyse_model(
    model: HookedModel, items: list[Item], saes: list[LayerSAE], options: FeatureOptions | None = None
) -> dict[str, pd.DataFrame]:
    """The study's three tables for one loaded model on one task and variant's items, without a store.

    Rows carry ``layer``, ``sae``, ``sae_sha256`` and the store's provenance columns.
    """
    options = options or FeatureOptions()
    options.check()
    task, variant = task_and_variant(items, "analyse_model")
    prompts = encode_prompts(items, model)
    found: dict[str, list[pd.DataFrame]] = {kind: [] for kind in KINDS}
    for sae in saes:
        origin = {"sae": sae.source, "sae_sha256": sae.sha256}
        features, per_item = attribute_features(
            model, prompts, sae, options.ig_steps, options.checked, options.batch_size
        )
        ablation = top_vs_random(
            model, prompts, sae, features, options.ks, options.draws, options.seed, options.batch_size
        )
        found[FEATURES].append(features.assign(**origin))
        found[FEATURE_ITEMS].append(per_item.assign(**origin))
        found[FEATURE_ABLATION].append(ablation.assign(**origin))
    return {
        kind: _with_origin(model, task, variant, kind, pd.concat(t, ignore_index=True))
        for kind, t in found.items()
    }


def _with_origin(model: HookedModel, task: str, variant: str, kind: str, table: pd.DataFrame) -> pd.DataFrame:
    origin = provenance(model, SAE_LENS)
    context = {"task": task, "variant": variant, "analysis": kind}
    return table.assign(model=origin.pop("model"), revision=origin.pop("revision"), **context, **origin)


def run_feature_study(options: FeatureOptions) -> Store:
    """Run (or resume) the study; returns the store it wrote to."""
    from probes.features.sources import load_sources, saes_for

    options.check()
    check_options(options)
    units = plan(options)
    given = load_sources(options.sae) if options.sae else None

    def compute(model: HookedModel, pending: list[Unit]) -> Iterator[Output]:
        saes = saes_for(model, given, options.layers)
        done: dict[tuple[str, str], dict[str, pd.DataFrame]] = {}
        for unit in pending:
            key = (unit.task, unit.variant)
            if key not in done:
                done[key] = analyse_model(model, list(unit.items), saes, options)
            tables = done[key]
            if unit.kind == FEATURES:
                items = tables[FEATURE_ITEMS]
                yield Output(
                    unit,
                    items,
                    FEATURE_ITEMS,
                    fields={"analysis": FEATURE_ITEMS, "n_rows": len(items)},
                    done=False,
                )
            table = tables[unit.kind]
            yield Output(unit, table, unit.kind, fields={"analysis": unit.kind, "n_rows": len(table)})

    def work(unit: Unit) -> float:  # forward passes per item and SAE, the path's refinement guessed at 2×
        if unit.kind == FEATURES:
            passes = 2 * options.ig_steps + 3 + options.checked
        else:
            passes = 1 + len(options.ks) * (1 + options.draws)
        return len(unit.items) * passes * _sae_count(options, unit.model)

    return execute(units, options, compute, "features", work=work, unit_name="pass")
