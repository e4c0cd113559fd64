"""An empty input folder (a wrong path, a copy that has not run) is named as empty by every command that reads
one, instead of advice about --depth or --split that cannot help."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from bdv2.cli import main

EMPTY = "this folder is empty (no file in it or below it)"


@pytest.mark.parametrize("args", [
    ["data", "inspect", "{empty}"],
    ["data", "stats", "{empty}", "--out", "{tmp}/m.json"],
    ["data", "raw-to-tfrecord", "--input_path", "{empty}", "--output_path", "{tmp}/o"],
    ["data", "raw-to-numpy", "--input_path", "{empty}", "--output_path", "{tmp}/o"],
    ["data", "numpy-to-tfrecord", "--input_path", "{empty}", "--output_path", "{tmp}/o"],
    ["data", "rlds-to-tfrecord", "--input_path", "{empty}", "--output_path", "{tmp}/o"],
], ids=lambda a: " ".join(a[:2]))
def test_empty_folder_is_called_empty(tmp_path: Path, args: list[str]) -> None:
    empty = tmp_path / "bridge"
    (empty / "sub" / "dirs").mkdir(parents=True)  # folders, but no file: still empty
    res = CliRunner().invoke(main, [a.format(empty=empty, tmp=tmp_path) for a in args])
    assert res.exit_code == 1, res.output
    assert f"Error: {empty}: {EMPTY}" in res.output
    assert "--depth" not in res.output and "--split" not in res.output


def test_eval_on_an_empty_data_folder(tmp_path: Path) -> None:
    from bdv2.trainer import evaluate

    (tmp_path / "val_data").mkdir()
    with pytest.raises(evaluate.EvalError, match=f"val_data: {EMPTY.replace('(', '[(]').replace(')', '[)]')}"):
        evaluate.find_split(tmp_path / "val_data", "val")


def test_train_on_an_empty_data_root(tmp_path: Path) -> None:
    from bdv2.trainer import config
    from bdv2.trainer.errors import ConfigError

    (tmp_path / "tfr").mkdir()
    cfg = tmp_path / "m.yaml"
    cfg.write_text(f"global: {{data_root: {tmp_path / 'tfr'}, save_dir: {tmp_path / 'runs'}, encoder: tiny}}\n"
                   "matrix: {algos: [bc], tasks: [kitchen]}\n")
    with pytest.raises(ConfigError, match=r"global.data_root: .*tfr: this folder is empty"):
        config.load(cfg, devices=1)
