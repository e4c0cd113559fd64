"""bdv2.fsutil, bdv2.devices and bdv2.console: the atomic writes, the device count and the missing-extra message
every room uses."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from bdv2.devices import (
    IndivisibleBatch,
    Platform,
    cuda_visible_ids,
    driver_gpus,
    indivisible,
    require_divisible,
    visible_devices,
)
from bdv2.fsutil import atomic_output, write_atomic, write_json_atomic
from bdv2.fsutil import tmp_path as partial_path


def test_write_atomic_replaces_the_file_whole_and_sets_the_mode(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "f.txt"
    write_atomic(target, "one")
    assert target.read_text() == "one" and target.stat().st_mode & 0o777 == 0o644
    write_atomic(target, b"two", mode=0o600)
    assert target.read_bytes() == b"two" and target.stat().st_mode & 0o777 == 0o600
    assert sorted(p.name for p in target.parent.iterdir()) == ["f.txt"]  # no temporary file left


def test_write_atomic_leaves_the_old_file_when_writing_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "f.txt"
    target.write_text("old")

    def broken(src: str, dst: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken)
    with pytest.raises(OSError, match="disk full"):
        write_atomic(target, "new")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.txt"]


def test_write_json_atomic_is_sorted_indented_and_ends_with_a_newline(tmp_path: Path) -> None:
    target = tmp_path / "d.json"
    write_json_atomic(target, {"b": 1, "a": [1]})
    text = target.read_text()
    assert text.endswith("\n") and json.loads(text) == {"a": [1], "b": 1} and text.index('"a"') < text.index('"b"')


def test_atomic_output_renames_only_a_completed_block(tmp_path: Path) -> None:
    final = tmp_path / "out.bin"
    with atomic_output(final) as tmp:
        assert tmp == partial_path(final)
        tmp.write_bytes(b"done")
        assert not final.exists()
    assert final.read_bytes() == b"done" and not partial_path(final).exists()
    with pytest.raises(RuntimeError), atomic_output(tmp_path / "never.bin") as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("killed")
    assert not (tmp_path / "never.bin").exists() and not partial_path(tmp_path / "never.bin").exists()


@pytest.mark.parametrize(("value", "ids"), [
    ("0,1,2", ["0", "1", "2"]), ("0,-1,2", ["0"]), ("-1", []), ("", []), (" 1 , 3 ", ["1", "3"]),
])
def test_cuda_visible_ids_stop_at_the_first_minus_one(value: str, ids: list[str]) -> None:
    assert cuda_visible_ids(value) == ids


@pytest.mark.parametrize(("env", "gpus", "backend", "n", "platform"), [
    ({}, 4, True, 4, Platform.GPU),
    ({"CUDA_VISIBLE_DEVICES": "0,1"}, 4, True, 2, Platform.GPU),
    ({"CUDA_VISIBLE_DEVICES": "0,1,2,3,4,5"}, 4, True, 4, Platform.GPU),
    ({"CUDA_VISIBLE_DEVICES": "0,-1,2"}, 4, True, 1, Platform.GPU),
    ({"CUDA_VISIBLE_DEVICES": "0,1"}, None, True, 2, Platform.GPU),
    ({"CUDA_VISIBLE_DEVICES": ""}, 4, True, 1, Platform.CPU),
    ({"JAX_PLATFORMS": "cpu"}, 4, True, 1, Platform.CPU),
    ({"JAX_PLATFORM_NAME": "cpu", "XLA_FLAGS": "--xla_force_host_platform_device_count=8"}, 4, True, 8, Platform.CPU),
    ({}, 4, False, 1, Platform.CPU),
    ({}, 0, None, 1, Platform.CPU),
    ({}, None, None, None, None),
])
def test_visible_devices(env: dict[str, str], gpus: int | None, backend: bool | None, n: int | None,
                         platform: Platform | None) -> None:
    count = visible_devices(env, gpus, backend)
    assert (count.n, count.platform) == (n, platform) and count.why


def test_require_divisible_is_the_one_wording() -> None:
    require_divisible({"train_batch_size": 256, "val_batch_size": None}, 4)
    with pytest.raises(IndivisibleBatch) as e:
        require_divisible({"a": 8, "b": 250}, 4, context="(CUDA_VISIBLE_DEVICES='0,1,2,3')")
    assert (e.value.key, e.value.size, e.value.devices) == ("b", 250, 4)
    assert e.value.problem == "250 is not divisible by the 4 device(s) (CUDA_VISIBLE_DEVICES='0,1,2,3')"
    assert e.value.fix == indivisible(250, 4) and str(e.value).startswith("b: 250 is not divisible")
    with pytest.raises(IndivisibleBatch, match="by the 3 host"):
        require_divisible({"n": 8}, 3, unit="host(s)")


@pytest.mark.parametrize(("source", "listed", "known", "gpus"), [
    ("nvml", 2, True, 2), ("nvidia-smi", 0, True, 0),  # the driver answered: its list is the count
    ("/proc/driver/nvidia/version", 0, True, None),  # a driver seen only in part: unknown
    ("", 0, True, None),  # an error from nvidia-smi, no list: unknown
    ("", 0, False, 0),  # no NVIDIA driver at all: no GPU
])
def test_driver_gpus_is_the_one_reading_of_no_gpu(source: str, listed: int, known: bool, gpus: int | None) -> None:
    assert driver_gpus(source, listed, known) == gpus
    count = visible_devices({}, driver_gpus(source, listed, known), True)
    assert (count.n is None) == (gpus is None)


def test_indivisible_names_the_nearest_batches_and_device_counts() -> None:
    assert indivisible(256, 4) is None and indivisible(7, 0) is None
    fix = indivisible(250, 4)
    assert fix is not None and "multiple of 4" in fix and "248" in fix and "252" in fix and "2 device(s)" in fix
    fix = indivisible(3, 4)
    assert fix is not None and "3 device(s)" in fix and "(e.g. 4)" in fix
    fix = indivisible(8, 12)  # a batch smaller than the device count: one suggestion, not "12 or 12"
    assert fix is not None and "(e.g. 12)" in fix and "8 device(s)" in fix


def test_require_extra_names_the_distribution_the_matrix_installs_for_a_module(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import bdv2.console as console
    from bdv2.data_tools.cli import extra_distributions
    from bdv2.doctor import load_matrix

    matrix = load_matrix()
    tf = console.distribution("tensorflow", extra_distributions())
    assert tf in matrix.groups["tensorflow"] and tf in matrix.default_row.packages  # tensorflow-cpu, from the matrix
    assert console.distribution("PIL") == "Pillow" and console.distribution("numpy") == "numpy"
    assert console.distribution("tensorflow") == "tensorflow"  # the ground floor alone knows no matrix
    monkeypatch.setattr(console, "missing_modules", lambda modules: list(modules))
    with pytest.raises(SystemExit) as stop:
        console.require_extra("bdv2 data", "data", ["numpy", "tensorflow"], extra_distributions)
    assert stop.value.code == 2
    assert capsys.readouterr().err.strip() == (
        f'bdv2 data: needs numpy, tensorflow ({tf}), not installed; install them with: pip install "bdv2[data]"')


def _eta_seconds(line: str) -> float | None:
    import re

    m = re.search(r"ETA (?:(\d+) min )?(\d+) s", line)
    return None if m is None else int(m.group(1) or 0) * 60 + int(m.group(2))


@pytest.mark.parametrize("exclude_startup", [True, False])
def test_a_training_runs_first_eta_is_not_inflated_by_its_start_up(exclude_startup: bool) -> None:
    """The demo's shape: 45 s of imports and compilation with no step, then 600 steps at 12.5 steps/s (a
    93-second run). Counting the start-up, the first ETA said minutes; from the first logged step it is sane."""
    import io

    from rich.console import Console

    from bdv2.console import Ticker

    now = [0.0]
    out = io.StringIO()
    ticker = Ticker(Console(file=out, width=400), "gc_bc_kitchen", 600, "steps", interval_s=10,
                    clock=lambda: now[0], exclude_startup=exclude_startup)
    true_end = 45.0 + 575 / 12.5
    for step in range(25, 625, 25):  # the launcher sees a step each time metrics.jsonl gets a log line
        now[0] = 45.0 + (step - 25) / 12.5
        ticker.update(step)
    lines = out.getvalue().splitlines()
    first_with_eta = next(line for line in lines if "ETA" in line)
    done = int(first_with_eta.split()[1].split("/")[0])
    remaining = true_end - (45.0 + (done - 25) / 12.5)
    eta = _eta_seconds(first_with_eta)
    assert eta is not None
    if exclude_startup:
        assert lines[0] == "gc_bc_kitchen: 25/600 steps (4 %), elapsed 45 s"  # nothing measured yet: no ETA
        assert first_with_eta == lines[1] and abs(eta - remaining) <= 2, (lines, remaining)
    else:  # what it printed before: start-up counted as training time
        assert eta > 2 * remaining, (first_with_eta, remaining)
