"""`bdv2 demo` as shipped (configs/sample.yaml, the default sample): both runs finish, and the goal-conditioned
run learns what the plain one cannot: its validation action MSE ends at most half of where it starts and below
bc's. Not shortened: at 500 of the 600 steps gc_bc ends at 0.497 of its start, too close to the line. About 130
CPU-seconds (a minute or two on an idle 2-core CPU, both runs at once), hence `slow`; training on CPU is
deterministic, so the figures repeat run to run."""

from __future__ import annotations

from pathlib import Path

import pytest
from rich.console import Console

pytest.importorskip("jax")
pytest.importorskip("tensorflow")

from bdv2.trainer import demo  # after the skips: it needs the training stack


@pytest.mark.slow
def test_demo_learns_and_goals_help(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    console = Console(record=True, width=200)
    assert demo.run_demo(out, console) == 0
    runs = out / "runs"
    gc, bc = demo.val_mse(runs, "gc_bc_kitchen"), demo.val_mse(runs, "bc_kitchen")
    assert len(gc) >= 2 and len(bc) >= 2, (gc, bc)
    assert gc[-1][0] == bc[-1][0] and gc[0][0] < gc[-1][0] / 10  # a start before any visible learning
    (_, gc_start), (_, gc_end), (_, bc_end) = gc[0], gc[-1], bc[-1]
    assert gc_end <= gc_start / 2, gc
    assert gc_end < bc_end, (gc, bc)
    text = console.export_text()
    assert "gc_bc_kitchen: validation action MSE" in text and "bc_kitchen: validation action MSE" in text
    assert (out / demo.CURVES).exists() or "skipped" in text
