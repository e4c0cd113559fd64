"""How bdv2's commands talk to people: one console factory, plain progress lines for logs, the one-line exit
when an extra is not installed, and quiet native start-up logs. Stdlib, click and rich only, so every room's
``cli.py`` (and the doctor) can import it without numpy.

Usage::

    console = make_console()                  # stdout; make_console(stderr=True) for progress and notes
    console.print(table)                      # tables: columns made with column(), never truncated
    ticker = Ticker(console, "converting", total=40, unit="trajectories", interval_s=10)
    ticker.update(12)                         # a plain line every interval_s seconds / every 10 % in logs

On a terminal the console is rich's usual one. Where stdout is a file or a pipe (a batch job's log) it never
wraps inside words or paths (``soft_wrap``: https://rich.readthedocs.io/en/stable/console.html#soft-wrapping)
and is wide enough that tables are not squeezed; long cells fold onto the next line instead of being cut.
"""

from __future__ import annotations

import enum
import importlib.util
import os
import sys
import time
from collections.abc import Callable, Mapping, MutableMapping, Sequence
from pathlib import Path
from typing import Any, assert_never

import click
from rich.console import Console
from rich.table import Column

from . import paths

NON_TTY_WIDTH = 400
"""Columns assumed when the output is not a terminal: a long path still fits on one table line."""
PROGRESS_INTERVAL_S = 10.0
"""Default seconds between plain progress lines (``--progress-interval``)."""

# pip's name for a top-level module where it differs, for the "pip install" line (tensorflow's is the doctor's
# matrix's, which the calling room passes: require_extra's ``distributions``).
_DISTRIBUTIONS = {"PIL": "Pillow", "orbax": "orbax-checkpoint"}

Distributions = Callable[[], Mapping[str, str]]
"""A room's answer to "which distribution installs this top-level module", asked only when one is missing (the
rooms pass the doctor's: TensorFlow's is the member of the matrix's group that its default row installs)."""


class Output(enum.Enum):
    """Where a console writes: a terminal (live bars, colour, wrapping) or a file/pipe (plain lines)."""

    TERMINAL = "terminal"
    PLAIN = "plain"


class BdvConsole(Console):
    """A rich Console that knows whether the command was given ``-v`` (``debug`` lines show only then)."""

    def __init__(self, *, verbose: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.verbose = verbose

    @property
    def output(self) -> Output:
        return output_of(self)

    def debug(self, message: str) -> None:
        if self.verbose:
            self.print(f"[dim]{message}[/]", highlight=False)

    def heading(self, title: str) -> None:
        heading(self, title)


def output_of(console: Console) -> Output:
    """Any rich Console's kind of output (library functions also take consoles made elsewhere)."""
    return Output.TERMINAL if console.is_terminal else Output.PLAIN


def heading(console: Console, title: str) -> None:
    """A section title: rich's rule on a terminal, one plain ``== title ==`` line in a log."""
    output = output_of(console)
    match output:
        case Output.TERMINAL:
            console.rule(title)
        case Output.PLAIN:
            console.print(f"== {title} ==", highlight=False, markup=False)
        case _:
            assert_never(output)


def make_console(stderr: bool = False, verbose: bool = False) -> BdvConsole:
    """The console every bdv2 command prints with (stdout, or stderr for progress and diagnostics).

    Not a terminal: soft wrapping (a line is never broken inside a word or a path, so a skipped file's path
    stays greppable), a width of NON_TTY_WIDTH, no colour codes and no live display.
    """
    stream = sys.stderr if stderr else sys.stdout
    probe = Console(file=stream)
    if probe.is_terminal:
        return BdvConsole(verbose=verbose, file=stream, highlight=False)
    return BdvConsole(verbose=verbose, file=stream, highlight=False, soft_wrap=True, width=NON_TTY_WIDTH,
                      emoji=False)


def column(header: str, *, right: bool = False) -> Column:
    """A table column that folds a long cell onto more lines instead of cutting it with an ellipsis
    (https://rich.readthedocs.io/en/stable/tables.html#column-options)."""
    return Column(header, justify="right" if right else "left", overflow="fold", no_wrap=False)


def _duration(seconds: float) -> str:
    whole = round(seconds)
    if whole < 60:
        return f"{whole} s"
    minutes, s = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes} min {s:02d} s"
    hours, m = divmod(minutes, 60)
    return f"{hours} h {m:02d} min"


class Ticker:
    """Plain progress lines for one job: ``what: done/total unit (p %), rate unit/s, ETA t``.

    A line is printed when ``interval_s`` seconds have passed since the last one, or another ``every``
    fraction of ``total`` is done (whichever comes first), and by ``finish``. ``start``: what was done before
    (a resumed run's step), left out of the rate. ``exclude_startup``: the rate (and the ETA) counts from the
    first progress seen, not from the start, so that a start-up with nothing to show (a training run's imports
    and first compilation) does not inflate the ETA; the first line then has neither. ``clock`` is for tests.
    """

    def __init__(self, console: Console, what: str, total: int | None, unit: str,
                 interval_s: float = PROGRESS_INTERVAL_S, every: float = 0.1,
                 clock: Callable[[], float] = time.monotonic, start: int = 0, exclude_startup: bool = False) -> None:
        self.console, self.what, self.total, self.unit = console, what, total, unit
        self.interval_s, self.every, self.clock = interval_s, every, clock
        self.started = self.last_time = clock()
        self.done = self.last_done = self.start = start
        self.exclude_startup = exclude_startup
        self.first: tuple[float, int] | None = None
        """(time, done) of the first progress past ``start``."""

    def _rate(self, now: float) -> float | None:
        if not self.exclude_startup:
            return (self.done - self.start) / max(now - self.started, 1e-9)
        if self.first is None or self.done <= self.first[1]:
            return None
        return (self.done - self.first[1]) / max(now - self.first[0], 1e-9)

    def line(self, extra: str = "") -> str:
        now = self.clock()
        elapsed = max(now - self.started, 1e-9)
        rate = self._rate(now)
        parts = [f"{self.what}: {self.done}/{self.total if self.total is not None else '?'} {self.unit}"]
        if self.total:
            parts[0] += f" ({100 * self.done / self.total:.0f} %)"
        if rate is not None:
            parts.append(f"{rate:,.2f} {self.unit}/s" if rate < 10 else f"{rate:,.0f} {self.unit}/s")
        if self.total and rate and self.done < self.total:
            parts.append(f"ETA {_duration((self.total - self.done) / rate)}")
        parts.append(f"elapsed {_duration(elapsed)}")
        return ", ".join(parts + ([extra] if extra else []))

    def update(self, done: int, extra: str = "") -> None:
        self.done = done
        now = self.clock()
        if self.first is None and done > self.start:
            self.first = (now, done)
        step = self.every * self.total if self.total else 0
        due = now - self.last_time >= self.interval_s or (step > 0 and done - self.last_done >= step)
        if due and done != self.last_done:
            self.console.print(self.line(extra), highlight=False, markup=False)
            self.last_time, self.last_done = now, done

    def finish(self, extra: str = "") -> None:
        self.console.print(self.line(extra), highlight=False, markup=False)
        self.last_time, self.last_done = self.clock(), self.done


class PathOrUrl(click.ParamType):
    """A local path (checked as click.Path checks it) or a URL that TensorFlow opens (``gs://``, ``file://``;
    bdv2.paths), checked through the same layer the readers use."""

    name = "path"

    def __init__(self, exists: bool = False, file_okay: bool = True, dir_okay: bool = True,
                 distributions: Distributions | None = None) -> None:
        self.exists, self.file_okay, self.dir_okay = exists, file_okay, dir_okay
        self.distributions = distributions
        self.local = click.Path(path_type=Path, exists=exists, file_okay=file_okay, dir_okay=dir_okay)

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, Path | paths.GPath) or not paths.is_url(value):
            return self.local.convert(value, param, ctx)
        require_extra("a URL", "data", ("tensorflow",), self.distributions)  # URLs are opened through tf.io.gfile
        bad = paths.scheme_problem(value, param.human_readable_name if param else "the path")
        if bad is not None:
            self.fail(f"{bad.problem}; {bad.fix}", param, ctx)
        url = paths.GPath(value)
        if not self.exists:
            return url
        try:
            is_dir = url.is_dir()
            if not is_dir and not url.exists():
                self.fail(f"{url} does not exist.", param, ctx)
        except OSError as e:
            self.fail(f"{url} cannot be read: {' '.join(str(e.strerror or e).split())}", param, ctx)
        if is_dir and not self.dir_okay:
            self.fail(f"{url} is a directory.", param, ctx)
        if not is_dir and not self.file_okay:
            self.fail(f"{url} is a file.", param, ctx)
        return url


def progress_interval_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``--progress-interval SECONDS``: how often plain progress lines are printed when output is a log."""
    return click.option("--progress-interval", "progress_interval", type=click.FloatRange(min=0.1),
                        default=PROGRESS_INTERVAL_S, show_default=True, metavar="SECONDS",
                        help="Where the output is not a terminal: seconds between progress lines (also one "
                             "line per 10 % done).")(fn)


def verbose_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``-v/--verbose``: keep TensorFlow's and XLA's native start-up logs (quiet_native_logs) and debug lines."""
    return click.option("-v", "--verbose", is_flag=True,
                        help="Show TensorFlow/XLA start-up logs and debug lines (hidden by default).")(fn)


def missing_modules(modules: Sequence[str]) -> list[str]:
    """The top-level modules of ``modules`` that are not installed (found without importing them:
    https://docs.python.org/3/library/importlib.html#importlib.util.find_spec)."""
    return [m for m in modules if importlib.util.find_spec(m) is None]


def distribution(module: str, known: Mapping[str, str] | None = None) -> str:
    """The distribution bdv2's extras install for a top-level module: ``known``'s (the calling room's answer),
    else pip's name where it differs from the module's."""
    return (known or {}).get(module) or _DISTRIBUTIONS.get(module, module)


def require_extra(command: str, extra: str, modules: Sequence[str], distributions: Distributions | None = None) -> None:
    """Exit 2 with one line naming the missing modules and the extra to install, when any is missing.
    ``distributions``: the calling room's names for the modules' distributions (asked only then)."""
    missing = missing_modules(modules)
    if not missing:
        return
    known = distributions() if distributions is not None else {}
    names = ", ".join(m if distribution(m, known) == m else f"{m} ({distribution(m, known)})" for m in missing)
    click.echo(f"{command}: needs {names}, not installed; install them with: pip install \"bdv2[{extra}]\"",
               err=True)
    sys.exit(2)


QUIET_ENV = {
    # C++ logs below ERROR (cpu_feature_guard and other INFO/WARNING start-up lines):
    # https://www.tensorflow.org/api_docs/python/tf/get_logger and TensorFlow's logging.h (TF_CPP_MIN_LOG_LEVEL).
    "TF_CPP_MIN_LOG_LEVEL": "2",
    # The "oneDNN custom operations are on" notice (and the absl pre-init warning printed with it) ignores
    # TF_CPP_MIN_LOG_LEVEL; only turning oneDNN's TensorFlow ops off removes it. bdv2 uses TensorFlow for file I/O
    # and the input pipeline; the model's arithmetic runs in JAX, which this does not touch.
    # https://www.intel.com/content/www/us/en/developer/articles/guide/optimization-for-tensorflow-installation-guide.html
    "TF_ENABLE_ONEDNN_OPTS": "0",
}


def quiet_native_logs(env: MutableMapping[str, str] | None = None, verbose: bool = False) -> dict[str, str]:
    """Set QUIET_ENV's variables in ``env`` (default os.environ) where the user has not set them, unless
    ``verbose``; returns what was set. Must run before TensorFlow is imported; children inherit it."""
    target = os.environ if env is None else env
    if verbose:
        return {}
    added = {k: v for k, v in QUIET_ENV.items() if k not in target}
    target.update(added)
    return added
