"""Loading one model of a ladder into one standard, hooked view.

Every model, whatever its family or source, is loaded into a
:class:`~probes.model.hooked.HookedModel` (re-exported here), the one door every analysis
goes through, backed by a :class:`~probes.model.bridge.backend.BridgeBackend`: a TransformerLens
``TransformerBridge`` around the Hugging Face model. Nothing here branches on the
architecture.

Specs a user may give are described in :mod:`probes.model.specs` (hub ids, folders, GGUF files,
``<prefix><rung>`` of a built-in ladder, resolved through the registry of model sources there);
in-memory transformers models are wrapped with :func:`from_hf_model`.

Weights in pickle-based formats (``.bin``, ``.pt``, ``.ckpt``) in a folder the user
points at are refused: unpickling a file runs arbitrary code.
"""

from __future__ import annotations

import copy
import functools
import logging
import os
import socket
import struct
import urllib.parse
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel

from probes.errors import DamagedWeightsError, UnknownModelError, UnsafeWeightsError
from probes.model.bridge.backend import BridgeBackend
from probes.model.hooked import HookedModel
from probes.model.placement import Placement, device_map_of
from probes.model.specs import PICKLE_SUFFIXES, ModelSpec, model_source, model_sources, parse_spec

__all__ = ["HookedModel", "ModelSpec", "from_hf_model", "load_model", "parse_spec", "resolve_dtype"]

#: dtypes accepted on the command line.
DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}

#: Ways of running a model: TransformerLens's bridge (the default) or nnsight's tracing.
BACKENDS = ("bridge", "nnsight")


logger = logging.getLogger(__name__)


def resolve_dtype(dtype: str | torch.dtype) -> torch.dtype:
    """The torch dtype for a name such as ``"bfloat16"``."""
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype not in DTYPES:
        raise UnknownModelError(f"unknown dtype {dtype!r}; use one of {sorted(DTYPES)}.")
    return DTYPES[dtype]


def load_model(
    spec: str | ModelSpec,
    device: str = "cpu",
    dtype: str | torch.dtype = "float32",
    backend: str = "bridge",
    device_map: str | dict[str, Any] | None = None,
    remote: bool | str = False,
    verbose: bool = False,
) -> HookedModel:
    """Load the model a spec names and wrap it in the standard hooked view.

    The model libraries' loading bars, info logs and warnings are hidden while it loads
    (:func:`probes.run.progress.quiet_libraries`) unless ``verbose``; errors still show.

    Args:
        spec: What to load (see :mod:`probes.model.specs`).
        device: Torch device of the whole model (ignored with a ``device_map``).
        dtype: Model dtype.
        backend: ``"bridge"`` (TransformerLens) or ``"nnsight"`` (:mod:`probes.model.nnsight.backend`).
        device_map: Accelerate's placement of the model's modules: ``"auto"`` spreads a model
            too large for one GPU over the GPUs (then CPU, then disk), or an explicit
            ``{module: device}`` map (``"disk"`` offloads to a temporary folder).
        remote: Run the nnsight backend's traces on NDIF (``True``) or nnsight's local
            simulation of a remote request (``"local"``); hub models only.
        verbose: Show the model libraries' own loading bars and messages.
    """
    from probes.run.progress import quiet_libraries  # tqdm only; the run layer's one switch

    with quiet_libraries(not verbose):
        return _load(spec, device, dtype, backend, device_map, remote)


def _load(
    spec: str | ModelSpec,
    device: str,
    dtype: str | torch.dtype,
    backend: str,
    device_map: str | dict[str, Any] | None,
    remote: bool | str,
) -> HookedModel:
    """:func:`load_model` without the quiet switch."""
    spec = parse_spec(spec) if isinstance(spec, str) else spec
    torch_dtype = resolve_dtype(dtype)
    placement = Placement(device, device_map_of(device_map))
    if remote:
        if backend != "nnsight":
            raise UnknownModelError("--remote runs models on NDIF through nnsight: add --backend nnsight.")
        if spec.source != "hub":
            raise UnknownModelError(
                f"--remote needs a hub id that NDIF hosts (meta-llama/Llama-3.1-70B ...), not {spec.label!r}."
            )
    if spec.source == "hub":
        model = _load_from_hub(spec, placement, torch_dtype, backend, remote)
    elif spec.source in {source.name for source in model_sources().values()}:
        model = _load_from_folder(spec, _built_in_folder(spec), placement, torch_dtype, backend)
    elif spec.source == "folder":
        model = _load_from_folder(spec, Path(spec.path or spec.name), placement, torch_dtype, backend)
    elif spec.source == "gguf":
        model = _load_from_gguf(spec, placement, torch_dtype, backend)
    else:
        raise UnknownModelError(
            f"cannot load a model of source {spec.source!r} from a spec; use from_hf_model."
        )
    return model


def _built_in_folder(spec: ModelSpec) -> Path:
    """The verified folder of a rung of a registered model source (a built-in ladder)."""
    return model_source(spec.source).folder(spec.name)


def from_hf_model(
    hf_model: PreTrainedModel,
    tokenizer: Any,
    name: str = "in-memory",
    revision: str | None = None,
    backend: str = "bridge",
) -> HookedModel:
    """Wrap an already loaded transformers model and its tokenizer (nothing is downloaded)."""
    if not getattr(tokenizer, "name_or_path", None):
        raise UnknownModelError(
            "the tokenizer has no name_or_path, which TransformerBridge needs; load it with "
            "AutoTokenizer.from_pretrained(folder) (save_pretrained a hand-built one first)."
        )
    spec = ModelSpec(name=name, source="memory", revision=revision)
    # A name that is no hub alias, so TransformerLens resolves nothing from it.
    return _wrap(spec, hf_model.eval(), tokenizer, f"in-memory/{name}", backend)


def _bridge(spec: ModelSpec, hf_model: PreTrainedModel, tokenizer: Any, model_name: str) -> HookedModel:
    from transformer_lens.model_bridge import TransformerBridge

    # The bridge sets missing special tokens on the tokenizer it is given: give it our own copy,
    # so a caller's tokenizer (saved or reused later) is never changed behind its back.
    tokenizer = copy.deepcopy(tokenizer)
    loaded = _as_loaded(hf_model)  # before the bridge adds its split copies of fused weights
    bridge = TransformerBridge.boot_transformers(
        model_name, hf_model=hf_model, tokenizer=tokenizer, device=str(next(hf_model.parameters()).device)
    )
    bridge.eval()
    return HookedModel(spec=spec, backend=BridgeBackend(bridge), tokenizer=tokenizer, **loaded)


def _as_loaded(hf_model: PreTrainedModel) -> dict[str, Any]:
    """The :class:`HookedModel` fields taken from the weights as loaded, before any backend wraps
    them: the parameters in the model's order and their count."""
    weights = tuple(hf_model.parameters())
    return {"weights": weights, "n_parameters": sum(p.numel() for p in weights)}


def _wrap(
    spec: ModelSpec, hf_model: PreTrainedModel, tokenizer: Any, model_name: str, backend: str
) -> HookedModel:
    """The loaded model behind the backend asked for."""
    if backend == "bridge":
        return _bridge(spec, hf_model, tokenizer, model_name)
    if backend == "nnsight":
        from probes.model.nnsight.backend import NNsightBackend, nnsight_model

        loaded = _as_loaded(hf_model)
        wrapped = NNsightBackend(nnsight_model(hf_model, tokenizer))
        return HookedModel(spec=spec, backend=wrapped, tokenizer=tokenizer, **loaded)
    raise UnknownModelError(f"unknown backend {backend!r}; use one of {list(BACKENDS)}.")


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


def _check_safetensors(folder: Path) -> None:
    """Read every safetensors header of a folder: a truncated or random file fails here, by name."""
    from safetensors import SafetensorError, safe_open

    for path in sorted(folder.glob("*.safetensors")):
        try:
            with safe_open(str(path), "pt") as handle:
                handle.keys()
        except (SafetensorError, OSError) as err:
            raise DamagedWeightsError(
                f"{path} is damaged or truncated ({err}); copy or download it again."
            ) from None


def _load_from_folder(
    spec: ModelSpec, folder: Path, placement: Placement, dtype: torch.dtype, backend: str
) -> HookedModel:
    _check_safe_folder(folder)
    _check_safetensors(folder)
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(folder))
        hf_model = AutoModelForCausalLM.from_pretrained(
            str(folder), dtype=dtype, use_safetensors=True, **placement.load_options()
        )
    except (OSError, ValueError) as err:
        raise UnknownModelError(f"could not load the model in {folder}: {err}") from err
    return _wrap(spec, placement.place(hf_model), tokenizer, str(folder), backend)


def check_gguf(path: Path, full: bool = True) -> None:
    """Check a GGUF file's header and (``full``) parse its tensor table: a cut or damaged file
    fails here, by name."""
    size = path.stat().st_size
    with path.open("rb") as handle:
        magic = handle.read(4)
    if magic != b"GGUF":
        raise DamagedWeightsError(
            f"GGUF file {path} is damaged or truncated ({size} bytes, no GGUF header); "
            "copy or download it again."
        )
    if not full:
        return
    try:
        from gguf import GGUFReader
    except ImportError:
        return  # the loader says the gguf package is missing
    try:
        reader = GGUFReader(path)
        end = max((int(t.data_offset) + int(t.n_bytes) for t in reader.tensors), default=0)
    except (ValueError, IndexError, KeyError, struct.error, OSError) as err:
        raise DamagedWeightsError(
            f"GGUF file {path} is damaged or truncated ({size} bytes; {err}); copy or download it again."
        ) from None
    if end > size:
        raise DamagedWeightsError(
            f"GGUF file {path} is truncated ({size} bytes; its tensors end at byte {end}); copy or "
            "download it again."
        )


def _load_from_gguf(spec: ModelSpec, placement: Placement, dtype: torch.dtype, backend: str) -> HookedModel:
    path = Path(spec.path or spec.name)
    check_gguf(path, full=False)  # the header only: a whole parse costs ~25 s on a 100 MB file
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
        hf_model = AutoModelForCausalLM.from_pretrained(
            str(path.parent), gguf_file=path.name, dtype=dtype, **placement.load_options()
        )
    except ImportError as err:
        raise UnknownModelError(
            f"reading GGUF files needs the gguf package: pip install 'probes[gguf]' ({err})."
        ) from err
    except (OSError, ValueError, KeyError, IndexError, RuntimeError, struct.error) as err:
        check_gguf(path)  # a cut or damaged file is named as such
        raise UnknownModelError(f"could not load the GGUF file {path}: {err}") from err
    return _wrap(spec, placement.place(hf_model), tokenizer, str(path.parent), backend)


def check_hub_model(spec: ModelSpec) -> None:
    """Fail fast, before any download or retry, when a hub model cannot be had.

    A model in the local Hugging Face cache passes. Otherwise, with ``HF_HUB_OFFLINE`` set, or
    when the hub's host cannot be reached (no proxy configured), one line says the model is not
    cached, instead of a minute of retries.
    """
    from huggingface_hub import constants, try_to_load_from_cache
    from huggingface_hub.errors import HFValidationError

    try:
        cached = try_to_load_from_cache(spec.name, "config.json", revision=spec.revision)
    except HFValidationError as err:
        raise UnknownModelError(
            f"{spec.label!r} is not a hub id, a folder, a .gguf file or a built-in rung ({err}); "
            "`probes ladders` lists the built-in prefixes."
        ) from None
    if isinstance(cached, str):
        return
    offline = os.environ.get("HF_HUB_OFFLINE", "").upper() in ("1", "ON", "YES", "TRUE")
    why = "HF_HUB_OFFLINE is set" if offline or constants.HF_HUB_OFFLINE else _unreachable(constants.ENDPOINT)
    if why:
        raise UnknownModelError(
            f"{spec.label} is not in the local Hugging Face hub cache and {why}; download it once online "
            f"(`hf download {spec.name}`), or pass a local folder or .gguf file."
        )


@functools.lru_cache(maxsize=4)
def _unreachable(endpoint: str) -> str | None:
    """Why the hub's host cannot be reached (None when it can, or a proxy is configured)."""
    if any(os.environ.get(name) for name in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")):
        return None
    host = urllib.parse.urlparse(endpoint).hostname or "huggingface.co"
    try:
        socket.create_connection((host, 443), timeout=5).close()
    except OSError as err:
        return f"{host} cannot be reached ({err.strerror or err})"
    return None


def _load_from_hub(
    spec: ModelSpec, placement: Placement, dtype: torch.dtype, backend: str, remote: bool | str
) -> HookedModel:
    if remote is True:
        from probes.model.nnsight.remote import remote_model

        return remote_model(spec, dtype)
    check_hub_model(spec)
    try:
        # The model's own tokenizer with its own defaults, so tokens match plain transformers.
        tokenizer = AutoTokenizer.from_pretrained(spec.name, revision=spec.revision)
        hf_model = AutoModelForCausalLM.from_pretrained(
            spec.name, revision=spec.revision, dtype=dtype, **placement.load_options()
        )
    except (OSError, ValueError) as err:
        raise UnknownModelError(
            f"could not load {spec.label!r} from the Hugging Face hub ({err}). Check the id and "
            "revision, your connection, and HF_HUB_OFFLINE; offline, pass a local folder or .gguf file."
        ) from err
    model = _wrap(spec, placement.place(hf_model), tokenizer, spec.name, backend)
    if remote:  # "local": nnsight's simulation of a remote request, on this local copy
        model.backend.remote = remote  # type: ignore[attr-defined]
    return model
