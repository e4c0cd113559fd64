"""Build doctor/api/tf1_names.json: the TensorFlow 1.x names that TensorFlow 2 no longer has under ``tf.``.

The facts come from TensorFlow's own upgrade tool, which ships inside every TensorFlow 2 wheel
(``tensorflow/tools/compatibility``: ``renames_v2.renames``, ``all_renames_v2.manual_symbol_renames`` and
``module_deprecations_v2.MODULE_DEPRECATIONS``; https://www.tensorflow.org/guide/migrate/upgrade). Each rename is
kept only when the installed TensorFlow 2 really lacks the old name (a few came back), so the table says what a
TensorFlow 2 user meets: ``module 'tensorflow' has no attribute 'Session'`` and where that name lives now.

    python tools/tf1_names/build.py [--out doctor/api/tf1_names.json]

Needs a TensorFlow 2 in the running Python (the project's [train] extra has one); reads data, changes nothing else.
"""

from __future__ import annotations

import argparse
import importlib
import json
import re
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parents[2] / "doctor" / "api" / "tf1_names.json"
# The first TensorFlow 2 on PyPI for Linux that pip can still fetch (tensorflow-cpu 2.0.0 was never uploaded).
FIRST_TF2 = "tensorflow-cpu==2.1.0"
_IMPORT = re.compile(r"^from [\w.][\w. ]* import (\w+)(?: as (\w+))?\s*$", re.MULTILINE)


def first_tf2_api(wheel: Path) -> set[str]:
    """Every public ``tf.…`` name of a TensorFlow 2 wheel's v2 API, read from its generated ``_api/v2`` files."""
    names: set[str] = set()
    with zipfile.ZipFile(wheel) as z:
        for path in z.namelist():
            m = re.fullmatch(r"tensorflow(?:_core)?/(?:_api/v2/(?P<mod>[\w/]+)/)?__init__\.py", path)
            if not m:
                continue
            prefix = "tf" + "".join(f".{p}" for p in (m["mod"] or "").split("/") if p)
            for imp in _IMPORT.finditer(z.read(path).decode("utf-8", "replace")):
                name = imp[2] or imp[1]
                if not name.startswith("_"):
                    names.add(f"{prefix}.{name}")
    return names


def _fetch_first_tf2(folder: Path) -> Path:
    subprocess.run([sys.executable, "-m", "pip", "download", "-q", FIRST_TF2, "--no-deps", "--only-binary=:all:",
                    "--python-version", "37", "--platform", "manylinux2010_x86_64", "-d", str(folder)], check=True)
    return next(folder.glob("*.whl"))


def _has(tf: Any, dotted: str) -> bool:
    """Whether ``tf.a.b`` resolves in the installed TensorFlow (attribute chain from the top package)."""
    obj = tf
    for part in dotted.split(".")[1:]:
        try:
            obj = getattr(obj, part)
        except Exception:  # lazy loaders raise more than AttributeError for a missing submodule
            return False
    return True


def _gone_parents(tf: Any, gone: dict[str, str], first: set[str]) -> set[str]:
    """The namespaces of renamed names that TensorFlow 2 lacks as a whole (``tf.logging``, ``tf.gfile``)."""
    parents = {".".join(k.split(".")[:i]) for k in gone for i in range(2, k.count(".") + 1)}
    return {p for p in parents if p not in first and not _has(tf, p)}


def build(wheel: Path) -> dict[str, Any]:
    import tensorflow as tf

    compat = "tensorflow.tools.compatibility"
    renames = dict(importlib.import_module(f"{compat}.renames_v2").renames)
    renames.update(importlib.import_module(f"{compat}.all_renames_v2").manual_symbol_renames)
    modules = sorted(importlib.import_module(f"{compat}.module_deprecations_v2").MODULE_DEPRECATIONS)
    first = first_tf2_api(wheel)  # absent from the first TensorFlow 2 and from the installed one: gone since 2.0
    gone = {old: new for old, new in sorted(renames.items())
            if not old.startswith("tf.compat.") and old not in first and not _has(tf, old)
            and not any(old == m or old.startswith(m + ".") for m in modules)}
    return {
        "source": "https://www.tensorflow.org/guide/migrate/upgrade",
        "built_from": f"tensorflow {tf.__version__} (tensorflow/tools/compatibility), checked against {wheel.name}",
        "removed_in": "2.0",
        "renames": gone,
        "removed_modules": sorted({m for m in modules if not _has(tf, m)} | _gone_parents(tf, gone, first)),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--wheel", type=Path, help=f"a downloaded {FIRST_TF2} wheel (fetched with pip when omitted)")
    args = ap.parse_args()
    out = args.out
    with tempfile.TemporaryDirectory() as folder:
        data = build(args.wheel or _fetch_first_tf2(Path(folder)))
    part = out.with_suffix(".part")
    part.write_text(json.dumps(data, indent=0, sort_keys=True) + "\n")
    part.replace(out)
    print(f"{out}: {len(data['renames'])} renamed names, removed modules {data['removed_modules']}")


if __name__ == "__main__":
    main()
