"""`bdv2 train`/`bdv2 demo`/`bdv2 data` without their extras (simulated in a subprocess: find_spec answers None
and importing raises, for numpy, PIL, tensorflow, jax, ...), the summary table in a log (nothing truncated),
and every device check refused before any run directory exists."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from rich.console import Console

from bdv2.console import make_console
from bdv2.devices import DeviceView
from bdv2.trainer import cli, config, launch, model
from bdv2.trainer.errors import ConfigError
from bdv2.trainer.status import RunStatus

from . import helpers

EXTRAS = ("numpy", "PIL", "tensorflow", "jax", "jaxlib", "flax", "optax", "orbax", "distrax", "matplotlib")
BLOCK = f"""
import importlib.abc, importlib.util, sys
BLOCKED = {EXTRAS!r}
real_find_spec = importlib.util.find_spec
def find_spec(name, package=None):
    return None if name.split(".")[0] in BLOCKED else real_find_spec(name, package)
importlib.util.find_spec = find_spec
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None
sys.meta_path.insert(0, Block())
from bdv2.cli import main
sys.argv = ["bdv2", *sys.argv[1:]]
main()
"""


def bdv2_without_extras(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """`bdv2 ARGS` in a fresh interpreter where the extras' modules are absent."""
    return subprocess.run([sys.executable, "-P", "-c", BLOCK, *args], capture_output=True, text=True, timeout=120,
                          cwd=cwd)


@pytest.mark.parametrize("args", [("train", "--help"), ("demo", "--help"), ("data", "--help"),
                                  *[("data", c, "--help") for c in ("raw-to-numpy", "numpy-to-tfrecord",
                                                                    "raw-to-tfrecord", "rlds-to-tfrecord", "sample",
                                                                    "inspect", "stats")]])
def test_help_works_without_the_extras(args: tuple[str, ...]) -> None:
    r = bdv2_without_extras(*args)
    assert r.returncode == 0 and "Usage:" in r.stdout, r.stderr


@pytest.mark.parametrize(("args", "extra", "names"), [
    (("train", "--config", "m.yaml"), "train", "numpy, PIL (Pillow), tensorflow (tensorflow-cpu), jax, flax"),
    (("demo", "--out", "d"), "train", "orbax (orbax-checkpoint), distrax"),
    (("data", "sample", "--out", "raw"), "data", "numpy, PIL (Pillow), tensorflow (tensorflow-cpu)"),
    (("data", "raw-to-tfrecord", "--input_path", ".", "--output_path", "o"), "data", "numpy"),
    (("data", "inspect", "."), "data", "numpy"),
])
def test_commands_without_the_extras_name_it_and_exit_2(args: tuple[str, ...], extra: str, names: str,
                                                         tmp_path: Path) -> None:
    r = bdv2_without_extras(*args, cwd=tmp_path)
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr and r.stdout == ""
    [line] = r.stderr.splitlines()
    assert f'pip install "bdv2[{extra}]"' in line and names in line


def test_summary_in_a_log_keeps_long_names_and_paths_whole(tmp_path: Path) -> None:
    name = "gc_bc_kitchen_put_carrot_in_pot_with_a_very_long_task_name"
    ckpt = f"{tmp_path}/demo/runs/{name}/checkpoints/2000000"
    outcomes = [model.Outcome(name, RunStatus.FINISHED, 2_000_000, 0.1234, 0.2345, 3600.0, ckpt)]
    with open(tmp_path / "log", "w") as f:
        console = make_console()
        console.file = f  # what make_console gives when stdout is a file
        launch.render_summary(outcomes, console)
    text = (tmp_path / "log").read_text()
    assert "…" not in text
    assert any(name in line and ckpt in line for line in text.splitlines()), text


def test_summary_on_a_narrow_console_folds_instead_of_cutting() -> None:
    out = io.StringIO()
    name = "gc_bc_kitchen_put_carrot_in_pot"
    launch.render_summary([model.Outcome(name, RunStatus.FINISHED, 20, checkpoint="demo/runs/" + name + "/ck/20")],
                          Console(file=out, width=60))
    assert "…" not in out.getvalue()
    first_column = "".join(line.split("│")[1].strip() for line in out.getvalue().splitlines()
                           if line.startswith("│"))
    assert first_column == name  # folded over several lines, every character kept


def _yaml(tfdata: Path, tmp_path: Path, **over: object) -> Path:
    data = {"global": helpers.base_global(tfdata, tmp_path / "runs", **over),
            "runs": [{"algo": "bc", "task": "sink", "name": "a"}, {"algo": "gc_bc", "task": "sink", "name": "b"}]}
    return helpers.write_yaml(tmp_path / "m.yaml", data)


@pytest.mark.parametrize(("over", "env", "message"), [
    ({"train_batch_sise": 8}, {}, "global.train_batch_sise: unknown key"),
    ({"xla_flags": "--xla_force_host_platform_device_count=3"}, {},
     "global.train_batch_size: 8 is not divisible by the 3 device(s)"),
    ({}, {"XLA_FLAGS": "--xla_force_host_platform_device_count=3"},
     "global.train_batch_size: 8 is not divisible by the 3 device(s)"),
])
def test_bad_config_is_refused_before_any_run_directory(tfdata: Path, tmp_path: Path, over: dict[str, object],
                                                       env: dict[str, str], message: str) -> None:
    path = _yaml(tfdata, tmp_path, **over)
    r = CliRunner().invoke(cli.train, ["--config", str(path)], env=env)
    assert r.exit_code == 1 and message in r.output, r.output
    assert not (tmp_path / "runs").exists()


def test_parallel_gpu_ids_are_checked_against_the_driver(tfdata: Path, tmp_path: Path) -> None:
    path = _yaml(tfdata, tmp_path, jax_platform_name=None, cuda_visible_devices="0,1,2")
    view = DeviceView({}, gpus=2, gpu_backend=True, parallel=True)
    with pytest.raises(ConfigError, match=r"--parallel gives GPU 2 to a run, but the driver reports 2 GPU"):
        config.load(path, view=view)
    exp = config.load(path, view=DeviceView({}, gpus=3, gpu_backend=True, parallel=True))  # 1 GPU per child
    assert len(exp.runs) == 2
    with pytest.raises(ConfigError, match=r"8 is not divisible by the 3 device"):  # without --parallel: 3 GPUs
        config.load(path, view=DeviceView({}, gpus=3, gpu_backend=True))
    assert not (tmp_path / "runs").exists()


def test_progress_in_a_log_is_plain_lines_per_run() -> None:
    from bdv2.trainer.report import RunsDisplay

    out = io.StringIO()
    with RunsDisplay(Console(file=out, width=400), interval_s=0.1) as display:
        display.add("gc_bc_sink", 1000, start=300)
        ticker = display.tickers["gc_bc_sink"]
        ticker.started -= 30  # started 30 s ago (imports, compilation: not counted in the rate) ...
        ticker.first = (ticker.clock() - 10, 300)  # ... its first step seen 10 s ago: 400 new steps at 40 steps/s
        display.update("gc_bc_sink", 700, 10.0)
        display.done("gc_bc_sink", model.Outcome("gc_bc_sink", RunStatus.FINISHED, 1000, wall_s=25))
    lines = out.getvalue().splitlines()
    assert lines[0] == "gc_bc_sink: started, resuming from step 300"
    assert lines[1].startswith("gc_bc_sink: 700/1000 steps (70 %), 40 steps/s, ETA 8 s")
    assert lines[2] == "gc_bc_sink: finished at step 1000 after 25 s"
    assert "\x1b[" not in out.getvalue()
