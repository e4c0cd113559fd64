"""Exceptions the doctor raises at its boundaries; the CLI turns them into one clear message."""


class DoctorError(Exception):
    """Base class: a problem with the doctor's input, not with the environment it examines."""


class MatrixError(DoctorError, ValueError):
    """compat_matrix.toml is malformed; the message names the file, the entry and the key."""


class CollectError(DoctorError):
    """The target environment could not be read (a bad --python, an unreadable snapshot file)."""
