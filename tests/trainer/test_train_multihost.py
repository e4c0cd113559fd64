"""Multi-host data parallelism: simulated on one machine by injecting (process_index, process_count), and one
real run of two worker processes joined by jax.distributed on the CPU.

What is tested: every host reads a disjoint part of the data and the hosts' parts together are exactly the
single-host data (both ways of splitting: by file, and by trajectory when there are fewer files than hosts);
a host batches train_batch_size / process_count rows; batch sizes are checked against the global device
count; the global batch is built from the local one, and a single host is unchanged; two real processes
(one CPU device each) train one run to the same loss, evaluate (the cross-host "every host has a val
batch" gather) and checkpoint, and only host 0 writes the metrics and summary.
What is not: several devices per host, hosts on different machines (a real network, a shared filesystem
for the checkpoints), SLURM's own coordinator discovery, and GPUs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jax
import numpy as np
import pytest
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from bdv2.trainer import config, data, hosts, loop, model
from bdv2.trainer.errors import ConfigError
from bdv2.trainer.metrics import read_metrics

from . import helpers


def _run(tfdata: Path, tmp_path: Path, task: str = "kitchen", **over: Any) -> model.Run:
    g = helpers.base_global(tfdata, tmp_path / "runs", **over)
    y = helpers.write_yaml(tmp_path / "m.yaml", {"global": g, "matrix": {"algos": ["gc_bc"], "tasks": [task]}})
    return config.load(y).runs[0]


def _rows(ds: Any, goals: bool) -> list[bytes]:
    """Every transition of a finite dataset as bytes of (actions, proprio[, goal proprio]): with goals, a
    trajectory relabelled differently on a host would not match."""
    out = []
    for b in ds.as_numpy_iterator():
        for i in range(len(b["actions"])):
            out.append(b["actions"][i].tobytes() + b["observations"]["proprio"][i].tobytes()
                       + (b["goals"]["proprio"][i].tobytes() if goals else b""))
    return out


def _val_rows(run: model.Run, files: list[str], index: int, count: int, goals: bool) -> list[bytes]:
    meta = model.Metadata.load(run.task.metadata)
    cfg = data.PipelineConfig(batch_size=1, seed=3, process_index=index, process_count=count)
    return _rows(data.make_val_dataset(files, meta, cfg), goals)


@pytest.mark.parametrize("n_files", [3, 1], ids=["by-file", "by-trajectory"])
def test_two_hosts_read_disjoint_parts_whose_union_is_the_single_host_data(tfdata: Path, tmp_path: Path,
                                                                          n_files: int) -> None:
    """By trajectory, each keeps its single-host goal seed, so rows match goals included; by file, a host's
    positions are its own, so the goals are drawn anew (and differently on each host) and rows match without."""
    run = _run(tfdata, tmp_path, task=".")
    files = [f for s in run.task.sources for f in s.train_files][:n_files]  # 3 trajectories of 8 steps each, read once
    goals = n_files == 1
    single = _val_rows(run, files, 0, 1, goals)
    host0, host1 = _val_rows(run, files, 0, 2, goals), _val_rows(run, files, 1, 2, goals)
    assert host0 and host1 and not set(host0) & set(host1)
    assert sorted(host0 + host1) == sorted(single) and len(set(single)) == len(single)
    assert _val_rows(run, files, 1, 2, goals) == host1  # deterministic
    if not goals:  # and no two hosts share goal draws: host 1's goals are not host 0's pattern again
        g0, g1 = _val_rows(run, files, 0, 2, True), _val_rows(run, files, 1, 2, True)
        assert not set(g0) & set(g1)


def test_two_hosts_deal_out_the_training_file_stream(tfdata: Path, tmp_path: Path) -> None:
    """The endless, reshuffled-every-epoch file stream is the same on every host, so dealing it out round-robin
    gives host k the positions k, k + 2, ...: over any stretch, each file occurrence is read by one host."""
    run = _run(tfdata, tmp_path, task=".", augment=False, train_batch_size=8)
    files = [f for s in run.task.sources for f in s.train_files]  # 3 files

    def names(index: int, count: int, n: int) -> list[bytes]:
        cfg = data.PipelineConfig(batch_size=1, seed=5, process_index=index, process_count=count)
        return list(data.file_stream(files, cfg, cfg.seed, train=True).take(n).as_numpy_iterator())

    single = names(0, 1, 12)  # four epochs, each in its own order
    assert len({tuple(single[e * 3:e * 3 + 3]) for e in range(4)}) > 1 and sorted(single[:3]) == sorted(
        f.encode() for f in files)
    assert names(0, 2, 6) == single[0::2] and names(1, 2, 6) == single[1::2]
    batch = next(data.train_iterator(run, process_index=1, process_count=2))
    assert batch["actions"].shape == (4, 7)  # 8 global rows / 2 hosts
    with pytest.raises(ConfigError, match=r"train_batch_size: 8 is not divisible by the 3 host\(s\)"):
        data.PipelineConfig.of(run, train=True, process_index=0, process_count=3)


def test_batch_sizes_are_checked_against_the_global_device_count(tfdata: Path, tmp_path: Path) -> None:
    run = _run(tfdata, tmp_path, train_batch_size=12, val_batch_size=8)
    loop.check_batch_sizes(run, hosts.Hosts(0, 1, 4))  # 12 and 8 over 4 devices: fine
    with pytest.raises(ConfigError, match=r"(?s)val_batch_size: 8 is not divisible by the 12 device\(s\) in total "
                                          r"\(3 hosts\).*multiple of 12"):
        loop.check_batch_sizes(run, hosts.Hosts(0, 3, 12))  # 4 local devices on each of 3 hosts


def test_global_batch_on_one_host_is_the_local_batch() -> None:
    mesh = Mesh(np.array(jax.devices()), ("batch",))
    sharding = NamedSharding(mesh, PartitionSpec("batch"))
    local = {"actions": np.arange(8, dtype=np.float32).reshape(4, 2), "obs": {"image": np.ones((4, 2, 2, 3))}}
    for build in (hosts.make_global_batch,  # the single-host path: device_put, as before
                  lambda b, s, h: jax.tree.map(lambda x: jax.make_array_from_process_local_data(s, x), b)):
        out = build(local, sharding, hosts.Hosts())
        assert out["actions"].shape == (4, 2) and out["actions"].sharding == sharding
        np.testing.assert_array_equal(np.asarray(out["actions"]), local["actions"])
    assert hosts.every_host_has(False, hosts.Hosts()) is False  # one host: no gather, its own answer


def test_two_real_processes_train_one_run_under_jax_distributed(tfdata: Path, tmp_path: Path) -> None:
    """Two `bdv2.trainer.worker` processes on this machine, joined by jax.distributed (CPU, gloo) through the
    explicit BDV2_COORDINATOR_ADDRESS / BDV2_NUM_PROCESSES / BDV2_PROCESS_ID: one global batch assembled
    from both hosts' halves, the same loss seen by both, one set of files written (by host 0)."""
    import os
    import socket
    import subprocess
    import sys

    from bdv2.trainer import launch

    run = _run(tfdata, tmp_path, num_steps=4, log_interval=2, eval_interval=4, save_interval=4, augment=False)
    launch.prepare_workdir(run, resume=True)
    with socket.socket() as s:  # a free port for the coordinator
        s.bind(("localhost", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "TF_CPP_MIN_LOG_LEVEL": "2",
           "BDV2_COORDINATOR_ADDRESS": f"localhost:{port}", "BDV2_NUM_PROCESSES": "2"}
    procs = [subprocess.Popen([sys.executable, "-P", "-m", "bdv2.trainer.worker", str(run.workdir / "run.json")],
                              env={**env, "BDV2_PROCESS_ID": str(k)}, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for k in range(2)]
    outs = [p.communicate(timeout=240)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], "\n".join(o[-2000:] for o in outs)
    finals = [next(line for line in o.splitlines() if "finished after 4 steps" in line) for o in outs]
    assert finals[0].split("train loss")[1] == finals[1].split("train loss")[1]  # one model, one global batch
    records = [(r["step"], r["split"]) for r in read_metrics(run.workdir)]
    assert records == [(2, "train"), (4, "train"), (4, "val")]  # written once, not once per host
    summary = json.loads((run.workdir / loop.SUMMARY_FILE).read_text())
    assert summary["status"] == "finished" and summary["checkpoint"].endswith("/4")


def test_explicit_coordinator_settings_must_be_complete() -> None:
    with pytest.raises(ConfigError, match=r"environment: BDV2_PROCESS_ID: set with"):
        hosts.maybe_initialize_distributed({"BDV2_COORDINATOR_ADDRESS": "h:1", "BDV2_NUM_PROCESSES": "2"})
    with pytest.raises(ConfigError, match=r"'2'/'2'"):
        hosts.maybe_initialize_distributed({"BDV2_COORDINATOR_ADDRESS": "h:1", "BDV2_NUM_PROCESSES": "2",
                                           "BDV2_PROCESS_ID": "2"})
    hosts.maybe_initialize_distributed({})  # nothing set, no SLURM: a single process, nothing happens
