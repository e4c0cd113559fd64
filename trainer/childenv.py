"""The environment of a run's child process, decided in one place: the launcher starts the child with
`child_env`, and the checks before launch count the devices that child will see from `device_env`
(batching.run_devices), so the two cannot disagree.

Imports neither jax, TensorFlow nor numpy; the doctor's environment helpers are imported when called, so a
child that only reads its settings does not load the doctor.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from bdv2.console import quiet_native_logs

from .settings import Settings, run_env

if TYPE_CHECKING:
    from bdv2.doctor import EnvOp

DEVICE_KEYS = ("XLA_FLAGS", "CUDA_VISIBLE_DEVICES", "JAX_PLATFORMS", "JAX_PLATFORM_NAME")
"""The environment keys that decide a process's jax devices (bdv2.devices.visible_devices reads them)."""


def device_env(s: Settings, environ: Mapping[str, str]) -> dict[str, str]:
    """``environ`` with the run's device keys over it (settings.run_env): the YAML's flags are merged into
    XLA_FLAGS (the user's own flags are kept, unlike the fork's replace), and a JAX_PLATFORMS from the run
    drops the deprecated JAX_PLATFORM_NAME (JAX_PLATFORMS wins anyway)."""
    from bdv2.doctor import merge_flags

    env = dict(environ)
    wanted = run_env(s)
    for key, value in wanted.items():
        env[key] = merge_flags(env.get(key, ""), value) if key == "XLA_FLAGS" else value
    if "JAX_PLATFORMS" in wanted:
        env.pop("JAX_PLATFORM_NAME", None)
    return env


def child_env(s: Settings, environ: Mapping[str, str], doctor_ops: Sequence[EnvOp],
              verbose: bool = False) -> dict[str, str]:
    """The environment of one run's child process.

    The doctor's edits come first: it knows when putting the pip CUDA wheels on LD_LIBRARY_PATH helps (old
    jaxlib) and when it hurts, so ``use_pip_cuda_libs`` only allows its PREPENDs rather than injecting blindly.
    Then the run's device keys (`device_env`).
    """
    from bdv2.doctor import EnvOpKind, apply_env

    ops = [op for op in doctor_ops
           if s.use_pip_cuda_libs or not (op.op is EnvOpKind.PREPEND and op.name == "LD_LIBRARY_PATH")]
    env = device_env(s, apply_env(ops, environ))
    env["PYTHONUNBUFFERED"] = "1"  # the log shows the last line before a crash
    quiet_native_logs(env, verbose)  # TensorFlow's start-up lines, where the user has not set them
    return env
