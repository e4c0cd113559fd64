"""The examined environment's own installer: pip inside it, or uv for a venv made by `uv venv`.

Version moves go through the installer's resolver: a dry run first (pip's installation report,
https://pip.pypa.io/en/stable/reference/installation-report/ ; uv's `--dry-run` lines), then the real
install, both with the row's constraints file (`-c`). A venv made by `uv venv` has no pip inside; uv acts
on it with `uv pip install --python <exe>` (https://docs.astral.sh/uv/pip/environments/).
"""

from __future__ import annotations

import enum
import json
import re
import shutil
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import assert_never

from ..probe.snapshot import normalise
from .model import RepairError

Runner = Callable[[Sequence[str]], tuple[int, str]]


class InstallerKind(enum.Enum):
    PIP = "pip"
    UV = "uv"


@dataclass(frozen=True)
class Installer:
    kind: InstallerKind
    python: str
    uv: str = ""
    """The uv executable (InstallerKind.UV only)."""

    def _base(self, verb: str) -> list[str]:
        match self.kind:
            case InstallerKind.PIP:
                return [self.python, "-m", "pip", verb]
            case InstallerKind.UV:
                return [self.uv, "pip", verb, "--python", self.python]
            case _:
                assert_never(self.kind)

    def install(self, args: Sequence[str], constraints: str = "", dry_run: bool = False,
                no_deps: bool = False) -> list[str]:
        argv = self._base("install")
        if dry_run:
            # pip: the report as JSON on stdout, nothing else there (-q); uv prints its plan as text.
            argv += ["--dry-run", "--report", "-", "-q"] if self.kind is InstallerKind.PIP else ["--dry-run"]
        if no_deps:
            argv.append("--no-deps")
        if constraints:
            argv += ["-c", constraints]
        return argv + list(args)

    def uninstall(self, names: Sequence[str]) -> list[str]:
        return self._base("uninstall") + (["-y"] if self.kind is InstallerKind.PIP else []) + list(names)

    def list_json(self) -> list[str]:
        extra = ["--disable-pip-version-check"] if self.kind is InstallerKind.PIP else []
        return [*self._base("list"), "--format=json", *extra]

    @property
    def name(self) -> str:
        return f"{self.kind.value} ({self.uv})" if self.kind is InstallerKind.UV else f"pip ({self.python} -m pip)"


def find_uv(prefix: Path) -> str:
    """uv in the environment, on PATH, beside the doctor's interpreter, or as the `uv` Python package."""
    for cand in (prefix / "bin" / "uv", shutil.which("uv"), Path(sys.executable).parent / "uv"):
        if cand and Path(cand).is_file():
            return str(cand)
    try:
        from uv import find_uv_bin  # the PyPI `uv` package ships the binary and this helper

        return str(find_uv_bin())
    except (ImportError, FileNotFoundError):
        return ""


def made_by_uv(prefix: Path) -> bool:
    """`uv venv` writes a `uv = <version>` line into pyvenv.cfg."""
    try:
        text = (prefix / "pyvenv.cfg").read_text()
    except OSError:
        return False
    return re.search(r"^uv\s*=", text, re.M) is not None


def detect(python: str, prefix: Path, run: Runner) -> Installer:
    """pip when the environment has it (uv first for a venv uv made), else uv; RepairError when neither."""
    uv = find_uv(prefix)
    if uv and made_by_uv(prefix):
        return Installer(InstallerKind.UV, python, uv)
    code, _ = run([python, "-I", "-c", "import pip"])
    if code == 0:
        return Installer(InstallerKind.PIP, python)
    if uv:
        return Installer(InstallerKind.UV, python, uv)
    raise RepairError(
        f"{python} has neither pip nor uv, so bdv2 cannot move its packages. Add pip with "
        f"`{python} -m ensurepip --upgrade`, or install uv (`pip install uv` in any environment, or "
        "https://docs.astral.sh/uv/getting-started/installation/) and bdv2 will use "
        f"`uv pip install --python {python}`")


def installed_versions(inst: Installer, run: Runner) -> dict[str, str]:
    """Exact versions of every distribution in the target, as its installer lists them."""
    argv = inst.list_json()
    code, out = run(argv)
    if code != 0:
        raise RepairError(f"`{' '.join(argv)}` failed (exit {code}): {tail(out)}")
    try:
        # Warnings may follow the JSON line; the JSON is the line that starts with '['.
        line = next(x for x in out.splitlines() if x.startswith("["))
        return {d["name"]: d["version"] for d in json.loads(line)}
    except (StopIteration, ValueError, KeyError, TypeError) as e:
        raise RepairError(f"`{' '.join(argv)}` printed no package list") from e


def dry_run_moves(inst: Installer, out: str) -> dict[str, str]:
    """name -> version the dry run would install, from pip's report or uv's `+ name==version` lines."""
    match inst.kind:
        case InstallerKind.PIP:
            start = out.find("{")
            if start < 0:
                raise RepairError(f"pip printed no installation report: {tail(out)}")
            try:
                report, _ = json.JSONDecoder().raw_decode(out[start:])
                return {normalise(item["metadata"]["name"]): str(item["metadata"]["version"])
                        for item in report.get("install", [])}
            except (ValueError, KeyError, TypeError, AttributeError) as e:
                raise RepairError(f"pip's installation report could not be read: {e}") from e
        case InstallerKind.UV:
            return {normalise(m[1]): m[2] for m in re.finditer(r"^\s*\+\s+([A-Za-z0-9_.\-]+)==(\S+)", out, re.M)}
        case _:
            assert_never(inst.kind)


def dry_run_dists(inst: Installer, out: str) -> dict[str, tuple[str, tuple[str, ...]]]:
    """name -> (version, Requires-Dist) the dry run would install; uv prints no requirements (empty)."""
    if inst.kind is InstallerKind.UV:
        return {n: (v, ()) for n, v in dry_run_moves(inst, out).items()}
    start = out.find("{")
    try:
        report, _ = json.JSONDecoder().raw_decode(out[start:]) if start >= 0 else ({}, 0)
        return {normalise(i["metadata"]["name"]): (str(i["metadata"]["version"]),
                                                   tuple(i["metadata"].get("requires_dist") or ()))
                for i in report.get("install", [])}
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise RepairError(f"pip's installation report could not be read: {e}") from e


def tail(text: str, n: int = 8) -> str:
    """The last ``n`` lines of a command's output, for a step's evidence."""
    return "\n".join(text.strip().splitlines()[-n:])
