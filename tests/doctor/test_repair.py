"""--fix planning, env edits as data and as sh, owned files, journal and undo (no network, no pip)."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

from bdv2.doctor.findings import Area, EnvOp, EnvOpKind, Finding, Fix, Severity
from bdv2.doctor.matrix import Matrix
from bdv2.doctor.repair import pipmove
from bdv2.doctor.repair.apply import apply, undo
from bdv2.doctor.repair.envfile import BEGIN, END, apply_env, merge_flags, shell_lines
from bdv2.doctor.repair.model import Plan, RepairError, StepStatus, Target, TargetKind
from bdv2.doctor.repair.plan import OWN_FIXES, plan

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


# -- plans from the findings' own fixes (no known-good row fits) ---------------------------------------

def pkg_error(fid: str, *commands: str) -> Finding:
    return Finding(fid, Severity.ERROR, Area.PACKAGES, fid, fix=Fix("fix it", commands=commands))


def test_own_fixes_when_no_row_fits(matrix: Matrix) -> None:
    no_rows = dataclasses.replace(matrix, rows=())
    snap = helpers.make_snap({"tensorflow-cpu": "2.15.1", "numpy": "2.1.3", "jax": "0.4.23", "jaxlib": "0.4.23"})
    findings = [pkg_error("tensorflow-numpy2", 'python -m pip install "numpy<2"'),
                pkg_error("jaxlib-numpy2", 'python -m pip install "numpy<1.27"   # same package: the first wins'),
                pkg_error("two-ways", 'python -m pip install "jax==0.4.25" "jaxlib==0.4.25"',
                          'python -m pip install "jax==0.4.20"   # alternative: never taken')]
    p = plan(findings, snap, no_rows)
    assert p.pip == ('python -m pip install "numpy<2" "jax==0.4.25" "jaxlib==0.4.25"',)
    assert p.row == OWN_FIXES and p.own_fixes == ("tensorflow-numpy2", "two-ways")
    assert any("no known-good row" in n for n in p.notes)
    # With rows, the nearest row's move stays the plan.
    assert plan(findings, snap, matrix).own_fixes == ()


def test_tfp_and_tfp_nightly_are_both_removed_then_the_fitting_one_installed(matrix: Matrix) -> None:
    both = {"tensorflow-probability": "0.25.0", "tfp-nightly": "0.26.0.dev20261027", "jax": "0.10.2"}
    f = pkg_error("tfp-and-tfp-nightly", "python -m pip uninstall -y tensorflow-probability tfp-nightly")
    p = plan([f], helpers.make_snap({**both, "distrax": "0.1.9"}), matrix)
    assert p.pip == ("python -m pip uninstall -y tensorflow-probability tfp-nightly",
                     'python -m pip install "tfp-nightly==0.26.0.dev20261027"')
    assert p.own_fixes == ("tfp-and-tfp-nightly",)
    # Next to TF 2.15 (no distrax >= 0.1.7), the TFP release made for that TF.
    p = plan([f], helpers.make_snap({**both, "jax": "0.4.25", "tensorflow-cpu": "2.15.1"}), matrix)
    assert p.pip[-1] == 'python -m pip install "tensorflow-probability==0.23.0"'


def test_tensorstore_moves_below_the_ml_dtypes_05_release(matrix: Matrix) -> None:
    f = pkg_error("tensorstore-vs-tensorflow-ml-dtypes", 'python -m pip install "tensorstore<0.1.75"')
    snap = helpers.make_snap({"tensorflow-cpu": "2.15.1", "tensorstore": "0.1.86", "orbax-checkpoint": "0.12.8"})
    p = plan([f], snap, matrix)
    assert p.pip == ('python -m pip install "tensorstore<0.1.75" "orbax-checkpoint<0.11.40"',)
    p = plan([f], helpers.make_snap({"tensorflow-cpu": "2.15.1", "tensorstore": "0.1.86"}), matrix)
    assert p.pip == ('python -m pip install "tensorstore<0.1.75"',)


class Resolver:
    """Stands in for `pip install --dry-run --report -`: refuses when ``refuse`` is set, else installs ``result``."""

    def __init__(self, result: dict[str, str], refuse: str = "") -> None:
        self.result, self.refuse = result, refuse
        self.calls: list[list[str]] = []
        self.constraints = ""

    def __call__(self, argv: Sequence[str]) -> tuple[int, str]:
        argv = list(argv)
        self.calls.append(argv)
        if argv[1:3] == ["-I", "-c"]:
            return 0, ""  # `import pip` works
        if "-c" in argv:
            self.constraints = Path(argv[argv.index("-c") + 1]).read_text()
        if self.refuse:
            return 1, f"Collecting jax\nERROR: Cannot install jax>=0.10.0 because {self.refuse}\n"
        report = {"install": [{"metadata": {"name": n, "version": v}} for n, v in self.result.items()]}
        return 0, json.dumps(report)


def test_own_fixes_are_checked_by_the_resolver_with_the_rest_held(tmp_path: Path) -> None:
    target = fake_venv(tmp_path)
    snap = helpers.make_snap({"flax": "0.12.8", "jax": "0.6.2", "jaxlib": "0.6.2", "numpy": "2.1.3"})
    p = Plan(target.python, pip=('python -m pip install "jax>=0.10.0"',), row=OWN_FIXES, own_fixes=("requires-dist",))
    ok = Resolver({"jax": "0.10.2", "jaxlib": "0.10.2"})
    got = pipmove.checked(p, target, snap, ok)
    # Held: everything not moved; jaxlib moves with jax (lockstep), so it is free too.
    assert got.constraints == "flax==0.12.8\nnumpy==2.1.3\n" == ok.constraints
    assert got.pip == p.pip and got.changes == ("jax: 0.6.2 -> 0.10.2", "jaxlib: 0.6.2 -> 0.10.2")
    no = Resolver({}, refuse="the user requested numpy==2.1.3 and jax 0.10.2 depends on numpy>=2.2")
    got = pipmove.checked(p, target, snap, no)
    assert got.pip == () and got.row == ""
    assert any("not proposing" in n and "depends on numpy>=2.2" in n for n in got.notes), got.notes


def test_own_fixes_that_would_break_another_package_are_not_proposed(tmp_path: Path) -> None:
    # pip's resolver does not look at installed packages outside the request; the plan does.
    target = fake_venv(tmp_path)
    snap = helpers.make_snap({"flax": "0.12.8", "optax": "0.1.5", "jax": "0.6.2", "jaxlib": "0.6.2"},
                             requires={"flax": ["jax>=0.10.0"], "optax": ["jax<0.8", "pytest; extra == 'test'"]})
    p = Plan(target.python, pip=('python -m pip install "jax>=0.10.0"',), row=OWN_FIXES, own_fixes=("requires-dist",))
    got = pipmove.checked(p, target, snap, Resolver({"jax": "0.10.2", "jaxlib": "0.10.2"}))
    assert got.pip == ()
    assert any("optax 0.1.5 requires jax<0.8, but 0.10.2 is installed" in n for n in got.notes), got.notes


def test_errors_the_row_move_leaves_alone_add_their_own_fixes(matrix: Matrix) -> None:
    snap = helpers.make_snap({"jax": "0.5.3", "jaxlib": "0.5.3", "orbax-checkpoint": "0.12.8"})
    jax = dataclasses.replace(pkg_error("requires-dist", 'python -m pip install "jax>=0.6.0"'),
                              packages=("orbax-checkpoint", "jax"))
    psutil = dataclasses.replace(pkg_error("requires-dist", 'python -m pip install "psutil"'),
                                 packages=("orbax-checkpoint", "psutil"))
    p = plan([jax, psutil], snap, matrix)
    assert p.row == "cpu-current" and "jax==0.10.2" in p.pip[0]
    assert p.pip[-1] == 'python -m pip install "psutil"'
    assert any("leaves requires-dist" in n for n in p.notes), p.notes


def test_a_special_move_takes_over_the_requirements_it_settles(matrix: Matrix) -> None:
    snap = helpers.make_snap({"tensorflow-cpu": "2.15.1", "tensorstore": "0.1.86", "ml-dtypes": "0.3.2"})
    pip_says = dataclasses.replace(pkg_error("requires-dist", 'python -m pip install "ml_dtypes>=0.5.0"'),
                                   packages=("tensorstore", "ml_dtypes"))
    special = pkg_error("tensorstore-vs-tensorflow-ml-dtypes", 'python -m pip install "tensorstore<0.1.75"')
    p = plan([pip_says, special], snap, matrix)
    assert p.pip == ('python -m pip install "tensorstore<0.1.75"',)
    assert p.own_fixes == ("tensorstore-vs-tensorflow-ml-dtypes",)


def test_a_repair_is_done_only_when_the_runtime_probes_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    """After --fix changed the environment, the probes run even without --deep; a probe that still fails (the
    orbax probe beside tensorstore and an old ml-dtypes) keeps the verdict at "problems remain" and "now healthy"
    is not printed."""
    import io

    from rich.console import Console

    from bdv2.doctor import load_matrix
    from bdv2.doctor.probe.snapshot import ProbeResult, ProbeStatus
    from bdv2.doctor.repair import flow as fixflow
    from bdv2.doctor.repair.model import Plan, Step
    from bdv2.doctor.report import render_recheck

    from .helpers import make_snap

    matrix = load_matrix()
    before = make_snap({"tensorstore": "0.1.80", "ml-dtypes": "0.4.1", "orbax-checkpoint": "0.11.0"})
    before_findings = fixflow.diagnose(before, matrix)
    assert "tensorstore-ml-dtypes-float8" in {f.id for f in before_findings}
    after = make_snap({"tensorstore": "0.1.80", "ml-dtypes": "0.5.3", "orbax-checkpoint": "0.11.0"})
    ran: list[str] = []

    def probes(snap, python, timeout=120.0, probes=fixflow.PROBES, env=None):  # type: ignore[no-untyped-def]
        ran.append(python)
        return (ProbeResult("tensorstore-orbax", ProbeStatus.FAILED,
                            error="ImportError: initialization failed"),)

    monkeypatch.setattr(fixflow._apply, "apply", lambda p, t, run_pip, skip_reason="": [
        Step('python -m pip install "ml-dtypes>=0.5.0"', StepStatus.APPLIED)])
    monkeypatch.setattr(fixflow, "collect", lambda python=None, env=None: after)
    monkeypatch.setattr(fixflow, "run_probes", probes)
    plan = Plan(python="/env/bin/python", pip=('python -m pip install "ml-dtypes>=0.5.0"',))
    result = fixflow.carry_out(plan, Target.of(before), before, before_findings, matrix, run_pip=True, deep=False,
                               timeout=60)
    assert ran == ["/env/bin/python"], "the probes ran although --deep was not given"
    assert result.recheck.probes_failing == ("tensorstore-orbax",)
    out = io.StringIO()
    render_recheck(result.recheck, Console(file=out, width=200))
    assert "now healthy" not in out.getvalue() and "problems remain" in out.getvalue()
    assert "tensorstore-orbax" in out.getvalue()
