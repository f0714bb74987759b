"""Loading one model of a ladder into one standard, hooked view.

Every model, whatever its family or source, is loaded into a
:class:`~probes.model.hooked.HookedModel` (re-exported here), the one door every analysis
goes through, behind the backend asked for (:mod:`probes.model.backend`). The default,
``auto``, takes the first backend (in their ``auto_rank`` order: TransformerLens's bridge, then
nnsight) that can run the model, saying so in one line when it is not the first
(:func:`_wrap_automatically`; which families each takes: docs/models.md). Nothing here branches
on the architecture.

Specs a user may give are described in :mod:`probes.model.specs` (hub ids, folders, GGUF files,
``<prefix><rung>`` of a built-in ladder, resolved through the registry of model sources there);
in-memory transformers models are wrapped with :func:`from_hf_model`.

Weights in pickle-based formats (``.bin``, ``.pt``, ``.ckpt``) in a folder the user
points at are refused: unpickling a file runs arbitrary code. So is a config that asks for the
model's own Python code (``auto_map``); ``trust_remote_code=False`` is passed to every
transformers loader. The config's sizes are checked against the device's free memory before
anything is allocated (:mod:`probes.model.memory`).
"""

from __future__ import annotations

import functools
import json
import logging
import os
import socket
import struct
import sys
import urllib.parse
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel

from probes.errors import (
    CustomCodeError,
    DamagedWeightsError,
    UnknownModelError,
    UnsafeWeightsError,
    UnsupportedModelError,
)
from probes.model.backend import AUTO, auto_backends, get_backend
from probes.model.hooked import HookedModel
from probes.model.memory import check_model_memory
from probes.model.placement import Placement, device_map_of
from probes.model.specs import PICKLE_SUFFIXES, ModelSpec, model_source, model_sources, parse_spec

__all__ = ["HookedModel", "ModelSpec", "from_hf_model", "load_model", "parse_spec", "resolve_dtype"]

#: dtypes accepted on the command line.
DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


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
    backend: str = "auto",
    device_map: str | dict[str, Any] | None = None,
    remote: bool | str = False,
    memory_check: bool = True,
    verbose: bool = False,
) -> HookedModel:
    """Load the model a spec names and wrap it in the standard hooked view.

    The model libraries' loading bars, info logs and warnings are hidden while it loads
    (:func:`probes.jobs.progress.quiet_libraries`) unless ``verbose``; errors still show.

    Args:
        spec: What to load (see :mod:`probes.model.specs`).
        device: Torch device of the whole model (ignored with a ``device_map``).
        dtype: Model dtype.
        backend: ``"auto"`` (the first registered backend that can run the model) or a
            registered backend (:func:`probes.model.backend.backends`): ``"bridge"``
            (TransformerLens) or ``"nnsight"``.
        device_map: Accelerate's placement of the model's modules: ``"auto"`` spreads a model
            too large for one GPU over the GPUs (then CPU, then disk), or an explicit
            ``{module: device}`` map (``"disk"`` offloads to a temporary folder).
        remote: Run the nnsight backend's traces on NDIF (``True``) or nnsight's local
            simulation of a remote request (``"local"``); hub models only.
        verbose: Show the model libraries' own loading bars and messages.
        memory_check: Refuse, before anything is allocated, a model whose config asks for more
            memory than ``device`` has free (:mod:`probes.model.memory`; skipped with a device map).

    Raises:
        CustomCodeError: The model's config or tokenizer config asks for its own code (``auto_map``).
        MemoryCheckError: The config's sizes do not fit the device's free memory.
    """
    from probes.jobs.progress import quiet_libraries  # tqdm only; the run layer's one switch

    with quiet_libraries(not verbose):
        return _load(spec, device, dtype, backend, device_map, remote, memory_check)


def _load(
    spec: str | ModelSpec,
    device: str,
    dtype: str | torch.dtype,
    backend: str,
    device_map: str | dict[str, Any] | None,
    remote: bool | str,
    memory_check: bool,
) -> HookedModel:
    """:func:`load_model` without the quiet switch."""
    spec = parse_spec(spec) if isinstance(spec, str) else spec
    torch_dtype = resolve_dtype(dtype)
    placement = Placement(device, device_map_of(device_map))
    if remote:
        if backend == AUTO or get_backend(backend).load_remote is None:
            raise UnknownModelError("--remote runs models on NDIF through nnsight: add --backend nnsight.")
        if spec.source != "hub":
            raise UnknownModelError(
                f"--remote needs a hub id that NDIF hosts (meta-llama/Llama-3.1-70B ...), not {spec.label!r}."
            )
    check = memory_check and placement.device_map is None
    if spec.source == "hub":
        model = _load_from_hub(spec, placement, torch_dtype, backend, remote, check)
    elif spec.source in {source.name for source in model_sources().values()}:
        model = _load_from_folder(spec, _built_in_folder(spec), placement, torch_dtype, backend, check)
    elif spec.source == "folder":
        model = _load_from_folder(spec, Path(spec.path or spec.name), placement, torch_dtype, backend, check)
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
    backend: str = "auto",
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


def _wrap(
    spec: ModelSpec, hf_model: PreTrainedModel, tokenizer: Any, model_name: str, backend: str
) -> HookedModel:
    """The loaded model behind the backend asked for (:func:`probes.model.backend.get_backend`)."""
    if backend == AUTO:
        return _wrap_automatically(spec, hf_model, tokenizer, model_name)
    kind = get_backend(backend)
    kind.check_installed()
    return kind.wrap(spec, hf_model, tokenizer, model_name)


def _wrap_automatically(
    spec: ModelSpec, hf_model: PreTrainedModel, tokenizer: Any, model_name: str
) -> HookedModel:
    """The ``auto`` backend: the first installed backend (:func:`probes.model.backend.auto_backends`)
    that can run the model, with one line on stderr when it is not the first (naming why the
    others could not); none: one error naming every reason. A backend that cannot run a model
    raises :class:`~probes.errors.UnsupportedModelError` and leaves the model as it was."""
    reasons: list[str] = []
    for kind in auto_backends():
        try:
            model = kind.wrap(spec, hf_model, tokenizer, model_name)
        except UnsupportedModelError as err:
            reasons.append(str(err))
            continue
        if reasons:
            why = "; ".join(
                r.split("; use --backend")[0].split(" Try --backend")[0].rstrip(".") for r in reasons
            )
            print(f"probes: {spec.label} runs with the {kind.name} backend: {why}.", file=sys.stderr)
        return model
    raise UnsupportedModelError(
        f"no backend can run {spec.label} ({type(hf_model).__name__}): " + " And: ".join(reasons)
    )


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


def check_config(
    config_file: Path, tokenizer_config: Path | None, dtype: torch.dtype, device: str | None
) -> None:
    """Refuse a model whose config asks for custom code, or (``device``) does not fit its free memory.

    Both checks read only the small JSON files, before any weight is read or memory allocated.

    Raises:
        CustomCodeError: ``config.json`` or ``tokenizer_config.json`` has an ``auto_map``.
        MemoryCheckError: The config's sizes do not fit ``device``'s free memory.
        UnknownModelError: A file is not a JSON object, or no model transformers can build.
    """
    from transformers import AutoConfig

    for path in (config_file, tokenizer_config):
        if path is None or not path.is_file():
            continue
        try:
            data = json.loads(path.read_text("utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as err:
            raise UnknownModelError(
                f"{path} is not readable JSON ({err}); copy or download it again."
            ) from None
        if not isinstance(data, dict):
            raise UnknownModelError(f"{path} is not a JSON object; copy or download it again.")
        if data.get("auto_map"):
            raise CustomCodeError(
                f"{path} asks for the model's own Python code (auto_map {sorted(data['auto_map'])}), "
                f"which probes never runs; {_custom_code_fix(data)}"
            )
    if device is None:
        return
    try:
        config = AutoConfig.from_pretrained(str(config_file), trust_remote_code=False)
    except (OSError, ValueError, KeyError) as err:
        raise UnknownModelError(f"{config_file} is not a model config transformers reads ({err}).") from None
    check_model_memory(config, dtype, device, config_file)


def _custom_code_fix(config: dict[str, Any]) -> str:
    """What to do about a config that asks for custom code: depends on whether transformers ships
    the architecture it names (its own code may then be what the weights mean, or may not)."""
    from transformers import CONFIG_MAPPING

    model_type = config.get("model_type")
    if isinstance(model_type, str) and model_type in CONFIG_MAPPING:
        return (
            f"transformers ships its own {model_type!r} code: if this model is that architecture "
            "unchanged, copy the folder without the auto_map entry and load the copy."
        )
    return "use a model whose architecture transformers ships, or convert this one to such an architecture."


def _load_from_folder(
    spec: ModelSpec, folder: Path, placement: Placement, dtype: torch.dtype, backend: str, memory_check: bool
) -> HookedModel:
    _check_safe_folder(folder)
    device = placement.device if memory_check else None
    check_config(folder / "config.json", folder / "tokenizer_config.json", dtype, device)
    _check_safetensors(folder)
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(folder), trust_remote_code=False)
        hf_model = AutoModelForCausalLM.from_pretrained(
            str(folder),
            dtype=dtype,
            use_safetensors=True,
            trust_remote_code=False,
            **placement.load_options(),
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
        tokenizer = AutoTokenizer.from_pretrained(
            str(path.parent), gguf_file=path.name, trust_remote_code=False
        )
        hf_model = AutoModelForCausalLM.from_pretrained(
            str(path.parent),
            gguf_file=path.name,
            dtype=dtype,
            trust_remote_code=False,
            **placement.load_options(),
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


def _hub_file(spec: ModelSpec, name: str) -> Path | None:
    """A file of a hub model, from the cache or downloaded (None when the model has none)."""
    from transformers.utils import cached_file

    try:
        found = cached_file(
            spec.name, name, revision=spec.revision, _raise_exceptions_for_missing_entries=False
        )
    except (OSError, ValueError):
        return None
    return Path(found) if found else None


def _load_from_hub(
    spec: ModelSpec,
    placement: Placement,
    dtype: torch.dtype,
    backend: str,
    remote: bool | str,
    memory_check: bool = True,
) -> HookedModel:
    if remote is True:
        load_remote = get_backend(backend).load_remote
        assert load_remote is not None  # checked by load_model
        return load_remote(spec, dtype)
    check_hub_model(spec)
    config_file = _hub_file(spec, "config.json")
    if config_file is not None:
        device = placement.device if memory_check else None
        check_config(config_file, _hub_file(spec, "tokenizer_config.json"), dtype, device)
    try:
        # The model's own tokenizer with its own defaults, so tokens match plain transformers.
        tokenizer = AutoTokenizer.from_pretrained(spec.name, revision=spec.revision, trust_remote_code=False)
        hf_model = AutoModelForCausalLM.from_pretrained(
            spec.name,
            revision=spec.revision,
            dtype=dtype,
            trust_remote_code=False,
            **placement.load_options(),
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
