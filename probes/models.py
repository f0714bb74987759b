"""Loading one model of a ladder into one standard, hooked view.

Every model, whatever its family or source, is a :class:`HookedModel`: a
TransformerLens ``TransformerBridge`` around the Hugging Face model, plus the
tokenizer and the names the rest of the toolkit needs (layers, ``d_model``,
context length, residual hook names, final norm, unembedding). Per-family
differences stay inside TransformerLens's adapters; nothing here branches on
the architecture.

Specs a user may give are described in :mod:`probes.specs` (hub ids, folders, GGUF files,
``<prefix><rung>`` of a built-in ladder, resolved through the registry of model sources there);
in-memory transformers models are wrapped with :func:`from_hf_model`.

Weights in pickle-based formats (``.bin``, ``.pt``, ``.ckpt``) in a folder the user
points at are refused: unpickling a file runs arbitrary code.
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel

from probes.errors import UnknownModelError, UnsafeWeightsError
from probes.specs import PICKLE_SUFFIXES, ModelSpec, model_source, model_sources, parse_spec

__all__ = ["HookedModel", "ModelSpec", "from_hf_model", "load_model", "parse_spec", "resolve_dtype"]

#: dtypes accepted on the command line.
DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


logger = logging.getLogger(__name__)


@dataclass
class HookedModel:
    """One model in the toolkit's standard view.

    Layer ``0`` of the residual stream is the embedding output (the input of the
    first block); layer ``l`` is the output of block ``l - 1``; so a model has
    ``n_layers + 1`` readable layers.
    """

    spec: ModelSpec
    bridge: Any  # transformer_lens.model_bridge.TransformerBridge
    tokenizer: Any  # transformers.PreTrainedTokenizerBase
    #: Parameters of the model as loaded, counted before bridging: the bridge adds split
    #: copies of fused weights (GPT-NeoX's qkv as q, k and v), which must not count twice.
    n_parameters: int = 0

    @property
    def name(self) -> str:
        """The label under which results of this model are stored."""
        return self.spec.label

    @property
    def hf_model(self) -> PreTrainedModel:
        """The wrapped Hugging Face model (its submodules are the bridge's components)."""
        return self.bridge.original_model

    @property
    def blocks(self) -> list[torch.nn.Module]:
        """The transformer blocks, first to last."""
        return list(self.bridge.blocks)

    @property
    def n_layers(self) -> int:
        """Number of transformer blocks."""
        return int(self.bridge.cfg.n_layers)

    @property
    def d_model(self) -> int:
        """Width of the residual stream."""
        return int(self.bridge.cfg.d_model)

    @property
    def n_ctx(self) -> int:
        """Longest sequence (prompt plus answer) the model accepts."""
        return int(self.bridge.cfg.n_ctx)

    @property
    def final_norm(self) -> torch.nn.Module | None:
        """The norm applied to the last residual stream before unembedding, if any."""
        return getattr(self.bridge, "ln_final", None)

    @property
    def unembed(self) -> torch.nn.Module:
        """The unembedding (``W_U``, ``b_U``)."""
        return self.bridge.unembed

    @property
    def resid_hook_names(self) -> list[str]:
        """TransformerLens hook names of the readable layers, layer 0 first."""
        names = [f"blocks.{i}.hook_in" for i in range(self.n_layers)]
        return names + [f"blocks.{self.n_layers - 1}.hook_out"]

    @property
    def parameters(self) -> int:
        """Total parameter count of the model as loaded (tied embeddings counted once)."""
        return self.n_parameters or sum(p.numel() for p in self.hf_model.parameters())

    @property
    def device(self) -> torch.device:
        """Device of the model's first parameter."""
        return next(self.hf_model.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        """dtype of the model's first floating-point parameter."""
        return next(p.dtype for p in self.hf_model.parameters() if p.is_floating_point())

    def describe(self) -> dict[str, Any]:
        """What results need to say about this model (for manifests and rows)."""
        return {
            "model": self.name,
            "model_name": self.spec.name,
            "revision": self.spec.revision,
            "source": self.spec.source,
            "architecture": type(self.hf_model).__name__,
            "parameters": self.parameters,
            "n_layers": self.n_layers,
            "d_model": self.d_model,
            "n_ctx": self.n_ctx,
            "dtype": str(self.dtype).removeprefix("torch."),
            "device": str(self.device),
        }


def resolve_dtype(dtype: str | torch.dtype) -> torch.dtype:
    """The torch dtype for a name such as ``"bfloat16"``."""
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype not in DTYPES:
        raise UnknownModelError(f"unknown dtype {dtype!r}; use one of {sorted(DTYPES)}.")
    return DTYPES[dtype]


def load_model(
    spec: str | ModelSpec, device: str = "cpu", dtype: str | torch.dtype = "float32"
) -> HookedModel:
    """Load the model a spec names and wrap it in the standard hooked view."""
    spec = parse_spec(spec) if isinstance(spec, str) else spec
    torch_dtype = resolve_dtype(dtype)
    if spec.source == "hub":
        return _load_from_hub(spec, device, torch_dtype)
    if spec.source in {source.name for source in model_sources().values()}:
        return _load_from_folder(spec, _built_in_folder(spec), device, torch_dtype)
    if spec.source == "folder":
        return _load_from_folder(spec, Path(spec.path or spec.name), device, torch_dtype)
    if spec.source == "gguf":
        return _load_from_gguf(spec, device, torch_dtype)
    raise UnknownModelError(f"cannot load a model of source {spec.source!r} from a spec; use from_hf_model.")


def _built_in_folder(spec: ModelSpec) -> Path:
    """The verified folder of a rung of a registered model source (a built-in ladder)."""
    return model_source(spec.source).folder(spec.name)


def from_hf_model(
    hf_model: PreTrainedModel, tokenizer: Any, name: str = "in-memory", revision: str | None = None
) -> HookedModel:
    """Wrap an already loaded transformers model and its tokenizer (nothing is downloaded)."""
    if not getattr(tokenizer, "name_or_path", None):
        raise UnknownModelError(
            "the tokenizer has no name_or_path, which TransformerBridge needs; load it with "
            "AutoTokenizer.from_pretrained(folder) (save_pretrained a hand-built one first)."
        )
    spec = ModelSpec(name=name, source="memory", revision=revision)
    # A name that is no hub alias, so TransformerLens resolves nothing from it.
    return _bridge(spec, hf_model.eval(), tokenizer, model_name=f"in-memory/{name}")


def _bridge(spec: ModelSpec, hf_model: PreTrainedModel, tokenizer: Any, model_name: str) -> HookedModel:
    from transformer_lens.model_bridge import TransformerBridge

    # The bridge sets missing special tokens on the tokenizer it is given: give it our own copy,
    # so a caller's tokenizer (saved or reused later) is never changed behind its back.
    tokenizer = copy.deepcopy(tokenizer)
    n_parameters = sum(p.numel() for p in hf_model.parameters())
    bridge = TransformerBridge.boot_transformers(
        model_name, hf_model=hf_model, tokenizer=tokenizer, device=str(next(hf_model.parameters()).device)
    )
    bridge.eval()
    return HookedModel(spec=spec, bridge=bridge, tokenizer=tokenizer, n_parameters=n_parameters)


def _check_safe_folder(folder: Path) -> None:
    if not (folder / "config.json").is_file():
        raise UnknownModelError(f"folder {folder} has no config.json; it is not a Hugging Face model folder.")
    if any(folder.glob("*.safetensors")):
        return
    pickles = sorted(p.name for p in folder.iterdir() if p.suffix in PICKLE_SUFFIXES)
    if pickles:
        raise UnsafeWeightsError(
            f"folder {folder} holds weights only as {pickles}, a pickle format that can run code on "
            "load; convert them to safetensors (model.save_pretrained(folder, safe_serialization=True))."
        )
    raise UnknownModelError(f"folder {folder} has no *.safetensors weights.")


def _load_from_folder(spec: ModelSpec, folder: Path, device: str, dtype: torch.dtype) -> HookedModel:
    _check_safe_folder(folder)
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(folder))
        hf_model = AutoModelForCausalLM.from_pretrained(str(folder), dtype=dtype, use_safetensors=True)
    except (OSError, ValueError) as err:
        raise UnknownModelError(f"could not load the model in {folder}: {err}") from err
    return _bridge(spec, hf_model.to(device).eval(), tokenizer, model_name=str(folder))


def _load_from_gguf(spec: ModelSpec, device: str, dtype: torch.dtype) -> HookedModel:
    path = Path(spec.path or spec.name)
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
        hf_model = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name, dtype=dtype)
    except ImportError as err:
        raise UnknownModelError(
            f"reading GGUF files needs the gguf package: pip install 'probes[gguf]' ({err})."
        ) from err
    except (OSError, ValueError, KeyError) as err:
        raise UnknownModelError(f"could not load the GGUF file {path}: {err}") from err
    return _bridge(spec, hf_model.to(device).eval(), tokenizer, model_name=str(path.parent))


def _load_from_hub(spec: ModelSpec, device: str, dtype: torch.dtype) -> HookedModel:
    try:
        # The model's own tokenizer with its own defaults, so tokens match plain transformers.
        tokenizer = AutoTokenizer.from_pretrained(spec.name, revision=spec.revision)
        hf_model = AutoModelForCausalLM.from_pretrained(spec.name, revision=spec.revision, dtype=dtype)
    except (OSError, ValueError) as err:
        raise UnknownModelError(
            f"could not load {spec.label!r} from the Hugging Face hub ({err}). Check the id and "
            "revision, your connection, and HF_HUB_OFFLINE; offline, pass a local folder or .gguf file."
        ) from err
    return _bridge(spec, hf_model.to(device).eval(), tokenizer, model_name=spec.name)
