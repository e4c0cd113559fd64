"""Typed errors of bdv2.trainer. Libraries raise these; only the CLI turns them into messages and exit codes."""

from __future__ import annotations


class TrainerError(Exception):
    """Base class: every message names the file or run involved and, where there is one, the fix."""


class ConfigError(TrainerError, ValueError):
    """A multi_train.yaml that cannot be run: names the file, the key, what was found and what is allowed."""

    def __init__(self, file: str, key: str, problem: str, fix: str = "") -> None:
        where = f"{file}: {key}: " if key else f"{file}: "
        super().__init__(where + problem + (f"\n  fix: {fix}" if fix else ""))
        self.file = file
        self.key = key
        self.problem = problem
        self.fix = fix


class DataError(TrainerError):
    """The input pipeline cannot be built (no TFRecords, a bad metadata file)."""


class NonFiniteError(TrainerError, FloatingPointError):
    """The loss or a gradient became NaN/inf; the message names the step window it happened in."""

    def __init__(self, first: int, last: int, metrics: dict[str, float]) -> None:
        super().__init__(f"non-finite loss or gradient between step {first} and step {last} "
                         f"(last metrics: {metrics}); lower the learning rate, check the normalisation "
                         f"statistics (a zero std), or resume from the last checkpoint")
        self.first = first
        self.last = last


class StorageError(TrainerError, OSError):
    """An output folder that cannot be written (read-only, permissions) or whose file system is full, in one line
    (bdv2.storage names the folder and what to do)."""
