"""What `bdv2 data` prints: the conversion progress (a live bar on a terminal, plain periodic lines in a log)
and the summaries of conversions and `inspect`. rich and stdlib only (the CLI imports it before checking that
numpy is installed); the consoles come from bdv2.console.make_console.

Every skipped or unwritten file is one line ``skipped: <full path>: <reason>``: the console never wraps inside
a path where the output is a file, so ``grep skipped: log`` lists them (tests/data_tools/test_data_console.py).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, assert_never

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table

from bdv2.console import Output, Ticker, column, output_of
from bdv2.storage import size

from .progress import FetchProgress, ProgressSink, Report

if TYPE_CHECKING:
    from pathlib import Path


class _RichProgress(ProgressSink):
    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.task = progress.add_task("converting", total=None, fps="")
        self.frames = 0
        self.started = time.perf_counter()

    def start(self, total_trajectories: int) -> None:
        self.progress.update(self.task, total=total_trajectories)

    def advance(self, trajectories: int, frames: int) -> None:
        self.frames += frames
        fps = self.frames / max(time.perf_counter() - self.started, 1e-9)
        self.progress.update(self.task, advance=trajectories, fps=f"{fps:,.0f} frames/s")


class LineProgress(ProgressSink):
    """Plain lines (bdv2.console.Ticker): trajectories done/total, their rate, frames/s and the ETA."""

    def __init__(self, console: Console, interval_s: float) -> None:
        self.console, self.interval_s = console, interval_s
        self.ticker: Ticker | None = None
        self.done = self.frames = 0

    def start(self, total_trajectories: int) -> None:
        self.ticker = Ticker(self.console, "converting", total_trajectories, "trajectories", self.interval_s)

    def _fps(self) -> str:
        assert self.ticker is not None
        return f"{self.frames / max(self.ticker.clock() - self.ticker.started, 1e-9):,.0f} frames/s"

    def advance(self, trajectories: int, frames: int) -> None:
        if self.ticker is None:
            self.start(0)
        assert self.ticker is not None
        self.done += trajectories
        self.frames += frames
        self.ticker.update(self.done, self._fps())

    def close(self) -> None:
        if self.ticker is not None and self.ticker.last_done != self.done:
            self.ticker.finish(self._fps())


@contextmanager
def progress(console: Console, interval_s: float) -> Iterator[ProgressSink]:
    """The progress display of a conversion: rich's live bar on a terminal, LineProgress in a log."""
    match output_of(console):
        case Output.TERMINAL:
            columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                       TextColumn("trajectories"), TextColumn("{task.fields[fps]}"), TimeElapsedColumn())
            with Progress(*columns, console=console, transient=False) as bar:
                yield _RichProgress(bar)
        case Output.PLAIN:
            sink = LineProgress(console, interval_s)
            yield sink
            sink.close()
        case _:
            assert_never(output_of(console))


def render_report(report: Report, console: Console) -> int:
    """Print a conversion's summary; the exit code is 1 when an output could not be written, else 0."""
    console.print(f"{len(report.written)} written, {len(report.existing)} already finished (kept; --overwrite "
                  f"redoes them), {report.trajectories} trajectories, {report.frames} frames in "
                  f"{report.seconds:.1f} s ({report.frames_per_second:,.0f} frames/s)")
    for note in report.notes:
        console.print(f"[yellow]note[/]: {note}", highlight=False)
    if report.skipped:
        console.print(f"[yellow]{len(report.skipped)} trajectories skipped:[/]")
        for s in report.skipped:  # markup=False: a path may hold [brackets]
            console.print(f"skipped: {s.path}: {s.reason}", highlight=False, markup=False)
    for d in report.dropped:
        console.print(f"not written: {d.path}: {d.reason}", style="red", highlight=False, markup=False)
    return 1 if report.dropped else 0


def render_inspection(path: Path, result: Any, console: Console) -> None:
    """`bdv2 data inspect`'s table and lines (``result``: summary.Inspection)."""
    table = Table(column("task split"), column("trajectories", right=True), column("frames", right=True),
                  column("with instruction", right=True), title=f"{path} ({result.kind})")
    for group, g in sorted(result.groups.items()):
        table.add_row(group, str(g["trajectories"]), str(g["frames"]), f"{g['labeled']}/{g['trajectories']}")
    console.print(table)
    console.print("image sizes: " + ", ".join(f"{k} ({n} trajectories)" for k, n in result.image_shapes.items()))
    for name, moments in result.stats.items():
        for key, values in moments.items():
            console.print(f"{name:8} {key:5} " + " ".join(f"{v:9.4f}" for v in values))
    for problem in result.problems:
        console.print(f"problem: {problem}", style="red", highlight=False, markup=False)


class _RichFetch(FetchProgress):
    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.task = progress.add_task("fetching", total=None)

    def start(self, files: int, total_bytes: int) -> None:
        self.progress.update(self.task, total=total_bytes or None, completed=0,  # the metadata came before
                             description=f"fetching {files} file(s)")

    def file(self, rel: str) -> None:
        self.progress.update(self.task, description=rel.rsplit("/", 1)[-1])

    def advance(self, nbytes: int) -> None:
        self.progress.update(self.task, advance=nbytes)


class LineFetch(FetchProgress):
    """Plain lines (bdv2.console.Ticker): bytes done/total (estimated) in MB (kB for under 100 MB), the rate,
    the ETA and the file being fetched."""

    def __init__(self, console: Console, interval_s: float) -> None:
        self.console, self.interval_s = console, interval_s
        self.ticker = Ticker(console, "fetching", None, "MB", interval_s)
        self.bytes, self.scale, self.current = 0, 1e6, ""

    def start(self, files: int, total_bytes: int) -> None:
        self.bytes = 0  # the metadata files came before; the clock starts now
        if total_bytes < 100e6:
            self.scale = 1e3
        self.ticker = Ticker(self.console, "fetching", round(total_bytes / self.scale) or None,
                             "MB" if self.scale == 1e6 else "kB", self.interval_s)

    def file(self, rel: str) -> None:
        self.current = rel.rsplit("/", 1)[-1]

    def advance(self, nbytes: int) -> None:
        self.bytes += nbytes
        done = round(self.bytes / self.scale)
        if self.ticker.total is not None and done > self.ticker.total:  # the total is an estimate for a part
            self.ticker.total = done
        self.ticker.update(done, self.current)

    def close(self) -> None:
        if self.bytes and self.ticker.last_done != self.ticker.done:
            self.ticker.finish()


@contextmanager
def fetch_progress(console: Console, interval_s: float) -> Iterator[FetchProgress]:
    """A download's display: rich's bar with size, rate and ETA on a terminal, LineFetch lines in a log."""
    match output_of(console):
        case Output.TERMINAL:
            columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                       TimeRemainingColumn())
            with Progress(*columns, console=console, transient=False) as bar:
                yield _RichFetch(bar)
        case Output.PLAIN:
            sink = LineFetch(console, interval_s)
            yield sink
            sink.close()
        case _:
            assert_never(output_of(console))


def render_fetch(result: Any, console: Console) -> None:
    """`bdv2 data fetch`'s summary (``result``: fetch.Result); every re-fetched file on its own line."""
    rate = result.bytes / result.transfer_seconds if result.transfer_seconds else 0.0
    console.print(f"{result.out}: {len(result.fetched)} fetched ({size(result.bytes)} at {size(rate)}/s; "
                  f"{result.seconds:.1f} s in all), {len(result.kept)} already here and verified",
                  highlight=False, markup=False)
    for rel, why in result.refetched:
        console.print(f"re-fetched: {rel}: {why}", highlight=False, markup=False)
    for note in result.notes:
        console.print(f"note: {note}", highlight=False, markup=False)
