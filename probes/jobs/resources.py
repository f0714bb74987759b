"""What one unit of work asks a cluster for: a share of GPUs sized by its model, else one CPU.

A scheduler (Ray, :mod:`probes.jobs.ray_executor`) places a unit where its resources are free. On a
GPU run (``--device cuda``) a model takes the share of one GPU its weights need, with room
for activations: its parameter count (from the ladder's catalogue) times the bytes of the
dtype times :data:`OVERHEAD`, over the GPU's memory. Shares are rounded up to a power of two
(1/8, 1/4, 1/2, 1), so small models pack whole GPUs, and at most :data:`MAX_PER_GPU` share
one (each process holds its own CUDA context). A model larger than one GPU asks for as many
whole GPUs as it needs (it must then be spread over them, e.g. with accelerate's device map).
A model the catalogue does not know takes one whole GPU. A CPU run takes one CPU per unit.
No scheduler is imported here.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any

from probes.jobs.validation import device_kind

#: Bytes per parameter of each dtype.
BYTES_PER_PARAMETER = {"float32": 4, "float16": 2, "bfloat16": 2}
#: Memory a loaded model takes per byte of weights (activations of a batch, the readout, caches).
OVERHEAD = 1.5
#: The most units that share one GPU.
MAX_PER_GPU = 8
#: GPU memory assumed when neither the option nor this machine says (an 80 GiB A100/H100).
DEFAULT_GPU_MEMORY_GIB = 80.0


@dataclass(frozen=True)
class Resources:
    """What one unit asks for: CPUs and GPUs (a fraction of one GPU is a share of it)."""

    num_cpus: float = 1.0
    num_gpus: float = 0.0

    def as_ray_options(self) -> dict[str, Any]:
        """The resources as keyword arguments of a Ray task's ``.options``."""
        return {"num_cpus": self.num_cpus, "num_gpus": self.num_gpus}


def unit_resources(parameters: int | None, dtype: str, device: str, gpu_memory_gib: float) -> Resources:
    """The resources of a unit whose model has ``parameters`` (None: not in any catalogue).

    Args:
        parameters: The model's parameter count.
        dtype: The dtype the model is loaded in (``float32``, ``bfloat16`` ...).
        device: The run's torch device; only ``cuda`` runs ask for GPUs.
        gpu_memory_gib: Memory of one GPU of the cluster.
    """
    if device_kind(device) != "cuda":
        return Resources(num_cpus=1.0)
    if parameters is None:
        return Resources(num_cpus=1.0, num_gpus=1.0)
    need_gib = parameters * BYTES_PER_PARAMETER.get(dtype, 4) * OVERHEAD / 2**30
    share = need_gib / gpu_memory_gib
    if share > 1:
        return Resources(num_cpus=1.0, num_gpus=float(math.ceil(share)))
    smallest = 1 / MAX_PER_GPU
    rounded = 2.0 ** math.ceil(math.log2(share)) if share > 0 else smallest
    return Resources(num_cpus=1.0, num_gpus=max(smallest, rounded))


def catalogue_parameters(spec: Any) -> int | None:
    """A model's parameter count as its ladder's catalogue gives it (None when no ladder has it)."""
    from probes.ladders import rung_metadata

    value = rung_metadata(spec).get("published_parameters")
    return int(value) if value is not None else None


def gpu_memory_gib(option: float | None) -> float:
    """The GPU memory to size shares by: the option, else this machine's first GPU, else 80 GiB."""
    if option is not None:
        return float(option)
    import torch

    if torch.cuda.is_available():
        return torch.cuda.get_device_properties(0).total_memory / 2**30
    return DEFAULT_GPU_MEMORY_GIB


#: Environment variables by which a user fixes torch's CPU threads; the toolkit then leaves them.
THREAD_VARIABLES = ("PROBES_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")

#: torch's own thread count, read before the first change (a later call may raise it back).
_TORCH_DEFAULT: list[int] = []


def free_cpus(cpus: int, load: float) -> int:
    """The CPUs a new computation can have to itself: ``cpus`` less the machine's run queue
    (``load``, the 1-minute load average), at least 1."""
    return max(1, cpus - round(load))


def set_torch_threads() -> int:
    """Set torch's CPU threads to the CPUs this process may use that other work leaves free.

    torch starts one intra-op thread per core it sees, whatever else runs; every parallel
    region then waits for its slowest thread, so on a machine whose cores are already busy
    each operation waits for the scheduler to give every thread a turn, and the work slows
    by several times rather than sharing the CPUs. Here the count is the CPUs of this
    process's affinity less the 1-minute load average (rounded), at least 1 and at most
    torch's own default: a quiet machine keeps torch's default, a busy one gets fewer threads.
    A user's ``PROBES_THREADS`` (or ``OMP_NUM_THREADS``/``MKL_NUM_THREADS``, which torch reads
    itself) wins. The manifest records the count each shard was computed with.

    Returns:
        The number of threads set.
    """
    import torch

    if not _TORCH_DEFAULT:
        _TORCH_DEFAULT.append(torch.get_num_threads())
    for name in THREAD_VARIABLES:
        value = os.environ.get(name, "").strip()
        if value.isdigit() and int(value) > 0:
            threads = int(value) if name == "PROBES_THREADS" else _TORCH_DEFAULT[0]
            torch.set_num_threads(threads)
            return threads
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    threads = min(_TORCH_DEFAULT[0], free_cpus(cpus, load))
    torch.set_num_threads(threads)
    return threads
