"""The environment's own installer for version moves: detection, the resolver's preview, the conda guard."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path

import pytest

from bdv2.doctor.probe.snapshot import Dist
from bdv2.doctor.repair.installer import Installer, InstallerKind, detect, dry_run_moves
from bdv2.doctor.repair.model import Plan, RepairError, StepStatus, Target, TargetKind
from bdv2.doctor.repair.pipmove import Change, conda_owned, move_steps, moves, preview, shown_commands

from . import helpers

PIP_REPORT = {"version": "1", "install": [
    {"metadata": {"name": "numpy", "version": "2.4.6"}, "requested": True},
    {"metadata": {"name": "ml_dtypes", "version": "0.6.0"}, "requested": False},
]}
UV_DRY_RUN = """Resolved 2 packages in 3ms
Would uninstall 1 package
Would install 1 package
 - numpy==1.26.4
 + numpy==2.4.6
"""


class Recorder:
    def __init__(self, answers: dict[str, tuple[int, str]]) -> None:
        self.answers = answers
        self.calls: list[list[str]] = []

    def __call__(self, argv: Sequence[str]) -> tuple[int, str]:
        self.calls.append(list(argv))
        joined = " ".join(argv)
        return next((a for key, a in self.answers.items() if key in joined), (0, ""))


def uv_venv(tmp_path: Path) -> Path:
    (tmp_path / "bin").mkdir(parents=True)
    (tmp_path / "pyvenv.cfg").write_text("home = /usr/bin\nuv = 0.9.0\n")
    (tmp_path / "bin" / "uv").write_text("#!/bin/sh\n")
    return tmp_path


def test_a_uv_venv_gets_uv_pip_with_its_python(tmp_path: Path) -> None:
    prefix = uv_venv(tmp_path)
    inst = detect(str(prefix / "bin" / "python"), prefix, Recorder({"import pip": (1, "")}))
    assert inst.kind is InstallerKind.UV and inst.uv == str(prefix / "bin" / "uv")
    assert inst.install(["numpy==2.4.6"], "/c.txt", dry_run=True) == [
        inst.uv, "pip", "install", "--python", inst.python, "--dry-run", "-c", "/c.txt", "numpy==2.4.6"]
    assert inst.uninstall(["x"]) == [inst.uv, "pip", "uninstall", "--python", inst.python, "x"]


def test_pip_when_the_environment_has_it(tmp_path: Path) -> None:
    inst = detect("/venv/bin/python", tmp_path, Recorder({}))
    assert inst.kind is InstallerKind.PIP
    assert inst.install(["numpy==2.4.6"], "/c.txt", dry_run=True) == [
        "/venv/bin/python", "-m", "pip", "install", "--dry-run", "--report", "-", "-q", "-c", "/c.txt", "numpy==2.4.6"]


def test_neither_pip_nor_uv_is_one_clear_message(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("bdv2.doctor.repair.installer.find_uv", lambda prefix: "")
    with pytest.raises(RepairError) as err:
        detect("/venv/bin/python", tmp_path, Recorder({"import pip": (1, "No module named pip")}))
    msg = str(err.value)
    assert "/venv/bin/python has neither pip nor uv" in msg and "/venv/bin/python -m ensurepip" in msg
    assert "uv pip install --python /venv/bin/python" in msg


def test_the_dry_run_is_read_from_pips_report_and_uvs_lines() -> None:
    pip = Installer(InstallerKind.PIP, "py")
    assert dry_run_moves(pip, json.dumps(PIP_REPORT, indent=2) + "\nWARNING: x\n") == {
        "numpy": "2.4.6", "ml-dtypes": "0.6.0"}
    assert dry_run_moves(Installer(InstallerKind.UV, "py", "uv"), UV_DRY_RUN) == {"numpy": "2.4.6"}
    with pytest.raises(RepairError, match="no installation report"):
        dry_run_moves(pip, "ERROR: nothing")


def test_preview_shows_old_to_new_with_the_row_constraints(tmp_path: Path) -> None:
    snap = helpers.make_snap({"numpy": "1.26.4", "ml-dtypes": "0.6.0"})
    p = Plan(str(tmp_path / "bin" / "python"), pip=('python -m pip install "numpy==2.4.6"',), row="cpu-current",
             constraints="numpy==2.4.6\n")
    run = Recorder({"--dry-run": (0, json.dumps(PIP_REPORT))})
    pv = preview(p, Target(TargetKind.VENV, tmp_path, p.python), snap, run)
    assert [c.line() for c in pv.changes] == ["numpy: 1.26.4 -> 2.4.6"] and pv.conda_owned == ()
    dry = next(c for c in run.calls if "--dry-run" in c)
    assert dry[dry.index("-c") + 1].endswith("constraints-cpu-current.txt")
    steps = move_steps(p, pv.installer, run)
    assert [s.status for s in steps] == [StepStatus.APPLIED] and "-c" in run.calls[-1]
    assert "--dry-run" not in run.calls[-1]


def test_a_refused_resolution_changes_nothing(tmp_path: Path) -> None:
    p = Plan("/venv/bin/python", pip=('python -m pip install "numpy==9.9"',))
    run = Recorder({"--dry-run": (1, "ERROR: No matching distribution found for numpy==9.9")})
    with pytest.raises(RepairError, match=r"(?s)resolver refused the move.*No matching distribution"):
        preview(p, Target(TargetKind.VENV, tmp_path, p.python), helpers.make_snap({}), run)
    assert not any("--dry-run" not in c and "install" in c for c in run.calls)


def test_conda_owned_packages_are_named(tmp_path: Path) -> None:
    (tmp_path / "conda-meta").mkdir()
    (tmp_path / "conda-meta" / "scipy-1.11.0-py311h0.json").write_text("{}")
    snap = dataclasses.replace(helpers.make_snap({}), distributions=(
        Dist("numpy", "1.26.4", installer="conda"), Dist("scipy", "1.11.0"), Dist("jaxlib", "0.9.2", installer="pip")))
    changes = [Change("numpy", "1.26.4", "2.4.6"), Change("scipy", "1.11.0", "1.17.1"),
               Change("jaxlib", "0.9.2", "0.10.2")]
    assert [c.name for c in conda_owned(tmp_path, changes, snap)] == ["numpy", "scipy"]
    assert conda_owned(tmp_path / "elsewhere", changes, snap) == []  # no conda-meta: not a conda env


def test_moves_come_from_the_plans_commands() -> None:
    p = Plan("/p", pip=("python -m pip uninstall -y tensorflow", 'python -m pip install "a==1" "b>=2"'))
    assert [(m.kind.value, m.args) for m in moves(p)] == [("uninstall", ("tensorflow",)), ("install", ("a==1", "b>=2"))]


def test_the_plan_shows_the_moves_as_the_environments_installer_runs_them() -> None:
    p = Plan("/v/bin/python", pip=("python -m pip uninstall -y tfp-nightly", 'python -m pip install "numpy==2.4.6"'),
             row="cpu-current")
    uv = shown_commands(p, Installer(InstallerKind.UV, "/v/bin/python", "/usr/bin/uv"))
    assert uv == ["/usr/bin/uv pip uninstall --python /v/bin/python tfp-nightly",
                  "/usr/bin/uv pip install --python /v/bin/python -c cpu-current-constraints.txt numpy==2.4.6"]
    pip = shown_commands(p, Installer(InstallerKind.PIP, "/v/bin/python"))
    assert pip[1] == "/v/bin/python -m pip install -c cpu-current-constraints.txt numpy==2.4.6"
    assert not any("python -m pip" in c for c in uv)
