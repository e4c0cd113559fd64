"""Real broken virtual environments for the doctor's slow integration tests.

Each scenario is a named list of pip steps that reproduces an environment a researcher really ends
up with: a normal resolve first, then the one forced install (`--no-deps`, `-U x`) that breaks it.
Environments are cached under ``$BDV2_TEST_ENVS`` (default ``~/.cache/bdv2-test-envs``) as
``<name>/``, and reused while the marker file inside records exactly the same steps and base
interpreter; a changed scenario is rebuilt. A build happens in ``<name>.partial`` and is renamed
into place only when every step succeeded, so an interrupted build never looks finished.

By hand:  python tests/doctor/broken_envs.py tfp-vs-tf jax-jaxlib-mismatch   (no name: every scenario)
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

Step = tuple[str, ...]
"""The arguments of one `python -m pip` call."""

MARKER = ".bdv2-scenario.json"

SCENARIOS: dict[str, tuple[Step, ...]] = {
    # TFP 0.25 declares no TensorFlow requirement outside its [tf] extra, so pip happily pairs it with
    # TF 2.15; its import-time check wants TF >= 2.18. tf-keras goes in with --no-deps: 2.15.1 requires
    # the full `tensorflow` wheel (not tensorflow-cpu), and the doctor skips TFP >= 0.24's TF-substrate
    # probe without tf-keras, so without it the runtime failure would not be exercised.
    "tfp-vs-tf": (
        ("install", "tensorflow-cpu==2.15.1", "tensorflow-probability==0.25.0"),
        ("install", "--no-deps", "tf-keras==2.15.1"),
    ),
    # tensorstore >= 0.1.75 uses ml_dtypes.float8_e3m4 (ml-dtypes >= 0.5); pinning ml-dtypes back for
    # TensorFlow's sake leaves tensorstore unimportable.
    "tensorstore-old-ml-dtypes": (
        ("install", "tensorstore==0.1.86"),
        ("install", "--no-deps", "ml-dtypes==0.4.1"),
    ),
    # jax and jaxlib move in lockstep; a jaxlib forced back a release makes `import jax` raise.
    "jax-jaxlib-mismatch": (
        ("install", "jax==0.10.2"),
        ("install", "--no-deps", "jaxlib==0.9.2"),
    ),
    # TF 2.15 is compiled against NumPy 1.x (and declares numpy<2); NumPy 2 forced in breaks it.
    "tf215-numpy2": (
        ("install", "tensorflow-cpu==2.15.1"),
        ("install", "--no-deps", "numpy==2.1.3"),
    ),
    # jax <= 0.4.23 wraps scipy.linalg.tril/triu, which SciPy 1.13 removed; pip sees no conflict.
    "jax0413-scipy113": (
        ("install", "jax==0.4.13", "jaxlib==0.4.13", "numpy<2", "scipy==1.13.1", "ml-dtypes==0.3.2"),
    ),
    # A working jax 0.6.2 + flax stack, then flax forced to a release that needs jax >= 0.10. flax's
    # other dependencies come from the first resolve so that jax is the only thing flax lacks.
    "flax-newer-than-jax": (
        ("install", "jax==0.6.2", "jaxlib==0.6.2", "flax==0.10.7"),
        ("install", "--no-deps", "flax==0.12.8"),
    ),
    # The fork's set-up guide's steps as far as they run on a CPU machine from
    # PyPI alone. TF 2.15.1 comes first: the fork's requirements installed it before the guide's fixes.
    # Step 1's CUDA jaxlib lives on Google's index, so the CPU jaxlib stands in for it. Step 3 is pinned
    # to the 0.5.3 the guide says it used (`>=0.5.0` would resolve 0.6.0, which drags numpy 2 in);
    # `-U ml-dtypes==0.5.3` upgrades only ml-dtypes (numpy stays 1.26). Step 5, the NVIDIA wheels, is
    # left out: measured with `pip download --no-deps`, the six wheels weigh 1.4 GB (cuDNN 8.9 alone
    # 705 MB, cuBLAS 12.2 418 MB), too much for a test; so `nvidia-wheels-cpu-jaxlib` is not exercised.
    "seed-pins": (
        ("install", "tensorflow-cpu==2.15.1"),
        ("install", "-U", "jax==0.4.13", "jaxlib==0.4.13"),
        ("install", "scipy>=1.10,<1.12"),
        ("install", "-U", "ml-dtypes==0.5.3"),
        ("install", "-U", "tensorflow-probability==0.22.1"),
    ),
    # distrax >= 0.1.7 brings tfp-nightly; naming tensorflow-probability as well installs a second
    # distribution that writes the same tensorflow_probability/ files (pip and `pip check` see nothing).
    "tfp-and-tfp-nightly": (
        ("install", "jax==0.10.2", "jaxlib==0.10.2", "distrax==0.1.9", "tfp-nightly==0.26.0.dev20261027"),
        ("install", "tensorflow-probability==0.25.0"),
    ),
    # TF 2.15 holds ml-dtypes at 0.3.x; tensorstore 0.1.86 (forced in, as an unpinned orbax upgrade
    # does) needs ml-dtypes >= 0.5. tensorstore 0.1.74 is the last whose wheel accepts ml_dtypes 0.3.1.
    "tensorstore-vs-tf": (
        ("install", "tensorflow-cpu==2.15.1", "tensorstore==0.1.74"),
        ("install", "--no-deps", "tensorstore==0.1.86"),
    ),
    # `pip install -U "ml-dtypes>=0.5.0"` next to TF 2.15: ml-dtypes 0.6 requires numpy >= 2, so pip
    # upgrades numpy too and exits 0 with a conflict warning; TF 2.15 then cannot import.
    "tf215-ml-dtypes-upgrade": (
        ("install", "tensorflow-cpu==2.15.1"),
        ("install", "-U", "ml-dtypes>=0.5.0"),
    ),
    # jaxlib < 0.4.26 is built against NumPy 1.x; NumPy 2 forced in breaks `import jax`.
    "jaxlib-numpy2": (
        ("install", "jax==0.4.23", "jaxlib==0.4.23", "numpy<2", "scipy<1.13"),
        ("install", "--no-deps", "numpy==2.1.3"),
    ),
    # orbax-checkpoint 0.12.8 (jax >= 0.6, tensorstore >= 0.1.84 and new dependencies) forced onto a
    # jax 0.5.3 stack whose orbax came from a normal resolve.
    "orbax-newer-than-jax": (
        ("install", "jax==0.5.3", "jaxlib==0.5.3", "orbax-checkpoint==0.11.20"),
        ("install", "--no-deps", "orbax-checkpoint==0.12.8"),
    ),
    # TFP 0.21 copies TF ops' old signatures; with TF 2.15 its import raises 'Arg specs do not match'.
    # pip resolves it: TFP declares no TensorFlow requirement.
    "tfp-too-old-for-tf": (
        ("install", "tensorflow-cpu==2.15.1", "tensorflow-probability==0.21.0"),
    ),
    # The old cure for "Descriptors cannot be created directly", protobuf 3.20.3, forced under TF 2.21, whose
    # generated *_pb2 modules need the protobuf >= 6.31.1 it declares.
    "protobuf-too-old-for-tf": (
        ("install", "tensorflow-cpu==2.21.0"),
        ("install", "--no-deps", "protobuf==3.20.3"),
    ),
    # chex <= 0.1.82 uses jax APIs removed by jax 0.4.24; its metadata accepts any jax >= 0.4.6.
    "chex-older-than-jax": (
        ("install", "jax==0.4.25", "jaxlib==0.4.25", "chex==0.1.82", "numpy<2"),
    ),
}

# pip's wording when it cannot reach an index (urllib3 retries, DNS, proxy, TLS): such a failure says
# nothing about the doctor, so the tests skip on it instead of failing.
_NETWORK_WORDS = (
    "NewConnectionError", "Max retries exceeded", "Temporary failure in name resolution",
    "Network is unreachable", "Connection refused", "ConnectTimeoutError", "ReadTimeoutError",
    "ProxyError", "SSLError", "connection broken by", "Name or service not known",
)


class BuildError(RuntimeError):
    """A pip step failed for a reason other than the network: the scenario itself is wrong."""


class IndexUnreachable(BuildError):
    """pip could not reach the package index."""


def cache_root() -> Path:
    return Path(os.environ.get("BDV2_TEST_ENVS") or Path.home() / ".cache" / "bdv2-test-envs").expanduser()


def venv_python(env: Path) -> Path:
    return env / "bin" / "python"


def _wanted(name: str, base_python: str) -> dict[str, object]:
    # The base interpreter is part of the identity: a venv made from another Python is another env.
    return {"name": name, "base_python": os.path.realpath(base_python),
            "steps": [list(s) for s in SCENARIOS[name]]}


def is_built(name: str, root: Path | None = None, base_python: str = sys.executable) -> bool:
    env = (root or cache_root()) / name
    try:
        return json.loads((env / MARKER).read_text()) == _wanted(name, base_python)
    except (OSError, ValueError):
        return False


@contextmanager
def _lock(path: Path) -> Iterator[None]:
    # Two pytest workers (or a test and a hand build) must not build the same env at once.
    with path.open("w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _run_pip(python: Path, step: Step, log: Callable[[str], None]) -> None:
    cmd = [str(python), "-m", "pip", "--disable-pip-version-check", *step]
    log("$ pip " + " ".join(step))
    res = subprocess.run(cmd, capture_output=True, text=True, check=False, stdin=subprocess.DEVNULL)
    if res.returncode == 0:
        return
    output = res.stdout + res.stderr
    tail = "\n".join(output.strip().splitlines()[-25:])
    if any(w in output for w in _NETWORK_WORDS):
        raise IndexUnreachable(f"pip {' '.join(step)}: the package index is unreachable\n{tail}")
    raise BuildError(f"pip {' '.join(step)} failed (exit {res.returncode})\n{tail}")


def build(name: str, root: Path | None = None, base_python: str = sys.executable,
          log: Callable[[str], None] = lambda _msg: None) -> Path:
    """Build scenario ``name`` (or reuse the cached one) and return its venv's python."""
    if name not in SCENARIOS:
        raise KeyError(f"unknown scenario {name!r}; known: {', '.join(SCENARIOS)}")
    root = root or cache_root()
    root.mkdir(parents=True, exist_ok=True)
    final, partial = root / name, root / f"{name}.partial"
    with _lock(root / f"{name}.lock"):
        if is_built(name, root, base_python):
            log(f"{name}: reusing {final}")
            return venv_python(final)
        # A failed build's .partial is left for inspection until the next build of the same name.
        shutil.rmtree(partial, ignore_errors=True)
        t0 = time.perf_counter()
        log(f"{name}: building in {partial}")
        # `-m venv` from a venv's interpreter makes the new venv on the base Python, not nested.
        subprocess.run([base_python, "-m", "venv", str(partial)], check=True, capture_output=True)
        for step in SCENARIOS[name]:
            _run_pip(venv_python(partial), step, log)
        (partial / MARKER).write_text(json.dumps(_wanted(name, base_python), indent=1) + "\n")
        # The rename keeps bin/python and pyvenv.cfg valid (neither records the venv's own path); only
        # console-script shebangs keep the .partial path, and nothing here runs them: pip and the
        # doctor are always started as `python -m`.
        shutil.rmtree(final, ignore_errors=True)
        partial.rename(final)
        log(f"{name}: built in {time.perf_counter() - t0:.0f}s")
        return venv_python(final)


def main(argv: list[str]) -> int:
    names = argv or list(SCENARIOS)
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        print(f"unknown scenario(s): {', '.join(unknown)}; known: {', '.join(SCENARIOS)}", file=sys.stderr)
        return 2
    for name in names:
        try:
            print(build(name, log=print))
        except BuildError as e:
            print(f"{name}: {e}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
