"""Typed errors of bdv2.data_tools. Libraries raise these; only the CLI turns them into exit codes."""

from __future__ import annotations


class DataToolsError(Exception):
    """Base class: every message names the path involved and, where there is one, the fix."""


class BadTrajectory(DataToolsError):
    """One trajectory cannot be converted; the converters skip it and list it in the summary."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


class UnsafePickleError(BadTrajectory):
    """A pickle in raw data refers to something other than numpy arrays, lists, dicts and scalars."""


class ImageSizeError(DataToolsError):
    """Images in a numpy intermediate do not have the size the user asked for."""


class InputLayoutError(DataToolsError):
    """The input tree does not look like what --depth says (nothing found, wrong kind of tree)."""


class EmptyFolderError(InputLayoutError):
    """The input folder holds no file at all: a wrong path or a copy that has not run, not a --depth matter."""

    def __init__(self, path: object) -> None:
        super().__init__(f"{path}: this folder is empty (no file in it or below it); check the path, or run the "
                         "copy, download or conversion that fills it first")


class ShardSpecError(DataToolsError, ValueError):
    """A --shard value that is not INDEX/COUNT with 0 <= INDEX < COUNT."""
