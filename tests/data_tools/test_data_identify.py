"""`bdv2 data identify`: the real octo excerpt, bdv2's own sample, release-shaped metadata of the full RLDS release
and of the Open X-Embodiment snapshot (shards absent or damaged), raw and converted trees, and the three outputs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from bdv2.data_tools import releases
from bdv2.data_tools.cli import data
from bdv2.data_tools.errors import DataToolsError
from bdv2.data_tools.identify import Identification, identify

from .helpers import RldsSample


def _verdicts(r: Identification) -> dict[str, str]:
    return {m.release: m.verdict for m in r.matches}


def test_every_release_fact_has_a_source() -> None:
    k = releases.load()
    assert {r.id for r in k.releases} >= {"bridge_v2_rlds", "oxe_bridge", "octo_debug"}
    for r in k.releases:
        assert r.checked in {"files", "catalog", "derived"}, r.id
        assert any("http" in s or "bdv2." in s for s in r.sources.values()), r.id
    oxe = k.release("oxe_bridge")
    assert oxe.splits["train"]["episodes"] == 25460
    assert "tensorflow.org/datasets/catalog/bridge" in oxe.sources["episodes"]
    assert k.release("bridge_v2_rlds").episodes_total == 60064


def test_malformed_releases_file(tmp_path: Path) -> None:
    bad = tmp_path / "releases.toml"
    bad.write_text('[[release]]\nid = "x"\ntitle = "x"\nformat = "rlds"\ndataset_name = "x"\nversion = "1"\n'
                   'keys = "nope"\nurl = "u"\n')
    with pytest.raises(DataToolsError, match="key scheme 'nope'"):
        releases.load(bad)


def test_real_excerpt_is_the_octo_excerpt(real_rlds_sample: RldsSample) -> None:
    r = identify(real_rlds_sample.path)
    assert r.best is not None and (r.best.release, r.best.verdict) == ("octo_debug", "is")
    assert _verdicts(r)["bridge_v2_rlds"] == "derivative of" and _verdicts(r)["oxe_bridge"] == "not"
    assert r.keys == "bridge_v2_rlds" and r.episodes_total == 50
    assert r.cameras == {"image_0": 8, "image_1": 8, "image_2": 8}  # image_3 is black in every parsed episode
    assert r.image_sizes["image_0 64x64"] == 8
    assert any("has_image_0 disagrees" in n for n in r.notes)


def test_generated_sample_is_bdv2s(generated_rlds: RldsSample) -> None:
    r = identify(generated_rlds.path, all_episodes=True)
    assert r.best is not None and r.best.release == "bdv2_sample"
    assert r.episodes_parsed == generated_rlds.total
    assert r.steps_parsed == generated_rlds.total * generated_rlds.steps
    # cameras 0 and 1 are real in every episode, camera 2 in even episodes, camera 3 never (rlds.sample.has_camera)
    assert r.cameras["image_0"] == generated_rlds.total and "image_3" not in r.cameras
    assert all(cams == ["image_3"] for cams in r.shards_without_images.values())
    assert r.language == {"episodes": 9, "labeled": 9, "blank": 0, "distinct": 4}
    # features.json (as the release's) calls the actions joint velocities; they are the state's deltas here
    assert r.contract is not None and r.contract["frame"] == "base" and r.contract["scale"] == pytest.approx(1, 0.01)
    assert any("describes steps/action as 'Robot action, consists of [7x joint velocities" in n for n in r.notes)


def _release_shaped(root: Path, sample: RldsSample, name: str, splits: dict[str, list[int]],
                    features: dict[str, Any] | None = None, keep: int = 1) -> Path:
    """A dataset directory declaring `splits` (shard lengths) under `name`; the first `keep` shards of each
    split are copies of the sample's first shard, the rest absent."""
    out = root / name / "1.0"
    out.mkdir(parents=True)
    info = json.loads((sample.path / "dataset_info.json").read_text())
    info["name"], info["version"], info["description"] = name, "1.0", ""
    template = "{DATASET}-{SPLIT}.{FILEFORMAT}-{SHARD_X_OF_Y}"
    info["splits"] = [{"name": s, "filepathTemplate": template, "shardLengths": [str(n) for n in lengths]}
                      for s, lengths in splits.items()]
    (out / "dataset_info.json").write_text(json.dumps(info))
    if features is None:
        shutil.copyfile(sample.path / "features.json", out / "features.json")
    else:
        (out / "features.json").write_text(json.dumps(features))
    for s, lengths in splits.items():
        for i in range(min(keep, len(lengths))):
            shutil.copyfile(sample.shard("train"), out / f"{name}-{s}.tfrecord-{i:05d}-of-{len(lengths):05d}")
    return out


def _spread(total: int, shards: int) -> list[int]:
    return [total // shards + (i < total % shards) for i in range(shards)]


def test_partial_full_release(generated_rlds: RldsSample, tmp_path: Path) -> None:
    """The full release's metadata with one train shard of 1024 on disk: a part of it, the rest listed missing."""
    out = _release_shaped(tmp_path, generated_rlds, "bridge_dataset",
                          {"train": _spread(53192, 1024), "val": _spread(6872, 128)})
    r = identify(out)
    assert r.best is not None and (r.best.release, r.best.verdict) == ("bridge_v2_rlds", "part of")
    train = next(s for s in r.splits if s.name == "train")
    assert (train.shards_present, len(train.missing), train.episodes_declared) == (1, 1023, 53192)
    assert train.damaged == ["bridge_dataset-train.tfrecord-00000-of-01024: 6 records, dataset_info.json says 52"]
    assert any("1023 of 1024 shards missing" in n for n in r.notes)


def _oxe_features() -> dict[str, Any]:
    def leaf(kind: str, **spec: Any) -> dict[str, Any]:
        return {kind: spec}

    def fdict(features: dict[str, Any]) -> dict[str, Any]:
        return {"featuresDict": {"features": features}}

    steps = fdict({
        "action": fdict({"world_vector": leaf("tensor", shape={"dimensions": ["3"]}, dtype="float32"),
                         "rotation_delta": leaf("tensor", shape={"dimensions": ["3"]}, dtype="float32"),
                         "open_gripper": leaf("tensor", dtype="bool")}),
        "observation": fdict({"image": leaf("image", shape={"dimensions": ["480", "640", "3"]}, dtype="uint8",
                                            encodingFormat="jpeg"),
                              "natural_language_instruction": leaf("tensor", dtype="string"),
                              "state": leaf("tensor", shape={"dimensions": ["7"]}, dtype="float32")}),
    })
    return fdict({"steps": {"sequence": {"feature": steps}}})


def test_oxe_snapshot(generated_rlds: RldsSample, tmp_path: Path) -> None:
    out = _release_shaped(tmp_path, generated_rlds, "bridge", {"train": _spread(25460, 1024), "test": [3475]},
                          features=_oxe_features(), keep=0)
    r = identify(out)
    assert r.keys == "oxe_rt1" and r.best is not None and (r.best.release, r.best.verdict) == ("oxe_bridge", "part of")
    assert any("early Open X-Embodiment snapshot" in n and "60,064" in n for n in r.notes)
    run = CliRunner().invoke(data, ["identify", str(out), "--markdown"])
    assert run.exit_code == 0, run.output
    assert "- **part of** Open X-Embodiment snapshot" in run.output
    assert "tensorflow.org/datasets/catalog/bridge" in run.output


def test_truncated_shard_is_damaged(generated_rlds: RldsSample, tmp_path: Path) -> None:
    out = Path(shutil.copytree(generated_rlds.path, tmp_path / "rl"))
    shard = out / generated_rlds.shard("val").name
    shard.write_bytes(shard.read_bytes()[:-100])
    r = identify(out)
    val = next(s for s in r.splits if s.name == "val")
    assert val.damaged and "truncated" in val.damaged[0]


def test_raw_and_converted_trees(sample_master: Path, tmp_path: Path) -> None:
    raw = identify(sample_master)
    assert raw.format == "raw" and set(raw.generation.split(", ")) == {"V2 (6)", "V1-era (3)"}
    assert raw.cameras == {"images0": 9, "images1": 9} and raw.language["blank"] == 3


def test_numpy_tree(sample_master: Path, tmp_path: Path) -> None:
    from bdv2.data_tools import convert

    convert.raw_to_numpy(sample_master, tmp_path / "np", im_size=16)
    r = identify(tmp_path / "np")
    assert (r.format, r.keys) == ("numpy", "bridgedata_tfrecord")
    assert set(r.generation.split(", ")) == {"V2 (6)", "V1-era (3)"} and r.image_sizes == {"images0 16x16": 9}
    assert "raw collections" in r.converted_from


def test_converted_from_rlds(generated_rlds: RldsSample, tmp_path: Path) -> None:
    from bdv2.data_tools.rlds import rlds_to_tfrecord

    rlds_to_tfrecord(generated_rlds.path, tmp_path / "tfr")
    r = identify(tmp_path / "tfr")
    assert r.format == "tfrecord" and r.keys == "bridgedata_tfrecord"
    assert r.episodes_total == generated_rlds.total
    assert r.converted_from == (f"{generated_rlds.path} (rlds-to-tfrecord, camera 0): is bdv2's synthetic sample "
                                "shaped like the RLDS release (bdv2 data sample --format rlds) [bdv2_sample]")


def test_converted_from_the_real_excerpt(real_rlds_sample: RldsSample, tmp_path: Path) -> None:
    from bdv2.data_tools.rlds import rlds_to_tfrecord

    rlds_to_tfrecord(real_rlds_sample.path, tmp_path / "tfr", im_size=16)
    r = identify(tmp_path / "tfr")
    assert r.converted_from.endswith("(rlds-to-tfrecord, camera 0): is The octo test excerpt of the RLDS release "
                                     "(50 episodes cut to 10 steps, 64x64 images) [octo_debug]")


def test_json_and_plain_text(generated_rlds: RldsSample) -> None:
    run = CliRunner().invoke(data, ["identify", str(generated_rlds.path), "--json"])
    doc = json.loads(run.output)
    assert doc["identified_as"]["release"] == "bdv2_sample" and doc["schema"] == 1
    text = CliRunner().invoke(data, ["identify", str(generated_rlds.path), "-v"])  # not a terminal: plain lines
    assert "identified as: is bdv2's synthetic sample" in text.output
    assert "[bdv2_sample]" in text.output and "\x1b[" not in text.output
