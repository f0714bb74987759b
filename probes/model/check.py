"""Is a model read exactly? Each backend's lens against plain transformers, layer by layer.

The reference is computed on the plain Hugging Face model, before any backend wraps it: each
item's prompt and option run as one unpadded row, the residual stream is taken at every block's
input (layer ``l`` < ``n_layers``) and read through the family's own final norm, any
``project_out`` (OPT), the unembedding and the output transform the forward applies (soft caps,
logit scales: :mod:`probes.model.output_transform`); the last layer is the model's own logits.
The reference readout is itself checked: applied to the final norm's input it must give the
model's own logits (``reference_difference``), or the family does something after the norm that
the reference does not know, and the row says the check is not determined.

Through the backend, the lens reads every option of every item batched with padding and one
item at a time, with the prompt-cache path (multi-token options continued from the prompt's
key/value cache, :mod:`probes.lenses.passes`) and as whole rows. A head ablation (every head of
block 0 zeroed at its output projection's input) and a tuned lens (seeded random translators)
are checked against the same plain model.

:func:`check_model` is what ``probes models check`` prints, the architecture matrix tests
assert and ``tests/model/support_table.py`` writes to ``docs/models.md``.
"""

from __future__ import annotations

import copy
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from jaxtyping import Float

from probes.model.output_transform import output_transform

__all__ = ["CheckResult", "check_loaded", "check_model", "plain_model", "plain_parts", "sample_items"]

#: The bar of an exact readout: float32 log-probs agree to this many nats.
TOLERANCE = 1e-4


@dataclass
class CheckResult:
    """How closely one backend's readings of one model equal plain transformers (in nats).

    A difference is ``None`` where the check could not run (``notes`` says why).
    """

    model: str
    architecture: str
    backend: str
    n_layers: int
    #: the reference readout of the last residual (the final norm's input) vs the model's own log-probs
    reference_difference: float
    #: the lens (cached and whole rows, batched and one at a time) vs the reference, every layer
    lens_difference: float | None = None
    #: per layer, the largest lens difference
    layer_differences: list[float] = field(default_factory=list)
    #: the prompt-cache path vs whole rows; ``None`` where the backend reads whole rows only
    cache_difference: float | None = None
    #: a head ablation through the backend vs the same ablation in plain transformers
    ablation_difference: float | None = None
    #: a tuned lens through the backend vs the reference readout of the translated stream
    tuned_difference: float | None = None
    #: the smallest spread (standard deviation over the vocabulary) of the model's own next-token
    #: log-probs after an item's prompt: near 0, every readout is near uniform and agrees vacuously
    output_spread: float = 0.0
    tolerance: float = TOLERANCE
    notes: list[str] = field(default_factory=list)

    @property
    def exact(self) -> bool:
        """Whether the lens and the prompt-cache path are within ``tolerance`` of plain transformers."""
        checked = [self.reference_difference, self.lens_difference, self.cache_difference]
        return (
            self.lens_difference is not None
            and self.reference_difference is not None
            and all(value is None or value <= self.tolerance for value in checked)
        )

    def cell(self, value: float | None, absent: str = "not checked") -> str:
        """One table cell: ``yes (3e-07)``, ``NO (0.02)`` or ``absent``."""
        if value is None:
            return absent
        return f"{'yes' if value <= self.tolerance else 'NO'} ({value:.1e})"

    def line(self) -> str:
        """The row as one line of text."""
        cache = self.cell(self.cache_difference, "whole rows only")
        return (
            f"{self.model} ({self.architecture}, {self.n_layers} layers) via {self.backend}: "
            f"lens {self.cell(self.lens_difference)}, prompt cache {cache}, "
            f"ablations {self.cell(self.ablation_difference)}, tuned lens {self.cell(self.tuned_difference)}"
            + (f"; {'; '.join(self.notes)}" if self.notes else "")
        )


def sample_items(tokenizer: Any, count: int = 4, seed: int = 0) -> list[Any]:
    """Items of random ordinary tokens (seeded): prompts of different lengths, options of one to
    three tokens, so batches need padding and options continue the prompt's cache."""
    from probes.tasks.items import Item

    special = set(getattr(tokenizer, "all_special_ids", []) or [])
    vocabulary = [i for i in range(len(tokenizer)) if i not in special]
    generator = random.Random(seed)

    def text(n: int) -> str:
        return tokenizer.decode(generator.sample(vocabulary, n)).strip() or "a"

    items = []
    for index in range(count):
        options = tuple(" " + text(length) for length in (2, 1, 3))
        prompt = text(3 + 2 * index)
        items.append(Item(f"check{index}", "check", prompt, options[0], options[1], options))
    return items


@dataclass
class PlainParts:
    """Where a plain Hugging Face causal LM keeps its blocks and readout modules."""

    blocks: Sequence[torch.nn.Module]
    final_norm: torch.nn.Module | None
    project_out: torch.nn.Module | None
    unembedding: torch.nn.Module
    transform: Callable[[torch.Tensor], torch.Tensor] | None

    @property
    def entry(self) -> torch.nn.Module:
        """The first module of the readout: its input is the last residual vector."""
        return self.final_norm or self.project_out or self.unembedding

    def readout(self, hidden: Float[torch.Tensor, "*shape d_model"]) -> Float[torch.Tensor, "*shape vocab"]:
        """Final norm, ``project_out``, unembedding and output transform of residual vectors."""
        if self.final_norm is not None:
            hidden = self.final_norm(hidden)
        if self.project_out is not None:
            hidden = self.project_out(hidden)
        logits = self.unembedding(hidden)
        return logits if self.transform is None else self.transform(logits)


def plain_parts(hf_model: torch.nn.Module) -> PlainParts:
    """The blocks (the ``ModuleList`` as long as the config's layer count), the final norm (a norm
    beside them, after them if one is), any ``project_out`` beside them, and the unembedding."""
    config = hf_model.config
    n_layers = next(
        getattr(config, name)
        for name in ("num_hidden_layers", "n_layer", "num_layers", "n_layers")
        if getattr(config, name, None)
    )
    paths = dict(hf_model.named_modules())
    blocks_path = next(
        p for p, m in paths.items() if isinstance(m, torch.nn.ModuleList) and len(m) == n_layers
    )
    parent_path, _, blocks_name = blocks_path.rpartition(".")
    siblings = list(paths[parent_path].named_children())
    where = [name for name, _ in siblings].index(blocks_name)
    norms = [
        (index > where, module)
        for index, (name, module) in enumerate(siblings)
        if "norm" in type(module).__name__.lower() and "embed" not in name
    ]
    norm = max(norms, key=lambda pair: pair[0])[1] if norms else None
    return PlainParts(
        blocks=list(paths[blocks_path]),
        final_norm=norm,
        project_out=dict(siblings).get("project_out"),
        unembedding=hf_model.get_output_embeddings(),
        transform=output_transform(config),
    )


def _plain_hidden(
    hf_model: torch.nn.Module, parts: PlainParts, ids: list[int], zero_heads: bool = False
) -> tuple[list[torch.Tensor], torch.Tensor, torch.Tensor]:
    """One unpadded row: each block's input, the readout's input and the output logits."""
    kept: list[torch.Tensor] = []
    final: list[torch.Tensor] = []

    def keep_input(_module: Any, args: tuple, kwargs: dict) -> None:
        kept.append((args[0] if args else kwargs["hidden_states"]).detach())

    handles = [block.register_forward_pre_hook(keep_input, with_kwargs=True) for block in parts.blocks]
    handles.append(parts.entry.register_forward_pre_hook(lambda _m, args: final.append(args[0])))
    if zero_heads:
        handles.append(
            _output_projection(parts.blocks[0]).register_forward_pre_hook(
                lambda _m, args: (torch.zeros_like(args[0]), *args[1:])
            )
        )
    try:
        with torch.inference_mode():
            logits = hf_model(input_ids=torch.tensor([ids]), use_cache=False).logits[0]
    finally:
        for handle in handles:
            handle.remove()
    return [hidden[0] for hidden in kept], final[0][0], logits


def _output_projection(block: torch.nn.Module) -> torch.nn.Module:
    """A block's attention output projection, by the names the common families use."""
    from probes.model.nnsight.layout import ATTENTION_NAMES, PROJECTION_NAMES

    for attention_name in ATTENTION_NAMES + ("self_attention",):
        attention = getattr(block, attention_name, None)
        for inner in (attention, getattr(attention, "attention", None)):  # GPT-Neo nests one more
            for name in PROJECTION_NAMES:
                if isinstance(getattr(inner, name, None), torch.nn.Module):
                    return getattr(inner, name)
    raise LookupError(f"{type(block).__name__} has no attention output projection by a known name")


Reference = list[list[Float[torch.Tensor, "layer token"]]]


def _reference(
    hf_model: torch.nn.Module, parts: PlainParts, encoded: Sequence[Any], translate: Callable | None = None
) -> tuple[Reference, float]:
    """Per item and option, each answer token's log-prob at every layer from plain transformers,
    and the largest gap between the reference readout of the final norm's input and the logits."""
    n_layers = len(parts.blocks)
    table: Reference = []
    gap = 0.0
    for item in encoded:
        options = []
        for option in item.option_ids:
            hidden, final, logits = _plain_hidden(hf_model, parts, item.prompt_ids + option)
            positions = torch.arange(len(option)) + len(item.prompt_ids) - 1
            targets = torch.tensor(option)
            rows = []
            with torch.inference_mode():
                for layer in range(n_layers):
                    vectors = hidden[layer][positions].float()
                    if translate is not None:
                        vectors = translate(vectors, layer)
                    rows.append(parts.readout(vectors).log_softmax(-1)[torch.arange(len(option)), targets])
                own = logits[positions].float().log_softmax(-1)
                rows.append(own[torch.arange(len(option)), targets])
                rebuilt = parts.readout(final[positions].float()).log_softmax(-1)
                gap = max(gap, float((rebuilt - own).abs().max()))
            options.append(torch.stack(rows))
        table.append(options)
    return table, gap


def _largest(got: Sequence[Sequence[torch.Tensor]], expected: Reference) -> torch.Tensor:
    """Per layer, the largest |got - expected| over items, options and tokens."""
    return torch.stack(
        [(g - e).abs().amax(dim=-1) for gs, es in zip(got, expected) for g, e in zip(gs, es)]
    ).amax(dim=0)


def check_model(
    hf_model: torch.nn.Module,
    tokenizer: Any,
    backend: str,
    name: str = "model",
    items: Sequence[Any] | None = None,
    tuned: bool = True,
    ablations: bool = True,
) -> CheckResult:
    """Check one backend's readings of a plain Hugging Face model against plain transformers.

    A copy of ``hf_model`` is wrapped in the backend (the bridge rewires the model it wraps), so
    ``hf_model`` stays plain: it is the reference (:func:`check_loaded`).
    """
    from probes.model.loading import from_hf_model

    hf_model = hf_model.eval()
    model = from_hf_model(copy.deepcopy(hf_model), tokenizer, name=name, backend=backend)
    return check_loaded(model, hf_model, items, tuned=tuned, ablations=ablations)


def check_loaded(
    model: Any,
    plain: torch.nn.Module,
    items: Sequence[Any] | None = None,
    tuned: bool = True,
    ablations: bool = True,
) -> CheckResult:
    """Check a loaded :class:`~probes.model.hooked.HookedModel` against ``plain``, the same weights
    loaded by plain transformers and wrapped by nothing (a second load, or a copy made before
    wrapping), on ``items`` (:func:`sample_items` of the model's tokenizer by default)."""
    from probes.lenses.reading import encode_item, read_options

    plain = plain.eval()
    parts = plain_parts(plain)
    n_layers = len(parts.blocks)
    items = list(items) if items is not None else sample_items(model.tokenizer)
    encoded = [encode_item(item, model.tokenizer, model.n_ctx) for item in items]
    reference, reference_gap = _reference(plain, parts, encoded)
    translators = _random_translators(n_layers, model.d_model)
    tuned_reference = _reference(plain, parts, encoded, translators.transform)[0] if tuned else None
    ablated = _ablated_reference(plain, parts, encoded) if ablations else None
    result = CheckResult(
        model=model.name,
        architecture=model.backend.architecture,
        backend=getattr(model.backend, "kind", "bridge"),
        n_layers=n_layers,
        reference_difference=reference_gap,
    )
    if reference_gap > TOLERANCE:
        result.notes.append("the plain readout misses what the forward does after the final norm")
    result.output_spread = min(
        float(_plain_hidden(plain, parts, item.prompt_ids)[2][-1].float().log_softmax(-1).std())
        for item in encoded
    )
    if result.output_spread < 1e-3:
        result.notes.append("the model's own log-probs are nearly uniform: the check says little")
    readings = {
        (batch, reuse): read_options(model, items, batch_size=batch, reuse_prompts=reuse).token_logprobs
        for batch in (len(items), 1)
        for reuse in (True, False)
    }
    per_layer = torch.stack([_largest(got, reference) for got in readings.values()]).amax(dim=0)
    result.layer_differences = [float(value) for value in per_layer]
    result.lens_difference = float(per_layer.max())
    with model.residual_reader([n_layers]) as reader:
        continues = bool(getattr(reader, "continues", False))
    if continues:
        result.cache_difference = max(
            float(_largest(readings[(batch, True)], readings[(batch, False)]).max())
            for batch in (len(items), 1)
        )
    if tuned_reference is not None:
        result.tuned_difference = _tuned_difference(model, items, translators, tuned_reference)
    if ablated is not None:
        result.ablation_difference = _ablation_difference(model, encoded, ablated)
    return result


def plain_model(spec: Any, dtype: torch.dtype = torch.float32) -> torch.nn.Module:
    """The model a spec names, loaded by plain transformers as the loader loads it (hub id, folder
    or GGUF file), wrapped by nothing: the reference of :func:`check_loaded`."""
    from pathlib import Path

    from transformers import AutoModelForCausalLM

    if spec.source == "gguf":
        path = Path(spec.path or spec.name)
        options: dict[str, Any] = {"gguf_file": path.name}
        where = str(path.parent)
    elif spec.source == "hub":
        options, where = {"revision": spec.revision}, spec.name
    else:
        from probes.model.loading import _built_in_folder

        folder = spec.path or spec.name if spec.source == "folder" else _built_in_folder(spec)
        options, where = {"use_safetensors": True}, str(folder)
    return AutoModelForCausalLM.from_pretrained(where, dtype=dtype, **options).eval()


def _random_translators(n_layers: int, d_model: int) -> Any:
    """Tuned-lens translators with small seeded random weights (not the identity they start as)."""
    from probes.lenses.tuned.translator import Translators

    translators = Translators(n_layers, d_model)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for linear in translators.layer_translators:
            linear.weight.copy_(torch.randn(linear.weight.shape, generator=generator) * 0.05)
            linear.bias.copy_(torch.randn(linear.bias.shape, generator=generator) * 0.05)
    return translators


def _tuned_difference(model: Any, items: Sequence[Any], translators: Any, reference: Reference) -> float:
    from probes.lenses.reading import read_options
    from probes.lenses.tuned.lens import TunedLens

    lens = TunedLens(translators=translators, info={"model": model.name})
    got = read_options(model, items, lens=lens, batch_size=len(items)).token_logprobs
    return float(_largest(got, reference).max())


def _ablated_reference(hf_model: torch.nn.Module, parts: PlainParts, encoded: Sequence[Any]) -> Any:
    """The last prompt position's log-probs with every head of block 0 zeroed (``None`` if the
    block's output projection has no known name)."""
    try:
        _output_projection(parts.blocks[0])
    except LookupError:
        return None
    return [
        _plain_hidden(hf_model, parts, item.prompt_ids, zero_heads=True)[2][-1].float().log_softmax(-1)
        for item in encoded
    ]


def _ablation_difference(model: Any, encoded: Sequence[Any], ablated: Any) -> float | None:
    """The same ablation through the backend's head hook point, one item at a time."""
    name = model.head_hook(0)
    if name not in model.hook_points():
        return None
    gap = 0.0
    for item, expected in zip(encoded, ablated):
        ids = torch.tensor([item.prompt_ids])
        with torch.inference_mode():
            logits = model.run_with_hooks(
                ids, torch.ones_like(ids), [(name, lambda z, hook: torch.zeros_like(z))]
            )
        gap = max(gap, float((logits[0, -1].float().log_softmax(-1) - expected).abs().max()))
    return gap


def check_spec(spec: str, backend: str = "auto", device: str = "cpu", dtype: str = "float32") -> CheckResult:
    """``probes models check``: load the model a spec names as a run loads it, load it again with
    plain transformers, and check the first against the second (:func:`check_loaded`)."""
    from probes.errors import UnknownModelError
    from probes.model.loading import load_model, resolve_dtype
    from probes.model.specs import parse_spec

    parsed = parse_spec(spec)
    model = load_model(parsed, device=device, dtype=dtype, backend=backend)
    try:
        plain = plain_model(parsed, resolve_dtype(dtype)).to(device)
    except (OSError, ValueError) as err:
        raise UnknownModelError(f"plain transformers could not load {parsed.label} ({err}).") from None
    return check_loaded(model, plain)
