"""Offline evaluation of a trained run on held-out trajectories (`bdv2 eval`).

For every step of every trajectory the policy (policy.load_policy: the run's latest checkpoint) predicts an
action from that step's observation; the goal of goal-conditioned runs is the trajectory's final frame (its
last next_observations image), as the original's robot evaluation conditions on an image of the goal state
(https://github.com/rail-berkeley/bridge_data_v2/blob/main/experiments/eval.py). The true actions are relabelled
the way the run was trained (its config snapshot's ``relabel_actions``: reached-state deltas and the binarised
gripper), and both are compared in the robot's units:

  * per-dimension mean squared error (x, y, z, roll, pitch, yaw, gripper) and its mean over dimensions after
    dividing by the training action variance (comparable across dimensions);
  * gripper open/close accuracy: predicted and true gripper each thresholded at 0.5;
  * the same figures for a constant baseline that always predicts the training action mean (the run's
    normalisation statistics): a policy that learned anything beats it.

Predictions are deterministic (the Gaussian's mean; gc_ddpm_bc samples with a fixed seed per trajectory).
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bdv2.fsutil import write_atomic, write_json_atomic
from bdv2.paths import AnyPath, as_path

from . import eval_stats
from .errors import TrainerError
from .settings import Algo

DIMS = ("x", "y", "z", "roll", "pitch", "yaw", "gripper")
GRIPPER_THRESHOLD = 0.5
GOAL_CHOICE = "the trajectory's final frame (its last next_observations image)"
REPORT_FILE = "eval.json"
PLOT_FILE = "eval_actions.png"


class EvalError(TrainerError):
    """The run or the data cannot be evaluated: names the path and what to do."""


@dataclass(frozen=True)
class Scores:
    """Figures of one predictor over every evaluated step."""

    mse: tuple[float, ...]
    """Per dimension (DIMS), in the robot's units squared."""
    mse_normalised: float
    """Mean over dimensions of mse / training action variance."""
    gripper_accuracy: float

    def to_dict(self) -> dict[str, Any]:
        return {"mse": dict(zip(DIMS, self.mse, strict=True)), "mse_normalised": self.mse_normalised,
                "gripper_accuracy": self.gripper_accuracy}


@dataclass
class EvalReport:
    run_dir: str
    checkpoint: str
    algo: str
    data: str
    split: str
    relabel_actions: bool
    goal: str
    trajectories: int
    steps: int
    policy: Scores
    baseline: Scores
    comparisons: list[eval_stats.Comparison] = field(default_factory=list)
    """Normalised MSE, then gripper accuracy: intervals over trajectories, paired test, verdict."""
    plot: str | None = None
    files: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        out = {k: getattr(self, k) for k in ("run_dir", "checkpoint", "algo", "data", "split", "relabel_actions",
                                             "goal", "trajectories", "steps", "plot", "files")}
        mse = self.comparisons[0] if self.comparisons else None
        return {**out, "policy": self.policy.to_dict(), "baseline": self.baseline.to_dict(),
                "statistics": [c.to_dict() for c in self.comparisons],
                # true only when the paired test tells the two apart, not whenever the ratio is under 1
                "policy_beats_baseline": mse is not None and mse.verdict is eval_stats.Verdict.BETTER}


def score(pred: np.ndarray, true: np.ndarray, action_std: np.ndarray) -> Scores:
    """pred, true: [N, 7] in the robot's units."""
    mse = np.mean((pred - true) ** 2, axis=0)  # [7]
    grip = np.mean((pred[:, 6] > GRIPPER_THRESHOLD) == (true[:, 6] > GRIPPER_THRESHOLD))
    return Scores(tuple(float(m) for m in mse), float(np.mean(mse / np.square(action_std))), float(grip))


def per_trajectory(preds: Sequence[np.ndarray], trues: Sequence[np.ndarray], baseline: np.ndarray,
                   action_std: np.ndarray) -> tuple[eval_stats.PerTrajectory, eval_stats.PerTrajectory]:
    """(normalised squared error, correct gripper calls) summed over each trajectory's steps, for the policy
    and the constant ``baseline``: summed and divided by all steps they give score()'s pooled figures."""
    steps = np.array([len(t) for t in trues], np.float64)

    def sq(p: np.ndarray, t: np.ndarray) -> float:
        return float(np.sum(np.mean((p - t) ** 2 / np.square(action_std), axis=1)))

    def grip(p: np.ndarray, t: np.ndarray) -> float:
        return float(np.sum((p[:, 6] > GRIPPER_THRESHOLD) == (t[:, 6] > GRIPPER_THRESHOLD)))

    def const(t: np.ndarray) -> np.ndarray:
        return np.broadcast_to(baseline, t.shape)

    mse = eval_stats.PerTrajectory(steps, np.array([sq(p, t) for p, t in zip(preds, trues, strict=True)]),
                                   np.array([sq(const(t), t) for t in trues]))
    acc = eval_stats.PerTrajectory(steps, np.array([grip(p, t) for p, t in zip(preds, trues, strict=True)]),
                                   np.array([grip(const(t), t) for t in trues]))
    return mse, acc


# -- held-out trajectories ------------------------------------------------------------------------

def find_split(data: AnyPath, split: str) -> tuple[list[str], list[AnyPath]]:
    """(TFRecord files, RLDS dataset dirs) of ``split`` under ``data``: a TFRecord file itself, a tree of
    <task>/<split>/out.tfrecord (`bdv2 data raw-to-tfrecord`'s output), or an RLDS dataset directory; a local
    path or a URL (bdv2.paths)."""
    data = data.expanduser()
    if data.is_file():
        return [str(data)], []
    if not data.is_dir():
        raise EvalError(f"{data}: no such file or directory; give a TFRecord file, a converted tree or an RLDS "
                        "dataset directory")
    files = sorted(str(f) for f in data.rglob(f"{split}/out.tfrecord"))
    if files:
        return files, []
    from bdv2.data_tools import layout, rlds
    from bdv2.data_tools.errors import DataToolsError

    try:
        layout.check_not_empty(data)
    except DataToolsError as e:
        raise EvalError(str(e)) from None

    dirs = rlds.dataset_dirs(data)
    with_split = [d for d in dirs if split in rlds.open_dir(d).shards]
    if with_split:
        return [], with_split
    found = sorted({f.parent.name for f in data.rglob("*/out.tfrecord")}
                   | {s for d in dirs for s in rlds.open_dir(d).shards})
    raise EvalError(f"{data}: no {split!r} split (found: {', '.join(found) or 'no TFRecords nor RLDS data'}); "
                    f"pick one with --split" + (f" {found[0]}" if found else ""))


def trajectories(files: Sequence[str], rlds_dirs: Sequence[AnyPath], split: str, relabel: bool,
                 limit: int | None) -> Iterator[dict[str, Any]]:
    """Held-out trajectories as numpy trees (transforms.from_features' form), actions relabelled as in training."""
    import tensorflow as tf

    from bdv2.data_tools import schema

    from . import transforms

    parts = []
    if files:
        parts.append(tf.data.TFRecordDataset(list(files)).map(lambda s: schema.parse_example(s, load_language=True)))
    if rlds_dirs:
        from bdv2.data_tools import rlds

        parts.extend(rlds.episode_dataset(as_path(d), split) for d in rlds_dirs)
    ds = parts[0]
    for p in parts[1:]:
        ds = ds.concatenate(p)

    def to_traj(f: dict[str, Any]) -> dict[str, Any]:
        traj = transforms.from_features(f)
        traj = transforms.relabel_actions(traj) if relabel else traj
        return {**traj, "language": f["language"]}

    ds = ds.map(to_traj)
    if limit is not None:
        ds = ds.take(limit)
    try:
        yield from ds.as_numpy_iterator()
    except tf.errors.DataLossError as e:  # names no file: find the damaged ones
        from bdv2.data_tools import records, rlds

        shards = [str(s) for d in rlds_dirs for s in rlds.open_dir(d).shards.get(split, [])]
        raise EvalError(records.explain_data_loss([*files, *shards], e)) from None


# -- predictions ----------------------------------------------------------------------------------

def history(x: np.ndarray, h: int) -> np.ndarray:
    """[T, ...] -> [T, h, ...]: the last h frames of every step, the first repeated at the start (as the
    training pipeline's chunking and the original's eval)."""
    idx = np.maximum(np.arange(len(x))[:, None] - h + 1 + np.arange(h)[None], 0)
    return x[idx]


def predict(policy: Any, traj: dict[str, Any], seed: int) -> np.ndarray:
    """The policy's action [T, 7] for every step of one trajectory, in one batch."""
    obs = traj["observations"]
    h = policy.run.settings.obs_horizon
    image, proprio = (obs["image"], obs["proprio"]) if h is None else (history(obs["image"], h),
                                                                       history(obs["proprio"], h))
    algo = policy.run.algo
    goal = {"image": traj["next_observations"]["image"][-1]} if algo in (Algo.GC_BC, Algo.GC_DDPM_BC) else None
    language = None
    if algo is Algo.LC_BC:
        texts = [t.decode() if isinstance(t, bytes) else str(t) for t in traj["language"]]
        language = texts[0] if texts and texts[0] else None
        if language is None:
            raise EvalError("lc_bc: a held-out trajectory has no instruction; evaluate on labelled data")
    policy.reset()
    actions = np.asarray(policy.act({"image": image, "proprio": proprio}, goal, language, seed=seed,
                                    deterministic=True), np.float32)
    return actions[:, 0] if actions.ndim == 3 else actions  # an action chunk: its first action is this step's


# -- the whole evaluation -------------------------------------------------------------------------

def evaluate(run_dir: AnyPath, data: AnyPath, split: str = "val", limit: int | None = None,
             out_dir: AnyPath | None = None,
             plot_trajectories: int = 3, progress: Callable[[int, int | None], None] | None = None,
             difference: float | None = None, compare: AnyPath | None = None) -> EvalReport:
    """Evaluate the latest checkpoint of ``run_dir`` on ``split`` of ``data``; writes eval.json and the PNG
    into ``out_dir`` (default: the run directory). ``difference``: a normalised-MSE difference to size the
    evaluation for (how many trajectories would show it; default: the one observed, when not significant).
    ``compare``: another run, scored on the same trajectories and compared with this one by the same paired
    test (both measured against this run's action statistics, one yardstick for the two).

    Raises:
        EvalError: no run/checkpoint there, or no such split in the data.
    """
    from . import ckpt_tree
    from . import policy as policy_mod

    try:
        run_path, step_dir = ckpt_tree.locate(run_dir)
        snapshot = ckpt_tree.read_snapshot(run_path)
    except ckpt_tree.CheckpointError as e:
        raise EvalError(str(e)) from e
    files, dirs = find_split(as_path(data), split)
    pol = policy_mod.load_policy(run_path)
    relabel = bool(snapshot["settings"].get("relabel_actions", True))
    other, other_path = None, None
    if compare is not None:
        try:
            other_path, _ = ckpt_tree.locate(compare)
            other_relabel = bool(ckpt_tree.read_snapshot(other_path)["settings"].get("relabel_actions", True))
        except ckpt_tree.CheckpointError as e:
            raise EvalError(f"--compare: {e}") from e
        if other_relabel != relabel:
            raise EvalError(f"--compare: {other_path} was trained on {'relabelled' if other_relabel else 'raw'} "
                            f"actions and {run_path} on {'relabelled' if relabel else 'raw'} ones: their errors "
                            "are against different targets")
        other = policy_mod.load_policy(other_path)
    mean = np.asarray(snapshot["metadata"]["action"]["mean"], np.float32)
    std = np.asarray(snapshot["metadata"]["action"]["std"], np.float32)
    std = np.where(std < 1e-8, 1.0, std)
    preds, trues, other_preds = [], [], []
    for n, traj in enumerate(trajectories(files, dirs, split, relabel, limit)):
        preds.append(predict(pol, traj, seed=n))
        if other is not None:
            other_preds.append(predict(other, traj, seed=n))
        trues.append(np.asarray(traj["actions"], np.float32))
        if progress:
            progress(n + 1, limit)
    if not trues:
        raise EvalError(f"{data}: the {split!r} split holds no trajectory")
    pred, true = np.concatenate(preds), np.concatenate(trues)
    out = as_path(out_dir) if out_dir is not None else run_path
    report = EvalReport(str(run_path), str(step_dir), str(snapshot["algo"]), str(data), split, relabel,
                        GOAL_CHOICE if Algo(snapshot["algo"]) in (Algo.GC_BC, Algo.GC_DDPM_BC) else "none",
                        len(trues), len(true), score(pred, true, std),
                        score(np.broadcast_to(mean, true.shape), true, std))
    mse_per, grip_per = per_trajectory(preds, trues, mean, std)
    report.comparisons = [eval_stats.compare(mse_per, "normalised MSE", lower_is_better=True, effect=difference),
                          eval_stats.compare(grip_per, "gripper accuracy", lower_is_better=False)]
    if other_path is not None:
        a, b = (run_path.name, other_path.name) if run_path.name != other_path.name else (str(run_path),
                                                                                          str(other_path))
        other_mse, other_grip = per_trajectory(other_preds, trues, mean, std)
        for figure, mine, theirs, lower in (("normalised MSE", mse_per, other_mse, True),
                                            ("gripper accuracy", grip_per, other_grip, False)):
            both = eval_stats.PerTrajectory(mine.steps, mine.policy, theirs.policy)
            report.comparisons.append(eval_stats.compare(both, f"{figure}, {a} vs {b}", lower_is_better=lower,
                                                         names=(a, b)))
    out.mkdir(parents=True, exist_ok=True)
    if plot_trajectories > 0:
        report.plot = str(plot_actions(out / PLOT_FILE, preds[:plot_trajectories], trues[:plot_trajectories], mean,
                                       f"{run_path.name} on {as_path(data).name} ({split})"))
    report.files = [str(out / REPORT_FILE)] + ([report.plot] if report.plot else [])
    write_json_atomic(out / REPORT_FILE, report.to_dict(), indent=2, sort_keys=False)
    return report


def plot_actions(path: AnyPath, preds: Sequence[np.ndarray], trues: Sequence[np.ndarray], mean: np.ndarray,
                 title: str) -> AnyPath:
    """Predicted (dashed) vs true (solid) actions of a few trajectories, one after another: 7 subplots."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(7, 1, figsize=(10, 14), sharex=True)
    start = 0
    for k, (p, t) in enumerate(zip(preds, trues, strict=True)):
        x = np.arange(start, start + len(t))
        for d, ax in enumerate(axes):
            ax.plot(x, t[:, d], color=f"C{k}", lw=1.5, label="true" if k == d == 0 else None)
            ax.plot(x, p[:, d], color=f"C{k}", lw=1.2, ls="--", label="predicted" if k == d == 0 else None)
            if k:
                ax.axvline(start - 0.5, color="0.7", lw=0.8)
        start += len(t)
    for d, ax in enumerate(axes):
        ax.axhline(mean[d], color="0.4", lw=0.8, ls=":", label="baseline (mean)" if d == 0 else None)
        ax.set_ylabel(DIMS[d])
    axes[0].legend(loc="upper right", fontsize=8)
    axes[0].set_title(title)
    axes[-1].set_xlabel("step (trajectories one after another)")
    fig.tight_layout()
    png = io.BytesIO()
    fig.savefig(png, format="png", dpi=80)
    plt.close(fig)
    write_atomic(path, png.getvalue())  # whole or not at all (a URL: one put)
    return path
