"""How sure `bdv2 eval` can be: confidence intervals over trajectories, a paired test against the baseline, and
how many trajectories a difference would need.

The unit of evaluation is the trajectory, not the step: the steps of one trajectory share a scene, a goal and
an operator, so they are far from independent, and a figure over 2 trajectories is a figure over 2 samples
whatever their step count. Hence:

  * the headline figures (pooled over every step, as evaluate.score) get a 95 % percentile bootstrap interval
    that resamples whole trajectories (scipy.stats.bootstrap, paired: a resample keeps each trajectory's
    steps, policy and baseline together);
  * policy and baseline are compared on the same trajectories with a paired t-test on the per-trajectory
    figures (scipy.stats.ttest_rel, with its interval for the mean difference); unless p < 0.05 the verdict
    is "not distinguishable with N trajectories", whatever the ratio of the two means (a percentile
    bootstrap over 2 or 3 trajectories is far too narrow to decide with);
  * the trajectories a difference would need: the smallest N at which a paired t-test at the 5 % level finds
    that difference 80 % of the time, from the spread of the per-trajectory differences seen here (power of
    the noncentral t, as in any sample-size table for a paired t-test).

The reporting follows Agarwal et al., "Deep Reinforcement Learning at the Edge of the Statistical Precipice"
(NeurIPS 2021, https://arxiv.org/abs/2108.13264): intervals, not point estimates, when samples are few.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

ALPHA = 0.05
POWER = 0.8
CONFIDENCE = 0.95
RESAMPLES = 2000
MAX_TRAJECTORIES = 10_000_000


class Verdict(enum.Enum):
    BETTER = "better"
    WORSE = "worse"
    NOT_DISTINGUISHABLE = "not distinguishable"


@dataclass(frozen=True)
class PerTrajectory:
    """Sums over each trajectory's steps; pooled figures are sums over trajectories divided by steps."""

    steps: np.ndarray
    """[N] steps of each trajectory."""
    policy: np.ndarray
    """[N] the policy's summed per-step figure (normalised squared error, or correct gripper calls)."""
    baseline: np.ndarray
    """[N] the baseline's, on the same steps."""

    def means(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-trajectory figures (each trajectory's own mean): the paired test's samples."""
        return self.policy / self.steps, self.baseline / self.steps


@dataclass(frozen=True)
class Comparison:
    """Policy against baseline for one figure, with its uncertainty over trajectories."""

    figure: str
    lower_is_better: bool
    trajectories: int
    policy: float
    baseline: float
    policy_ci: tuple[float, float] | None
    baseline_ci: tuple[float, float] | None
    difference_ci: tuple[float, float] | None
    """95 % t interval of the mean per-trajectory difference policy - baseline (the paired t-test's own
    interval, so the two always agree; a bootstrap over very few trajectories is far too narrow)."""
    p_value: float | None
    """Paired t-test on per-trajectory figures; None when it cannot be computed (fewer than 2 trajectories)."""
    verdict: Verdict
    needed: int | None
    """Trajectories at which the observed difference would be found 80 % of the time at the 5 % level; None
    when the spread cannot be estimated (fewer than 2 trajectories, or no difference at all)."""
    effect: float | None = None
    """The difference ``needed`` was computed for, when it is not the one observed."""
    names: tuple[str, str] = ("policy", "baseline")
    """What the two sides are called: the policy and the constant baseline, or two runs (bdv2 eval --compare)."""

    def to_dict(self) -> dict[str, Any]:
        return {"figure": self.figure, "lower_is_better": self.lower_is_better, "trajectories": self.trajectories,
                "policy": self.policy, "baseline": self.baseline, "policy_ci95": _pair(self.policy_ci),
                "baseline_ci95": _pair(self.baseline_ci), "difference_ci95": _pair(self.difference_ci),
                "paired_t_test_p": self.p_value, "verdict": self.verdict.value,
                "trajectories_needed": self.needed, "trajectories_needed_for": self.effect,
                "names": list(self.names)}

    def sentence(self) -> str:
        """One line: the verdict with its numbers."""
        n = self.trajectories
        traj = f"{n} trajector{'y' if n == 1 else 'ies'}"
        ci = f", per-trajectory difference 95 % CI [{self.difference_ci[0]:.3g}, {self.difference_ci[1]:.3g}]" \
            if self.difference_ci else ""
        p = f", paired t-test p = {self.p_value:.2g}" if self.p_value is not None else ""
        a, b = self.names
        figures = f"{self.figure}: {a} {self.policy:.3g} vs {b} {self.baseline:.3g}{ci}{p}"
        size = "this size" if self.effect is None else f"of {self.effect:g}"
        need = (f"; about {self.needed} trajectories would show a difference {size} 80 % of the time "
                f"(paired t-test, 5 % level, from the spread seen here)" if self.needed is not None else
                "; at least 2 trajectories are needed to estimate how many would" if n < 2 else "")
        if (self.verdict is Verdict.NOT_DISTINGUISHABLE and self.effect is None and self.needed is not None
                and self.needed <= n):
            # the power estimate rests on a spread measured on these few trajectories: it cannot overrule them
            need = (f"; more than {n} trajectories are needed: these {n} did not show it (a spread estimated "
                    f"from {n} is rough)")
        match self.verdict:
            case Verdict.BETTER:
                return f"{figures}: {_the(a)} is better than {_the(b)} on {traj}{need}"
            case Verdict.WORSE:
                return f"{figures}: {_the(a)} is WORSE than {_the(b)} on {traj}{need}"
            case Verdict.NOT_DISTINGUISHABLE:
                return f"{figures}: not distinguishable with {traj}{need}"


def _the(name: str) -> str:
    return f"the {name}" if name in ("policy", "baseline") else name


def _pair(ci: tuple[float, float] | None) -> list[float] | None:
    return list(ci) if ci is not None else None


def _interval(data: tuple[np.ndarray, ...], statistic: Any, seed: int) -> tuple[float, float] | None:
    """95 % percentile bootstrap interval of a pooled statistic, resampling whole trajectories."""
    from scipy import stats

    if len(data[0]) < 2:
        return None
    res = stats.bootstrap(data, statistic, paired=True, vectorized=True, n_resamples=RESAMPLES,
                          confidence_level=CONFIDENCE, method="percentile", rng=np.random.default_rng(seed))
    low, high = float(res.confidence_interval.low), float(res.confidence_interval.high)
    return (low, high) if math.isfinite(low) and math.isfinite(high) else None


def trajectories_needed(differences: np.ndarray, effect: float | None = None) -> int | None:
    """Smallest N at which a two-sided paired t-test at ALPHA detects ``effect`` (default: the mean of
    ``differences``) with probability POWER, given the standard deviation of ``differences``."""
    from scipy import stats

    if len(differences) < 2:
        return None
    sd = float(np.std(differences, ddof=1))
    delta = float(np.mean(differences)) if effect is None else effect
    if sd == 0.0 or delta == 0.0 or not math.isfinite(sd / delta):
        return None
    d = abs(delta) / sd

    def power(n: int) -> float:
        t = stats.t.ppf(1 - ALPHA / 2, n - 1)
        nc = d * math.sqrt(n)
        return float(stats.nct.sf(t, n - 1, nc) + stats.nct.cdf(-t, n - 1, nc))

    high = 2  # power grows with n: double until it is reached, then bisect (huge n stays unevaluated)
    while power(high) < POWER:
        high *= 2
        if high > MAX_TRAJECTORIES:
            return None
    low = max(2, high // 2)
    while low < high:
        mid = (low + high) // 2
        if power(mid) >= POWER:
            high = mid
        else:
            low = mid + 1
    return low


def compare(per: PerTrajectory, figure: str, lower_is_better: bool, seed: int = 0,
            effect: float | None = None, names: tuple[str, str] = ("policy", "baseline")) -> Comparison:
    """Policy vs baseline on one figure: pooled values, bootstrap intervals, paired test, verdict, and the
    trajectories a difference of ``effect`` (default: the one observed) would need."""
    from scipy import stats

    n = len(per.steps)
    total = float(per.steps.sum())
    pol, base = float(per.policy.sum()) / total, float(per.baseline.sum()) / total

    def pooled(x: np.ndarray, steps: np.ndarray, axis: int = -1) -> np.ndarray:
        return np.sum(x, axis=axis) / np.sum(steps, axis=axis)

    pol_ci = _interval((per.policy, per.steps), pooled, seed)
    base_ci = _interval((per.baseline, per.steps), pooled, seed)
    p_means, b_means = per.means()
    p_value: float | None = None
    diff_ci: tuple[float, float] | None = None
    if n >= 2:
        differences = p_means - b_means
        if np.all(differences == differences[0]):
            # No spread: the t statistic is infinite (a nonzero difference) or undefined (none at all).
            p_value = 0.0 if differences[0] != 0 else 1.0
            diff_ci = (float(differences[0]), float(differences[0]))
        else:
            test = stats.ttest_rel(p_means, b_means)
            p_value = float(test.pvalue)
            interval = test.confidence_interval(CONFIDENCE)
            diff_ci = (float(interval.low), float(interval.high))
    verdict = Verdict.NOT_DISTINGUISHABLE
    if p_value is not None and p_value < ALPHA and pol != base:
        verdict = Verdict.BETTER if (pol < base) == lower_is_better else Verdict.WORSE
    needed = (trajectories_needed(p_means - b_means, effect)
              if verdict is Verdict.NOT_DISTINGUISHABLE or effect is not None else None)
    return Comparison(figure, lower_is_better, n, pol, base, pol_ci, base_ci, diff_ci, p_value, verdict, needed,
                      effect, names)


def comparison_from_dict(d: dict[str, Any]) -> Comparison:
    """The inverse of Comparison.to_dict (eval.json's "statistics" entries)."""

    def pair(v: list[float] | None) -> tuple[float, float] | None:
        return (float(v[0]), float(v[1])) if v else None

    return Comparison(d["figure"], d["lower_is_better"], d["trajectories"], d["policy"], d["baseline"],
                      pair(d["policy_ci95"]), pair(d["baseline_ci95"]), pair(d["difference_ci95"]),
                      d["paired_t_test_p"], Verdict(d["verdict"]), d["trajectories_needed"],
                      d.get("trajectories_needed_for"), tuple(d.get("names", ("policy", "baseline"))))
