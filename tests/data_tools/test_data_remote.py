"""`bdv2 data` on URLs (bdv2.paths over tf.io.gfile): inputs read and outputs written where they are.

TensorFlow's in-memory file system (``ram://``) stands in for a bucket: the same code path as ``gs://``
without a network. It lives in one process, so the commands run in-process (click's runner) with one worker.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
import tensorflow as tf
from click.testing import CliRunner, Result
from ramfs import to_ram

from bdv2 import paths
from bdv2.data_tools.cli import data

from . import helpers


def _run(*args: str) -> Result:
    return CliRunner().invoke(data, list(args))


@pytest.fixture(scope="module")
def ram_rlds(generated_rlds: helpers.RldsSample) -> str:
    return to_ram(generated_rlds.path)


def test_rlds_in_a_bucket_is_inspected_checked_and_converted_to_a_bucket(
        ram_rlds: str, generated_rlds: helpers.RldsSample) -> None:
    inspected = _run("inspect", ram_rlds)
    assert inspected.exit_code == 0, inspected.output
    assert "action   mean" in inspected.output
    checked = _run("check", ram_rlds, "--quick")
    assert checked.exit_code == 0, checked.output
    out = f"ram://bdv2-out-{uuid.uuid4().hex[:8]}"
    converted = _run("rlds-to-tfrecord", "--input_path", ram_rlds, "--output_path", out, "--num_workers", "1")
    assert converted.exit_code == 0, converted.output
    written = sorted(tf.io.gfile.glob(f"{out}/*/*/out.tfrecord"))
    assert [w.rsplit("/", 2)[1] for w in written] == ["train", "val"]
    episodes = sum(1 for _ in tf.data.TFRecordDataset(written))
    assert episodes == sum(generated_rlds.episodes.values())
    assert not tf.io.gfile.glob(f"{out}/*/*/*.partial")  # renamed into place, nothing half-written left
    again = _run("rlds-to-tfrecord", "--input_path", ram_rlds, "--output_path", out, "--num_workers", "1")
    assert again.exit_code == 0 and "2 already finished" in again.output, again.output  # resumes, no rewrite
    stats = _run("stats", out, "--out", f"{out}/metadata.json")
    assert stats.exit_code == 0, stats.output
    meta = json.loads(tf.io.gfile.GFile(f"{out}/metadata.json").read())
    assert len(meta["action"]["mean"]) == 7
    check = _run("check", out, "--metadata", f"{out}/metadata.json", "--no-frames")
    assert check.exit_code == 0, check.output


def test_raw_in_a_bucket_converts_to_a_bucket(raw: Path) -> None:
    src = to_ram(raw)
    raw_inspected = _run("inspect", src)  # raw trees read through the layer too (pickles, JPEGs, lang.txt)
    assert raw_inspected.exit_code == 0, raw_inspected.output
    out = f"ram://bdv2-out-{uuid.uuid4().hex[:8]}"
    converted = _run("raw-to-tfrecord", "--input_path", src, "--output_path", out, "--num_workers", "1")
    assert converted.exit_code == 0, converted.output
    written = [str(p) for p in paths.GPath(out).rglob("train/out.tfrecord")]
    assert len(written) == 3, (written, converted.output)  # one per task dir of the sample
    assert sum(1 for _ in tf.data.TFRecordDataset(written)) > 0
    inspected = _run("inspect", out)
    assert inspected.exit_code == 0, inspected.output
    damaged = paths.GPath(written[0])
    damaged.write_bytes(damaged.read_bytes()[:-7])  # an interrupted upload
    named = _run("inspect", out)
    assert named.exit_code == 1 and written[0] in named.output.replace("\n", ""), named.output


def test_raw_to_numpy_to_tfrecord_between_buckets(raw: Path) -> None:
    src = to_ram(raw)
    npy, tfr = (f"ram://bdv2-{kind}-{uuid.uuid4().hex[:8]}" for kind in ("np", "tfr"))
    to_numpy = _run("raw-to-numpy", "--input_path", src, "--output_path", npy, "--num_workers", "1")
    assert to_numpy.exit_code == 0, to_numpy.output
    assert len(list(paths.GPath(npy).rglob("train/out.npy"))) == 3
    to_tfr = _run("numpy-to-tfrecord", "--input_path", npy, "--output_path", tfr, "--num_workers", "1")
    assert to_tfr.exit_code == 0, to_tfr.output
    written = [str(p) for p in paths.GPath(tfr).rglob("*/out.tfrecord")]
    assert len(written) == 6 and sum(1 for _ in tf.data.TFRecordDataset(written)) > 0


def test_a_scheme_tensorflow_cannot_open_or_a_missing_url_is_one_line(ram_rlds: str) -> None:
    bad = _run("rlds-to-tfrecord", "--input_path", ram_rlds, "--output_path", "nosuch://bucket/out")
    assert bad.exit_code == 2 and "the installed TensorFlow cannot open nosuch:// URLs" in bad.output
    assert "Traceback" not in bad.output and not Path("nosuch:").exists()
    missing = _run("inspect", "ram://bdv2-never-written")
    assert missing.exit_code == 2 and "ram://bdv2-never-written does not exist" in missing.output
