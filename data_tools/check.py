"""`bdv2 data check`: is this data safe to train on? Content health per episode and in total, beside `inspect`
(which checks structure).

Each check is a pure function of the episodes (and the options) returning Findings with their evidence; the
list of checks is the literal tuple CHECKS. An error-severity finding means training on the data as it is would
be harmed (non-finite numbers, episodes with nothing to learn, black cameras, statistics or an action contract
that do not match the data, the same episode in train and val); warnings are worth a look.

`quick_check` is the part `bdv2 train` runs before launch: states, actions and instructions of the first
QUICK_EPISODES episodes (no frames decoded) against the run's metadata.
"""

from __future__ import annotations

import enum
import hashlib
import json
import re
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import contract as contract_mod
from .episodes import BLACK_LEVEL, Ep, FrameFacts, iter_episodes, iter_sources
from .errors import DataToolsError

QUICK_EPISODES = 200
JUMP_M = 0.1
"""A state translation change above this in one step is a jump: BridgeData moves about 1 cm per step at 5 Hz
(action std 0.009-0.013 m in the original's published statistics). Only a change the step's action does not
explain (more than JUMP_EXPLAINED times the commanded move) counts: a glitch, not a fast commanded move."""
JUMP_EXPLAINED = 3.0
JUMP_RAD = 1.0
"""Likewise for a roll-pitch-yaw change (after wrapping to (-pi, pi]); the published rotation std is <= 0.08 rad."""
CLIPPED_FRACTION = 0.02
"""An action axis that sits exactly at its extreme value in more than this fraction of steps is clipped."""
MEAN_SIGMAS = 1.0
"""Metadata whose mean is more than this many of the data's standard deviations from the data's mean does not
describe the data (a warning: normalised targets are offset, which a policy can still learn) ..."""
MEAN_SIGMAS_HARMFUL = 10.0
"""... and beyond this many, or ..."""
STD_RATIO = 5.0
"""... with a std more than this factor from the data's (normalised targets far too large or too small, as with
an inert normaliser's "55x too small" actions), it harms training: an error."""
PLACEHOLDERS = frozenset({"n/a", "na", "none", "null", "nil", "todo", "tbd", "placeholder", "test", "task",
                          "instruction", "language", "unknown", "xxx", "lorem ipsum", "default"})
"""Instructions that stand for no instruction (compared lower-case, without surrounding punctuation)."""


class Severity(str, enum.Enum):
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


@dataclass(frozen=True)
class Finding:
    id: str
    severity: Severity
    title: str
    evidence: tuple[str, ...] = ()
    episodes: tuple[str, ...] = ()
    """Where each affected episode is (file[index] or trajectory directory)."""
    fix: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "severity": self.severity.value, "title": self.title,
                "evidence": list(self.evidence), "episodes": list(self.episodes), "fix": self.fix}


@dataclass(frozen=True)
class Options:
    window: int = 1
    """Transitions a training example needs (obs_horizon + act_pred_horizon - 1 in the trainer's terms)."""
    metadata: Path | None = None
    relabel: bool = True
    """Compare statistics as the trainer sees the actions (reached-state deltas, binarized gripper)."""
    frames: bool = True
    limit: int | None = None


@dataclass
class CheckResult:
    path: str
    kind: str
    episodes: int = 0
    steps: int = 0
    findings: list[Finding] = field(default_factory=list)
    quick: bool = False
    contract: dict[str, Any] | None = None
    """The action contract inferred from the data (of the actions as Options.relabel says)."""

    @property
    def exit_code(self) -> int:
        return 1 if any(f.severity is Severity.ERROR for f in self.findings) else 0

    def to_dict(self) -> dict[str, Any]:
        counts = {s.value: sum(f.severity is s for f in self.findings) for s in Severity}
        return {"path": self.path, "kind": self.kind, "quick": self.quick, "episodes": self.episodes,
                "steps": self.steps, "counts": counts, "exit_code": self.exit_code, "action_contract": self.contract,
                "findings": [f.to_dict() for f in self.findings]}


def _few(items: Sequence[str], n: int = 5) -> str:
    return ", ".join(items[:n]) + (f" and {len(items) - n} more" if len(items) > n else "")


# -- the checks: (episodes, options) -> findings ----------------------------------------------------------

def check_nonfinite(eps: Sequence[Ep], opts: Options) -> list[Finding]:
    bad, ev = [], []
    for e in eps:
        for name, arr in (("actions", e.actions), ("state", e.state)):
            idx = np.argwhere(~np.isfinite(arr))
            if len(idx):
                t, d = idx[0]
                bad.append(e.where)
                ev.append(f"{e.where}: {name}[{t}, {d}] = {arr[t, d]} ({len(idx)} non-finite values)")
                break
    if not bad:
        return []
    return [Finding("nonfinite", Severity.ERROR, f"{len(bad)} episodes hold NaN or inf in actions or proprio",
                    tuple(ev[:10]), tuple(bad),
                    "drop these episodes: one NaN in a batch turns the loss and every parameter into NaN")]


def check_length(eps: Sequence[Ep], opts: Options) -> list[Finding]:
    empty = [e.where for e in eps if len(e.actions) < 1]
    short = [e for e in eps if 1 <= len(e.actions) < opts.window]
    out = []
    if empty:
        out.append(Finding("no_transition", Severity.ERROR, f"{len(empty)} episodes have no transition",
                           (f"an episode needs two observations; {_few(empty)}",), tuple(empty),
                           "drop them (the converters skip them)"))
    if short:
        out.append(Finding("too_short", Severity.WARNING,
                           f"{len(short)} episodes are shorter than the window of {opts.window} transitions",
                           tuple(f"{e.where}: {len(e.actions)} transitions" for e in short[:10]),
                           tuple(e.where for e in short),
                           "they are padded with their last step; lower obs_horizon/act_pred_horizon or drop them"))
    return out


def check_frozen(eps: Sequence[Ep], opts: Options) -> list[Finding]:
    frozen = [e for e in eps if len(e.actions) >= 3 and np.all(np.isfinite(e.actions))
              and np.ptp(e.actions[:, :6], axis=0).max() == 0]
    if not frozen:
        return []
    return [Finding("frozen_actions", Severity.WARNING, f"{len(frozen)} episodes repeat one action throughout",
                    tuple(f"{e.where}: every action is {np.round(e.actions[0], 4).tolist()}" for e in frozen[:10]),
                    tuple(e.where for e in frozen),
                    "a stuck teleoperation stream or a constant placeholder: look at them (bdv2 data view)")]


def check_clipped(eps: Sequence[Ep], opts: Options) -> list[Finding]:
    rows = [e.actions[:, :6] for e in eps if len(e.actions)]
    if not rows:
        return []
    a = np.concatenate(rows)
    a = a[np.all(np.isfinite(a), axis=1)]
    out = []
    names = ("x", "y", "z", "roll", "pitch", "yaw")
    for d in range(a.shape[1] if a.ndim == 2 else 0):
        col = a[:, d]
        if not len(col) or np.ptp(col) == 0:
            continue
        for label, ext in (("max", col.max()), ("min", col.min())):
            n = int(np.sum(col == ext))
            if n >= 5 and n / len(col) > CLIPPED_FRACTION:
                hit = [e.where for e in eps if len(e.actions) and np.any(e.actions[:, d] == ext)]
                out.append(Finding(f"clipped_{names[d]}_{label}", Severity.WARNING,
                                   f"action {names[d]} sits at its {label} {ext:.4g} in {n} of {len(col)} steps",
                                   (f"{n / len(col):.1%} of steps pinned at exactly {ext:.6g} (clipped or saturated)",
                                    f"in {len(hit)} episodes: {_few(hit)}"), tuple(hit),
                                   "the recording clipped this axis: the policy cannot learn moves beyond it"))
    return out


def _wrap(x: np.ndarray) -> np.ndarray:
    return (x + np.pi) % (2 * np.pi) - np.pi


def _around(x: np.ndarray) -> np.ndarray:
    """[T] -> [T]: the largest of x[t - 1], x[t], x[t + 1]."""
    padded = np.pad(x, 1, mode="edge")
    return np.maximum(np.maximum(padded[:-2], padded[1:-1]), padded[2:])


def check_jumps(eps: Sequence[Ep], opts: Options) -> list[Finding]:
    bad, ev = [], []
    for e in eps:
        if len(e.state) < 2 or not np.all(np.isfinite(e.state)):
            continue
        t_max = min(len(e.actions), len(e.state) - 1)
        move = np.linalg.norm(np.diff(e.state[:t_max + 1, :3], axis=0), axis=1)  # [T]
        turn = np.abs(_wrap(np.diff(e.state[:t_max + 1, 3:6], axis=0))).max(axis=1)  # [T]
        # A large change the action commanded is a fast move, not a glitch: flag only what it does not explain.
        # The action of the step before or after may be the one that explains it (a latency of one step).
        asked_move = _around(np.linalg.norm(np.nan_to_num(e.actions[:t_max, :3]), axis=1))
        asked_turn = _around(np.abs(np.nan_to_num(e.actions[:t_max, 3:6])).max(axis=1))
        jump = ((move > JUMP_M) & (move > JUMP_EXPLAINED * asked_move)) | \
            ((turn > JUMP_RAD) & (turn > JUMP_EXPLAINED * asked_turn))
        if np.any(jump):
            t = int(np.argmax(jump * np.maximum(move / JUMP_M, turn / JUMP_RAD)))
            bad.append(e.where)
            ev.append(f"{e.where}: step {t} -> {t + 1} moves {move[t]:.3f} m and turns {turn[t]:.3f} rad; the "
                      f"actions around it asked for {asked_move[t]:.3f} m and {asked_turn[t]:.3f} rad")
    if not bad:
        return []
    return [Finding("state_jump", Severity.ERROR, f"{len(bad)} episodes jump in the state between two steps",
                    (f"limits: {JUMP_M} m and {JUMP_RAD} rad per step", *ev[:10]), tuple(bad),
                    "relabeled actions are state changes, so a jump becomes a huge target action: drop or cut "
                    "these episodes")]


def check_frames(eps: Sequence[Ep], opts: Options) -> list[Finding]:
    black_all, black_some, static = [], [], []
    for e in eps:
        f = e.frame_facts or (FrameFacts.of(e.frames) if e.frames is not None and len(e.frames) else None)
        if f is None:
            continue
        if f.black == f.frames:
            black_all.append(e.where)
        elif f.black:
            black_some.append(f"{e.where}: {f.black} of {f.frames} frames black")
        if f.frames > 2 and f.black < f.frames and f.static:
            static.append(e.where)
    out = []
    if black_all:
        out.append(Finding("black_camera", Severity.ERROR, f"{len(black_all)} episodes have only black frames",
                           (f"camera 0, brightest pixel <= {BLACK_LEVEL}: {_few(black_all)}",), tuple(black_all),
                           "the camera was missing (the release pads it with black): drop these episodes or "
                           "choose another camera (--cameras)"))
    if black_some:
        out.append(Finding("black_frames", Severity.WARNING, f"{len(black_some)} episodes have some black frames",
                           tuple(black_some[:10]), tuple(s.split(": ")[0] for s in black_some)))
    if static:
        out.append(Finding("static_frames", Severity.WARNING,
                           f"{len(static)} episodes show the same frame from start to end",
                           (f"camera 0 never changes: {_few(static)}",), tuple(static),
                           "a frozen camera stream: the policy sees no consequence of its actions"))
    return out


def _digest(e: Ep) -> str:
    return hashlib.sha256(np.ascontiguousarray(e.state).tobytes() + np.ascontiguousarray(e.actions).tobytes())\
        .hexdigest()


def check_duplicates(eps: Sequence[Ep], opts: Options) -> list[Finding]:
    groups: dict[str, list[Ep]] = defaultdict(list)
    for e in eps:
        groups[_digest(e)].append(e)
    dups = [g for g in groups.values() if len(g) > 1]
    if not dups:
        return []
    across = [g for g in dups if len({e.split for e in g}) > 1]
    ev = tuple(" = ".join(f"{e.where} ({e.split})" for e in g) for g in dups[:10])
    where = tuple(e.where for g in dups for e in g[1:])
    if across:
        return [Finding("duplicate_across_splits", Severity.ERROR,
                        f"{len(across)} episodes appear in more than one split (and {len(dups)} duplicate groups "
                        "in all)", ev, where, "validation on training episodes hides overfitting: remove the copies")]
    return [Finding("duplicate", Severity.WARNING, f"{len(dups)} episodes appear more than once", ev, where,
                    "copies weigh those episodes twice: remove them")]


def _is_placeholder(text: str) -> bool:
    t = text.strip().lower().strip(" .!?:;-_'\"")
    return t in PLACEHOLDERS or (bool(text.strip()) and not re.search(r"[a-z]", t))


def check_instructions(eps: Sequence[Ep], opts: Options) -> list[Finding]:
    blank = [e.where for e in eps if not any(s.strip() for s in e.language)]
    fake = [(e.where, s) for e in eps for s in e.language if s.strip() and _is_placeholder(s)]
    out = []
    if blank:
        out.append(Finding("blank_instruction", Severity.INFO if len(blank) < len(eps) else Severity.WARNING,
                           f"{len(blank)} of {len(eps)} episodes have no instruction",
                           (f"blank: {_few(blank)}",), tuple(blank),
                           "language-conditioned runs skip them (skip_unlabeled) or learn an empty goal"))
    if fake:
        out.append(Finding("placeholder_instruction", Severity.WARNING,
                           f"{len(fake)} instructions are placeholders",
                           tuple(f"{w}: {s!r}" for w, s in fake[:10]), tuple(sorted({w for w, _ in fake})),
                           "treat them as blank: they teach the policy a meaningless goal"))
    return out


CHECKS: tuple[Callable[[Sequence[Ep], Options], list[Finding]], ...] = (
    check_nonfinite, check_length, check_frozen, check_clipped, check_jumps, check_frames, check_duplicates,
    check_instructions,
)
QUICK_CHECKS: tuple[Callable[[Sequence[Ep], Options], list[Finding]], ...] = (check_nonfinite, check_length)


# -- statistics and contract against the data ---------------------------------------------------------------

def _training_actions(e: Ep, relabel: bool) -> np.ndarray:
    from .trajectory import relabel_actions

    return relabel_actions(e.state, e.actions) if relabel else e.actions


def data_contract(eps: Sequence[Ep], relabel: bool) -> contract_mod.ActionContract:
    return contract_mod.infer_contract([(e.state, _training_actions(e, relabel)) for e in eps if len(e.actions)],
                                       "relabeled" if relabel else "raw")


def check_metadata(eps: Sequence[Ep], opts: Options, ours: contract_mod.ActionContract) -> list[Finding]:
    """The metadata file's statistics and action contract against the data's."""
    if opts.metadata is None:
        return []
    try:
        meta = json.loads(opts.metadata.read_text())
    except (OSError, ValueError) as e:
        return [Finding("metadata_unreadable", Severity.ERROR, f"{opts.metadata}: unreadable ({e})")]
    rows = [e for e in eps if len(e.actions) and np.all(np.isfinite(e.actions)) and np.all(np.isfinite(e.state))]
    if not rows:
        return []
    data = {"action": np.concatenate([_training_actions(e, opts.relabel) for e in rows]),
            "proprio": np.concatenate([e.state[:-1] for e in rows])}
    out: list[Finding] = []
    blocks = ["action"]
    if meta.get("proprio") != meta.get("action"):  # the original's published file reuses the action statistics
        blocks.append("proprio")
    for block in blocks:
        try:
            mean = np.asarray(meta[block]["mean"], np.float64)
            std = np.asarray(meta[block]["std"], np.float64)
        except (KeyError, TypeError, ValueError):
            out.append(Finding("metadata_malformed", Severity.ERROR, f"{opts.metadata}: no {block} mean/std"))
            continue
        d_mean, d_std = data[block].mean(0), data[block].std(0)
        if mean.shape != d_mean.shape:
            out.append(Finding(f"metadata_{block}_shape", Severity.ERROR,
                               f"{opts.metadata}: {block} statistics have {mean.size} values, the data {d_mean.size}"))
            continue
        scale = np.maximum(d_std, 1e-6)
        off = np.abs(mean - d_mean) / scale
        ratio = np.maximum(std, 1e-9) / scale
        moving = d_std > 1e-6
        harmful = moving & ((off > MEAN_SIGMAS_HARMFUL) | (ratio < 1 / STD_RATIO) | (ratio > STD_RATIO))
        bad = [i for i in range(mean.size) if moving[i] and (harmful[i] or off[i] > MEAN_SIGMAS)]
        if bad:
            ev = tuple(f"{block}[{i}]: metadata mean {mean[i]:.4g} std {std[i]:.4g}; data mean {d_mean[i]:.4g} "
                       f"std {d_std[i]:.4g} (mean {off[i]:.3g} data stds away; std {ratio[i]:.3g}x the data's)"
                       for i in bad)
            out.append(Finding(f"metadata_{block}_mismatch",
                               Severity.ERROR if harmful.any() else Severity.WARNING,
                               f"{opts.metadata}'s {block} statistics do not describe this data "
                               f"({len(bad)} of {mean.size} dimensions)", ev, (),
                               f"recompute them: bdv2 data stats <data> --out {opts.metadata}"))
    theirs = contract_mod.from_statistics(meta)
    if theirs is not None:
        diffs = contract_mod.compare(theirs, ours, "the metadata", "this data")
        if diffs:
            out.append(Finding("contract_mismatch", Severity.ERROR,
                               "the metadata's action contract does not match this data's", tuple(diffs), (),
                               f"recompute the statistics from this data: bdv2 data stats <data> --out "
                               f"{opts.metadata}"))
    return out


def check_episodes(eps: Sequence[Ep], opts: Options, *, path: str, kind: str, quick: bool = False,
                   problems: Sequence[str] = ()) -> CheckResult:
    """Run the checks (QUICK_CHECKS with quick) on episodes already read, and the metadata against them."""
    result = CheckResult(path, kind, len(eps), sum(len(e.actions) for e in eps), quick=quick)
    if problems:
        result.findings.append(Finding("unreadable", Severity.ERROR, f"{len(problems)} episodes or files cannot "
                                       "be read", tuple(problems[:10]), (),
                                       "bdv2 data inspect shows why; the converters skip them"))
    if not eps:
        result.findings.append(Finding("no_episodes", Severity.ERROR, f"{path}: no readable episode found",
                                       fix="check the path (and --depth for raw trees)"))
        return result
    for check in QUICK_CHECKS if quick else CHECKS:
        result.findings.extend(check(eps, opts))
    ours = data_contract(eps, opts.relabel)
    result.contract = ours.to_dict()
    result.findings.extend(check_metadata(eps, opts, ours))
    order = list(Severity)
    result.findings.sort(key=lambda f: (order.index(f.severity), f.id))
    return result


def _read(it: Iterator[Ep], limit: int | None, problems: list[str]) -> list[Ep]:
    eps: list[Ep] = []
    try:
        for e in it:
            eps.append(e.light())
            if limit is not None and len(eps) >= limit:
                break
    except DataToolsError as e:
        problems.append(str(e))
    return eps


def check_tree(path: Path, opts: Options = Options(), *, depth: int = 5, quick: bool = False) -> CheckResult:
    """Run every check (or, with quick, QUICK_CHECKS without frames on the first QUICK_EPISODES episodes).

    Raises:
        DataToolsError: not a directory; a format bdv2 cannot read at all.
    """
    problems: list[str] = []
    limit = QUICK_EPISODES if quick and opts.limit is None else opts.limit
    kind, it = iter_episodes(path, depth=depth, frames=opts.frames and not quick, problems=problems)
    eps = _read(it, limit, problems)
    result = check_episodes(eps, opts, path=str(path), kind=kind, quick=quick, problems=problems)
    if limit is not None and len(eps) >= limit:
        result.findings.append(Finding("partial", Severity.INFO, f"checked the first {len(eps)} episodes only"))
    return result


def quick_check_sources(tfrecords: Sequence[Path], rlds_dirs: Sequence[Path], opts: Options,
                        limit: int = QUICK_EPISODES) -> CheckResult:
    """The quick check of a training task's sources (TFRecord files, RLDS directories): `bdv2 train`'s
    preflight. Reads the first `limit` episodes, spread over the files (a few from each)."""
    problems: list[str] = []
    files = list(tfrecords)
    per_file = max(1, limit // max(len(files) + len(rlds_dirs), 1))
    eps: list[Ep] = []
    for file in files:
        eps += _read(iter_sources([file], []), per_file, problems)
    for d in rlds_dirs:
        eps += _read(iter_sources([], [d]), per_file, problems)
    where = ", ".join(str(p) for p in [*files[:2], *rlds_dirs[:2]]) + (" ..." if len(files) > 2 else "")
    return check_episodes(eps[:limit], opts, path=where, kind="sources", quick=True, problems=problems)
