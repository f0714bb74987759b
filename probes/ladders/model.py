"""Ladders and rungs: ordered families of language models of one lineage, with their metadata.

A :class:`Ladder` may also have a second axis, training steps: Pythia publishes 154 checkpoints per
size as hub revisions ``step0`` … ``step143000``, and :meth:`Ladder.model_specs` turns rungs × steps
into :class:`probes.model.specs.ModelSpec` objects such as ``EleutherAI/pythia-160m@step3000`` that carry
their ladder, rung and step. Where ladders come from (the hub catalogue, the built-in ladder
folders, runtime registration) is :mod:`probes.ladders.registry`'s business.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field, replace
from typing import Any

from probes.errors import LadderError, UnknownModelError
from probes.model.specs import ModelSpec, parse_spec

__all__ = ["NUMERIC_FIELDS", "REVISION_SEPARATOR", "Ladder", "Rung"]

#: Rung figures that are numbers (and so need a source when they are not null).
NUMERIC_FIELDS = (
    "parameters",
    "non_embedding_parameters",
    "layers",
    "d_model",
    "heads",
    "vocab_size",
    "context_length",
    "training_tokens",
    "training_flops",
    "training_flops_total_parameters",
)

#: Separator between a hub id and its revision in a model spec.
REVISION_SEPARATOR = "@"


@dataclass(frozen=True)
class Rung:
    """One model of a ladder and its published (or computed) figures.

    Attributes:
        name: Short name, unique within the ladder (e.g. ``"pythia-160m"``).
        model: Model spec to load: a hub id (``"EleutherAI/pythia-160m"``) or a built-in rung
            (``"organism:4x96"``).
        revision: Hub revision of this rung, or None for the default branch.
        display_name: Human-readable name for tables and plots (defaults to ``name``).
        parameters: Every parameter, tied weights counted once.
        non_embedding_parameters: ``parameters`` minus token embeddings, an untied unembedding
            and learned position embeddings (Kaplan et al. 2020).
        layers: Number of transformer blocks.
        d_model: Width of the residual stream.
        heads: Number of (query) attention heads.
        vocab_size: Rows of the embedding matrix (may be padded beyond the tokenizer).
        context_length: Longest input the model accepts (config ``max_position_embeddings``).
        training_tokens: Tokens seen in pre-training by this checkpoint, or None if unpublished.
        training_flops: 6 · ``non_embedding_parameters`` · ``training_tokens``, or None.
        training_flops_total_parameters: 6 · ``parameters`` · ``training_tokens``, or None.
        architecture: The published ``config.json`` values the parameter counts were computed
            from (``model_type`` plus the shape-defining keys).
        sources: Where each figure comes from, keyed by field name.
        notes: Anything a user of this rung should know (e.g. a different unembedding path).
        held_out_perplexity: Per-token perplexity on the rung's own held-out text, where its
            trainer measured one (the built-in ladders); None for hub rungs.
        training_step: The optimizer step of these weights, for rungs that are checkpoints of
            one model (the built-in training ladders); hub checkpoints use revisions instead.
    """

    name: str
    model: str
    revision: str | None = None
    display_name: str | None = None
    parameters: int | None = None
    non_embedding_parameters: int | None = None
    layers: int | None = None
    d_model: int | None = None
    heads: int | None = None
    vocab_size: int | None = None
    context_length: int | None = None
    training_tokens: int | None = None
    training_flops: int | None = None
    training_flops_total_parameters: int | None = None
    architecture: dict[str, Any] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)
    notes: str = ""
    held_out_perplexity: float | None = None
    training_step: int | None = None

    @property
    def label(self) -> str:
        """The name to show in tables and plots."""
        return self.display_name or self.name

    @property
    def spec(self) -> str:
        """The model spec of this rung, with its revision if it has one."""
        return _join_spec(self.model, self.revision)

    def to_dict(self) -> dict[str, Any]:
        """The rung as a JSON-ready dictionary (the catalogue's schema)."""
        return {
            "name": self.name,
            "display_name": self.display_name,
            "model": self.model,
            "revision": self.revision,
            **{name: getattr(self, name) for name in NUMERIC_FIELDS},
            "architecture": dict(self.architecture),
            "sources": dict(self.sources),
            "notes": self.notes,
            "held_out_perplexity": self.held_out_perplexity,
            "training_step": self.training_step,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], default_sources: dict[str, str] | None = None) -> Rung:
        """A rung from a catalogue entry.

        Args:
            data: The entry, in the schema of :meth:`to_dict`.
            default_sources: The ladder's sources, used for every figure the entry's own
                ``sources`` does not name. In both, ``{name}`` and ``{model}`` are filled in
                from the entry.

        Returns:
            The rung.

        Raises:
            LadderError: If the entry lacks ``name`` or ``model`` or has unknown keys.
        """
        known = {"name", "display_name", "model", "revision", *NUMERIC_FIELDS}
        known |= {"architecture", "sources", "notes", "held_out_perplexity", "training_step"}
        unknown = set(data) - known
        if unknown:
            raise LadderError(
                f"rung {data.get('name')!r} has unknown keys {sorted(unknown)}; known keys: {sorted(known)}"
            )
        if "name" not in data or "model" not in data:
            raise LadderError(f"a rung needs a 'name' and a 'model'; got keys {sorted(data)}")
        merged = {**(default_sources or {}), **(data.get("sources") or {})}
        sources = {
            key: text.replace("{name}", data["name"]).replace("{model}", data["model"])
            for key, text in merged.items()
        }
        return cls(
            name=data["name"],
            model=data["model"],
            revision=data.get("revision"),
            display_name=data.get("display_name"),
            **{name: data.get(name) for name in NUMERIC_FIELDS},
            architecture=dict(data.get("architecture") or {}),
            sources=sources,
            notes=data.get("notes") or "",
            held_out_perplexity=data.get("held_out_perplexity"),
            training_step=data.get("training_step"),
        )


@dataclass(frozen=True)
class Ladder:
    """An ordered family of models of one lineage, optionally with a training-steps axis.

    Attributes:
        name: The ladder's name (``"pythia"``), as given to ``probes run --ladder``.
        description: One line on what the ladder is.
        family: Architecture family (Hugging Face ``model_type``, e.g. ``"gpt_neox"``).
        rungs: The models, smallest first.
        checkpoint_steps: Published training steps every rung has a checkpoint at, ascending,
            or None when only final weights exist.
        revision_template: How a step becomes a hub revision, e.g. ``"step{step}"``.
        tokens_per_step: Training tokens per optimizer step, so that tokens at a checkpoint =
            step × tokens_per_step; None if unknown or without a steps axis.
        sources: Where the ladder-level figures (checkpoint steps, tokens per step) come from.
        notes: Anything that holds for every rung.
    """

    name: str
    description: str
    family: str
    rungs: list[Rung]
    checkpoint_steps: list[int] | None = None
    revision_template: str | None = None
    tokens_per_step: int | None = None
    sources: dict[str, str] = field(default_factory=dict)
    notes: str = ""

    def __post_init__(self) -> None:
        if not self.rungs:
            raise LadderError(f"ladder {self.name!r} has no rungs.")
        names = [rung.name for rung in self.rungs]
        if len(set(names)) != len(names):
            raise LadderError(f"ladder {self.name!r} has duplicate rung names: {names}")
        if self.checkpoint_steps is not None:
            if self.revision_template is None or "{step}" not in self.revision_template:
                raise LadderError(
                    f"ladder {self.name!r} has checkpoint steps but no revision_template with '{{step}}'."
                )
            if list(self.checkpoint_steps) != sorted(set(self.checkpoint_steps)):
                raise LadderError(f"ladder {self.name!r}: checkpoint_steps must be ascending and unique.")

    @property
    def has_checkpoints(self) -> bool:
        """Whether the ladder has a training-steps axis."""
        return bool(self.checkpoint_steps)

    def rung(self, name: str) -> Rung:
        """The rung of that name.

        Raises:
            UnknownModelError: If the ladder has no such rung.
        """
        for rung in self.rungs:
            if rung.name == name:
                return rung
        raise UnknownModelError(
            f"ladder {self.name!r} has no rung {name!r}; its rungs are {[r.name for r in self.rungs]}."
        )

    def revision_for(self, step: int) -> str:
        """The hub revision of the checkpoint at a training step.

        Raises:
            UnknownModelError: If the ladder has no steps axis, or no checkpoint at that step.
        """
        self._check_steps([step])
        assert self.revision_template is not None  # guaranteed by __post_init__ for a steps axis
        return self.revision_template.format(step=step)

    def training_tokens_at(self, step: int) -> int | None:
        """Training tokens seen by the checkpoint at a step (None if tokens per step is unknown)."""
        self._check_steps([step])
        return None if self.tokens_per_step is None else step * self.tokens_per_step

    def model_specs(self, steps: list[int] | None = None) -> list[ModelSpec]:
        """Model specs for every rung, or every rung × step, rung-major (smallest rung first).

        Each spec carries this ladder's name, its rung's name and its training step (the step
        asked for, else the rung's own ``training_step``), so that a rung that sits in two
        ladders keeps the ladder it was planned from.

        Args:
            steps: Training steps to take each rung at (e.g. ``[1000, 143000]``); None for each
                rung's default weights; an empty list gives no specs.

        Returns:
            Specs such as ``EleutherAI/pythia-160m`` or ``EleutherAI/pythia-160m@step3000``
            (their :attr:`~probes.model.specs.ModelSpec.text`).

        Raises:
            UnknownModelError: If steps are given for a ladder without a steps axis, or a step has
                no published checkpoint.
        """
        if steps is None:
            return [self._planned(rung, rung.spec, rung.training_step) for rung in self.rungs]
        if not steps:
            return []
        self._check_steps(steps)
        return [
            self._planned(rung, _join_spec(rung.model, self.revision_for(step)), step)
            for rung in self.rungs
            for step in steps
        ]

    def _planned(self, rung: Rung, text: str, step: int | None) -> ModelSpec:
        return replace(parse_spec(text), ladder=self.name, rung=rung.name, training_step=step)

    def rung_for(self, spec: str) -> Rung | None:
        """The rung a model spec refers to (its ``@revision`` ignored), or None if none does."""
        model, _ = _split_spec(spec)
        for rung in self.rungs:
            if model in (rung.model, rung.name):
                return rung
        lowered = model.lower()
        for rung in self.rungs:
            if lowered in (rung.model.lower(), rung.name.lower()):
                return rung
        return None

    def to_dict(self) -> dict[str, Any]:
        """The ladder as a JSON-ready dictionary (rungs with their resolved sources)."""
        return {
            "name": self.name,
            "description": self.description,
            "family": self.family,
            "revision_template": self.revision_template,
            "checkpoint_steps": None if self.checkpoint_steps is None else list(self.checkpoint_steps),
            "tokens_per_step": self.tokens_per_step,
            "sources": dict(self.sources),
            "notes": self.notes,
            "rungs": [rung.to_dict() for rung in self.rungs],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Ladder:
        """A ladder from a catalogue entry (``default_sources`` are applied to every rung)."""
        default_sources = data.get("default_sources") or {}
        steps = data.get("checkpoint_steps")
        return cls(
            name=data["name"],
            description=data.get("description", ""),
            family=data.get("family", ""),
            rungs=[Rung.from_dict(entry, default_sources) for entry in data["rungs"]],
            checkpoint_steps=None if steps is None else [int(step) for step in steps],
            revision_template=data.get("revision_template"),
            tokens_per_step=data.get("tokens_per_step"),
            sources=dict(data.get("sources") or {}),
            notes=data.get("notes") or "",
        )

    def _check_steps(self, steps: list[int]) -> None:
        if not self.checkpoint_steps:
            raise UnknownModelError(
                f"ladder {self.name!r} has no training-steps axis (only final weights are published); "
                f"drop the steps, or use a ladder with checkpoints such as 'pythia'."
            )
        available = self.checkpoint_steps
        for step in steps:
            if step not in available:
                raise UnknownModelError(
                    f"ladder {self.name!r} has no checkpoint at step {step!r}; nearest published steps: "
                    f"{_nearest(available, step)} (all {len(available)}: {available[0]} … {available[-1]})."
                )


def _split_spec(spec: str) -> tuple[str, str | None]:
    model, separator, revision = spec.partition(REVISION_SEPARATOR)
    return model, (revision or None) if separator else None


def _join_spec(model: str, revision: str | None) -> str:
    return model if revision is None else f"{model}{REVISION_SEPARATOR}{revision}"


def _nearest(available: list[int], step: int, count: int = 4) -> list[int]:
    """Up to ``count`` published steps around ``step``."""
    index = bisect.bisect_left(available, step)
    low = max(0, index - count // 2)
    return available[low : low + count]
