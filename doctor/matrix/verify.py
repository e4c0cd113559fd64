"""Verify the matrix's rows for real: a fresh venv per row, the row installed, the doctor run inside it.

`bdv2 matrix verify ROW` builds `<cache>/verify/<row>` from scratch (pip's own cache keeps a second run
fast), installs the running bdv2 (from where it was installed, selfsource.py) and the row's exact
packages, then runs in that venv:
  1. `bdv2 doctor --strict --json`   healthy, apart from warnings the row lists as known
  2. `bdv2 doctor --deep --json`     every runtime probe passes (or is skipped with a reason)
  3. a short CPU training smoke run  where the trainer supports the row
GPU rows get only the static part (the row checked against every rule) unless `--gpu` is given.
"""

from __future__ import annotations

import enum
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import venv
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bdv2.fsutil import write_json_atomic

from ..diagnose import diagnose
from ..findings import Severity
from ..probe.snapshot import Dist, Snapshot
from .load import Matrix, Row, RowKind
from .selfsource import SelfSource, SelfSourceError, SourceKind, self_source


class PartStatus(str, enum.Enum):
    PASS = "pass"
    FAIL = "fail"
    SKIPPED = "skipped"

    @classmethod
    def of(cls, ok: bool) -> PartStatus:
        return cls.PASS if ok else cls.FAIL


@dataclass(frozen=True)
class Part:
    name: str
    status: PartStatus
    seconds: float = 0.0
    detail: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "status", PartStatus(self.status))


@dataclass(frozen=True)
class Verdict:
    row: str
    parts: tuple[Part, ...] = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        return all(p.status is not PartStatus.FAIL for p in self.parts)

    def line(self) -> str:
        done = ", ".join(f"{p.name} {p.seconds:.0f}s" for p in self.parts if p.status is PartStatus.PASS)
        failed = "; ".join(f"{p.name} FAILED: {p.detail}" for p in self.parts if p.status is PartStatus.FAIL)
        skipped = "; ".join(f"{p.name} ({p.detail})" for p in self.parts if p.status is PartStatus.SKIPPED)
        out = f"{self.row}: {'PASS' if self.ok else 'FAIL'}"
        out += f" [{done}]" if done else ""
        out += f"  {failed}" if failed else ""
        out += f"  skipped: {skipped}" if skipped else ""
        return out


def constraints(row: Row) -> str:
    """A pip constraints file (`pip install -c FILE ...`) pinning the row's packages."""
    lines = [f"# bdv2 compat_matrix row '{row.name}': {row.title}",
             f"# verified: {row.verified.value} ({row.verified_note})",
             f"# python {row.python}" if str(row.python) else ""]
    lines += [f"--find-links {link}" for link in row.find_links]  # pip honours it in a constraints file
    lines += [f"{name}{spec}" for name, spec in row.packages.items()]
    return "\n".join(x for x in lines if x) + "\n"


def row_versions(row: Row) -> dict[str, str]:
    """One concrete version per package of a row: the pinned one, or the lowest its specifier allows."""
    out = {}
    for name, spec in row.packages.items():
        pins = [s.version for s in spec if s.operator in ("==", ">=", "~=")]
        out[name] = pins[0].replace(".*", ".0") if pins else "1.0"
    return out


def static_check(row: Row, matrix: Matrix) -> Part:
    """The row as a snapshot (its pinned or lowest allowed versions) against every rule."""
    t0 = time.perf_counter()
    dists = tuple(Dist(name, version) for name, version in row_versions(row).items())
    snap = Snapshot(python={"version": "3.11.7"}, markers={}, distributions=dists)
    bad = [f for f in diagnose(snap, matrix) if f.severity is Severity.ERROR]
    detail = "; ".join(f.title for f in bad)
    return Part("static rules", PartStatus.of(not bad), time.perf_counter() - t0, detail)


Runner = Callable[[list[str], dict[str, str] | None, float], tuple[int, str]]


def _run(cmd: list[str], env: dict[str, str] | None = None, timeout: float = 1800) -> tuple[int, str]:
    try:
        # Run outside any source checkout: its bdv2/ folder would shadow the bdv2 installed in the venv.
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, check=False,
                             cwd=tempfile.gettempdir())
    except subprocess.TimeoutExpired:
        return 124, f"timed out after {timeout:.0f}s: {' '.join(cmd)}"
    return res.returncode, res.stdout + res.stderr


def verify_row(row: Row, matrix: Matrix, workdir: Path, gpu: bool = False, source: SelfSource | None = None,
               run: Runner = _run, log: Callable[[str], None] = print) -> Verdict:
    """Build the row's venv from scratch and run the doctor (and the trainer smoke run) inside it.

    ``source``: the bdv2 to install there (default: the running one, selfsource.self_source()).
    """
    parts = [static_check(row, matrix)]
    if row.kind is not RowKind.CPU and not gpu:
        parts.append(Part("install + doctor + probes", PartStatus.SKIPPED,
                          detail=f"{row.kind.value} row: needs a GPU (--gpu)"))
        return Verdict(row.name, tuple(parts))
    py = f"{sys.version_info.major}.{sys.version_info.minor}.{sys.version_info.micro}"
    if not row.python.contains(py):
        parts.append(Part("install", PartStatus.SKIPPED, detail=f"row needs Python {row.python}, this is {py}"))
        return Verdict(row.name, tuple(parts))
    env_dir = workdir / row.name
    parts.append(_install(row, env_dir, source, run, log))
    if parts[-1].status is PartStatus.FAIL:
        return Verdict(row.name, tuple(parts))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHON"))}
    env["PATH"] = f"{env_dir / 'bin'}:{env.get('PATH', '')}"
    bdv2 = str(env_dir / "bin" / "bdv2")
    parts.append(_doctor_part(row, run, [bdv2, "doctor", "--strict", "--json"], env, "doctor --strict"))
    parts.append(_doctor_part(row, run, [bdv2, "doctor", "--deep", "--json"], env, "doctor --deep"))
    if not row.trainer:
        parts.append(Part("training smoke run", PartStatus.SKIPPED, detail="bdv2's trainer does not target this row"))
    else:
        t = time.perf_counter()
        code, out = run([bdv2, "demo", "--out", str(env_dir / "demo"), "--steps", "60"], env, 1800)
        parts.append(Part("training smoke run", PartStatus.of(code == 0), time.perf_counter() - t,
                          _tail(out)))
    return Verdict(row.name, tuple(parts))


def _install(row: Row, env_dir: Path, source: SelfSource | None, run: Runner, log: Callable[[str], None]) -> Part:
    """A fresh venv with the same bdv2 as the running one and the row's pinned packages."""
    t0 = time.perf_counter()
    try:
        source = source or self_source()
    except SelfSourceError as e:
        return Part("install", PartStatus.FAIL, time.perf_counter() - t0, str(e))
    log(f"[{row.name}] fresh venv in {env_dir}")
    if env_dir.exists():
        shutil.rmtree(env_dir)
    venv.create(env_dir, with_pip=True)
    vpy = str(env_dir / "bin" / "python")
    cfile = env_dir / "constraints.txt"
    cfile.write_text(constraints(row))
    specs = [f"{name}{spec}" for name, spec in row.packages.items()]
    log(f"[{row.name}] pip install {source.describe()} + {len(specs)} pinned packages")
    links = [arg for link in row.find_links for arg in ("-f", link)]
    code, out = run([vpy, "-m", "pip", "install", "-q", *links, "-c", str(cfile), source.spec, *specs], None, 1800)
    detail = _tail(out)
    if code != 0 and (source.kind is not SourceKind.INDEX or "bdv2" in out):
        detail = f"{source.install_hint()} | {detail}"
    return Part("install", PartStatus.of(code == 0), time.perf_counter() - t0, detail)


def _doctor_part(row: Row, run: Runner, cmd: list[str], env: dict[str, str], name: str) -> Part:
    t = time.perf_counter()
    _, out = run(cmd, env, 600)  # the JSON says more than the exit code
    try:
        doc = json.loads(out[out.index("{"):])
    except ValueError:
        return Part(name, PartStatus.FAIL, time.perf_counter() - t, _tail(out))
    bad = [f for f in doc["findings"] if f["severity"] == "error"
           or (f["severity"] == "warning" and "--strict" in cmd and f["id"] not in row.known_warnings)]
    failed_probes = [p["name"] for p in doc.get("probes", []) if p["status"] in ("failed", "timeout")]
    detail = "; ".join(f"{f['id']}: {f['title']}" for f in bad)
    if failed_probes:
        detail += ("; " if detail else "") + "probes failed: " + ", ".join(failed_probes)
    known = [f["id"] for f in doc["findings"] if f["id"] in row.known_warnings]
    if not detail and known:
        detail = "known: " + ", ".join(sorted(set(known)))
    return Part(name, PartStatus.of(not (bad or failed_probes)), time.perf_counter() - t, detail)


def _tail(text: str, n: int = 3) -> str:
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    return " | ".join(lines[-n:])[:600]


def record(verdicts: list[Verdict], path: Path) -> None:
    """Remember when each row last passed here (shown by `bdv2 matrix list`)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        data = {}
    stamp = time.strftime("%Y-%m-%d %H:%M", time.gmtime())
    for v in verdicts:
        data[v.row] = {"when": stamp, "ok": v.ok, "line": v.line()}
    write_json_atomic(path, data)


def cpu_verifiable(matrix: Matrix, python: str = "3.11") -> list[Row]:
    """Rows a GPU-less CI job can verify in full: CPU rows installable on ``python``."""
    return [r for r in matrix.rows if r.kind is RowKind.CPU and r.python.contains(python + ".0")]


def workflow_yaml(matrix: Matrix) -> str:
    """The GitHub Actions workflow verifying every CPU row; .github/workflows/matrix.yml must equal it."""
    rows = ", ".join(r.name for r in cpu_verifiable(matrix))
    return f"""# Generated by `bdv2 matrix workflow > .github/workflows/matrix.yml` from compat_matrix.toml.
# Do not edit by hand: tests/doctor/test_verify.py fails when this file and the matrix disagree.
name: compat-matrix
on:
  push:
  pull_request:
  schedule:
    - cron: "17 4 * * 1"
jobs:
  verify:
    name: verify ${{{{ matrix.row }}}}
    runs-on: ubuntu-latest
    timeout-minutes: 60
    strategy:
      fail-fast: false
      matrix:
        row: [{rows}]
    steps:
      - uses: actions/checkout@v4
      - uses: actions/setup-python@v5
        with:
          python-version: "3.11"
          cache: pip
      # The wheel, not the checkout: verify installs the same wheel into the row's venv
      # (its PEP 610 direct_url.json, https://packaging.python.org/en/latest/specifications/direct-url/).
      - run: python -m pip install build
      - run: python -m build --wheel --outdir dist
      - run: python -m pip install dist/bdv2-*.whl
      - run: bdv2 matrix verify ${{{{ matrix.row }}}}
        working-directory: ${{{{ runner.temp }}}}
"""
