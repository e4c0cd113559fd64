"""Slow: every `pip install` the doctor prints for a real broken venv is one the resolver accepts there.

For each scenario of tests/doctor/broken_envs.py, `bdv2 doctor --deep --json` renders the fix commands of
every rule that fires (placeholders filled from that venv); the catalogue's signatures whose situation a
scenario holds add their commands (SIGNATURE_SITUATIONS). Each command is run as printed, with pip's
`--dry-run` added, in that venv: a command pip refuses (no such version, requirements that contradict
each other, a release for another Python) must never be printed.

Separately, the first remedy of each package error (what `--fix` uses when no known-good row fits) is put
through the plan's own check, `pipmove.checked` (every other installed package held at its version, and
no requirement broken that holds now), and the figures are printed.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from bdv2.doctor import load_matrix
from bdv2.doctor.probe.collect import collect
from bdv2.doctor.repair import pipmove
from bdv2.doctor.repair.apply import run_command
from bdv2.doctor.repair.model import Plan, Target

from . import broken_envs

pytestmark = pytest.mark.slow

SIGNATURE_SITUATIONS: dict[tuple[str, int], str] = {
    # (signature id, index of the command) -> the scenario that holds the situation the command is for
    ("sig-tensorstore-float8-e3m4", 0): "tensorstore-old-ml-dtypes",  # NumPy 2 stack
    ("sig-tensorstore-float8-e3m4", 1): "tensorstore-vs-tf",  # next to TensorFlow < 2.18
    ("sig-tfp-arg-specs", 0): "tfp-too-old-for-tf",
}


def venv(name: str) -> Path:
    try:
        return broken_envs.build(name)
    except broken_envs.IndexUnreachable as e:
        pytest.skip(f"cannot build scenario {name!r}: {e}")


def printed(python: Path, scenario: str) -> list[tuple[str, str]]:
    """(where it comes from, command) for every pip command the doctor prints for this venv."""
    res = subprocess.run([sys.executable, "-m", "bdv2.cli", "doctor", "--python", str(python), "--deep", "--json"],
                         capture_output=True, text=True, timeout=900, check=False)
    report = json.loads(res.stdout)
    out = [(f["id"], c) for f in report["findings"] if f["fix"] for c in f["fix"]["commands"]]
    for sig in load_matrix().signatures:
        out += [(sig.id, c) for i, c in enumerate(sig.commands) if SIGNATURE_SITUATIONS.get((sig.id, i)) == scenario]
    return [(src, c) for src, c in dict.fromkeys(out) if " pip install " in f" {c} "]


def dry_run(python: Path, cmd: str) -> tuple[int, str]:
    argv = shlex.split(cmd, comments=True)
    if argv[:2] == ["pip", "install"]:  # printed for the user's shell: the venv's own pip runs it here
        argv = ["python", "-m", *argv]
    assert argv[:4] == ["python", "-m", "pip", "install"], cmd
    argv = [str(python), "-m", "pip", "install", "--dry-run", "--disable-pip-version-check", *argv[4:]]
    res = subprocess.run(argv, capture_output=True, text=True, timeout=600, check=False, stdin=subprocess.DEVNULL)
    return res.returncode, pipmove.reason(res.stdout + res.stderr)


@pytest.mark.parametrize("scenario", list(broken_envs.SCENARIOS))
def test_every_printed_install_resolves(scenario: str) -> None:
    python = venv(scenario)
    cmds = printed(python, scenario)
    assert cmds, "the doctor printed no pip install for a broken venv"
    refused = []
    for src, cmd in cmds:
        if "$(" in cmd:
            continue  # needs the shell: checked by the signature tests' own examples
        code, why = dry_run(python, cmd)
        if code != 0:
            refused.append(f"{src}: {cmd}\n{why}")
    print(f"{scenario}: {len(cmds) - len(refused)}/{len(cmds)} printed installs accepted by the resolver")
    assert not refused, "\n\n".join(refused)
    # The findings' own first remedies, as --fix would check them when no row fits (figures only: a
    # refusal there is reported by --fix with the resolver's reason, and the row move is used instead).
    snap = collect(str(python))
    target = Target.of(snap)
    for src, cmd in cmds:
        if src == "nearest-row":
            continue  # a row's move is checked with the row's own constraints (pipmove.preview)
        cmd = cmd if cmd.startswith("python ") else f"python -m {cmd}"
        got = pipmove.checked(Plan(str(python), pip=(cmd,), row="own-fixes", own_fixes=(src,)), target, snap,
                              run_command)
        print(f"  held check {'ok' if got.pip else 'refused'}: {src}: {cmd}"
              + ("" if got.pip else f"\n    {got.notes[-1][:400]}"))
