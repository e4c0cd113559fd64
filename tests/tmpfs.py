"""Real small and read-only file systems for the storage tests: a tmpfs mounted for one test (root only; the
test is skipped with the reason otherwise) and unmounted after it."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest


def mounted(target: Path, options: str) -> Iterator[Path]:
    """Yield ``target`` with a tmpfs mounted on it (``options``: mount -o, e.g. "size=300k" or "ro,size=1m")."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    target.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(target)], capture_output=True,
                          text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield target
    finally:
        subprocess.run(["umount", "-l", str(target)], check=False)
