"""Slow integration tests: `bdv2 doctor` on real broken virtual environments built with pip.

Each test builds (or reuses, see tests/doctor/broken_envs.py) one scenario's venv, runs the doctor on it
from this interpreter with `--python <venv>/bin/python --json`, and checks what a researcher needs:
the rule that names the cause, at error severity, with a fix that installs the right thing, and a
sensible nearest known-good row. Where the cause shows up only at import time, `--deep` is added
and the probe's verbatim error is checked too. Only an unreachable package index skips a test.

The nearest-row checks name the package that must move rather than the row: rows are data that
grow (compat_matrix.toml), and two rows can be equally near.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from packaging.version import Version

from . import broken_envs

pytestmark = pytest.mark.slow

Report = dict[str, Any]
Finding = dict[str, Any]


def venv(name: str) -> Path:
    try:
        return broken_envs.build(name)
    except broken_envs.IndexUnreachable as e:
        pytest.skip(f"cannot build scenario {name!r}: {e}")


def doctor(python: Path, deep: bool = False) -> Report:
    cmd = [sys.executable, "-m", "bdv2.cli", "doctor", "--python", str(python), "--json"]
    if deep:
        cmd.append("--deep")
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
    assert res.stdout.strip(), f"doctor printed no JSON (exit {res.returncode}):\n{res.stderr}"
    report: Report = json.loads(res.stdout)
    assert report["schema"] == 1
    # Every venv here shares this interpreter's base Python: the doctor must still read the venv's
    # packages, not its own.
    examined = Path(report["target"]["prefix"]).resolve()
    assert examined == python.parent.parent.resolve(), f"the doctor examined {examined}, not {python}"
    # The JSON's exit code must be the process's: scripts read either.
    assert report["exit_code"] == res.returncode == 1, _summary(report)
    return report


def _summary(report: Report) -> str:
    return "\n".join(f"{f['severity']:7} {f['id']}: {f['title']}" for f in report["findings"])


def finding(report: Report, fid: str, severity: str = "error", *, mentions: str = "") -> Finding:
    """The finding ``fid`` (whose title contains ``mentions``, when given), checked to be at ``severity``."""
    hits = [f for f in report["findings"] if f["id"] == fid and mentions in f["title"]]
    what = fid + (f" mentioning {mentions!r}" if mentions else "")
    assert hits, f"no {what} finding; got:\n{_summary(report)}"
    assert hits[0]["severity"] == severity, _summary(report)
    return hits[0]


def commands(f: Finding) -> str:
    assert f["fix"] is not None and f["fix"]["commands"], f"{f['id']} gives no command"
    return "\n".join(f["fix"]["commands"])


def pinned(cmds: str, name: str) -> Version | None:
    """The version a fix's pip command pins ``name`` to ("name==X"), if it pins it."""
    m = re.search(rf'"{re.escape(name)}==([0-9][^"+\s]*)', cmds)
    return Version(m.group(1)) if m else None


def probe_failure(report: Report, probe: str) -> Finding:
    """The runtime finding of the failed probe ``probe`` (its evidence holds the verbatim error)."""
    hits = [f for f in report["findings"] if f["area"] == "runtime" and f["title"].startswith(f"{probe}:")]
    assert hits, f"the {probe!r} probe did not fail; got:\n{_summary(report)}"
    assert hits[0]["severity"] == "error"
    return hits[0]


def probe_error(report: Report, probe: str) -> str:
    return "\n".join(probe_failure(report, probe)["evidence"])


def nearest_row(report: Report) -> Finding:
    return finding(report, "nearest-row", "info")


def test_tfp_025_with_tf_215() -> None:
    report = doctor(venv("tfp-vs-tf"), deep=True)
    f = finding(report, "tfp-too-new-for-tf")
    assert any(e.startswith("tensorflow-probability 0.25.0") for e in f["evidence"])
    assert any(e.startswith("tensorflow-cpu 2.15.1") for e in f["evidence"])
    assert pinned(commands(f), "tensorflow-probability") == Version("0.23.0")
    # TFP's own import-time check, verbatim, from the TF-substrate probe.
    err = probe_error(report, "tfp-tensorflow")
    assert "requires TensorFlow version >= 2.18; Detected an installation of version 2.15.1" in err, err
    # Keeping TF 2.15 means moving TFP back to the release made for it.
    assert pinned(commands(nearest_row(report)), "tensorflow-probability") == Version("0.23.0")
    # No jax here, so TFP's JAX substrate is not in use: its probe must not report an error.
    jax_probe = [f for f in report["findings"] if f["title"].startswith("tfp-jax:")]
    assert not jax_probe, "\n".join(jax_probe[0]["evidence"])


def test_tensorstore_with_old_ml_dtypes() -> None:
    report = doctor(venv("tensorstore-old-ml-dtypes"), deep=True)
    f = finding(report, "tensorstore-ml-dtypes-float8")
    assert '"ml-dtypes>=0.5.0"' in commands(f)
    err = probe_error(report, "tensorstore-orbax")
    assert "module 'ml_dtypes' has no attribute 'float8_e3m4'" in err, err
    row_ml_dtypes = pinned(commands(nearest_row(report)), "ml-dtypes")
    assert row_ml_dtypes is not None and row_ml_dtypes >= Version("0.5.0")


def test_jaxlib_older_than_jax() -> None:
    report = doctor(venv("jax-jaxlib-mismatch"), deep=True)
    f = finding(report, "jax-jaxlib-lockstep")
    assert pinned(commands(f), "jaxlib") == Version("0.10.2")
    err = probe_error(report, "jax")
    assert "RuntimeError: jaxlib is version 0.9.2, but this version of jax requires" in err, err
    assert pinned(commands(nearest_row(report)), "jaxlib") == Version("0.10.2")
    # pip check's report of the same pair is folded into the specific rule, not repeated.
    assert not [x for x in report["findings"] if x["id"] == "requires-dist" and "jaxlib" in x["packages"]]


def test_tf215_with_numpy2() -> None:
    report = doctor(venv("tf215-numpy2"), deep=True)
    f = finding(report, "tensorflow-numpy2")
    assert '"numpy<2"' in commands(f)
    # TF 2.15's import dies in ml_dtypes' NumPy-1.x extension.
    assert '"numpy<2"' in commands(probe_failure(report, "tensorflow"))
    row_numpy = pinned(commands(nearest_row(report)), "numpy")
    assert row_numpy is not None and row_numpy < Version("2"), report["findings"]


def test_jax_0413_with_scipy_113() -> None:
    report = doctor(venv("jax0413-scipy113"), deep=True)
    f = finding(report, "jax-scipy-113")
    assert '"scipy<1.13"' in commands(f)
    err = probe_error(report, "jax")
    assert "module 'scipy.linalg' has no attribute 'tril'" in err, err
    row = nearest_row(report)
    assert any(c.startswith("scipy 1.13.1 -> ") for c in row["evidence"]), row["evidence"]


def test_flax_newer_than_jax() -> None:
    report = doctor(venv("flax-newer-than-jax"))
    f = finding(report, "requires-dist", mentions="flax 0.12.8 requires jax")
    assert set(f["packages"]) == {"flax", "jax"}
    assert '"jax>=0.10.0"' in commands(f)
    # Either flax moves back to a release for jax 0.6.2, or jax moves up to flax; both mend the pair.
    cmds = commands(nearest_row(report))
    flax, jax = pinned(cmds, "flax"), pinned(cmds, "jax")
    assert (flax is not None and flax < Version("0.12")) or (jax is not None and jax >= Version("0.10")), cmds


def test_seed_guide_pins() -> None:
    report = doctor(venv("seed-pins"), deep=True)
    f = finding(report, "tfp-jax-substrate-old-jax")
    assert any(e.startswith("jax 0.4.13") for e in f["evidence"])
    # The remedy: jax >= 0.4.14 under TFP 0.22.1, or TFP 0.21.0 on jax 0.4.13.
    cmds = commands(f)
    jax, tfp = pinned(cmds, "jax"), pinned(cmds, "tensorflow-probability")
    assert (jax is not None and jax >= Version("0.4.14")) or tfp == Version("0.21.0"), cmds
    f = finding(report, "tensorflow-ml-dtypes", "warning")  # TF 2.15.1 still runs with 0.5.3 (measured)
    assert any(e.startswith(("ml-dtypes 0.5.3", "ml_dtypes 0.5.3")) for e in f["evidence"])
    assert '"ml-dtypes~=0.3.1"' in commands(f)
    # Without distrax, TFP's JAX substrate is probed directly (doctor/probe/deep.py).
    err = probe_error(report, "tfp-jax")
    assert "module 'jax.dtypes' has no attribute 'prng_key'" in err, err
    row_ml_dtypes = pinned(commands(nearest_row(report)), "ml-dtypes")
    assert row_ml_dtypes is not None and row_ml_dtypes < Version("0.5"), row_ml_dtypes


# -- --fix --yes converges ------------------------------------------------------------------------------
#
# Each case: a fresh copy of a scenario's venv; the static report names the cause (no --deep); then
# `--fix --yes`; then `--deep` must find no error left. `rows=False` examines the same venv with a matrix
# whose CPU rows are for another Python, so no known-good row fits and the plan is built from the
# findings' own fixes, checked by the resolver with every other installed package held.

@dataclass(frozen=True)
class Case:
    scenario: str
    cause: str
    """The id of the error finding that names the cause, from the static report."""
    mentions: str = ""
    rows: bool = True

    @property
    def name(self) -> str:
        return self.scenario + ("" if self.rows else "-no-row")


CASES = (
    Case("tfp-vs-tf", "tfp-too-new-for-tf"),
    Case("tensorstore-old-ml-dtypes", "tensorstore-ml-dtypes-float8"),
    Case("jax-jaxlib-mismatch", "jax-jaxlib-lockstep"),
    Case("tf215-numpy2", "tensorflow-numpy2"),
    Case("jax0413-scipy113", "jax-scipy-113"),
    Case("flax-newer-than-jax", "requires-dist", "flax 0.12.8 requires jax"),
    Case("seed-pins", "tfp-jax-substrate-old-jax"),
    Case("tfp-and-tfp-nightly", "tfp-and-tfp-nightly"),
    Case("tensorstore-vs-tf", "tensorstore-vs-tensorflow-ml-dtypes"),
    Case("tf215-ml-dtypes-upgrade", "tensorflow-numpy2"),
    Case("jaxlib-numpy2", "jaxlib-numpy2"),
    Case("orbax-newer-than-jax", "requires-dist", "orbax-checkpoint 0.12.8 requires jax"),
    Case("tfp-too-old-for-tf", "tfp-too-old-for-tf"),
    Case("chex-older-than-jax", "chex-old-new-jax"),
    Case("protobuf-too-old-for-tf", "tensorflow-protobuf"),
    Case("jax0413-scipy113", "jax-scipy-113", rows=False),
    Case("tf215-numpy2", "tensorflow-numpy2", rows=False),
    Case("tf215-ml-dtypes-upgrade", "tensorflow-numpy2", rows=False),
    Case("flax-newer-than-jax", "requires-dist", "flax 0.12.8 requires jax", rows=False),
)


def clone(env: Path, dest: Path) -> Path:
    """A private copy of a built venv: site-packages hard-linked (pip unlinks before it writes and
    uninstalls by renaming, so the cached venv keeps its files), bin/ copied (--fix edits bin/activate)."""
    subprocess.run(["cp", "-al", str(env), str(dest)], check=True)
    shutil.rmtree(dest / "bin")
    shutil.copytree(env / "bin", dest / "bin", symlinks=True)
    return broken_envs.venv_python(dest)


def rowless_matrix(dest: Path) -> Path:
    """compat_matrix.toml with every CPU row moved to a Python that does not exist, so none fits."""
    blocks: list[list[str]] = [[]]
    for line in (Path(__file__).parents[2] / "compat_matrix.toml").read_text().splitlines(keepends=True):
        if line.startswith(("[[", "# ====")):
            blocks.append([])
        blocks[-1].append(line)
    out = []
    for b in blocks:
        if b and b[0].strip() == "[[rows]]" and any(x.strip() == 'kind = "cpu"' for x in b):
            b = [re.sub(r"^python = .*", 'python = ">=3.99"', x) for x in b]
        out += b
    dest.write_text("".join(out))
    return dest


def bdv2_doctor(python: Path, *args: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "bdv2.cli", "doctor", "--python", str(python), *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=900, check=False)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_fix_yes_converges(case: Case, tmp_path: Path) -> None:
    python = clone(venv(case.scenario).parent.parent, tmp_path / case.scenario)
    extra = () if case.rows else ("--matrix", str(rowless_matrix(tmp_path / "matrix.toml")))
    t0 = time.perf_counter()
    before = bdv2_doctor(python, "--json", *extra)
    finding(json.loads(before.stdout), case.cause, mentions=case.mentions)
    t1 = time.perf_counter()
    fixed = bdv2_doctor(python, "--fix", "--yes", *extra)
    assert fixed.returncode in (0, 1), fixed.stdout + fixed.stderr
    assert "✗ failed" not in fixed.stdout, fixed.stdout
    if not case.rows:
        assert "row 'own-fixes'" in fixed.stdout and "no known-good row fits" in fixed.stdout, fixed.stdout
    t2 = time.perf_counter()
    after = bdv2_doctor(python, "--deep", "--json", *extra)
    report: Report = json.loads(after.stdout)
    errors = [f for f in report["findings"] if f["severity"] == "error"]
    print(f"{case.name}: diagnose {t1 - t0:.1f}s, fix {t2 - t1:.1f}s, deep {time.perf_counter() - t2:.1f}s")
    assert not errors and after.returncode == 0, fixed.stdout + "\n" + _summary(report)
