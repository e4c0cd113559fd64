"""Build doctor/api/wheel_pythons.json: the CPython versions each release of the compiled packages of this stack
has wheels for on PyPI.

A pinned release that pip cannot find ("No matching distribution found for tensorflow-gpu==1.15") most often has
wheels only for older Pythons than the one that ran; the table lets `bdv2 doctor --log` say so from the pin alone.
The facts are PyPI's own file lists (the JSON API, https://docs.pypi.org/api/json/): for each final release, the
`cpXY` tags of its wheels, as the lowest and highest CPython 3 minor (tensorflow-gpu 1.15.0: 3.5-3.7).

    python tools/wheel_pythons/build.py [--out doctor/api/wheel_pythons.json]

Needs the network to pypi.org; reads data, changes nothing else.
"""

from __future__ import annotations

import argparse
import json
import re
import urllib.request
from pathlib import Path

OUT = Path(__file__).resolve().parents[2] / "doctor" / "api" / "wheel_pythons.json"
# compiled distributions of the stack whose pins appear in requirements files
PACKAGES = ("tensorflow", "tensorflow-gpu", "tensorflow-cpu", "tensorflow-macos", "tensorflow-text", "tensorflow-io",
            "tensorflow-io-gcs-filesystem", "tensorflow-addons", "tensorflow-decision-forests", "tflite-runtime",
            "dm-reverb", "dm-tree", "jaxlib", "numpy", "scipy", "h5py", "pandas", "mujoco", "grpcio", "onnxruntime")
_CP = re.compile(r"^cp3(\d{1,2})$")
_FINAL = re.compile(r"^\d{1,4}\.\d{1,4}(?:\.\d{1,4})?$")


def releases(package: str) -> dict[str, list[int]]:
    """release -> [lowest, highest] CPython 3 minor with a wheel, from PyPI's JSON for ``package``."""
    with urllib.request.urlopen(f"https://pypi.org/pypi/{package}/json", timeout=60) as r:
        data = json.load(r)
    out: dict[str, list[int]] = {}
    for version, files in data["releases"].items():
        if not _FINAL.match(version):
            continue
        minors = [int(m[1]) for f in files if f.get("packagetype") == "bdist_wheel" and not f.get("yanked")
                  for m in [_CP.match(f.get("python_version", ""))] if m]
        if not minors:
            continue
        out[version] = [min(minors), max(minors)]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    table = {p: releases(p) for p in PACKAGES}
    doc = {"source": "https://pypi.org/pypi/<package>/json (wheel tags cp3X of each final release)",
           "packages": {p: {k: [f"3.{lo}", f"3.{hi}"] for k, (lo, hi) in sorted(
               t.items(), key=lambda kv: tuple(int(x) for x in kv[0].split(".")))} for p, t in table.items() if t}}
    args.out.write_text(json.dumps(doc, separators=(",", ":")) + "\n")
    print(f"{args.out}: {sum(len(v) for v in doc['packages'].values())} releases of {len(doc['packages'])} packages")


if __name__ == "__main__":
    main()
