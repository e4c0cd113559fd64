"""Where the original BridgeData V2 code (https://github.com/rail-berkeley/bridge_data_v2) is, for the tests that
compare bdv2 against it. One variable: BDV2_ORIGINAL, a checkout of that repository; unset, the folder
``bridge_data_v2`` beside this checkout is used when it exists. The code is never copied into this repo.

Two ways to run it:
  * its TensorFlow-only parts (tf_augmentations, tf_goal_relabeling, BridgeDataset) import under this
    interpreter: ``import_original()`` puts the checkout on sys.path;
  * its JAX parts (agents, encoders, flax checkpoints) need the JAX of its era: ``original_python()`` is
    ``$BDV2_ORIGINAL/.venv/bin/python``, a venv that tools/original_env.sh builds with the pins of
    the measured row "user's pins, repaired" (jax 0.4.13, flax 0.7.0, ...).
Tests skip, naming the variable, when either is missing.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

VARIABLE = "BDV2_ORIGINAL"
_REPO = Path(__file__).resolve().parents[1]


def original_root() -> Path | None:
    value = os.environ.get(VARIABLE)
    root = Path(value).expanduser() if value else _REPO.parent / "bridge_data_v2"
    return root if (root / "jaxrl_m").is_dir() else None


def require_original() -> Path:
    """The checkout, or a skip that says how to provide one."""
    root = original_root()
    if root is None:
        pytest.skip(f"the original bridge_data_v2 code was not found; set {VARIABLE} to a checkout of "
                    "https://github.com/rail-berkeley/bridge_data_v2 (default: ../bridge_data_v2 beside this repo)")
    return root


def import_original() -> Path:
    """Put the checkout on sys.path for its TF-only modules (they import ml_collections and absl too)."""
    root = require_original()
    pytest.importorskip("ml_collections", reason="the original's tf_augmentations imports ml_collections")
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    return root


def original_python() -> Path:
    """The interpreter of the original's own venv (its JAX era), or a skip naming how to build it."""
    root = require_original()
    python = root / ".venv" / "bin" / "python"
    if not python.exists():
        pytest.skip(f"{python} not found: the original's JAX code needs its own venv; build it with "
                    f"tools/original_env.sh {root}")
    return python
