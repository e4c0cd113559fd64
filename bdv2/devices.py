"""How many JAX devices a process started with a given environment will see: the one place that decides.

Stdlib only. Used by the doctor (``--batch-size``) and by the trainer (batch checks before launch), so both
read ``CUDA_VISIBLE_DEVICES``, ``JAX_PLATFORMS`` and XLA's host-device forcing the same way.

Rules, each observable with a real jax:
- ``JAX_PLATFORMS`` (or the deprecated ``JAX_PLATFORM_NAME``) naming cpu first, a jax without a CUDA backend,
  or no visible GPU at all: the CPU backend, with ``--xla_force_host_platform_device_count=N`` devices (1 when
  the flag is absent).
- ``CUDA_VISIBLE_DEVICES``: the CUDA runtime keeps the listed ids up to the first invalid one (``-1``), so
  ``"0,1,-1,2"`` shows two GPUs and ``"-1"`` or ``""`` none
  (https://docs.nvidia.com/cuda/cuda-c-programming-guide/index.html#cuda-environment-variables).
- otherwise every GPU the driver reports.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

_FORCE = re.compile(r"--xla_force_host_platform_device_count=(\d+)")


class Platform(enum.Enum):
    CPU = "cpu"
    GPU = "gpu"


@dataclass(frozen=True)
class DeviceCount:
    """``n`` devices on ``platform``; ``n`` is None when only a running jax can tell. ``why`` is the evidence."""

    n: int | None
    platform: Platform | None
    why: str


@dataclass(frozen=True)
class DeviceView:
    """What decides the devices of a run's child besides its settings: the launcher's environment (the child
    inherits it: CUDA_VISIBLE_DEVICES, JAX_PLATFORMS, XLA_FLAGS), the GPUs the driver reports and whether jax has
    a CUDA backend (the doctor's snapshot; None: unknown), and --parallel (one GPU per child)."""

    environ: Mapping[str, str] = field(default_factory=dict)
    gpus: int | None = None
    gpu_backend: bool | None = None
    parallel: bool = False


def forced_host_devices(env: Mapping[str, str]) -> int | None:
    m = _FORCE.search(env.get("XLA_FLAGS", ""))
    return int(m.group(1)) if m else None


def cuda_visible_ids(value: str) -> list[str]:
    """The ids the CUDA runtime keeps from a ``CUDA_VISIBLE_DEVICES`` value (it stops at the first ``-1``)."""
    ids = [x.strip() for x in value.split(",") if x.strip()]
    return ids[: ids.index("-1")] if "-1" in ids else ids


def requested_platforms(env: Mapping[str, str]) -> list[str]:
    value = env.get("JAX_PLATFORMS") or env.get("JAX_PLATFORM_NAME") or ""
    return [p.strip().lower() for p in value.split(",") if p.strip()]


def _cpu(env: Mapping[str, str], why: str) -> DeviceCount:
    forced = forced_host_devices(env)
    if forced is not None:
        why += f"; XLA_FLAGS forces {forced} host device(s)"
    return DeviceCount(forced or 1, Platform.CPU, why)


def driver_gpus(source: str, listed: int, known: bool) -> int | None:
    """The GPUs a driver report shows, the one reading of "no GPU" for the doctor and the trainer: the listed
    count when NVML or nvidia-smi answered (0: a driver without GPUs), None when only part of a driver was
    seen (/proc without nvidia-smi, an error: the count is unknown), 0 when there is no NVIDIA driver at all.

    ``source``, ``listed`` and ``known``: the doctor snapshot's driver source, its number of GPUs, and whether
    anything of a driver was found.
    """
    if source in ("nvml", "nvidia-smi"):
        return listed
    return None if known else 0


def visible_devices(env: Mapping[str, str], gpus: int | None = None,
                    gpu_backend: bool | None = None) -> DeviceCount:
    """The devices a process started with ``env`` sees.

    ``gpus``: GPUs the driver reports (None: unknown). ``gpu_backend``: whether the installed jax has a CUDA
    backend (None: unknown).
    """
    platforms = requested_platforms(env)
    if platforms and platforms[0] == "cpu":
        return _cpu(env, f"JAX_PLATFORMS={','.join(platforms)}")
    if gpu_backend is False:
        return _cpu(env, "jax has no CUDA backend installed")
    cvd = env.get("CUDA_VISIBLE_DEVICES")
    if cvd is not None:
        ids = cuda_visible_ids(cvd)
        n = min(len(ids), gpus) if gpus is not None else len(ids)
        why = f"CUDA_VISIBLE_DEVICES={cvd!r}" + (f" of {gpus} GPU(s)" if gpus is not None else "")
        if n == 0:
            return _cpu(env, why + " hides every GPU")
        return DeviceCount(n, Platform.GPU, why)
    if gpus is None:
        return DeviceCount(None, None, "the GPU count is known only to a running jax")
    if gpus == 0:
        return _cpu(env, "no GPU reported by the driver")
    return DeviceCount(gpus, Platform.GPU, f"{gpus} GPU(s) reported by the driver")


def indivisible(batch: int, devices: int, unit: str = "device(s)") -> str | None:
    """None when ``batch`` splits evenly over ``devices``; else a fix that names the nearest choices."""
    if devices <= 0 or batch % devices == 0:
        return None
    fits = next(n for n in range(min(devices, batch), 0, -1) if batch % n == 0)
    lower = batch // devices * devices
    choices = f"{lower} or {lower + devices}" if lower else f"{devices}"
    return f"use a batch that is a multiple of {devices} (e.g. {choices}), or run on {fits} {unit}"


class IndivisibleBatch(ValueError):
    """A batch size that does not split evenly over the devices (or hosts) that share it. ``problem`` and
    ``fix`` are the one wording of every such check: the doctor's ``--batch-size`` finding and the trainer's
    checks before launch, at run time and per host."""

    def __init__(self, key: str, size: int, devices: int, unit: str, context: str, fix: str) -> None:
        self.key, self.size, self.devices, self.fix = key, size, devices, fix
        self.problem = f"{size} is not divisible by the {devices} {unit}" + (f" {context}" if context else "")
        super().__init__(f"{key}: {self.problem}\n  fix: {fix}")


def require_divisible(sizes: Mapping[str, int | None], devices: int, *, unit: str = "device(s)",
                      context: str = "") -> None:
    """Every size of ``sizes`` (name -> batch size; None: not set, not checked) splits evenly over ``devices``.

    ``unit`` names what shares the batch ("device(s)", "host(s)", "visible GPU(s)"); ``context`` follows the
    count in the message (which devices, and why that many).

    Raises:
        IndivisibleBatch: the first size that does not, with a fix naming the nearest sizes that do.
    """
    for key, size in sizes.items():
        if size is None:
            continue
        fix = indivisible(size, devices, unit)
        if fix is not None:
            raise IndivisibleBatch(key, size, devices, unit, context, fix)
