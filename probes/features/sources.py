"""Where a model's SAEs come from: shipped with a built-in ladder, a local folder, or a SAELens release.

``--sae`` takes, any number of times:

* nothing: the SAEs shipped beside a built-in ladder's rungs, every layer they cover
  (``<ladder folder>/saes/<rung>/layer-<L>/``, verified against ``saes.json`` as rung weights
  and tuned lenses are);
* a folder in SAELens's format (``cfg.json`` + ``sae_weights.safetensors``), or a folder
  holding such folders (``probes sae train`` writes ``OUT/<model>/layer-<L>/``): each SAE
  is used on every model of the run it fits (same width; the same weights, where the SAE
  carries probes' fingerprint);
* ``release/id``: a pretrained SAE of SAELens's registry (``SAE.from_pretrained``), online;
  the id may hold further slashes (``gemma-scope-2b-pt-res/layer_12/width_16k/average_l0_82``).

SAEs are read as residual-stream dictionaries (:class:`~probes.features.dictionary.LayerSAE`);
their ``hook_name`` gives the layer.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from probes.errors import UnknownModelError
from probes.features.dictionary import LayerSAE, SAEError, layer_of_hook
from probes.features.saelens import sae_lens

#: The index of a built-in ladder's shipped SAEs, beside its catalogue.
INDEX_FILE = "saes.json"
#: The folder of the shipped SAEs (``<rung>/layer-<L>/``), beside ``weights/``.
SAE_FOLDER = "saes"
#: SAELens's two files of an SAE.
CONFIG_FILE, WEIGHTS_FILE = "cfg.json", "sae_weights.safetensors"


def shipped_index(catalogue: Any) -> dict[str, Any]:
    """The parsed ``saes.json`` of a built-in ladder (no SAEs when it ships none)."""
    path = Path(catalogue.folder) / INDEX_FILE
    if not path.is_file():
        return {"saes": {}}
    return json.loads(path.read_text("utf-8"))


def shipped_entries(model_label: str) -> dict[str, Any]:
    """The ``saes.json`` entries of a built-in rung's shipped SAEs, by layer (empty for other models)."""
    from probes.builtin.folders import catalogue_of

    catalogue = catalogue_of(model_label)
    if catalogue is None:
        return {}
    try:
        name = catalogue.catalogue_name(model_label)
    except UnknownModelError:
        return {}
    return dict(shipped_index(catalogue)["saes"].get(name, {}))


def shipped_folders(model_label: str) -> dict[int, Path]:
    """The verified SAE folders shipped for a built-in rung, by layer (empty for other models).

    Raises:
        SAEError: A shipped SAE's files are missing or differ from the index.
    """
    from probes.builtin.folders import catalogue_of, mismatched_file

    entries = shipped_entries(model_label)
    if not entries:
        return {}
    catalogue = catalogue_of(model_label)
    name = catalogue.catalogue_name(model_label)
    folders = {}
    for layer, entry in entries.items():
        folder = Path(catalogue.folder) / SAE_FOLDER / name / f"layer-{layer}"
        path = mismatched_file(folder, entry["files"])
        if path is not None:
            raise SAEError(
                f"{path} is missing or differs from {INDEX_FILE}: reinstall probes or re-ship the SAEs "
                "with python -m experiments.features.ship."
            )
        folders[int(layer)] = folder
    return dict(sorted(folders.items()))


def load_folder(folder: Path, source: str | None = None) -> LayerSAE:
    """The SAE in a SAELens-format folder.

    Raises:
        SAEError: The folder lacks SAELens's files, or they cannot be read.
    """
    from probes.builtin.folders import sha256_file

    weights = folder / WEIGHTS_FILE
    if not (folder / CONFIG_FILE).is_file() or not weights.is_file():
        raise SAEError(
            f"{folder} is not an SAE folder: SAELens's format has {CONFIG_FILE} and {WEIGHTS_FILE} "
            "(SAE.save_inference_model writes them; so does probes sae train)."
        )
    from safetensors import SafetensorError

    library = sae_lens()
    try:
        sae = library.SAE.load_from_disk(folder)
    except (OSError, ValueError, KeyError, TypeError, RuntimeError, SafetensorError) as err:
        raise SAEError(
            f"cannot read the SAE in {folder} ({type(err).__name__}: {err}); give a folder SAELens wrote "
            "(SAE.save_inference_model)."
        ) from None
    source = source or str(folder)
    return LayerSAE(sae, _layer(sae, source), source, sha256_file(weights))


def _layer(sae: Any, source: str) -> int:
    """The residual layer a loaded SAELens SAE reads, from its ``metadata.hook_name``.

    Raises:
        SAEError: The hook is missing or not a residual-stream hook (the message names ``source``).
    """
    try:
        return layer_of_hook(getattr(sae.cfg.metadata, "hook_name", None))
    except SAEError as err:
        raise SAEError(f"{source}: {err}") from None


def _sae_folders(root: Path) -> list[Path]:
    """``root`` itself when it is an SAE folder, else the SAE folders below it (three levels at most)."""
    if root.is_file():
        raise SAEError(
            f"--sae {root} is a file; give the folder that holds {CONFIG_FILE} and {WEIGHTS_FILE}."
        )
    if (root / CONFIG_FILE).is_file():
        return [root]
    found = sorted(
        {path.parent for depth in ("*/", "*/*/", "*/*/*/") for path in root.glob(depth + CONFIG_FILE)}
    )
    if not found:
        raise SAEError(
            f"--sae {root}: no SAE folder ({CONFIG_FILE} + {WEIGHTS_FILE}) in it or in its subfolders."
        )
    return found


def load_pretrained(name: str) -> LayerSAE:
    """A pretrained SAE of SAELens's registry, ``release/id`` (downloads when online).

    Raises:
        SAEError: The release is not in SAELens's registry, or the SAE cannot be fetched.
    """
    release, _, sae_id = name.partition("/")
    library = sae_lens()
    from sae_lens.loading.pretrained_saes_directory import get_pretrained_saes_directory

    directory = get_pretrained_saes_directory()
    if release not in directory:
        near = sorted(r for r in directory if release.split("-")[0] in r)[:8]
        raise SAEError(
            f"--sae {name}: {release!r} is not a SAELens release (like: {', '.join(near) or 'none'}); give "
            "release/id, or a local SAE folder."
        )
    known = directory[release].saes_map
    if sae_id not in known:
        raise SAEError(
            f"--sae {name}: release {release} has no SAE {sae_id!r} "
            f"(it has e.g. {', '.join(list(known)[:5])})."
        )
    try:
        sae = library.SAE.from_pretrained(release, sae_id)
    except Exception as err:  # SAELens raises hub errors of many classes (offline, gated, missing)
        raise SAEError(
            f"--sae {name}: cannot fetch it ({type(err).__name__}); online, check the hub is reachable; "
            "offline, save it once with SAE.save_inference_model and give that folder."
        ) from None
    return LayerSAE(sae, _layer(sae, name), name, hashlib.sha256(name.encode()).hexdigest())


def source_sha256(source: str) -> str:
    """What names an ``--sae`` value's weights before any model loads (for the run's fingerprint).

    A folder: the sha256 of its SAEs' weight files; a release: of its name.
    """
    from probes.builtin.folders import sha256_file

    path = Path(source).expanduser()
    if path.exists():
        digest = hashlib.sha256()
        for folder in _sae_folders(path):
            digest.update(sha256_file(folder / WEIGHTS_FILE).encode())
        return digest.hexdigest()
    if "/" not in source:
        raise SAEError(f"--sae {source}: no such folder, and not a SAELens release/id.")
    return hashlib.sha256(source.encode()).hexdigest()


def load_sources(sources: list[str]) -> list[LayerSAE]:
    """Every SAE named by ``--sae`` values (folders, folders of folders, ``release/id``)."""
    saes = []
    for source in sources:
        path = Path(source).expanduser()
        if path.exists():
            saes.extend(load_folder(folder) for folder in _sae_folders(path))
        elif "/" in source:
            saes.append(load_pretrained(source))
        else:
            raise SAEError(f"--sae {source}: no such folder, and not a SAELens release/id.")
    return saes


def _refusals(saes: list[LayerSAE], model: Any, most: int = 3) -> list[str]:
    """Why each of the first ``most`` SAEs does not read ``model`` (:meth:`LayerSAE.check`'s messages)."""
    reasons = []
    for sae in saes[:most]:
        try:
            sae.check(model)
        except SAEError as err:
            reasons.append(str(err))
    if len(saes) > most:
        reasons.append(f"(and {len(saes) - most} more)")
    return reasons


def saes_for(model: Any, given: list[LayerSAE] | None, layers: list[int] | None = None) -> list[LayerSAE]:
    """The SAEs to read ``model`` with, by layer: those given that fit it, else the shipped ones.

    Args:
        model: A :class:`~probes.model.loading.HookedModel`.
        given: SAEs from ``--sae`` (None: the shipped ones).
        layers: Only these residual layers (negative ones count from the end); None for all.

    Raises:
        SAEError: No SAE fits the model, or none at the layers asked for.
    """
    from probes.lenses.tuned.access import model_fingerprint

    if given is None:
        found = [
            load_folder(folder, f"{model.name}/layer-{layer}")
            for layer, folder in shipped_folders(model.name).items()
        ]
        if not found:
            raise SAEError(
                f"no SAEs are shipped for {model.name}; give --sae release/id (SAELens's pretrained SAEs) "
                "or --sae FOLDER (e.g. from probes sae train)."
            )
    else:
        fingerprint = model_fingerprint(model)
        found = [
            sae
            for sae in given
            if sae.d_in == model.d_model
            and sae.layer <= model.n_layers
            and sae.fingerprint in (None, fingerprint)
        ]
        if not found:
            raise SAEError(
                f"none of the SAEs given with --sae reads {model.name}: " + " ".join(_refusals(given, model))
            )
    if layers is not None:
        wanted = {layer + model.n_layers + 1 if layer < 0 else layer for layer in layers}
        if not wanted <= set(range(model.n_layers + 1)):
            raise SAEError(
                f"--layers {layers}: {model.name} has residual layers 0…{model.n_layers} (-1 = the last)."
            )
        found = [sae for sae in found if sae.layer in wanted]
        if not found:
            raise SAEError(
                f"no SAE for {model.name} reads layers {sorted(wanted)}; drop --layers or give one."
            )
    for sae in found:
        sae.check(model)
    layers_seen = [sae.layer for sae in found]
    if len(set(layers_seen)) != len(layers_seen):
        raise SAEError(
            f"several SAEs given for one layer of {model.name} ({sorted(layers_seen)}); give one per layer."
        )
    return sorted(found, key=lambda sae: sae.layer)
