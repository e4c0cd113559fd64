"""Batch sizes versus devices: the one divisibility check of the trainer.

Three moments check it, each with its own error: config.py before launch (the devices a run's settings
imply, counted by bdv2.devices like the doctor does), loop.py at run time (every device of every host) and
data.py when a host takes its share of the global batch (the process count). All three call
`first_indivisible`; the fix text comes from bdv2.devices.indivisible.
"""

from __future__ import annotations

from collections.abc import Mapping

from bdv2.devices import DeviceCount, indivisible, visible_devices
from bdv2.trainer.settings import Settings, run_env


def batch_sizes(s: Settings) -> dict[str, int | None]:
    """The batch-size settings checked against the devices (val_batch_size None: the train size is used)."""
    return {"train_batch_size": s.train_batch_size, "val_batch_size": s.val_batch_size}


def first_indivisible(sizes: Mapping[str, int | None], devices: int) -> tuple[str, int, str] | None:
    """(key, size, fix) of the first size that does not split evenly over ``devices``; None when all do."""
    for key, size in sizes.items():
        if size is None:
            continue
        fix = indivisible(size, devices)
        if fix is not None:
            return key, size, fix
    return None


def run_devices(s: Settings) -> DeviceCount:
    """The devices a run will see, from its settings' environment keys alone (cuda_visible_devices,
    jax_platform_name, xla_flags); ``n`` is None when only a running jax can tell."""
    return visible_devices(run_env(s))
