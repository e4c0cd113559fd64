"""Truncated and corrupt TFRecord files, as a user meets them: an interrupted copy cuts a converted file short,
a flipped byte breaks a checksum. `bdv2 data inspect` lists every damaged file, `bdv2 data stats` refuses to
compute statistics without them, each file on one line with where reading stopped and the fix; re-running the
converter after deleting the file restores it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from bdv2.data_tools import convert
from bdv2.data_tools.cli import data
from bdv2.data_tools.records import find_damaged, read_records, scan


@pytest.fixture(scope="module")
def converted(sample_master: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("damaged") / "tf"
    convert.raw_to_tfrecord(sample_master, out, im_size=16)
    return out


def _damage(tree: Path) -> tuple[Path, Path]:
    """Cut the first train file inside its second record; flip a byte inside the first record of a val file."""
    files = sorted(tree.rglob("*.tfrecord"))
    cut = next(f for f in files if f.parent.name == "train")
    flip = next(f for f in files if f.parent.name == "val")
    first = len(next(iter(read_records(cut))).numpy()) + 16  # length, its CRC, data, its CRC
    with cut.open("r+b") as fh:
        fh.truncate(first + 100)
    data_bytes = bytearray(flip.read_bytes())
    data_bytes[40] ^= 0xFF  # past the 12-byte header: the first record's data fails its checksum
    flip.write_bytes(bytes(data_bytes))
    return cut, flip


@pytest.fixture
def damaged(converted: Path, tmp_path: Path) -> tuple[Path, Path, Path]:
    tree = Path(shutil.copytree(converted, tmp_path / "tf"))
    return (tree, *_damage(tree))


def test_inspect_lists_every_damaged_file_in_one_line_each(damaged: tuple[Path, Path, Path]) -> None:
    tree, cut, flip = damaged
    res = CliRunner().invoke(data, ["inspect", str(tree)])
    assert res.exit_code == 1
    assert "Traceback" not in res.output and "DataLossError" not in res.output
    lines = [line for line in res.output.splitlines() if "TFRecord" in line]
    assert len(lines) == 2, res.output
    cut_line = next(line for line in lines if str(cut) in line)
    flip_line = next(line for line in lines if str(flip) in line)
    assert "truncated TFRecord: the file ends inside record 2" in cut_line
    assert f"of {cut.stat().st_size:,})" in cut_line and "the record before it is intact" in cut_line
    assert "corrupt TFRecord: record 1 (near byte" in flip_line and "fails its checksum" in flip_line
    for line in lines:
        assert "Fix: delete it and re-run the command that wrote it" in line
    assert "task split" in res.output  # the intact files are still summarised


def test_stats_refuses_and_names_each_damaged_file(damaged: tuple[Path, Path, Path], tmp_path: Path) -> None:
    tree, cut, flip = damaged
    res = CliRunner().invoke(data, ["stats", str(tree), "--out", str(tmp_path / "m.json")])
    assert res.exit_code == 1 and not (tmp_path / "m.json").exists()
    assert "Traceback" not in res.output
    assert f"{cut}: truncated TFRecord" in res.output and f"{flip}: corrupt TFRecord" in res.output


def test_the_fix_the_message_gives_works(sample_master: Path, tmp_path: Path) -> None:
    out = tmp_path / "tf"
    convert.raw_to_tfrecord(sample_master, out, im_size=16)
    cut, flip = _damage(out)
    assert find_damaged(sorted(out.rglob("*.tfrecord"))).damaged != []
    cut.unlink()
    flip.unlink()
    convert.raw_to_tfrecord(sample_master, out, im_size=16)  # only the missing outputs are redone
    result = find_damaged(sorted(out.rglob("*.tfrecord")))
    assert result.damaged == [] and result.scanned == 6
    assert scan(cut) is None
