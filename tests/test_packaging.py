"""setup.cfg ships what the tree holds: every package folder (one with an __init__.py) under the three rooms and
bdv2/ is listed in `packages`, and every data file beside the code matches a `package_data` pattern. A quick
check of what tests/test_wheel.py proves on a built wheel (slow), so a new wing cannot be left out of the wheel."""

from __future__ import annotations

import configparser
from fnmatch import fnmatch
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _setup() -> configparser.ConfigParser:
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    return cfg


def _package_dirs(cfg: configparser.ConfigParser) -> dict[str, Path]:
    """Installed name -> folder, from `package_dir` (bdv2.doctor = doctor, ...)."""
    pairs = [line.split("=") for line in cfg["options"]["package_dir"].strip().splitlines()]
    return {name.strip(): ROOT / folder.strip() for name, folder in pairs}


def _tree_packages(roots: dict[str, Path]) -> dict[str, Path]:
    found = {}
    for name, folder in roots.items():
        for init in folder.rglob("__init__.py"):
            rel = init.parent.relative_to(folder)
            found[".".join([name, *rel.parts])] = init.parent
    return found


def test_every_package_folder_is_listed_in_setup_cfg() -> None:
    cfg = _setup()
    listed = set(cfg["options"]["packages"].split())
    in_tree = set(_tree_packages(_package_dirs(cfg)))
    assert in_tree - listed == set(), "add these to setup.cfg [options] packages"
    assert listed - in_tree == set(), "setup.cfg lists packages that have no folder"


def test_every_data_file_beside_the_code_is_package_data() -> None:
    cfg = _setup()
    data = {name.strip(): [p.strip() for p in value.split(",")] for name, value in cfg["options.package_data"].items()}
    missing = []
    for name, folder in _tree_packages(_package_dirs(cfg)).items():
        for f in folder.iterdir():
            if (f.is_file() and f.suffix not in (".py", ".pyc")
                    and not any(fnmatch(f.name, pat) for pat in data.get(name, []))):
                missing.append(f"{name}: {f.name}")
        for sub in (d for d in folder.iterdir() if d.is_dir() and not (d / "__init__.py").exists()
                    and d.name != "__pycache__"):
            for f in sub.rglob("*"):
                rel = f.relative_to(folder).as_posix()
                if f.is_file() and not any(fnmatch(rel, pat) for pat in data.get(name, [])):
                    missing.append(f"{name}: {rel}")
    assert missing == [], "add these to setup.cfg [options.package_data]"
