"""Fill a Snapshot from a live interpreter: the doctor's own, or another one given by --python.

Nothing here imports jax, TensorFlow or any CUDA library: the facts come from package metadata
and the file system, read by the stdlib-only ``probe_script``.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import functools
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..errors import CollectError
from . import script as probe_script
from .snapshot import Interpreter, Snapshot
from .system import Runner, SystemCommands, collect_system, nvml_python, run_command, system_commands

PROBE_TIMEOUT_S = 60.0


def resolve_python(python: str) -> str:
    """Accept an interpreter path, a venv/conda prefix, or a command name on PATH."""
    p = Path(python).expanduser()
    if p.is_dir():
        for cand in (p / "bin" / "python", p / "bin" / "python3", p / "python.exe"):
            if cand.exists():
                return str(cand)
        raise CollectError(f"--python {python}: a folder, but no bin/python inside it")
    if p.exists():
        return str(p)
    found = shutil.which(python)
    if found:
        return found
    raise CollectError(f"--python {python}: no such interpreter (give a path to python or to a venv)")


def probe_interpreter(python: str | None, timeout: float = PROBE_TIMEOUT_S,
                      env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Run the stdlib probe in ``python`` (None: this interpreter) and return its facts.

    With ``env`` the probe runs in a child process started with exactly that environment, so every
    environment-derived fact (library folders on LD_LIBRARY_PATH, tools on PATH) is read as such a process sees it.
    """
    # Only the doctor's own interpreter is probed in-process. A venv's bin/python is a symlink to the
    # base interpreter, so comparing resolved paths would mistake every sibling venv for this one.
    if python is None and env is None:
        return probe_script.probe(plain=True)
    exe = resolve_python(python) if python is not None else sys.executable
    cmd = [exe, "-I", probe_script.__file__]  # -I: ignore PYTHON* env and the user's cwd
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False,
                             env=None if env is None else dict(env))
    except subprocess.TimeoutExpired as e:
        raise CollectError(f"--python {exe}: the metadata probe did not finish in {timeout:.0f}s") from e
    except OSError as e:
        raise CollectError(f"--python {exe}: cannot run it ({e.strerror})") from e
    if res.returncode != 0:
        tail = "\n".join(res.stderr.strip().splitlines()[-5:])
        raise CollectError(f"--python {exe}: the metadata probe failed (exit {res.returncode}):\n{tail}")
    try:
        data = json.loads(res.stdout)
    except json.JSONDecodeError as e:
        raise CollectError(f"--python {exe}: the probe printed something that is not JSON ({e.msg})") from e
    if not isinstance(data, dict):
        raise CollectError(f"--python {exe}: the probe printed no JSON object")
    return data


def interpreter(python: str | None, timeout: float = PROBE_TIMEOUT_S) -> Interpreter:
    """The examined interpreter alone (the metadata probe, no system facts): what --undo acts on."""
    return Interpreter.from_facts(dict(probe_interpreter(python, timeout=timeout).get("python", {})))


def collect(python: str | None = None, timeout: float = PROBE_TIMEOUT_S, root: Path | None = None,
            runner: Runner | None = None, env: Mapping[str, str] | None = None) -> Snapshot:
    """Build the static Snapshot of the target interpreter: metadata, env, CUDA libraries, driver, tools.

    ``env``: the environment of the process being examined (default: this one's); the probe and the system
    tools run with it. ``root`` stands for '/' when reading /proc and /usr/local/cuda (default:
    $BDV2_SYSROOT of that environment, or '/', a testing aid for fake system trees).
    """
    environ = os.environ if env is None else env
    root = root or Path(environ.get("BDV2_SYSROOT", "/"))
    if runner is None:
        runner = run_command if env is None else functools.partial(run_command, env=env)
    commands: SystemCommands | None = None
    if python is None and env is None:
        # The examined process is this one: the environment and site folders the system's commands read are
        # known before the metadata is, so those commands (each a wait on a subprocess) run while it is read.
        commands = system_commands(probe_script.environment(), runner, root,
                                   _nvml(sys.executable, probe_script.site_dirs()))
    data = probe_interpreter(python, timeout=timeout, env=env)
    jaxlib: dict[str, Any] = next(
        (d for d in data.get("distributions", []) if d.get("name", "").lower() == "jaxlib"), {})
    target_py = str(data.get("python", {}).get("executable", ""))
    system = collect_system(data.get("env", {}), list(data.get("site_dirs", [])),
                            jaxlib.get("location", ""), runner=runner, root=root,
                            nvml=_nvml(target_py, list(data.get("site_dirs", []))), commands=commands)
    data["collected_at"] = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
    return dataclasses.replace(Snapshot.from_dict(data), system=system)


def _nvml(target_py: str, site_dirs: list[str]) -> str | None:
    """NVML through whichever interpreter has nvidia-ml-py: the examined one, else the doctor's own."""
    own_sites = [p for p in sys.path if p.endswith(("site-packages", "dist-packages"))]
    return nvml_python([(target_py, d) for d in site_dirs] + [(sys.executable, d) for d in own_sites])
