"""`bdv2 data check`: faults injected into copies of the generated RLDS sample are each found, with the episode
named, and make the command exit 1; clean data passes; the real excerpt's known defect is found."""

from __future__ import annotations

import io
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from bdv2.data_tools.check import Options, Severity, check_tree
from bdv2.data_tools.cli import data

from .helpers import RldsSample, read_records, rewrite_records


@pytest.fixture
def copy(generated_rlds: RldsSample, tmp_path: Path) -> Path:
    return Path(shutil.copytree(generated_rlds.path, tmp_path / "rl", copy_function=shutil.copyfile))


def _edit(shard: Path, index: int, edit: Callable[[Any], None]) -> str:
    """Apply `edit` to the Example of record `index`; returns the episode's name as check reports it."""
    import tensorflow as tf

    records = read_records(shard)
    ex = tf.train.Example.FromString(records[index])
    edit(ex.features.feature)
    records[index] = ex.SerializeToString()
    rewrite_records(shard, records)
    return f"{shard}[{index}]"


def _ids(result: Any) -> dict[str, Any]:
    return {f.id: f for f in result.findings}


def _black_jpeg(size: int = 64) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.zeros((size, size, 3), np.uint8)).save(buf, format="JPEG")
    return buf.getvalue()


def test_clean_sample_passes(generated_rlds: RldsSample) -> None:
    result = check_tree(generated_rlds.path)
    assert result.exit_code == 0, [f.to_dict() for f in result.findings]
    assert result.episodes == generated_rlds.total
    assert result.contract is not None and result.contract["gripper"]["range"] == "[0, 1]"


def test_nan_actions(copy: Path, generated_rlds: RldsSample) -> None:
    def nan_action(f: Any) -> None:
        f["steps/action"].float_list.value[3] = float("nan")

    where = _edit(copy / generated_rlds.shard("train").name, 2, nan_action)
    result = check_tree(copy)
    found = _ids(result)["nonfinite"]
    assert found.severity is Severity.ERROR and found.episodes == (where,)
    assert "actions[0, 3] = nan" in found.evidence[0]
    run = CliRunner().invoke(data, ["check", str(copy), "--json"])
    assert run.exit_code == 1, run.output
    doc = json.loads(run.output)
    assert doc["exit_code"] == 1 and where in doc["findings"][0]["episodes"]


def test_black_frames(copy: Path, generated_rlds: RldsSample) -> None:
    def black(f: Any) -> None:
        frames = f["steps/observation/image_0"].bytes_list
        n = len(frames.value)
        del frames.value[:]
        frames.value.extend([_black_jpeg()] * n)

    where = _edit(copy / generated_rlds.shard("val").name, 1, black)
    found = _ids(check_tree(copy))["black_camera"]
    assert found.severity is Severity.ERROR and found.episodes == (where,)
    # --no-frames does not decode them, so it cannot see them
    assert "black_camera" not in _ids(check_tree(copy, Options(frames=False)))


def test_duplicate_across_splits(copy: Path, generated_rlds: RldsSample) -> None:
    train, val = copy / generated_rlds.shard("train").name, copy / generated_rlds.shard("val").name
    rewrite_records(val, [*read_records(val), read_records(train)[4]])
    found = _ids(check_tree(copy))["duplicate_across_splits"]
    assert found.severity is Severity.ERROR
    assert found.evidence[0] == f"{train}[4] (train) = {val}[{generated_rlds.episodes['val']}] (val)"


def test_duplicate_within_a_split_is_a_warning(copy: Path, generated_rlds: RldsSample) -> None:
    train = copy / generated_rlds.shard("train").name
    records = read_records(train)
    rewrite_records(train, [*records, records[0]])
    result = check_tree(copy)
    assert _ids(result)["duplicate"].severity is Severity.WARNING
    assert result.exit_code == 0


def test_blank_and_placeholder_instructions(copy: Path, generated_rlds: RldsSample) -> None:
    def say(text: bytes) -> Callable[[Any], None]:
        def edit(f: Any) -> None:
            lang = f["steps/language_instruction"].bytes_list
            n = len(lang.value)
            del lang.value[:]
            lang.value.extend([text] * n)
        return edit

    shard = copy / generated_rlds.shard("train").name
    blank = _edit(shard, 0, say(b""))
    fake = _edit(shard, 1, say(b"N/A"))
    found = _ids(check_tree(copy))
    assert found["blank_instruction"].episodes == (blank,)
    assert found["placeholder_instruction"].episodes == (fake,)
    assert "'N/A'" in found["placeholder_instruction"].evidence[0]


def test_frozen_actions(copy: Path, generated_rlds: RldsSample) -> None:
    def freeze(f: Any) -> None:
        values = f["steps/action"].float_list.value
        first = list(values[:7])
        for t in range(len(values) // 7):
            values[7 * t:7 * t + 7] = first

    where = _edit(copy / generated_rlds.shard("train").name, 3, freeze)
    assert _ids(check_tree(copy))["frozen_actions"].episodes == (where,)


def test_state_jump(copy: Path, generated_rlds: RldsSample) -> None:
    def jump(f: Any) -> None:
        values = f["steps/observation/state"].float_list.value
        for t in range(4, len(values) // 7):
            values[7 * t] += 0.3  # x teleports 30 cm from step 4 on, no action asked for it

    where = _edit(copy / generated_rlds.shard("train").name, 1, jump)
    found = _ids(check_tree(copy))["state_jump"]
    assert found.episodes == (where,) and "step 3 -> 4 moves 0.30" in found.evidence[1]


def test_too_short_for_the_window(generated_rlds: RldsSample) -> None:
    result = check_tree(generated_rlds.path, Options(window=generated_rlds.steps))
    found = _ids(result)["too_short"]
    assert found.severity is Severity.WARNING and len(found.episodes) == generated_rlds.total


def test_statistics_that_do_not_describe_the_data(generated_rlds: RldsSample, tmp_path: Path) -> None:
    """Statistics 55x too small (an inert normaliser's symptom) are an error naming each dimension."""
    small = tmp_path / "metadata.json"
    small.write_text(json.dumps({"action": {"mean": [0.0] * 6 + [0.5], "std": [0.01 / 55] * 6 + [0.5]}}))
    found = _ids(check_tree(generated_rlds.path, Options(metadata=small)))["metadata_action_mismatch"]
    assert found.severity is Severity.ERROR
    assert found.evidence[0].startswith("action[0]: metadata mean 0 std 0.0001818; data mean")
    assert len(found.evidence) == 6  # x, y, z, roll, pitch, yaw; the gripper's statistics fit


def test_contract_mismatch_shows_both_sides(generated_rlds: RldsSample, tmp_path: Path) -> None:
    meta = tmp_path / "metadata.json"
    meta.write_text(json.dumps({"action": {"mean": [0.0] * 6 + [0.0], "std": [0.01] * 6 + [0.9],
                                           "min": [-0.05] * 6 + [-1.0], "max": [0.05] * 6 + [1.0]}}))
    run = CliRunner().invoke(data, ["check", str(generated_rlds.path), "--metadata", str(meta)])
    assert run.exit_code == 1
    assert "the metadata's gripper is in [-1, 1] and this data's is in [0, 1]" in run.output


def test_quick_check_reads_no_frames(copy: Path, generated_rlds: RldsSample) -> None:
    def nan_state(f: Any) -> None:
        f["steps/observation/state"].float_list.value[0] = float("inf")

    _edit(copy / generated_rlds.shard("val").name, 0, nan_state)
    result = check_tree(copy, quick=True)
    assert result.quick and result.exit_code == 1 and "nonfinite" in _ids(result)
    assert not {"black_camera", "static_frames", "duplicate"} & set(_ids(result))


def test_raw_sample_passes_and_markdown(sample_master: Path) -> None:
    run = CliRunner().invoke(data, ["check", str(sample_master), "--markdown"])
    assert run.exit_code == 0, run.output
    assert run.output.startswith("## bdv2 data check") and "exit code 0" in run.output


def test_real_excerpt_val_repeats_train(real_rlds_sample: RldsSample) -> None:
    """The octo excerpt's val split holds the same 25 episodes as its train split, reordered."""
    result = check_tree(real_rlds_sample.path)
    found = _ids(result)["duplicate_across_splits"]
    assert len(found.episodes) == 25
    assert not {"nonfinite", "black_camera", "state_jump", "no_transition"} & set(_ids(result))
    assert result.contract is not None and result.contract["frame"] == "base"


def test_offset_statistics_are_a_warning(generated_rlds: RldsSample, tmp_path: Path) -> None:
    """A mean 3 stds off only shifts the normalised targets: a warning, not a stop."""
    meta = tmp_path / "metadata.json"
    stats = {"mean": [0.03] * 6 + [0.5], "std": [0.01] * 6 + [0.5]}
    meta.write_text(json.dumps({"action": stats, "proprio": stats}))  # proprio as the original's file: not compared
    result = check_tree(generated_rlds.path, Options(metadata=meta))
    assert _ids(result)["metadata_action_mismatch"].severity is Severity.WARNING and result.exit_code == 0


def test_episode_limit_and_frames_let_go(generated_rlds: RldsSample) -> None:
    run = CliRunner().invoke(data, ["check", str(generated_rlds.path), "--episodes", "4", "--json"])
    doc = json.loads(run.output)
    assert doc["episodes"] == 4 and any(f["id"] == "partial" for f in doc["findings"])
    from bdv2.data_tools.episodes import iter_episodes

    _, it = iter_episodes(generated_rlds.path, frames=True)
    e = next(it).light()
    assert e.frames is None and e.frame_facts is not None and e.frame_facts.frames == generated_rlds.steps


def test_clipped_actions(copy: Path, generated_rlds: RldsSample) -> None:
    def clip(f: Any) -> None:
        values = f["steps/action"].float_list.value
        for t in range(len(values) // 7):
            values[7 * t] = min(values[7 * t], 0.004)  # x clipped at 0.004

    for split, n in generated_rlds.episodes.items():
        for i in range(n):
            _edit(copy / generated_rlds.shard(split).name, i, clip)
    found = _ids(check_tree(copy))["clipped_x_max"]
    assert found.severity is Severity.WARNING and "pinned at exactly 0.004" in found.evidence[0]


def test_static_frames(copy: Path, generated_rlds: RldsSample) -> None:
    def freeze(f: Any) -> None:
        frames = f["steps/observation/image_0"].bytes_list
        first, n = frames.value[0], len(frames.value)
        del frames.value[:]
        frames.value.extend([first] * n)

    where = _edit(copy / generated_rlds.shard("train").name, 5, freeze)
    assert _ids(check_tree(copy))["static_frames"].episodes == (where,)
