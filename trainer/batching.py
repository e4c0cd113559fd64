"""Batch sizes versus devices: the one divisibility check of the trainer.

Three moments check it: config.py before launch (the devices a run's settings imply, counted by
bdv2.devices like the doctor does), loop.py at run time (every device of every host) and data.py when a
host takes its share of the global batch (the process count). All three call `check_divisible`, which is
bdv2.devices.require_divisible (the doctor's ``--batch-size`` check too) raised as a ConfigError naming the
file and the key: one error, one wording.
"""

from __future__ import annotations

from collections.abc import Mapping

from bdv2.devices import DeviceCount, DeviceView, IndivisibleBatch, cuda_visible_ids, require_divisible, visible_devices

from .childenv import DEVICE_KEYS, device_env
from .errors import ConfigError
from .settings import Settings


def batch_sizes(s: Settings) -> dict[str, int | None]:
    """The batch-size settings checked against the devices (val_batch_size None: the train size is used)."""
    return {"train_batch_size": s.train_batch_size, "val_batch_size": s.val_batch_size}


def check_divisible(sizes: Mapping[str, int | None], devices: int, file: str, where: str, *,
                    unit: str = "device(s)", context: str = "") -> None:
    """bdv2.devices.require_divisible for a run: every size splits evenly over ``devices``.

    Raises:
        ConfigError: naming ``file`` and the key (under ``where``, when given), the count and a fix.
    """
    try:
        require_divisible(sizes, devices, unit=unit, context=context)
    except IndivisibleBatch as e:
        raise ConfigError(file, f"{where}.{e.key}" if where else e.key, e.problem, e.fix) from e


def run_devices(s: Settings, view: DeviceView | None = None) -> DeviceCount:
    """The devices a run will see: its settings' environment keys (cuda_visible_devices, jax_platform_name,
    xla_flags) over ``view.environ``, as childenv.child_env merges them; ``n`` is None when only a running jax can
    tell. Without ``view``: the settings alone."""
    view = view or DeviceView()
    return visible_devices(child_device_env(s, view.environ), view.gpus, view.gpu_backend)


def child_device_env(s: Settings, environ: Mapping[str, str]) -> dict[str, str]:
    """The device keys of a child's environment: the run's keys over ``environ`` (childenv.device_env)."""
    return device_env(s, {k: v for k, v in environ.items() if k in DEVICE_KEYS})


def parallel_gpus(s: Settings, environ: Mapping[str, str]) -> list[str]:
    """The GPU ids --parallel gives out, one per child: the run's cuda_visible_devices (else the launcher's)."""
    value = s.cuda_visible_devices if s.cuda_visible_devices is not None else environ.get("CUDA_VISIBLE_DEVICES")
    return cuda_visible_ids(value or "")


def check_devices(s: Settings, file: str, where: str, view: DeviceView) -> None:
    """Every device check of one run before launch: --parallel's GPU ids exist, and both batch sizes split
    evenly over the devices each of its children will see.

    Raises:
        ConfigError: naming the key, the device count, its evidence and a fix.
    """
    ids = parallel_gpus(s, view.environ) if view.parallel else []
    if len(ids) > 1:
        gpus = view.gpus
        absent = [i for i in ids if i.isdigit() and gpus is not None and int(i) >= gpus]
        if absent and gpus is not None:
            raise ConfigError(file, f"{where}.cuda_visible_devices", f"--parallel gives GPU {', '.join(absent)} "
                              f"to a run, but the driver reports {gpus} GPU(s); such a run would see no GPU "
                              "and fall back to the CPU", "list only GPUs that exist (nvidia-smi -L)")
        envs = [{**view.environ, "CUDA_VISIBLE_DEVICES": i} for i in ids]
        s = Settings(**{**vars(s), "cuda_visible_devices": None})
    else:
        envs = [dict(view.environ)]
    for env in envs:
        count = visible_devices(child_device_env(s, env), view.gpus, view.gpu_backend)
        if count.n is None:
            continue
        check_divisible(batch_sizes(s), count.n, file, where, context=f"this run will see ({count.why})")
