"""ARCHITECTURE.md stays true: every file or folder it names exists, and every wing of the doctor is in it."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MAP = ROOT / "ARCHITECTURE.md"
# A path in backticks: a folder ending in '/' or a file with an extension (`doctor/checks/_common.py`).
PATH = re.compile(r"`((?:[\w.-]+/)+|(?:[\w.-]+/)*[\w.-]+\.(?:py|toml|md|json|gz))`")


def named_paths() -> list[str]:
    return sorted(set(PATH.findall(MAP.read_text())))


def test_the_map_names_paths_and_each_one_exists() -> None:
    paths = named_paths()
    assert len(paths) > 40, paths  # the map does name the modules it walks through
    missing = [p for p in paths if not (ROOT / p).exists() and not p.startswith("bdv2/doctor/")]
    assert not missing, f"ARCHITECTURE.md names paths that do not exist: {missing}"


def test_every_package_of_the_doctor_and_every_room_is_on_the_map() -> None:
    named = set(named_paths())
    packages = {f"{p.parent.relative_to(ROOT)}/" for p in (ROOT / "doctor").rglob("__init__.py")}
    rooms = {"bdv2/", "doctor/", "data_tools/", "trainer/"}
    assert packages | rooms <= named, sorted((packages | rooms) - named)


def test_the_doctors_option_count_is_the_same_wherever_it_is_written() -> None:
    from bdv2.doctor.cli import doctor

    count = len([p for p in doctor.params if p.name != "help"])
    said = {"ARCHITECTURE.md": re.findall(r"turns the (\d+) options", MAP.read_text()),
            "doctor/cli.py": re.findall(r"The doctor's (\d+) options", (ROOT / "doctor" / "cli.py").read_text())}
    assert all(said.values()), said
    assert {f: [int(n) for n in ns] for f, ns in said.items()} == {f: [count] for f in said}
