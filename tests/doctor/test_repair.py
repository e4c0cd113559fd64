"""--fix planning, env edits as data and as sh, owned files, journal and undo (no network, no pip)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

from bdv2.doctor.apply import apply, undo
from bdv2.doctor.envfile import BEGIN, END, apply_env, merge_flags, shell_lines
from bdv2.doctor.findings import Area, EnvOp, EnvOpKind, Finding, Fix, Severity
from bdv2.doctor.fixtypes import Plan, RepairError, StepStatus, Target, TargetKind
from bdv2.doctor.matrix import Matrix
from bdv2.doctor.plan import plan

from . import helpers

SET, UNSET, PREPEND, REMOVE = EnvOpKind.SET, EnvOpKind.UNSET, EnvOpKind.PREPEND, EnvOpKind.REMOVE
PIPLIB = "/venv/lib/python3.11/site-packages/nvidia/cudnn/lib"


def finding(fid: str, *ops: EnvOp, severity: Severity = Severity.WARNING, area: Area = Area.ENV) -> Finding:
    return Finding(fid, severity, area, fid, fix=Fix("fix it", env_ops=ops))


# -- plan ----------------------------------------------------------------------------------------

def test_plan_merges_xla_flags_with_the_users_and_never_adds_a_name_twice(matrix: Matrix) -> None:
    snap = helpers.make_snap({}, env={"XLA_FLAGS": "--xla_dump_to=/tmp/d"})
    findings = [
        finding("a", EnvOp(SET, "XLA_FLAGS", "--xla_gpu_force_compilation_parallelism=1")),
        finding("b", EnvOp(SET, "XLA_FLAGS", "--xla_gpu_force_compilation_parallelism=4 --xla_x=1")),
        finding("c", EnvOp(SET, "XLA_FLAGS", "--xla_dump_to=/tmp/d")),  # already there: nothing to do
    ]
    p = plan(findings, snap, matrix)
    assert p.env_ops == (EnvOp(SET, "XLA_FLAGS", "--xla_gpu_force_compilation_parallelism=1 --xla_x=1"),)
    assert p.because == ("a", "b")
    assert any("parallelism=4 not added" in n for n in p.notes)
    env = apply_env(p.env_ops, snap.env)
    assert env["XLA_FLAGS"] == "--xla_dump_to=/tmp/d --xla_gpu_force_compilation_parallelism=1 --xla_x=1"


def test_plan_keeps_order_dedupes_and_ignores_info(matrix: Matrix) -> None:
    pre = EnvOp(PREPEND, "LD_LIBRARY_PATH", PIPLIB)
    rm = EnvOp(REMOVE, "LD_LIBRARY_PATH", "/usr/local/cuda/lib64")
    findings = [
        finding("cuda-shadow", rm, pre, severity=Severity.ERROR, area=Area.CUDA),
        finding("again", pre),
        finding("tf-gpu", EnvOp(SET, "CUDA_VISIBLE_DEVICES", "")),
        finding("other-value", EnvOp(SET, "CUDA_VISIBLE_DEVICES", "0")),
        finding("note", EnvOp(SET, "JAX_PLATFORMS", "cpu"), severity=Severity.INFO),
    ]
    p = plan(findings, helpers.make_snap({}), matrix)
    assert p.env_ops == (rm, pre, EnvOp(SET, "CUDA_VISIBLE_DEVICES", ""))
    assert p.pip == ()
    assert not p.empty


def test_plan_pip_steps_only_with_a_package_error(matrix: Matrix) -> None:
    snap = helpers.make_snap({"jax": "0.10.2", "jaxlib": "0.9.2"})
    assert plan([finding("w", severity=Severity.WARNING, area=Area.PACKAGES)], snap, matrix).empty
    p = plan([finding("lockstep", severity=Severity.ERROR, area=Area.PACKAGES)], snap, matrix)
    assert p.pip == ('python -m pip install "jaxlib==0.10.2"',)
    assert p.row == "cpu-current"
    assert p.pip_argv() == [["/venv/bin/python", "-m", "pip", "install", "jaxlib==0.10.2"]]


def test_empty_plan(matrix: Matrix) -> None:
    assert plan([], helpers.make_snap({"jax": "0.10.2", "jaxlib": "0.10.2"}), matrix).empty


# -- apply_env and shell_lines -------------------------------------------------------------------

APPLY_CASES = [
    pytest.param([EnvOp(PREPEND, "LD_LIBRARY_PATH", "/a")], {}, {"LD_LIBRARY_PATH": "/a"}, id="prepend-unset"),
    pytest.param([EnvOp(PREPEND, "LD_LIBRARY_PATH", "/a")], {"LD_LIBRARY_PATH": "/b:/a/:/c"},
                 {"LD_LIBRARY_PATH": "/a:/b:/c"}, id="prepend-moves-to-front-once"),
    pytest.param([EnvOp(PREPEND, "P", "/a"), EnvOp(PREPEND, "P", "/a")], {"P": "/a"}, {"P": "/a"}, id="idempotent"),
    pytest.param([EnvOp(REMOVE, "LD_LIBRARY_PATH", "/usr/local/cuda/lib64")],
                 {"LD_LIBRARY_PATH": "/usr/local/cuda/lib64/::/x:/usr/local/cuda/lib64"},
                 {"LD_LIBRARY_PATH": "/x"}, id="remove-every-copy"),
    pytest.param([EnvOp(REMOVE, "LD_LIBRARY_PATH", "/x")], {"LD_LIBRARY_PATH": "/x"}, {}, id="remove-last-unsets"),
    pytest.param([EnvOp(REMOVE, "LD_LIBRARY_PATH", "/x")], {}, {}, id="remove-from-unset"),
    pytest.param([EnvOp(SET, "TF_CPP_MIN_LOG_LEVEL", "2")], {"TF_CPP_MIN_LOG_LEVEL": "0"},
                 {"TF_CPP_MIN_LOG_LEVEL": "2"}, id="set"),
    pytest.param([EnvOp(SET, "E", "")], {}, {"E": ""}, id="set-empty"),
    pytest.param([EnvOp(UNSET, "JAX_PLATFORMS")], {"JAX_PLATFORMS": "cpu"}, {}, id="unset"),
    pytest.param([EnvOp(SET, "XLA_FLAGS", "--a=1 --b")], {"XLA_FLAGS": "--a=2 --c=3"},
                 {"XLA_FLAGS": "--c=3 --a=1 --b"}, id="xla-merge"),
    pytest.param([EnvOp(REMOVE, "XLA_FLAGS", "--a")], {"XLA_FLAGS": "--a=2 --c=3"}, {"XLA_FLAGS": "--c=3"},
                 id="xla-remove-by-name"),
    pytest.param([EnvOp(SET, "V", "it's $HOME `x` \"q\"")], {}, {"V": "it's $HOME `x` \"q\""}, id="quoting"),
]


@pytest.mark.parametrize(("ops", "before", "after"), APPLY_CASES)
def test_apply_env(ops: list[EnvOp], before: dict[str, str], after: dict[str, str]) -> None:
    assert apply_env(ops, before) == after


def _sh_env(lines: list[str], before: dict[str, str], shell: str = "sh") -> dict[str, str]:
    """Run ``lines`` in a clean sh holding ``before`` and return the variables it exported afterwards."""
    script = "\n".join([*lines, "env -0"])
    base = {"PATH": os.environ["PATH"]}
    res = subprocess.run([shell, "-c", script], env={**base, **before}, capture_output=True, check=True)
    out = dict(kv.split("=", 1) for kv in res.stdout.decode().split("\0") if kv)
    return {k: v for k, v in out.items() if k not in base and k not in ("PWD", "SHLVL", "_", "OLDPWD")}


@pytest.mark.parametrize(("ops", "before", "after"), APPLY_CASES)
def test_shell_lines_do_what_apply_env_does(ops: list[EnvOp], before: dict[str, str], after: dict[str, str]) -> None:
    assert _sh_env(shell_lines(ops), before) == after
    # eval'd twice (a second `eval "$(...)"`, or a re-activation) changes nothing more
    assert _sh_env(shell_lines(ops) * 2, before) == after


def test_shell_lines_leave_no_helpers_behind() -> None:
    res = subprocess.run(["sh", "-c", "\n".join([*shell_lines([EnvOp(PREPEND, "P", "/a")]), "set"])],
                         capture_output=True, text=True, check=True)
    assert "_bdv2" not in res.stdout


def test_shell_lines_reject_bad_names() -> None:
    with pytest.raises(ValueError, match="not an environment variable name"):
        shell_lines([EnvOp(SET, "A;rm -rf /", "x")])


def test_merge_flags() -> None:
    assert merge_flags("", "--a=1") == "--a=1"
    assert merge_flags("--a=1 --b", "--a=1") == "--b --a=1"


# -- owned files, journal, undo ------------------------------------------------------------------

ACTIVATE = b"# venv activate\nVIRTUAL_ENV='/x'\nexport VIRTUAL_ENV\n"
OPS = (EnvOp(REMOVE, "LD_LIBRARY_PATH", "/usr/local/cuda/lib64"), EnvOp(PREPEND, "LD_LIBRARY_PATH", PIPLIB),
       EnvOp(SET, "XLA_FLAGS", "--xla_gpu_force_compilation_parallelism=1"))


def fake_venv(tmp_path: Path) -> Target:
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "activate").write_bytes(ACTIVATE)
    return Target(TargetKind.VENV, tmp_path, str(tmp_path / "bin" / "python"))


def tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_venv_fix_is_idempotent_and_undo_restores_bytes(tmp_path: Path) -> None:
    target = fake_venv(tmp_path)
    before = tree(tmp_path)
    p = Plan(python=target.python, env_ops=OPS)
    steps = apply(p, target, run_pip=False)
    assert [s.status for s in steps] == [StepStatus.APPLIED, StepStatus.APPLIED]
    activate = (tmp_path / "bin" / "activate").read_text()
    assert activate.startswith(ACTIVATE.decode()) and activate.count(BEGIN) == 1 and activate.count(END) == 1
    assert target.journal.exists()
    after_first = tree(tmp_path)

    steps = apply(p, target, run_pip=False)
    assert [s.status for s in steps] == [StepStatus.UNCHANGED, StepStatus.UNCHANGED]
    assert tree(tmp_path) == after_first

    # Sourcing activate applies the edits relative to the shell's current values.
    env = _sh_env([f". {tmp_path}/bin/activate"], {"LD_LIBRARY_PATH": "/usr/local/cuda/lib64:/opt/x",
                                                   "XLA_FLAGS": "--xla_dump_to=/d"})
    assert env["LD_LIBRARY_PATH"] == f"{PIPLIB}:/opt/x"
    assert env["XLA_FLAGS"] == "--xla_dump_to=/d --xla_gpu_force_compilation_parallelism=1"

    assert undo(target) is not None
    assert tree(tmp_path) == before
    assert not (tmp_path / ".bdv2").exists()
    assert undo(target) is None  # nothing left to undo


def test_second_fix_adds_ops_and_keeps_the_original_state(tmp_path: Path) -> None:
    target = fake_venv(tmp_path)
    before = tree(tmp_path)
    apply(Plan(target.python, env_ops=OPS[:1]), target, run_pip=False)
    apply(Plan(target.python, env_ops=OPS[1:]), target, run_pip=False)
    script = (tmp_path / "bin" / "bdv2-env.sh").read_text()
    assert "/usr/local/cuda/lib64" in script and PIPLIB in script
    undo(target)
    assert tree(tmp_path) == before


def test_conda_layout_activates_and_deactivates(tmp_path: Path) -> None:
    (tmp_path / "conda-meta").mkdir()
    target = Target(TargetKind.CONDA, tmp_path, str(tmp_path / "bin" / "python"))
    before = tree(tmp_path)
    apply(Plan(target.python, env_ops=(*OPS, EnvOp(UNSET, "JAX_PLATFORMS"))), target, run_pip=False)
    on = tmp_path / "etc" / "conda" / "activate.d" / "bdv2-env.sh"
    off = tmp_path / "etc" / "conda" / "deactivate.d" / "bdv2-env.sh"
    assert on.exists() and off.exists()
    start = {"LD_LIBRARY_PATH": "/usr/local/cuda/lib64", "JAX_PLATFORMS": "cpu"}
    assert _sh_env([f". {on}"], start) == {
        "LD_LIBRARY_PATH": PIPLIB, "XLA_FLAGS": "--xla_gpu_force_compilation_parallelism=1"}
    assert _sh_env([f". {on}", f". {off}"], start) == start
    undo(target)
    assert tree(tmp_path) == before
    assert not (tmp_path / "etc").exists()


def test_system_python_is_never_written(tmp_path: Path) -> None:
    target = Target(TargetKind.SYSTEM, tmp_path, "/usr/bin/python3")
    steps = apply(Plan(target.python, env_ops=OPS, pip=("python -m pip install x",)), target, True)
    assert {s.status for s in steps} == {StepStatus.SKIPPED}
    assert "--print-env" in steps[0].detail
    assert tree(tmp_path) == {}


class FakePip:
    """Stands in for `<python> -m pip`: keeps a package table and records each command."""

    def __init__(self, packages: dict[str, str]) -> None:
        self.packages = dict(packages)
        self.calls: list[list[str]] = []

    def __call__(self, argv: Sequence[str]) -> tuple[int, str]:
        argv = list(argv)
        self.calls.append(argv)
        verb, args = argv[3], [a for a in argv[4:] if not a.startswith("-")]
        if verb == "list":
            return 0, json.dumps([{"name": k, "version": v} for k, v in self.packages.items()])
        if verb == "install":
            for a in args:
                name, _, version = a.partition("==")
                self.packages[name] = version
        if verb == "uninstall":
            for a in args:
                self.packages.pop(a, None)
        return 0, ""


def test_pip_runs_only_when_asked_and_undo_restores_versions(tmp_path: Path) -> None:
    target = fake_venv(tmp_path)
    pip = FakePip({"jax": "0.10.2", "jaxlib": "0.9.2", "tensorflow": "2.21.0"})
    p = Plan(target.python, pip=("python -m pip uninstall -y tensorflow",
                                        'python -m pip install "jaxlib==0.10.2" "tensorflow-cpu==2.21.0"'))
    steps = apply(p, target, run_pip=False, run=pip)
    assert [s.status for s in steps] == [StepStatus.SKIPPED, StepStatus.SKIPPED] and pip.calls == []
    assert not target.journal.exists()  # nothing changed, nothing to undo

    steps = apply(p, target, run_pip=True, run=pip)
    assert [s.status for s in steps] == [StepStatus.APPLIED, StepStatus.APPLIED]
    assert pip.packages == {"jax": "0.10.2", "jaxlib": "0.10.2", "tensorflow-cpu": "2.21.0"}
    assert json.loads(target.journal.read_text())["packages"]["jaxlib"] == "0.9.2"

    undo(target, run=pip)
    assert pip.packages == {"jax": "0.10.2", "jaxlib": "0.9.2", "tensorflow": "2.21.0"}
    assert pip.calls[-2] == [target.python, "-m", "pip", "uninstall", "-y", "tensorflow-cpu"]
    assert pip.calls[-1] == [target.python, "-m", "pip", "install", "--no-deps", "jaxlib==0.9.2", "tensorflow==2.21.0"]
    assert not target.journal.exists()


def test_failed_undo_keeps_the_journal(tmp_path: Path) -> None:
    target = fake_venv(tmp_path)
    pip = FakePip({"jaxlib": "0.9.2"})
    apply(Plan(target.python, pip=('python -m pip install "jaxlib==0.10.2"',)), target, True, run=pip)

    def broken(argv: Sequence[str]) -> tuple[int, str]:
        return (1, "ERROR: no such version") if argv[3] == "install" else pip(argv)

    with pytest.raises(RepairError, match="journal is kept"):
        undo(target, run=broken)
    assert target.journal.exists()


# -- the CLI edges ---------------------------------------------------------------------------------

def _bdv2(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bdv2.cli", *args], capture_output=True, text=True, check=False)


def test_run_passes_on_the_exit_code_and_undo_without_journal(tmp_path: Path) -> None:
    assert _bdv2("run", "--", "sh", "-c", "exit 3").returncode == 3
    res = _bdv2("doctor", "--python", sys.prefix, "--undo")
    assert res.returncode == 0 and "nothing to undo" in res.stdout


def test_fix_usage_errors() -> None:
    assert _bdv2("doctor", "--fix", "--undo").returncode == 2
    assert _bdv2("doctor", "--fix", "--markdown").returncode == 2
