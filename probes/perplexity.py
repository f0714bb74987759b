"""Perplexity of each rung on a held-out text, stored beside a sweep so it can be a size axis.

Wei et al. (2022) plot emergence against a model's perplexity on held-out text as well as
against parameters and FLOPs. Here the text is tokenized once, cut into consecutive windows
of the model's context, each window read in one plain Hugging Face forward pass, and the
negative log-likelihood averaged over every predicted token (token-weighted, so a short last
window counts for what it holds). A window starts with the tokenizer's BOS token (else its
EOS token) so that every text token is predicted; a tokenizer with neither leaves each
window's first token unpredicted. Windows do not overlap: a token sees at most the context
of its own window, the usual trade of accuracy for one pass over the text.

Measurements go to ``<store>/perplexity.parquet``, one row per :data:`KEY`,
with the text's SHA-256 and the toolkit version, written atomically
(:func:`probes.store.write_atomically`). The options and the models come from the run layer
(:mod:`probes.runner`): the same ``--models``/``--ladder``/``--steps``, ``--out``, device,
dtype and batch flags as every command, each spec parsed once.
"""

from __future__ import annotations

import datetime
import hashlib
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import torch
from jaxtyping import Int
from tqdm.auto import tqdm

from probes.errors import ProbesError
from probes.runner import PlannedModel, RunOptions, model_specs, planned
from probes.store import write_atomically
from probes.version import __version__

if TYPE_CHECKING:
    from probes.models import HookedModel

#: File of the measurements, in a store's folder.
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
    """Token-weighted mean NLL (nats) of ``text`` under a :class:`~probes.models.HookedModel`.

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


def measure(spec: str | PlannedModel, text: HeldOutText, options: PerplexityOptions) -> dict[str, Any]:
    """Load one model and measure its perplexity on ``text``: the row stored for it."""
    from probes.models import load_model

    model_spec = spec if isinstance(spec, PlannedModel) else planned(spec)
    model = load_model(model_spec.spec, device=options.device, dtype=options.dtype)
    nll, count = negative_log_likelihood(
        model, text.text, options.window, options.max_tokens, options.batch_size
    )
    return {
        "model": model.name,
        "revision": model.spec.revision or "",
        "spec": model_spec.text,
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
    """The perplexity rows stored in a store's folder (empty if none were measured)."""
    path = Path(root) / PERPLEXITY_FILE
    if not path.exists():
        return _typed(pd.DataFrame(columns=[*KEY, "perplexity", "created"]))
    return _typed(pd.read_parquet(path))


def _typed(rows: pd.DataFrame) -> pd.DataFrame:
    """Key columns in one dtype each, so rows from memory and from disk compare equal."""
    rows = rows.copy()
    for column in ("max_tokens", "window"):
        rows[column] = pd.to_numeric(rows[column]).astype("Int64")
    for column in ("model", "text_sha256", "dtype"):
        rows[column] = rows[column].astype(str)
    return rows


def store_perplexity(root: str | Path, rows: list[dict[str, Any]]) -> Path:
    """Add rows to the store's perplexity file, replacing earlier rows with the same :data:`KEY`."""
    path = Path(root) / PERPLEXITY_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    new = _typed(pd.DataFrame(rows))
    old = read_perplexity(root)
    if len(old):
        marked = old.merge(new[KEY].drop_duplicates(), on=KEY, how="left", indicator=True)
        kept = old[(marked["_merge"] == "left_only").to_numpy()]
        new = pd.concat([kept, new], ignore_index=True)
    return write_atomically(path, lambda handle: new.to_parquet(handle, index=False))


def run_perplexity(options: PerplexityOptions) -> pd.DataFrame:
    """Measure every model of ``options`` on its text (skipping ones already measured); all rows.

    A model counts as measured when a row has its label, the text's hash, the dtype, the
    token cap and (when ``--window`` is given) the window.
    """
    if (options.text is None) == (options.dataset is None):
        raise PerplexityError("give the held-out text as exactly one of --text FILE or --dataset NAME.")
    if options.text is not None:
        text = text_from_file(options.text)
    else:
        text = text_from_dataset(str(options.dataset), options.dataset_config, options.split, options.column)
    models = model_specs(options)
    done = read_perplexity(options.out)
    cap = done["max_tokens"]
    same = (
        (done["text_sha256"] == text.sha256)
        & (done["dtype"] == options.dtype)
        & (cap.isna() if options.max_tokens is None else cap == options.max_tokens)
        & (True if options.window is None else done["window"] == options.window)
    )
    measured = set(done.loc[same.fillna(False).astype(bool), "model"])
    for model in tqdm(models, desc="perplexity", disable=not options.progress):
        if options.overwrite or model.label not in measured:
            store_perplexity(options.out, [measure(model, text, options)])
    return read_perplexity(options.out)
