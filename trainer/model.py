"""The types the trainer's modules share: what a run is (Source, Task, Run, Experiments), what the launcher
learns before and after it (Preflight, Outcome) and a task's normalisation statistics (Metadata).

They live here, below every module that reads them, so that no two trainer modules need each other:
config.py builds Runs, tasks.py resolves Tasks, launch.py and report.py handle Preflights and Outcomes,
data.py and transforms.py read Metadata. Imports neither jax, TensorFlow nor numpy (Metadata.load imports
numpy when it reads a file), nor the doctor (its types are named for the type checker only).
"""

from __future__ import annotations

import dataclasses
import enum
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bdv2.devices import DeviceView
from bdv2.paths import AnyPath, as_path

from .errors import DataError
from .failure import Failure
from .settings import ALGO_DECAY_KEY, Algo, Settings, build_settings
from .status import RunStatus

if TYPE_CHECKING:
    import numpy as np

    from bdv2.doctor import EnvOp, Finding

__all__ = ["Experiments", "Metadata", "Outcome", "Preflight", "Run", "Source", "Task"]


@dataclass(frozen=True)
class Source:
    """One include glob of a task: its TFRecord files or RLDS dataset directories, and its share of the samples.

    A source holds converted TFRecords or RLDS directories, never both (their streams differ in form).
    """

    pattern: str
    train_files: tuple[str, ...]
    val_files: tuple[str, ...]
    weight: float
    rlds_train: tuple[str, ...] = ()
    """RLDS dataset directories read for training (their train split)."""
    rlds_val: tuple[str, ...] = ()
    """The RLDS directories that have a val/validation/test split."""


@dataclass(frozen=True)
class Task:
    name: str
    sources: tuple[Source, ...]
    metadata: str


@dataclass(frozen=True)
class Run:
    """One experiment, fully resolved: what a child process needs to train (it is written as run.json)."""

    name: str
    algo: Algo
    task: Task
    settings: Settings
    config_file: str = ""
    notes: tuple[str, ...] = ()
    origins: dict[str, str] = field(default_factory=dict, compare=False)
    """Where each setting came from: default, global, matrix, run (its config_overrides), --set, or
    algorithm default (config._run_settings); shown by --dry-run."""

    @property
    def workdir(self) -> AnyPath:
        """<save_dir>/<name>: a local Path, or a GPath when save_dir is a URL (gs://...)."""
        return as_path(self.settings.save_dir) / self.name

    @property
    def decay_steps(self) -> int:
        s = self.settings
        return s.decay_steps if s.decay_steps is not None else int(getattr(s, ALGO_DECAY_KEY[self.algo]))

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values (enums as their YAML spellings): what run.json and config.json hold."""
        return _plain(dataclasses.asdict(self))

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Run:
        task = d["task"]
        return cls(name=d["name"], algo=Algo(d["algo"]), config_file=d.get("config_file", ""),
                   notes=tuple(d.get("notes", ())), origins=dict(d.get("origins", {})),
                   task=Task(task["name"], tuple(Source(s["pattern"], tuple(s["train_files"]), tuple(s["val_files"]),
                                                        float(s["weight"]), tuple(s.get("rlds_train", ())),
                                                        tuple(s.get("rlds_val", ())))
                                                 for s in task["sources"]),
                             task["metadata"]),
                   settings=build_settings(d["settings"], "run.json", "settings"))


def _plain(value: Any) -> Any:
    """``value`` with every enum replaced by its value, through dicts, lists and tuples."""
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_plain(v) for v in value)
    return value


@dataclass(frozen=True)
class Experiments:
    file: str
    runs: tuple[Run, ...]
    notes: tuple[str, ...] = field(default=())


@dataclass(frozen=True)
class Preflight:
    """What the launcher learns from the doctor before any run starts (launch.doctor_preflight)."""

    findings: tuple[Finding, ...] = ()
    env_ops: tuple[EnvOp, ...] = ()
    """The doctor's repair plan, environment part: what `bdv2 run` gives its child too."""
    gpus: int | None = None
    """GPUs the driver reports (the doctor's snapshot); None: unknown."""
    gpu_backend: bool | None = None
    """Whether the installed jax has a CUDA backend; None: unknown."""

    def view(self, environ: Mapping[str, str], parallel: bool = False) -> DeviceView:
        """What config.load checks each run's devices against (batching.check_devices)."""
        return DeviceView(environ, self.gpus, self.gpu_backend, parallel)

    @property
    def errors(self) -> tuple[Finding, ...]:
        from bdv2.doctor import Severity  # the doctor's face, only when asked: a child never needs it

        return tuple(f for f in self.findings if f.severity is Severity.ERROR)


@dataclass(frozen=True)
class Outcome:
    """How one run ended, as the launcher's summary shows it."""

    name: str
    status: RunStatus
    steps: int = 0
    train_loss: float | None = None
    val_loss: float | None = None
    wall_s: float = 0.0
    checkpoint: str = ""
    log: str = ""
    diagnosis: tuple[Finding, ...] = field(default=())
    notes: tuple[str, ...] = ()
    failure: Failure | None = None
    """bdv2's own error or a signal, named (failure.py); else ``diagnosis`` reads the log."""


@dataclass(frozen=True)
class Metadata:
    """Normalisation statistics, in the form `bdv2 data stats` writes (proprio has its own, unlike the original)."""

    action_mean: np.ndarray
    action_std: np.ndarray
    proprio_mean: np.ndarray
    proprio_std: np.ndarray

    @classmethod
    def load(cls, path: str | Path) -> Metadata:
        import numpy as np

        from bdv2.paths import as_path

        try:
            d = json.loads(as_path(path).read_text())
            arrays = [np.asarray(d[k][m], dtype=np.float32) for k in ("action", "proprio") for m in ("mean", "std")]
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise DataError(f"{path}: not a normalisation metadata file ({type(e).__name__}: {e}); "
                            f"write one with `bdv2 data stats <data_root> --out {path}`") from e
        # A dimension that never moves (std 0) would divide by zero; leave it centred instead.
        a_mean, a_std, p_mean, p_std = arrays
        return cls(a_mean, np.where(a_std < 1e-8, 1.0, a_std).astype(np.float32),
                   p_mean, np.where(p_std < 1e-8, 1.0, p_std).astype(np.float32))
