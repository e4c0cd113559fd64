"""What `bdv2 train` prints: the runs' progress while they train (a live bar on a terminal, plain periodic lines
in a log: bdv2.console.Ticker), the preflight findings, the dry run, and the summary table with each failure
named. Imports neither jax, TensorFlow nor numpy.

Table cells fold instead of being cut (bdv2.console.column): a run name or checkpoint path is never shown
as ``gc_bc_kitc…`` (tests/trainer/test_train_console.py).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any, assert_never

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from bdv2.console import Output, Ticker, column, heading, output_of
from bdv2.doctor import Severity

from .budget import LaunchCheck, RunPlan, gb
from .childenv import child_env
from .failure import FailureKind
from .model import Experiments, Outcome, Preflight
from .status import RunStatus


class RunsDisplay:
    """Progress of the running children: rich's bars on a terminal, a Ticker line per run in a log."""

    def __init__(self, console: Console, interval_s: float) -> None:
        self.console, self.interval_s = console, interval_s
        self.bars: Progress | None = None
        self.tasks: dict[str, TaskID] = {}
        self.tickers: dict[str, Ticker] = {}
        match output_of(console):
            case Output.TERMINAL:
                self.bars = Progress(TextColumn("{task.description}"), BarColumn(),
                                     TextColumn("{task.completed}/{task.total} steps"),
                                     TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), console=console,
                                     transient=False)
            case Output.PLAIN:
                pass
            case _:
                assert_never(output_of(console))

    def __enter__(self) -> RunsDisplay:
        if self.bars is not None:
            self.bars.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bars is not None:
            self.bars.stop()

    def add(self, name: str, total: int, start: int = 0) -> None:
        """A child started; ``start``: the step it resumes from."""
        if self.bars is not None:
            self.tasks[name] = self.bars.add_task(name, total=total, rate="", completed=start)
        else:
            # the rate counts from the first logged step: imports and compilation would inflate the first ETA
            self.tickers[name] = Ticker(self.console, name, total, "steps", self.interval_s, start=start,
                                        exclude_startup=True)
            self.console.print(f"{name}: started" + (f", resuming from step {start}" if start else ""),
                               highlight=False, markup=False)

    def update(self, name: str, step: int, elapsed: float) -> None:
        if self.bars is not None:
            self.bars.update(self.tasks[name], completed=step, rate=f"{step / elapsed:.1f} steps/s" if step else "")
        else:
            self.tickers[name].update(step)

    def done(self, name: str, outcome: Outcome) -> None:
        if self.bars is not None:
            self.bars.update(self.tasks[name], completed=outcome.steps, description=f"{name} [{outcome.status}]")
        else:
            self.console.print(f"{name}: {outcome.status} at step {outcome.steps} after {outcome.wall_s:.0f} s",
                               highlight=False, markup=False)


def _loss(x: float | None) -> str:
    return "-" if x is None else f"{x:.4f}"


def _colour(status: RunStatus) -> str:
    match status:
        case RunStatus.FINISHED:
            return "green"
        case RunStatus.FAILED:
            return "red"
        case RunStatus.STOPPED | RunStatus.SKIPPED | RunStatus.PREEMPTED:
            return "yellow"
        case _:
            assert_never(status)


def _plain(console: Console, text: str, style: str = "") -> None:
    console.print(text, style=style or None, highlight=False, markup=False)


def _render_failure(o: Outcome, console: Console) -> None:
    if o.failure is not None:
        match o.failure.kind:
            case FailureKind.BDV2_ERROR | FailureKind.SIGNAL | FailureKind.STORAGE:
                _plain(console, f"✗ {o.name}: {o.failure.title}", "red")
            case _:
                assert_never(o.failure.kind)
        for line in o.failure.evidence:
            _plain(console, f"    {line}")
        if o.failure.fix:
            _plain(console, f"    fix: {o.failure.fix}")
    for f in o.diagnosis:
        _plain(console, f"✗ {o.name}: {f.title}", "red")
        for line in f.evidence[:3]:
            _plain(console, f"    {line}")
        if f.fix is not None:
            _plain(console, f"    fix: {f.fix.summary}")
            for cmd in f.fix.commands:
                _plain(console, f"      $ {cmd}")


def render_summary(outcomes: Sequence[Outcome], console: Console) -> None:
    table = Table(*(column(c, right=c in ("steps", "train loss", "val loss", "wall"))
                    for c in ("run", "status", "steps", "train loss", "val loss", "wall", "checkpoint")),
                  title="bdv2 train: summary")
    for o in outcomes:
        table.add_row(o.name, f"[{_colour(o.status)}]{o.status}[/]", str(o.steps), _loss(o.train_loss),
                      _loss(o.val_loss), f"{o.wall_s:.0f} s", o.checkpoint or "-")
    console.print(table)
    for o in outcomes:
        for note in o.notes:
            _plain(console, f"  {o.name}: {note}")
        _render_failure(o, console)
        if o.log and o.status is RunStatus.FAILED:
            _plain(console, f"    log: {o.log}")


def render_preflight(pre: Preflight, console: Console) -> None:
    for f in pre.findings:
        if f.severity is Severity.INFO:
            continue
        mark = "[red]✗[/]" if f.severity is Severity.ERROR else "[yellow]![/]"
        console.print(f"{mark} {f.title}" + (f"\n    fix: {f.fix.summary}" if f.fix else ""))


def dry_run_plan(exp: Experiments, pre: Preflight, environ: Mapping[str, str]) -> dict[str, Any]:
    """What --dry-run shows, as data (--json prints it): each run's data, every resolved setting with where it
    came from (Run.origins), and the environment variables its child would get that differ from ``environ``."""
    runs = []
    for run in exp.runs:
        env = child_env(run.settings, environ, pre.env_ops)
        settings = {k: {"value": v, "from": run.origins.get(k, "default")}
                    for k, v in dataclasses.asdict(run.settings).items()}
        runs.append({
            "name": run.name, "algo": run.algo, "task": run.task.name, "workdir": str(run.workdir),
            "metadata": run.task.metadata, "decay_steps": run.decay_steps,
            "data": [{"pattern": src.pattern, "weight": src.weight, "train_files": len(src.train_files),
                      "val_files": len(src.val_files), "rlds_train": list(src.rlds_train),
                      "rlds_val": list(src.rlds_val)} for src in run.task.sources],
            "settings": settings,
            "env": {k: v for k, v in sorted(env.items()) if environ.get(k) != v},
            "env_unset": [k for k in environ if k not in env],
        })
    return {"config": exp.file, "notes": list(exp.notes), "runs": runs}


def render_dry_run(exp: Experiments, pre: Preflight, console: Console, environ: Mapping[str, str]) -> None:
    """Each run with every resolved setting and where it came from, its data and the environment its child
    would get."""
    plan = dry_run_plan(exp, pre, environ)
    for note in plan["notes"]:
        _plain(console, f"note: {note}")
    for run in plan["runs"]:
        heading(console, f"{run['name']}  ({run['algo']} on {run['task']})")
        _plain(console, f"  workdir:   {run['workdir']}\n  metadata:  {run['metadata']}\n"
                        f"  decay:     {run['decay_steps']}")
        for src in run["data"]:
            if src["rlds_train"]:  # read in place through data_tools.rlds
                _plain(console, f"  data:      {src['pattern']}  weight {src['weight']:.3g}: RLDS "
                                f"{', '.join(src['rlds_train'])} (train; val from {len(src['rlds_val'])} of them)")
                continue
            _plain(console, f"  data:      {src['pattern']}  weight {src['weight']:.3g}: {src['train_files']} "
                            f"train / {src['val_files']} val files")
        width = max(map(len, run["settings"]))
        _plain(console, "  settings (value, from: default, global, matrix, run, --set):")
        for key, item in run["settings"].items():
            value = item["value"]
            shown = "null" if value is None else value if isinstance(value, str) else repr(value)
            _plain(console, f"    {key:<{width}}  {shown}  [{item['from']}]")
        _plain(console, "  env:       " + (", ".join(f"{k}={v}" for k, v in run["env"].items()) or "(unchanged)")
                        + (f"; unset {', '.join(run['env_unset'])}" if run["env_unset"] else ""))


def _secs(x: float | None) -> str:
    if x is None:
        return "-"
    if x >= 3600:
        return f"{x / 3600:.1f} h"
    return f"{x:.0f} s" if x >= 10 else f"{x * 1000:.0f} ms" if x < 1 else f"{x:.1f} s"


def _plan_row(p: RunPlan) -> list[str]:
    bound = {None: "-", True: "input-bound", False: "device-bound"}[p.input_bound]
    return [p.name, gb(p.host_bytes), gb(p.shuffle_bytes), gb(p.interpreter_bytes),
            "-" if p.device_bytes is None else gb(p.device_bytes) + ("" if p.device_limit is None
                                                                      else f" of {gb(p.device_limit)}"),
            _secs(p.step_s), _secs(p.batch_s), bound, _secs(p.wall_s)]


def render_plan(check: LaunchCheck, console: Console, full: bool) -> None:
    """The plan's one line (every launch) or its table (--plan), then what does not fit and the fixes."""
    if check.verdict is None and check.plan_error:
        _plain(console, f"plan: not estimated ({check.plan_error})", "yellow")
    elif check.verdict is not None:
        if full:
            heading(console, "bdv2 train: plan")
            table = Table(show_lines=False)
            for name in ("run", "host RAM", "shuffle", "interpreter", "device mem", "step", "input/batch",
                         "bound", f"wall ({check.plans[0].num_steps if check.plans else 0} steps)"):
                table.add_column(name, overflow="fold")
            for p in check.plans:
                table.add_row(*_plan_row(p))
            console.print(table)
        _plain(console, check.verdict.line, "" if check.verdict.fits else "red")
        for line in check.verdict.problems:
            _plain(console, f"  does not fit: {line}", "red")
        for line in check.verdict.fixes:
            _plain(console, f"  fix: {line}")
    for problem in check.storage:
        _plain(console, f"✗ save_dir {problem}", "red")
