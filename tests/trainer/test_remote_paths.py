"""Data roots and metadata given as URLs, read through bdv2.paths (tf.io.gfile).

TensorFlow's in-memory file system (``ram://``) stands in for a bucket inside this process: the same code path
as ``gs://`` without a network. A launched training (child processes) reads a ``file://`` URL instead, which
every process understands.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import tensorflow as tf
from ramfs import to_ram

from bdv2 import fsutil, paths
from bdv2.trainer import config, model
from bdv2.trainer.errors import ConfigError

from . import helpers


@pytest.fixture(scope="module")
def ram_data(tfdata: Path) -> str:
    return to_ram(tfdata)


def _load(tmp_path: Path, data_root: str, **over: Any) -> model.Experiments:
    g = helpers.base_global(Path("/unused"), tmp_path / "runs", **over)
    g["data_root"] = data_root
    cfg = {"global": g, "runs": [{"algo": "gc_bc", "task": "kitchen", "name": "r"}]}
    return config.load(helpers.write_yaml(tmp_path / "m.yaml", cfg))


def test_the_path_layer_keeps_the_scheme_and_walks_like_pathlib() -> None:
    root = paths.as_path("ram://layer/a")
    assert isinstance(root, paths.GPath) and isinstance(paths.as_path("~/x"), Path)
    assert str(root / "b" / "c.txt") == "ram://layer/a/b/c.txt"  # PurePosixPath would make it ram:/layer
    assert (root / "b").parent == root and (root / "b" / "c.txt").name == "c.txt"
    fsutil.write_json_atomic(root / "b" / "train" / "out.json", {"k": 1})
    fsutil.write_atomic(root / "d" / "train" / "out.json", "{}")
    assert json.loads((root / "b" / "train" / "out.json").read_text()) == {"k": 1}
    found = sorted(str(p.relative_to(root)) for p in root.rglob("train/out.json"))
    assert found == ["b/train/out.json", "d/train/out.json"]
    assert [p.name for p in root.glob("*")] == ["b", "d"]
    assert (root / "b").is_dir() and not (root / "b").is_file() and (root / "d/train/out.json").is_file()
    assert [p.name for p in (root / "b" / "train").iterdir()] == ["out.json"]  # no temporary file left
    assert (root / "b").relative_to(root) == PurePosixPath("b")
    with pytest.raises(FileNotFoundError):
        (root / "missing.json").read_text()


def test_atomic_output_renames_into_place_only_when_the_block_completes() -> None:
    final = paths.GPath("ram://atomic/out.tfrecord")
    with pytest.raises(RuntimeError), fsutil.atomic_output(final) as tmp:
        with tf.io.TFRecordWriter(str(tmp)) as w:
            w.write(b"half")
        raise RuntimeError("killed")
    assert not final.exists() and not fsutil.tmp_path(final).exists()
    with fsutil.atomic_output(final) as tmp, tf.io.TFRecordWriter(str(tmp)) as w:
        w.write(b"whole")
    assert [r.numpy() for r in tf.data.TFRecordDataset(str(final))] == [b"whole"]
    assert not fsutil.tmp_path(final).exists()


def test_only_schemes_tensorflow_cannot_open_are_refused() -> None:
    assert paths.scheme_problem("/data/bridge", "data_root") is None
    assert paths.scheme_problem("ram://x", "data_root") is None
    assert paths.scheme_problem("file:///data", "data_root") is None
    if "gs" in paths.registered_schemes():
        assert paths.scheme_problem("gs://bucket/bridge", "data_root") is None
    bad = paths.scheme_problem("nosuch://bucket/bridge", "data_root")
    assert bad is not None and "\n" not in str(bad)
    assert "cannot open nosuch:// URLs" in bad.problem and "ram://" in bad.problem and "data_root" in bad.fix


def test_a_ram_data_root_resolves_to_urls_the_input_pipeline_reads(ram_data: str, tmp_path: Path) -> None:
    run = _load(tmp_path, ram_data).runs[0]
    (source,) = run.task.sources
    assert sorted(source.train_files) == [f"{ram_data}/kitchen/open_drawer/train/out.tfrecord",
                                          f"{ram_data}/kitchen/put_carrot/train/out.tfrecord"]
    assert len(source.val_files) == 2 and all(f.startswith(ram_data) for f in source.val_files)
    assert run.task.metadata == f"{ram_data}/metadata.json"
    meta = model.Metadata.load(run.task.metadata)
    assert meta.action_std[-1] == pytest.approx(0.5)
    assert sum(1 for _ in tf.data.TFRecordDataset(list(source.train_files))) == 6  # 3 per task


def test_a_ram_data_root_with_a_missing_task_or_metadata_names_them(ram_data: str, tmp_path: Path) -> None:
    g = helpers.base_global(Path("/unused"), tmp_path / "runs", data_root=ram_data)
    cfg = {"global": g, "runs": [{"algo": "gc_bc", "task": "kitchn", "name": "r"}]}
    with pytest.raises(ConfigError, match=r"no train/out\.tfrecord under ram://") as e:
        config.load(helpers.write_yaml(tmp_path / "m.yaml", cfg))
    assert "kitchen" in str(e.value)  # the suggestion walks the URL too
    with pytest.raises(ConfigError, match=r"normalisation statistics ram://.*/nope\.json not found"):
        _load(tmp_path, ram_data, metadata=f"{ram_data}/nope.json")


def test_an_unknown_scheme_or_unreadable_url_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot open nosuch:// URLs"):
        _load(tmp_path, "nosuch://bucket/bridge")
    with pytest.raises(ConfigError, match="is not a directory"):
        _load(tmp_path, "ram://bdv2-never-written")


def _train(cfg: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bdv2.cli", "train", "--config", str(cfg), *args],
                          capture_output=True, text=True, timeout=900)


def test_bdv2_train_reads_a_file_url_data_root_in_its_child(tfdata: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    shutil.copytree(tfdata, data)
    url = data.as_uri()  # file:///...: the scheme path, readable from every process
    g = helpers.base_global(data, tmp_path / "runs", data_root=url, num_steps=4, eval_interval=4,
                            save_interval=4, log_interval=2)
    cfg = helpers.write_yaml(tmp_path / "m.yaml", {"global": g, "runs": [{"algo": "gc_bc",
                                                                         "task": "kitchen/put_carrot",
                                                                         "name": "r"}]})
    out = _train(cfg)
    text = out.stdout + out.stderr
    assert out.returncode == 0, text
    run_dir = next((tmp_path / "runs").rglob("config.json")).parent
    snap = json.loads((run_dir / "config.json").read_text())
    assert snap["metadata"]["action"]["std"][-1] == 0.5  # the snapshot read the metadata through the URL
    assert any(f.startswith("file://") for s in snap["task"]["sources"] for f in s["train_files"])
