"""Where this process stands among the jax.distributed processes, and the global batch built from the hosts'
local ones.

Under SLURM with several tasks, `jax.distributed.initialize()` reads the coordinator from the SLURM
environment (`srun python -m bdv2.trainer.worker run.json`, one task per host); elsewhere set
BDV2_COORDINATOR_ADDRESS (host:port of process 0), BDV2_NUM_PROCESSES and BDV2_PROCESS_ID for each worker.
The workdir must be shared by the hosts (orbax writes one checkpoint from all of them); host 0 alone writes
metrics, the config snapshot and summary.json. Each host reads its own disjoint part of the data (data.py),
batches train_batch_size / process_count rows, and `make_global_batch` assembles the global batch from the
hosts' local ones (jax.make_array_from_process_local_data over the global mesh); batch sizes are checked
against the global device count. With one process everything is as on a single machine: the local batch
is the global one, placed with jax.device_put.

Tested (tests/trainer/test_train_multihost.py): the divisibility check against the global device count, the
per-host data split (disjoint, union = single host), `make_global_batch` on one process, and a real
two-process jax.distributed run on one machine (CPU, one device per process: same loss on both, one set of
files), and SIGUSR1 to one of those two processes (tests/trainer/test_preemption.py: both stop after the same
step through the preemption sync point, process.py, and save it once). A single worker under a real one-node
Slurm, signalled and requeued: tests/trainer/test_slurm.py. Not tested: several devices per host, separate
machines, SLURM's own multi-task discovery, GPUs.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import jax
import numpy as np
from jax.sharding import NamedSharding

from .errors import ConfigError

COORDINATOR_ENV = ("BDV2_COORDINATOR_ADDRESS", "BDV2_NUM_PROCESSES", "BDV2_PROCESS_ID")
"""Explicit coordinator settings (outside SLURM): host:port of process 0, the process count, this process's id."""


def maybe_initialize_distributed(environ: Mapping[str, str] | None = None) -> None:
    """jax.distributed with the explicit BDV2_COORDINATOR_ADDRESS / BDV2_NUM_PROCESSES / BDV2_PROCESS_ID, or
    under SLURM with several tasks (it finds the coordinator itself); else nothing.

    Raises:
        ConfigError: the explicit settings are incomplete or not numbers.
    """
    env = os.environ if environ is None else environ
    given = [k for k in COORDINATOR_ENV if env.get(k)]
    if given:
        if len(given) < len(COORDINATOR_ENV):
            missing = [k for k in COORDINATOR_ENV if k not in given]
            raise ConfigError("environment", missing[0], f"set with {', '.join(given)} but missing",
                              f"set all of {', '.join(COORDINATOR_ENV)}, or none (SLURM is detected by itself)")
        address, count, index = (env[k] for k in COORDINATOR_ENV)
        if not (count.isdigit() and index.isdigit() and int(index) < int(count)):
            raise ConfigError("environment", "BDV2_NUM_PROCESSES/BDV2_PROCESS_ID", f"{count!r}/{index!r}",
                              "a process count and an id in [0, count)")
        # is_initialized, not process_count(): asking for the process count starts the XLA backend, after
        # which initialize() refuses to run.
        if int(count) > 1 and not jax.distributed.is_initialized():
            jax.distributed.initialize(address, num_processes=int(count), process_id=int(index))
        return
    if int(env.get("SLURM_NTASKS", "1")) > 1 and not jax.distributed.is_initialized():
        jax.distributed.initialize()


@dataclass(frozen=True)
class Hosts:
    """Where this process stands among the jax.distributed processes; injectable so tests can play host k
    of n on one machine."""

    index: int = 0
    count: int = 1
    global_devices: int = 1
    """jax.device_count(): the devices of every host, which the global batch is split over."""

    @classmethod
    def current(cls) -> Hosts:
        return cls(jax.process_index(), jax.process_count(), jax.device_count())


def make_global_batch(local: Any, sharding: NamedSharding, hosts: Hosts) -> Any:
    """This host's rows -> the global batch, axis 0 split over every device of the mesh.

    One host: jax.device_put (the local batch is the global one). Several: each leaf becomes a global array of
    `count` times the local rows via jax.make_array_from_process_local_data, which requires every host to
    pass the same number of rows (data.py makes every batch full then).
    """
    if hosts.count == 1:
        return jax.device_put(local, sharding)
    return jax.tree.map(lambda x: jax.make_array_from_process_local_data(sharding, np.asarray(x)), local)


def every_host_has(has: bool, hosts: Hosts) -> bool:
    """True when this host and all the others have one more batch (a cross-host gather; local on one host)."""
    if hosts.count == 1:
        return has
    from jax.experimental import multihost_utils

    return bool(np.all(multihost_utils.process_allgather(np.array(has))))
