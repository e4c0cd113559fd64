"""--deep probes make real calls: a package that imports cleanly but breaks at its first real call fails its probe.

Each case puts a stand-in package first on PYTHONPATH of the probe's interpreter: it imports like the real one
and fails the way an era mismatch does, at a call. A probe that only imported would pass it.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from bdv2.doctor.probe.deep import PROBES, Probe, run_probe
from bdv2.doctor.probe.snapshot import ProbeStatus

pytest.importorskip("jax", reason="the probes run under this interpreter and need jax ([train] extra)")

ORBAX_SAVE_BREAKS = '''
class StandardCheckpointer:
    def save(self, path, tree):
        raise TypeError("save() got an unexpected keyword argument 'force' (stand-in)")
    def restore(self, path, target=None):
        raise AssertionError("not reached")
'''

DISTRAX_FLOATS_BREAK = '''
import jax.numpy as jnp
__version__ = "0.0-stand-in"
class MultivariateNormalDiag:
    def __init__(self, loc, scale):
        self.loc, self.scale = loc, scale
    def log_prob(self, x):
        return -0.5 * jnp.sum(((x - self.loc) / self.scale) ** 2)
    def sample(self, seed):
        return self.loc
class Normal:
    def __init__(self, loc, scale):
        if isinstance(loc, float):
            raise TypeError("Normal: loc must be an array, got float (stand-in)")
'''


def _probe(name: str) -> Probe:
    return next(p for p in PROBES if p.name == name)


def _run_with(tmp_path: Path, files: dict[str, str], probe: Probe) -> tuple[ProbeStatus, str]:
    for rel, text in files.items():
        f = tmp_path / "fake" / rel
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(text)
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "fake"), "JAX_PLATFORMS": "cpu"}
    res = run_probe(sys.executable, probe, timeout=120, env=env, cwd=str(tmp_path))
    return res.status, res.error or ""


def test_orbax_probe_saves_and_restores(tmp_path: Path) -> None:
    pytest.importorskip("orbax.checkpoint")
    status, err = _run_with(tmp_path, {"orbax/__init__.py": "", "orbax/checkpoint/__init__.py": ORBAX_SAVE_BREAKS},
                            _probe("tensorstore-orbax"))
    assert status is ProbeStatus.FAILED and "unexpected keyword argument 'force'" in err


def test_distrax_probe_builds_a_distribution_from_python_floats(tmp_path: Path) -> None:
    status, err = _run_with(tmp_path, {"distrax/__init__.py": DISTRAX_FLOATS_BREAK}, _probe("distrax"))
    assert status is ProbeStatus.FAILED and "loc must be an array, got float" in err


def test_the_real_stack_passes_every_probe_that_applies(tmp_path: Path) -> None:
    pytest.importorskip("orbax.checkpoint")
    pytest.importorskip("distrax")
    for name in ("jax", "flax-optax", "tensorstore-orbax", "distrax"):
        status, err = _run_with(tmp_path, {}, _probe(name))
        assert status is ProbeStatus.OK, f"{name}: {err}"
