"""Where metrics go: metrics.jsonl and TensorBoard always, W&B when a project is configured.

TensorBoard event files are written by TensorFlow's own summary writer (`tf.summary.create_file_writer`,
`tf.summary.write`: https://www.tensorflow.org/api_docs/python/tf/summary/write), in `<run>/tensorboard/`,
so `tensorboard --logdir runs/` shows every run. Each value carries the scalars plugin's metadata, as
`tf.summary.scalar` writes it; `tf.summary.scalar` itself lives in the `tensorboard` package, which is only
needed to *view* the files.
W&B never blocks or fails a run: without credentials it logs offline (sync later with `wandb sync`), and any
error disables it with a warning.
"""

from __future__ import annotations

import contextlib
import json
import netrc
import os
import time
from collections.abc import Mapping
from typing import Any

from bdv2.fsutil import write_atomic
from bdv2.paths import AnyPath, GPath

from . import staging

METRICS_FILE = "metrics.jsonl"
TENSORBOARD_DIR = "tensorboard"


def read_metrics(workdir: AnyPath) -> list[dict[str, Any]]:
    path = workdir / METRICS_FILE
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            continue  # a line cut short by a kill
    return out


def truncate_after(workdir: AnyPath, step: int) -> None:
    """Drop records past ``step``: after a resume from checkpoint ``step`` they are redone, not duplicated."""
    records = [r for r in read_metrics(workdir) if r.get("step", 0) <= step]
    write_atomic(workdir / METRICS_FILE, "".join(json.dumps(r) + "\n" for r in records))


def _scalar_metadata() -> Any:
    """The SummaryMetadata TensorBoard's scalars plugin reads: plugin "scalars", data class scalar (what
    tensorboard/plugins/scalar/metadata.py attaches to tf.summary.scalar's values)."""
    from tensorflow.core.framework import summary_pb2

    return summary_pb2.SummaryMetadata(plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="scalars"),
                                       data_class=summary_pb2.DATA_CLASS_SCALAR)


def _wandb_mode() -> str:
    if os.environ.get("WANDB_MODE"):
        return os.environ["WANDB_MODE"]
    if os.environ.get("WANDB_API_KEY"):
        return "online"
    try:
        return "online" if netrc.netrc().authenticators("api.wandb.ai") else "offline"
    except (OSError, netrc.NetrcParseError):
        return "offline"


class MetricWriter:
    """Writes {step, split, **scalars}; the only code here that touches files, TensorBoard or W&B."""

    def __init__(self, workdir: AnyPath, run_name: str, config: Mapping[str, Any], wandb_project: str | None,
                 enabled: bool = True) -> None:
        """``enabled=False``: write nothing anywhere (the other hosts of a multi-host run; host 0 writes)."""
        import tensorflow as tf

        self.workdir = workdir
        self.enabled = enabled
        self._wandb: Any = None
        self.warnings: list[str] = []
        if not enabled:
            return
        # A remote run folder: rows are appended to a local copy (what the folder holds, after truncate_after),
        # put into the folder at each checkpoint (sync) and at the end; TensorBoard's writer writes there itself.
        self.remote = isinstance(workdir, GPath)
        self._jsonl = open(staging.download(workdir, METRICS_FILE), "a")  # noqa: SIM115 - closed in close()
        self._tb = tf.summary.create_file_writer(str(workdir / TENSORBOARD_DIR))
        self._scalar = _scalar_metadata()
        if wandb_project:
            self._start_wandb(wandb_project, run_name, config)

    def _start_wandb(self, project: str, name: str, config: Mapping[str, Any]) -> None:
        try:
            import wandb

            mode = _wandb_mode()
            self._wandb = wandb.init(project=project, name=name, config=dict(config),
                                     dir=str(staging.local_file(self.workdir, "")),
                                     mode=mode, resume="allow", id=name,
                                     settings=wandb.Settings(init_timeout=30, silent=True))
            if mode == "offline":
                self.warnings.append(f"W&B: no credentials found, logging offline to {self.workdir}/wandb "
                                     "(upload later with `wandb sync`)")
        except Exception as e:  # W&B must never stop a run, whatever goes wrong inside it
            self.warnings.append(f"W&B disabled: {type(e).__name__}: {e}")
            self._wandb = None

    def write(self, step: int, split: str, scalars: Mapping[str, float]) -> None:
        import tensorflow as tf

        if not self.enabled:
            return
        values = {k: float(v) for k, v in scalars.items()}
        self._jsonl.write(json.dumps({"step": step, "split": split, "time": time.time(), **values}) + "\n")
        self._jsonl.flush()
        with self._tb.as_default(step=step):
            for k, v in values.items():
                tf.summary.write(f"{split}/{k}", tf.constant(v, tf.float32), metadata=self._scalar)
        if not self.remote:  # on an object store each flush uploads the whole events file again: see sync
            self._tb.flush()
        if self._wandb is not None:
            try:
                self._wandb.log({f"{split}/{k}": v for k, v in values.items()}, step=step)
            except Exception as e:  # see _start_wandb
                self.warnings.append(f"W&B disabled: {type(e).__name__}: {e}")
                self._wandb = None

    def sync(self) -> None:
        """A remote run folder: put the rows so far, the events and the process's log (when the launcher
        staged it, staging.LOG_ENV) into the folder. At each checkpoint, so the folder's metrics reach the
        step a resume starts from."""
        if not (self.enabled and self.remote):
            return
        self._tb.flush()
        staging.upload(self.workdir, METRICS_FILE)
        if os.environ.get(staging.LOG_ENV):
            staging.upload(self.workdir, staging.LOG_FILE)

    def close(self) -> None:
        if not self.enabled:
            return
        self._jsonl.close()
        self._tb.close()
        staging.upload(self.workdir, METRICS_FILE)
        if self._wandb is not None:
            with contextlib.suppress(Exception):  # see _start_wandb
                self._wandb.finish()
