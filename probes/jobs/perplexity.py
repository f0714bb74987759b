"""Perplexity of each rung on a held-out text, stored beside a sweep so it can be a size axis.

Wei et al. (2022) plot emergence against a model's perplexity on held-out text as well as
against parameters and FLOPs. Here the text is tokenized once, cut into consecutive windows
of the model's context, each window read in one plain Hugging Face forward pass, and the
negative log-likelihood averaged over every predicted token (token-weighted, so a short last
window counts for what it holds). A window starts with the tokenizer's BOS token (else its
EOS token) so that every text token is predicted; a tokenizer with neither leaves each
window's first token unpredicted. Windows do not overlap: a token sees at most the context
of its own window, the usual trade of accuracy for one pass over the text.

Each measurement is one unit of the run layer (:func:`probes.jobs.runner.execute`): planned, skipped
when already measured on the same text (SHA-256), token cap, window and dtype, and written as
one shard of kind ``perplexity`` (one row, with the text's hash and the toolkit version) with
its manifest, atomically, like every other table. The options and the models are the run
layer's too: the same ``--models``/``--ladder``/``--steps``, ``--out``, device, dtype and batch
flags as every command, each spec parsed once.
"""

from __future__ import annotations

import datetime
import hashlib
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import torch
from jaxtyping import Int

from probes.errors import ProbesError
from probes.jobs.options import RunOptions
from probes.jobs.runner import execute
from probes.jobs.units import Output, PlannedModel, Unit, model_specs
from probes.jobs.validation import check_options
from probes.store.store import Store
from probes.version import __version__

if TYPE_CHECKING:
    from probes.model.loading import HookedModel

#: Kind of the perplexity tables in a store (``analyses/perplexity/<model>/perplexity/<variant>``).
PERPLEXITY = "perplexity"
#: Task name of the perplexity units.
TASK = "perplexity"
#: File of the measurements in stores written before the run layer (still read).
PERPLEXITY_FILE = "perplexity.parquet"
#: What identifies one measurement (a re-run replaces the row with the same key); a
#: ``max_tokens`` of NA means the whole text.
KEY = ["model", "text_sha256", "max_tokens", "window", "dtype"]


class PerplexityError(ProbesError):
    """A held-out text that cannot be read or measured (missing file, unknown dataset, empty)."""


@dataclass
class PerplexityOptions(RunOptions):
    """What `probes perplexity` measures and where it writes."""

    text: Path | None = field(default=None, metadata={"help": "A UTF-8 text file to measure on."})
    dataset: str | None = field(
        default=None,
        metadata={"help": "A datasets.load_dataset name to measure on instead, e.g. wikitext."},
    )
    dataset_config: str | None = field(
        default=None, metadata={"help": "The dataset's configuration, e.g. wikitext-103-raw-v1."}
    )
    split: str = field(default="test", metadata={"help": "The dataset's split."})
    column: str = field(default="text", metadata={"help": "The dataset's text column (rows joined)."})
    max_tokens: int | None = field(
        default=None, metadata={"help": "Measure on the first N tokens of the text only."}
    )
    window: int | None = field(
        default=None, metadata={"help": "Tokens per forward pass; the model's context when omitted."}
    )
    batch_size: int = field(default=1, metadata={"help": "Windows per forward pass."})
    overwrite: bool = field(default=False, metadata={"help": "Measure again models already measured."})


@dataclass(frozen=True)
class HeldOutText:
    """A text to measure on, with a name for people and a hash for machines."""

    name: str
    text: str

    @property
    def sha256(self) -> str:
        """SHA-256 of the UTF-8 text: two measurements compare only if theirs are equal."""
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()


def text_from_file(path: str | Path) -> HeldOutText:
    """The held-out text in a UTF-8 file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise PerplexityError(f"cannot read the text file {path} ({err}); pass a UTF-8 text file.") from err
    return _checked(HeldOutText(name=path.name, text=text))


def text_from_dataset(
    name: str, config: str | None = None, split: str = "test", column: str = "text"
) -> HeldOutText:
    """The rows of a Hugging Face dataset's text column, joined by blank lines.

    ``datasets`` is imported only here, so the toolkit does not depend on it.
    """
    try:
        from datasets import load_dataset
    except ImportError as err:
        raise PerplexityError(
            f"--dataset needs the datasets package: pip install datasets ({err}); or pass --text FILE."
        ) from err
    try:
        rows = load_dataset(name, config, split=split)
    except Exception as err:  # datasets raises many kinds (network, unknown name, unknown config)
        raise PerplexityError(f"could not load dataset {name!r} ({config}, {split}): {err}") from err
    if column not in rows.column_names:
        raise PerplexityError(f"dataset {name!r} has no column {column!r}; it has {rows.column_names}.")
    label = "/".join(part for part in (name, config) if part) + f":{split}"
    return _checked(HeldOutText(name=label, text="\n\n".join(str(row) for row in rows[column])))


def _checked(text: HeldOutText) -> HeldOutText:
    if not text.text.strip():
        raise PerplexityError(f"the held-out text {text.name!r} is empty.")
    return text


def windows(
    token_ids: list[int], window: int, prefix: int | None
) -> list[tuple[Int[torch.Tensor, " length"], int]]:
    """Consecutive windows of the text's tokens, each with how many of its tokens are predicted.

    With a ``prefix`` token each window is ``[prefix] + window - 1`` text tokens and all of
    those are predicted; without, each window holds ``window`` text tokens and all but its
    first are predicted.
    """
    if window < 2:
        raise PerplexityError(f"a window of {window} tokens predicts nothing; use at least 2.")
    step = window - 1 if prefix is not None else window
    chunks = []
    for start in range(0, len(token_ids), step):
        chunk = token_ids[start : start + step]
        ids = [prefix, *chunk] if prefix is not None else chunk
        if len(ids) >= 2:
            chunks.append((torch.tensor(ids, dtype=torch.long), len(ids) - 1))
    return chunks


@torch.inference_mode()
def negative_log_likelihood(
    model: HookedModel,
    text: str,
    window: int | None = None,
    max_tokens: int | None = None,
    batch_size: int = 1,
) -> tuple[float, int]:
    """Token-weighted mean NLL (nats) of ``text`` under a :class:`~probes.model.loading.HookedModel`.

    Returns:
        The mean NLL over predicted tokens and how many tokens were predicted.
    """
    tokenizer = model.tokenizer
    token_ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    if max_tokens is not None:
        token_ids = token_ids[:max_tokens]
    prefix = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
    size = min(window or model.n_ctx, model.n_ctx)
    by_length: dict[int, list[torch.Tensor]] = {}
    for ids, _ in windows(token_ids, size, prefix):
        by_length.setdefault(len(ids), []).append(ids)  # equal lengths batch without padding
    if not by_length:
        raise PerplexityError("the held-out text has fewer than 2 tokens; nothing to predict.")
    total, count = 0.0, 0
    device = model.device
    for same_length in by_length.values():
        for start in range(0, len(same_length), batch_size):
            batch = torch.stack(same_length[start : start + batch_size]).to(device)
            logits = model.logits(batch)[:, :-1].float()
            targets = batch[:, 1:]
            losses = torch.nn.functional.cross_entropy(logits.transpose(1, 2), targets, reduction="sum")
            total += float(losses)
            count += targets.numel()
    return total / count, count


def unit(model: PlannedModel, text: HeldOutText, options: PerplexityOptions) -> Unit:
    """The run-layer unit of one model's measurement on ``text`` with these settings.

    Its variant names the text, the token cap, the window and the dtype, so measurements with
    other settings live beside it; its fingerprint holds the same settings.
    """
    settings = {"text_sha256": text.sha256, "max_tokens": options.max_tokens, "window": options.window}
    cap = "all" if options.max_tokens is None else options.max_tokens
    window = "context" if options.window is None else options.window
    variant = f"text-{text.sha256[:16]}.tokens-{cap}.window-{window}.{options.dtype}"
    return Unit(model, TASK, variant, (), kind=PERPLEXITY, lens="output", settings=settings)


def measure(model: HookedModel, unit: Unit, text: HeldOutText, options: PerplexityOptions) -> dict[str, Any]:
    """Measure a loaded model's perplexity on ``text``: the row stored for it."""
    nll, count = negative_log_likelihood(
        model, text.text, options.window, options.max_tokens, options.batch_size
    )
    return {
        "model": model.name,
        "revision": model.spec.revision or "",
        "spec": unit.model.text,
        "text_name": text.name,
        "text_sha256": text.sha256,
        "max_tokens": options.max_tokens,
        "window": min(options.window or model.n_ctx, model.n_ctx),
        "dtype": options.dtype,
        "device": options.device,
        "n_tokens": count,
        "nll": nll,
        "perplexity": math.exp(nll),
        "toolkit_version": __version__,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }


def read_perplexity(root: str | Path) -> pd.DataFrame:
    """The perplexity rows of a store (empty if none were measured), one per :data:`KEY`.

    Rows come from the store's ``perplexity`` shards; the newest row of a key wins.
    """
    tables = []
    store = Store(root)
    if store.shard_paths(PERPLEXITY):
        tables.append(store.read(PERPLEXITY))
    if not tables:
        return _typed(pd.DataFrame(columns=[*KEY, "perplexity", "created"]))
    rows = _typed(pd.concat(tables, ignore_index=True))
    return rows.sort_values("created", kind="stable").drop_duplicates(KEY, keep="last").reset_index(drop=True)


def _typed(rows: pd.DataFrame) -> pd.DataFrame:
    """Key columns in one dtype each, so rows from memory and from disk compare equal."""
    rows = rows.copy()
    for column in ("max_tokens", "window"):
        rows[column] = pd.to_numeric(rows[column]).astype("Int64")
    for column in ("model", "text_sha256", "dtype"):
        rows[column] = rows[column].astype(str)
    return rows


def run_perplexity(options: PerplexityOptions) -> pd.DataFrame:
    """Measure every model of ``options`` on its text through the run layer; all stored rows.

    Each model is one unit of :func:`probes.jobs.runner.execute`: measured once per text, token cap,
    window and dtype (a re-run skips it), written as one shard atomically.
    """
    check_options(options)
    if (options.text is None) == (options.dataset is None):
        raise PerplexityError("give the held-out text as exactly one of --text FILE or --dataset NAME.")
    if options.text is not None:
        text = text_from_file(options.text)
    else:
        text = text_from_dataset(str(options.dataset), options.dataset_config, options.split, options.column)
    units = [unit(model, text, options) for model in model_specs(options)]

    def compute(model: HookedModel, pending: list[Unit]) -> Iterator[Output]:
        for pending_unit in pending:
            row = measure(model, pending_unit, text, options)
            yield Output(pending_unit, pd.DataFrame([row]), fields={"text_name": text.name})

    execute(units, options, compute, "perplexity")
    return read_perplexity(options.out)
