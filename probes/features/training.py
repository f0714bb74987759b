"""Train sparse autoencoders on a model's residual stream with SAELens, and measure their quality.

The text is the tuned lens's (:func:`probes.lenses.tuned.text.training_windows`): by default
windows the model samples itself, so nothing is downloaded and the SAE learns the model's own
home ground. Residual vectors are read with probes' hooks at every chosen layer in one pass,
the start token's position left out (its vector is the same in every window and dwarfs the
rest); SAELens's ``SAETrainer`` trains a TopK SAE on them, fed by a seeded iterator, and
``save_inference_model`` writes SAELens's own format (``cfg.json``, ``sae_weights.safetensors``),
which carries the model's fingerprint so the SAE is refused on other weights.

Quality, on windows held out from training (Bricken et al. 2023; Gao et al. 2024):

* ``fve``: fraction of variance explained, ``1 - |x - x̂|² / |x - mean x|²``;
* ``l0``: mean number of active features per vector;
* ``dead``: features that fire on none of the training and held-out vectors;
* ``ce_clean``, ``ce_spliced``, ``ce_zero``: the model's next-token cross-entropy as it is, with
  the SAE's reconstruction in place of the residual (positions after the start token), and
  with that residual zeroed; ``loss_recovered = (ce_zero - ce_spliced) / (ce_zero - ce_clean)``.
"""

from __future__ import annotations

import contextlib
import functools
import json
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from jaxtyping import Float, Int

from probes.features.dictionary import FINGERPRINT_KEY, LayerSAE
from probes.features.saelens import sae_lens
from probes.lenses.tuned.access import model_fingerprint
from probes.lenses.tuned.text import TokenWindows, start_token, training_windows
from probes.model.loading import HookedModel

#: The file beside an SAE's own two that holds probes' quality figures.
QUALITY_FILE = "quality.json"


@dataclass(frozen=True)
class SAETraining:
    """How an SAE is trained (the defaults train the shipped organism SAEs in seconds per layer)."""

    #: Features per residual dimension.
    expansion: int = 8
    #: Active features per vector: this, or ``d_model // 4`` when smaller (at least 1).
    k: int = 12
    steps: int = 1200
    batch_size: int = 256
    lr: float = 3e-3
    #: Token windows sampled (or cut) to train on, and held out for the quality figures.
    windows: int = 2048
    held_out_windows: int = 64
    window_length: int = 64
    seed: int = 0

    def k_for(self, d_model: int) -> int:
        """Active features per vector for a residual stream of width ``d_model``."""
        return max(1, min(self.k, d_model // 4))


@dataclass(frozen=True)
class SAEQuality:
    """How well an SAE reads its layer, on held-out windows (see the module's docstring)."""

    layer: int
    d_sae: int
    k: int
    fve: float
    l0: float
    dead: int
    ce_clean: float
    ce_spliced: float
    ce_zero: float
    loss_recovered: float
    train_vectors: int
    training_seconds: float


def residual_vectors(
    model: HookedModel, tokens: Int[torch.Tensor, "window pos"], layers: Sequence[int], batch_size: int = 64
) -> dict[int, Float[torch.Tensor, "vector d_model"]]:
    """Residual vectors of ``layers`` at every position but the first, in window order."""
    found: dict[int, list[torch.Tensor]] = {layer: [] for layer in layers}

    def keeper(layer: int) -> Any:
        def keep(activation: torch.Tensor, hook: Any) -> None:
            found[layer].append(activation[:, 1:].reshape(-1, activation.shape[-1]).float().cpu())

        return keep

    hooks = [(model.resid_hook(layer), keeper(layer)) for layer in layers]
    with torch.inference_mode():
        for start in range(0, len(tokens), batch_size):
            batch = tokens[start : start + batch_size].to(model.device)
            model.run_with_hooks(batch, torch.ones_like(batch), hooks)
    return {layer: torch.cat(parts) for layer, parts in found.items()}


def _batches(vectors: torch.Tensor, batch_size: int, seed: int) -> Iterator[torch.Tensor]:
    """Shuffled full batches of ``vectors``, epoch after epoch, seeded."""
    generator = torch.Generator().manual_seed(seed)
    while True:
        for index in torch.randperm(len(vectors), generator=generator).split(batch_size):
            if len(index) == batch_size:
                yield vectors[index]


@contextlib.contextmanager
def _quiet_progress() -> Iterator[None]:
    """SAELens's trainer without its progress bars (it builds them with no way to turn them off)."""
    from sae_lens.training import activation_scaler, sae_trainer

    modules = (sae_trainer, activation_scaler)
    bars = [module.tqdm for module in modules]
    for module, bar in zip(modules, bars):
        module.tqdm = functools.partial(bar, disable=True)
    try:
        yield
    finally:
        for module, bar in zip(modules, bars):
            module.tqdm = bar


def _fit(model: HookedModel, layer: int, vectors: torch.Tensor, settings: SAETraining) -> Any:
    """A TopK SAE trained by SAELens on ``vectors`` (the trainer's norm factor folded in)."""
    library = sae_lens()
    from sae_lens.config import LoggingConfig, SAETrainerConfig

    batch_size = min(settings.batch_size, len(vectors))
    torch.manual_seed(settings.seed)  # SAELens initialises its weights from the global generator
    config = library.TopKTrainingSAEConfig(
        d_in=model.d_model,
        d_sae=settings.expansion * model.d_model,
        k=settings.k_for(model.d_model),
        normalize_activations="expected_average_only_in",
    )
    sae = library.TopKTrainingSAE(config)
    trainer = library.SAETrainer(
        cfg=SAETrainerConfig(
            total_training_samples=settings.steps * batch_size,
            train_batch_size_samples=batch_size,
            lr=settings.lr,
            lr_end=settings.lr / 10,
            lr_warm_up_steps=settings.steps // 20,
            lr_decay_steps=settings.steps // 5,
            dead_feature_window=settings.steps // 2,
            feature_sampling_window=settings.steps,
            n_batches_for_norm_estimate=20,
            logger=LoggingConfig(log_to_wandb=False),
        ),
        sae=sae,
        data_provider=_batches(vectors, batch_size, settings.seed + layer),
    )
    with _quiet_progress():
        sae = trainer.fit()
    metadata = {
        "model_name": model.name,
        "hook_name": model.resid_hook(layer),
        "context_size": model.n_ctx,
        "prepend_bos": start_token(model) is not None,
        FINGERPRINT_KEY: model_fingerprint(model),
    }
    for key, value in metadata.items():
        sae.cfg.metadata[key] = value
    return sae


def cross_entropies(
    model: HookedModel, tokens: Int[torch.Tensor, "window pos"], sae: LayerSAE, batch_size: int = 64
) -> tuple[float, float, float]:
    """Next-token cross-entropy clean, with the SAE's reconstruction spliced in, and with the layer zeroed."""
    hook = model.resid_hook(sae.layer)

    def spliced(activation: torch.Tensor, hook: Any) -> torch.Tensor:
        out = activation.clone()
        rest = activation[:, 1:]
        codes = sae.encode(rest.reshape(-1, rest.shape[-1]))
        decoded = codes @ sae.directions + sae.offset
        out[:, 1:] = decoded.view_as(rest).to(activation.dtype).to(activation.device)
        return out

    def zeroed(activation: torch.Tensor, hook: Any) -> torch.Tensor:
        out = activation.clone()
        out[:, 1:] = 0
        return out

    results = []
    for hooks in ([], [(hook, spliced)], [(hook, zeroed)]):
        total, count = 0.0, 0
        with torch.inference_mode():
            for start in range(0, len(tokens), batch_size):
                batch = tokens[start : start + batch_size].to(model.device)
                logits = model.run_with_hooks(batch, torch.ones_like(batch), hooks).float()
                loss = torch.nn.functional.cross_entropy(
                    logits[:, :-1].reshape(-1, logits.shape[-1]), batch[:, 1:].reshape(-1), reduction="sum"
                )
                total, count = total + float(loss), count + batch[:, 1:].numel()
        results.append(total / count)
    return results[0], results[1], results[2]


def measure(
    model: HookedModel,
    sae: LayerSAE,
    train: Float[torch.Tensor, "vector d_model"],
    held_out: Float[torch.Tensor, "vector d_model"],
    held_out_tokens: Int[torch.Tensor, "window pos"],
    seconds: float = 0.0,
    batch_size: int = 64,
) -> SAEQuality:
    """The quality figures of ``sae`` (see the module's docstring)."""
    codes = sae.encode(held_out)
    reconstruction = codes @ sae.directions + sae.offset
    fve = 1 - float(((held_out - reconstruction) ** 2).sum() / ((held_out - held_out.mean(0)) ** 2).sum())
    fired = (codes > 0).any(0)
    for start in range(0, len(train), 8192):
        fired |= (sae.encode(train[start : start + 8192]) > 0).any(0)
    clean, spliced, zero = cross_entropies(model, held_out_tokens, sae, batch_size)
    return SAEQuality(
        layer=sae.layer,
        d_sae=sae.d_sae,
        k=int(getattr(sae.sae.cfg, "k", 0) or 0),
        fve=round(fve, 6),
        l0=round(float((codes > 0).float().sum(-1).mean()), 4),
        dead=int((~fired).sum()),
        ce_clean=round(clean, 6),
        ce_spliced=round(spliced, 6),
        ce_zero=round(zero, 6),
        loss_recovered=round((zero - spliced) / (zero - clean), 6) if zero != clean else float("nan"),
        train_vectors=len(train),
        training_seconds=round(seconds, 2),
    )


def train_saes(
    model: HookedModel,
    layers: Sequence[int],
    out: Path,
    settings: SAETraining | None = None,
    windows: TokenWindows | None = None,
    batch_size: int = 64,
) -> list[SAEQuality]:
    """Train one SAE per layer of ``model`` into ``out/layer-<L>/`` and measure each.

    Args:
        model: The model whose residual stream the SAEs read.
        layers: Residual layers (1 = after the first block; 0, the embeddings, works too).
        out: Folder of the SAEs; each ``layer-<L>/`` holds SAELens's ``cfg.json`` and
            ``sae_weights.safetensors`` and probes' ``quality.json``.
        settings: How to train (defaults: :class:`SAETraining`).
        windows: Token windows to train on and hold out (default: the model's own samples).
        batch_size: Windows per forward pass when reading the residual stream.

    Returns:
        The quality of each SAE, in the order of ``layers``.
    """
    settings = settings or SAETraining()
    library = sae_lens()
    if windows is None:
        windows = training_windows(
            model, settings.windows, settings.held_out_windows, settings.window_length, settings.seed
        )
    train = residual_vectors(model, windows.train, layers, batch_size)
    held = residual_vectors(model, windows.held_out, layers, batch_size)
    qualities = []
    for layer in layers:
        started = time.perf_counter()
        trained = _fit(model, layer, train[layer], settings)
        seconds = time.perf_counter() - started
        folder = out / f"layer-{layer}"
        trained.save_inference_model(folder)
        config = folder / "cfg.json"  # SAELens writes its keys in no fixed order: sorted, for a stable sha256
        config.write_text(json.dumps(json.loads(config.read_text("utf-8")), sort_keys=True) + "\n", "utf-8")
        weights = folder / "sae_weights.safetensors"
        from probes.builtin.folders import sha256_file

        sae = LayerSAE(library.SAE.load_from_disk(folder), layer, str(folder), sha256_file(weights))
        quality = measure(model, sae, train[layer], held[layer], windows.held_out, seconds, batch_size)
        record = {
            **asdict(quality),
            "settings": asdict(settings),
            "text": {"name": windows.name, "sha256": windows.sha256},
        }
        (folder / QUALITY_FILE).write_text(json.dumps(record, indent=1) + "\n", "utf-8")
        qualities.append(quality)
    return qualities
