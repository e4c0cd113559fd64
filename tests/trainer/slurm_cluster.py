"""A real one-node Slurm cluster for tests, on this machine: munged, slurmctld and slurmd started as root from
Debian's `slurm-wlm` and `munge` packages, everything (key, state, spool, logs, configuration) in a temporary
folder and the daemons on free loopback ports, so nothing of the machine's own is touched. Installing nothing
itself: `start` says why it cannot run (not root, a program missing, a daemon that did not come up), and the
fixture skips with that reason.

    sudo apt-get install -y slurm-wlm munge      # what it needs (Debian/Ubuntu)
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

PROGRAMS = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "scontrol", "sinfo")
CPUS = 2


@dataclass
class Cluster:
    root: Path
    env: dict[str, str]
    """The environment of a client of this cluster (SLURM_CONF points at its configuration)."""
    pids: list[int] = field(default_factory=list)
    job: str = ""
    """The job under test, for failure messages."""

    def run(self, *argv: str, check: bool = True) -> str:
        out = subprocess.run(list(argv), env=self.env, capture_output=True, text=True, timeout=60)
        if check and out.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)}: exit {out.returncode}: {out.stderr.strip()}")
        return out.stdout.strip()

    def state(self, job: str) -> str:
        """The job's state and reason as squeue shows them ('' once it has left the queue)."""
        return self.run("squeue", "-h", "-j", job, "-o", "%T %r", check=False)

    def describe(self, job: str) -> str:
        """What Slurm says of ``job`` and the node: for a failure message."""
        parts = [("scontrol show job", ("scontrol", "show", "job", job)),
                 ("squeue -t all", ("squeue", "-t", "all", "-o", "%i %T %r %S")),
                 ("sinfo -R", ("sinfo", "-R")), ("sinfo", ("sinfo", "-N", "-o", "%N %T %E"))]
        return "\n".join(f"--- {name}\n{self.run(*argv, check=False)}" for name, argv in parts)

    def node_state(self) -> str:
        """The node's state and, when drained or down, Slurm's reason ("idle", "drained|Kill task failed")."""
        return self.run("sinfo", "-h", "-N", "-o", "%T|%E", check=False).removesuffix("|none")

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n" + p.read_text(errors="replace")[-3000:]
                         for p in sorted((self.root / "log").glob("*.log")))

    def stop(self) -> None:
        subprocess.run(["scancel", "--full", "-u", "root"], env=self.env, capture_output=True, timeout=60)
        for pid in reversed(self.pids):
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                continue
            for _ in range(50):
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.1)


def _free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def _pid(path: Path, timeout: float = 20) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().strip().isdigit():
            return int(path.read_text())
        time.sleep(0.2)
    raise RuntimeError(f"{path} was not written")


def config(root: Path, ctld_port: int, slurmd_port: int) -> str:
    """slurm.conf for one node, localhost, with CPUS cores: no cgroups (linuxproc process tracking, no task
    binding), consumable CPUs, requeue allowed, 60 s between a job's SIGTERM and its SIGKILL."""
    return "\n".join([
        "ClusterName=bdv2test", "SlurmctldHost=localhost", f"SlurmctldPort={ctld_port}", f"SlurmdPort={slurmd_port}",
        "AuthType=auth/munge", f"AuthInfo=socket={root}/munge/socket", "CredType=cred/munge",
        "SlurmUser=root", "SlurmdUser=root",
        f"StateSaveLocation={root}/state", f"SlurmdSpoolDir={root}/spool",
        f"SlurmctldPidFile={root}/slurmctld.pid", f"SlurmdPidFile={root}/slurmd.pid",
        f"SlurmctldLogFile={root}/log/slurmctld.log", f"SlurmdLogFile={root}/log/slurmd.log",
        "ProctrackType=proctrack/linuxproc", "TaskPlugin=task/none",
        "SelectType=select/cons_tres", "SelectTypeParameters=CR_CPU", "SchedulerType=sched/backfill",
        "ReturnToService=2", "JobRequeue=1", "KillWait=60", "MpiDefault=none",
        "JobAcctGatherType=jobacct_gather/none", "AccountingStorageType=accounting_storage/none",
        f"NodeName=localhost CPUs={CPUS} State=UNKNOWN",
        "PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP",
    ]) + "\n"


def start(root: Path) -> Cluster | str:
    """The running cluster, or why there is none (its daemons are stopped again)."""
    if os.geteuid() != 0:
        return "a Slurm cluster is started as root (munged, slurmctld and slurmd), and this is not root"
    missing = [p for p in PROGRAMS if shutil.which(p) is None]
    if missing:
        return f"{', '.join(missing)} not installed (apt-get install -y slurm-wlm munge)"
    root.chmod(0o755)  # munged wants the folders above its socket searchable by everyone
    for sub in ("state", "spool", "log"):
        (root / sub).mkdir()
    (root / "munge").mkdir(mode=0o700)
    key = root / "munge" / "munge.key"
    key.write_bytes(os.urandom(1024))
    key.chmod(0o600)
    ctld, slurmd = _free_ports(2)
    conf = root / "slurm.conf"
    conf.write_text(config(root, ctld, slurmd))
    cluster = Cluster(root, {**os.environ, "SLURM_CONF": str(conf)})
    munge = root / "munge"
    steps = [
        (["munged", "--force", f"--socket={munge}/socket", f"--key-file={key}", f"--pid-file={munge}/munged.pid",
          f"--log-file={root}/log/munged.log", f"--seed-file={munge}/seed"], munge / "munged.pid"),
        (["slurmctld", "-f", str(conf)], root / "slurmctld.pid"),
        (["slurmd", "-f", str(conf), "-N", "localhost"], root / "slurmd.pid"),
    ]
    try:
        for argv, pidfile in steps:
            out = subprocess.run(argv, env=cluster.env, capture_output=True, text=True, timeout=60)
            if out.returncode != 0:
                raise RuntimeError(f"{argv[0]} exited {out.returncode}: {(out.stderr or out.stdout).strip()}")
            cluster.pids.append(_pid(pidfile))
        deadline = time.monotonic() + 60
        while "idle" not in cluster.run("sinfo", "-h", "-o", "%T", check=False):
            if time.monotonic() > deadline:
                raise RuntimeError("the node did not become idle within 60 s")
            time.sleep(1)
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as e:
        reason = f"the test's Slurm cluster did not start: {e}\n{cluster.logs()}"
        cluster.stop()
        return reason
    return cluster
