"""Executing an action chunk: one action per control step from a policy that predicts k at a time.

A run with ``act_pred_horizon: k`` returns k actions per call. A robot executes one per control step; what
happens to the rest is the execution strategy, named by a string (``load_policy(run, execute=...)``,
``bdv2 serve --execute``):

    all           execute the whole chunk, then plan again (receding:k)
    receding:n    execute the first n actions of each chunk, then plan again (1 <= n <= k): receding-horizon
                  control, octo's RHCWrapper
    ensemble:w    plan at every step and execute the weighted average of what the last w chunks predicted for
    ensemble:w:m  this step (1 <= w <= k): temporal ensembling from ACT (Zhao et al. 2023,
                  https://arxiv.org/abs/2304.13705), weight exp(-m * i) for the i-th prediction counted from
                  the OLDEST one, normalised to sum to one; m defaults to ACT's 0.01
                  (https://github.com/tonyzhaozh/act/blob/main/imitate_episodes.py); m = 0 is the plain mean,
                  the default of octo's TemporalEnsembleWrapper
                  (https://github.com/octo-models/octo/blob/main/octo/utils/gym_wrappers.py)

An executor holds the state of one episode (the current chunk, or the last w chunks); ``reset()`` clears it.
Chunks may carry leading batch dimensions ([..., k, 7]); the executor then returns [..., 7].
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np

ACT_EXP_WEIGHT = 0.01
"""ACT's temporal-ensembling weight m (imitate_episodes.py: ``k = 0.01``)."""


class ExecuteError(ValueError):
    """An execution strategy string that does not parse or does not fit the run's chunk length."""


@dataclass
class Receding:
    """Execute the first ``n`` actions of each chunk, then ask for a new one."""

    n: int
    _chunk: np.ndarray | None = field(default=None, repr=False)
    _next: int = 0

    def needs_plan(self) -> bool:
        return self._chunk is None or self._next >= self.n

    def push(self, chunk: np.ndarray) -> None:
        self._chunk, self._next = chunk, 0

    def next(self) -> np.ndarray:
        assert self._chunk is not None, "push a chunk first"
        action = self._chunk[..., self._next, :]
        self._next += 1
        return action

    def reset(self) -> None:
        self._chunk, self._next = None, 0


@dataclass
class Ensemble:
    """Plan at every step; execute the exp(-m * i)-weighted mean of the last ``w`` chunks' predictions for
    this step, i = 0 for the oldest."""

    w: int
    m: float = ACT_EXP_WEIGHT
    _chunks: deque[np.ndarray] = field(default_factory=deque, repr=False)

    def needs_plan(self) -> bool:
        return True

    def push(self, chunk: np.ndarray) -> None:
        self._chunks.append(chunk)
        while len(self._chunks) > self.w:
            self._chunks.popleft()

    def weights(self) -> np.ndarray:
        """The normalised weights of the current predictions, oldest first."""
        w = np.exp(-self.m * np.arange(len(self._chunks), dtype=np.float64))
        return w / w.sum()

    def next(self) -> np.ndarray:
        assert self._chunks, "push a chunk first"
        n = len(self._chunks)
        # The chunk planned j steps ago predicted this step at its index j; the oldest is j = n - 1.
        preds = np.stack([c[..., n - 1 - i, :] for i, c in enumerate(self._chunks)])  # [n, ..., 7]
        w = self.weights().reshape(n, *([1] * (preds.ndim - 1)))
        return (w * preds).sum(axis=0).astype(preds.dtype)

    def reset(self) -> None:
        self._chunks.clear()


Executor = Receding | Ensemble


def parse_execute(spec: str, chunk: int) -> Executor:
    """The executor a strategy string names (see the module docstring), for chunks of ``chunk`` actions.

    Raises:
        ExecuteError: an unknown name, a malformed number, or n / w outside 1..chunk.
    """
    name, _, rest = spec.strip().partition(":")
    args = rest.split(":") if rest else []
    try:
        if name == "all" and not args:
            return Receding(chunk)
        if name == "receding" and len(args) == 1:
            n = int(args[0])
            if not 1 <= n <= chunk:
                raise ExecuteError(f"execute={spec!r}: n must be 1..{chunk} (the run predicts {chunk} per call)")
            return Receding(n)
        if name == "ensemble" and len(args) in (1, 2):
            w = int(args[0])
            m = float(args[1]) if len(args) == 2 else ACT_EXP_WEIGHT
            if not 1 <= w <= chunk:
                raise ExecuteError(f"execute={spec!r}: w must be 1..{chunk} (the run predicts {chunk} per call)")
            if not np.isfinite(m):
                raise ExecuteError(f"execute={spec!r}: m must be a finite number")
            return Ensemble(w, m)
    except ValueError as e:
        if isinstance(e, ExecuteError):
            raise
        raise ExecuteError(f"execute={spec!r}: {e}") from e
    raise ExecuteError(f"execute={spec!r}: expected 'all', 'receding:N' or 'ensemble:W' (or 'ensemble:W:M')")
