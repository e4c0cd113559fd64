"""The environment of a run's child process, decided in one place: the launcher starts the child with
`child_env`, `bdv2 train --slurm` writes the same edits (`child_ops`) into its job script, and the checks
before launch count the devices that child will see from `device_env` (batching.run_devices), so they
cannot disagree.

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


def run_ops(s: Settings) -> list[EnvOp]:
    """The run's device keys (settings.run_env) as environment edits: the YAML's flags are merged into XLA_FLAGS
    (the user's own flags are kept, unlike the fork's replace), and a JAX_PLATFORMS from the run drops the
    deprecated JAX_PLATFORM_NAME (JAX_PLATFORMS wins anyway)."""
    from bdv2.doctor import EnvOp, EnvOpKind

    wanted = run_env(s)
    ops = [EnvOp(EnvOpKind.SET, key, value) for key, value in wanted.items()]
    if "JAX_PLATFORMS" in wanted:
        ops.append(EnvOp(EnvOpKind.UNSET, "JAX_PLATFORM_NAME"))
    return ops


def device_env(s: Settings, environ: Mapping[str, str]) -> dict[str, str]:
    """``environ`` with the run's device keys over it (`run_ops`)."""
    from bdv2.doctor import apply_env

    return apply_env(run_ops(s), environ)


def child_ops(s: Settings, doctor_ops: Sequence[EnvOp]) -> list[EnvOp]:
    """The environment edits of one run's child, in order: the doctor's first (it knows when putting the pip
    CUDA wheels on LD_LIBRARY_PATH helps, for an old jaxlib, and when it hurts, so ``use_pip_cuda_libs`` only
    allows its PREPENDs rather than injecting blindly), then the run's device keys (`run_ops`). `child_env`
    applies them; `bdv2 train --slurm` writes them into its job script as shell."""
    from bdv2.doctor import EnvOpKind

    ops = [op for op in doctor_ops
           if s.use_pip_cuda_libs or not (op.op is EnvOpKind.PREPEND and op.name == "LD_LIBRARY_PATH")]
    return ops + run_ops(s)


CHILD_EXTRA = {"PYTHONUNBUFFERED": "1"}
"""Set in every child's environment besides `child_ops`: the log shows the last line before a crash."""


def child_env(s: Settings, environ: Mapping[str, str], doctor_ops: Sequence[EnvOp],
              verbose: bool = False) -> dict[str, str]:
    """The environment of one run's child process: ``environ`` with `child_ops` applied, CHILD_EXTRA, and
    TensorFlow's start-up lines silenced where the user has not set their keys (unless ``verbose``)."""
    from bdv2.doctor import apply_env

    env = apply_env(child_ops(s, doctor_ops), environ)
    env.update(CHILD_EXTRA)
    quiet_native_logs(env, verbose)
    return env
