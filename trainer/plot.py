"""Learning curves of one or several runs on one figure, from each run's metrics.jsonl (metrics.py): train
(solid, faint) and validation (dashed, dots) per run, one colour per run. Used by `bdv2 plot`, at the end of
every `bdv2 train` (`<save_dir>/learning_curves.png`) and by `bdv2 demo`.

matplotlib is part of the [train] extra; the Agg backend needs no display (batch jobs, CI).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

from bdv2.fsutil import write_atomic
from bdv2.paths import AnyPath, as_path

from .errors import TrainerError
from .metrics import METRICS_FILE, read_metrics

CURVES_FILE = "learning_curves.png"
DEFAULT_METRIC = "mse"
LABELS = {"mse": "action MSE (normalised, summed over 7 dims)", "loss": "loss"}


class PlotError(TrainerError):
    """Nothing to draw: names the run directories and what they lack."""


def series(records: Sequence[dict[str, Any]], split: str, key: str) -> list[tuple[int, float]]:
    """(step, value) of ``key`` in the ``split`` records of one run, in the order they were written."""
    return [(r["step"], r[key]) for r in records if r.get("split") == split and key in r]


def _metrics_of(run_dir: AnyPath) -> list[dict[str, Any]]:
    if not (run_dir / METRICS_FILE).is_file():
        raise PlotError(f"{run_dir}: no {METRICS_FILE} here; give run directories (<save_dir>/<run name>) of "
                        "`bdv2 train`")
    return read_metrics(run_dir)


def plot_runs(run_dirs: Sequence[AnyPath], out: AnyPath, metric: str = DEFAULT_METRIC, title: str | None = None,
              log_y: bool = False) -> AnyPath:
    """Draw ``metric`` over steps for every run in ``run_dirs`` into the PNG ``out`` (written atomically).

    Raises:
        PlotError: a directory without metrics.jsonl, or no run that logged ``metric``.
    """
    import matplotlib

    matplotlib.use("Agg")  # no display needed
    import matplotlib.pyplot as plt

    runs = [(d, _metrics_of(d)) for d in map(as_path, run_dirs)]
    if not any(series(records, split, metric) for _, records in runs for split in ("train", "val")):
        keys = sorted({k for _, records in runs for r in records for k in r} - {"step", "split", "time"})
        raise PlotError(f"no run logged {metric!r} yet ({', '.join(str(d) for d, _ in runs)}); "
                        f"logged keys: {', '.join(keys) or 'none (no step logged yet)'}")
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for i, (run_dir, records) in enumerate(runs):
        for split, style in (("train", "-"), ("val", "--")):
            pts = series(records, split, metric)
            if pts:
                ax.plot(*zip(*pts, strict=True), style, color=f"C{i % 10}",
                        marker="o" if split == "val" else None, markersize=3,
                        alpha=0.5 if split == "train" else 1.0, label=f"{run_dir.name} ({split})")
    ax.set_xlabel("step")
    ax.set_ylabel(LABELS.get(metric, metric))
    if log_y:
        ax.set_yscale("log")
    else:
        ax.set_ylim(bottom=0)
    if title:
        ax.set_title(title)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    png = io.BytesIO()
    fig.savefig(png, format="png", dpi=100)
    plt.close(fig)
    write_atomic(out, png.getvalue())  # a viewer never sees half a PNG (a URL: one put)
    return out
