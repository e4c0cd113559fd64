"""`bdv2 data ...`: the click group of the data tools. Commands parse options, call one library function
and render its result; no logic lives here. Importing this module imports neither TensorFlow nor jax.

Importing it imports click, rich and the stdlib only: `bdv2 data --help` works without the [data] extra, and
each command checks for numpy, Pillow and TensorFlow (bdv2.console.require_extra) before importing the library.
Run standalone with `python -m bdv2.data_tools.cli`.
"""

from __future__ import annotations

import errno
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from bdv2 import paths, storage
from bdv2.console import (
    PathOrUrl,
    make_console,
    progress_interval_option,
    quiet_native_logs,
    require_extra,
    verbose_option,
)
from bdv2.fsutil import write_atomic

from .errors import DataToolsError
from .progress import Report, default_workers

DATA_MODULES = ("numpy", "PIL", "tensorflow")
"""Top-level modules of the [data] extra that every data command needs (checked before importing them)."""



def extra_distributions() -> dict[str, str]:
    """The doctor's names for the distributions of missing modules (bdv2.console.require_extra asks only then)."""
    from bdv2.doctor import extra_distributions as from_the_matrix

    return from_the_matrix()

def _prepare(command: str, verbose: bool) -> None:
    """Before the room's library is imported: exit 2 naming the [data] extra when a module is missing, and keep
    TensorFlow's start-up logs out of this process and its workers unless -v (bdv2.console.quiet_native_logs)."""
    require_extra(f"bdv2 data {command}", "data", DATA_MODULES, extra_distributions)
    quiet_native_logs(verbose=verbose)


def _run(command: str, fn_name: str, verbose: bool, progress_interval: float, **kwargs: Any) -> None:
    """Check the dependencies, import ``fn_name`` from the room's library, run it with a progress display, print
    its summary and exit (1 when an output could not be written)."""
    _prepare(command, verbose)
    import importlib

    from . import render

    module, attr = fn_name.rsplit(".", 1)
    fn: Callable[..., Report] = getattr(importlib.import_module(f"bdv2.data_tools.{module}"), attr)
    if "shard" in kwargs:
        kwargs["shard"] = _parse_shard(kwargs["shard"])
    console = make_console(stderr=True, verbose=verbose)
    out = kwargs.get("output_path")
    bad = None
    if isinstance(out, paths.GPath):
        bad = paths.check_writable(out, "--output_path")
    elif out is not None:
        bad = storage.check_writable(Path(out), "--output_path")
    if bad is not None:
        raise click.ClickException(f"--output_path {bad}")
    try:
        with render.progress(console, progress_interval) as sink:
            report = fn(progress=sink, **kwargs)
    except DataToolsError as e:
        raise click.ClickException(str(e)) from None
    except Exception as e:
        if out is None:
            raise
        named = None if isinstance(out, paths.GPath) else _storage_fault(e, Path(out))
        if named is None:
            raise
        raise click.ClickException(named) from None
    sys.exit(render.render_report(report, console))


def _storage_fault(error: Exception, output: Path) -> str | None:
    """A write that failed because the output's file system is full or not writable, as one line; else None.
    (TensorFlow's writers raise ResourceExhaustedError, not OSError, for a full disk.)"""
    if isinstance(error, OSError) and error.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return f"--output_path {error.filename or output}: cannot write: {storage.reason(error)}; make it writable " \
               "or choose another --output_path"
    if storage.says_full(error) or storage.is_full(output):
        return f"--output_path {storage.full_disk_problem(output, '--output_path')} (finished outputs are kept; " \
               "the unfinished one is not)"
    return None


def _parse_shard(value: str | None) -> Any:
    from .layout import Shard

    try:
        return Shard.parse(value)
    except DataToolsError as e:
        raise click.BadParameter(str(e), param_hint="'--shard'") from None


def _common(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Options shared by every conversion; both --snake_case (the original scripts) and --dash-case work."""
    options = [
        click.option("--input_path", "--input-path", "input_path", required=True,
                     type=PathOrUrl(exists=True, file_okay=False, distributions=extra_distributions)),
        click.option("--output_path", "--output-path", "output_path", required=True,
                     type=PathOrUrl(file_okay=False, distributions=extra_distributions)),
        click.option("--depth", default=5, show_default=True,
                     help="Directory levels from input_path to the files (5 = source/env/task/NN/date)."),
        click.option("--num_workers", "--num-workers", "num_workers", type=int, default=default_workers(),
                     show_default="all cores"),
        click.option("--overwrite", is_flag=True, help="Redo outputs that already exist (default: skip them)."),
        click.option("--shard", metavar="INDEX/COUNT",
                     help="Convert only part INDEX of COUNT disjoint parts (e.g. $SLURM_ARRAY_TASK_ID/64)."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return progress_interval_option(verbose_option(fn))


def _raw_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    fn = click.option("--seed", default=0, show_default=True, help="Seed of the train/val shuffle.")(fn)
    fn = click.option("--im_size", "--im-size", "im_size", default=128, show_default=True,
                      help="Images are squashed to im_size x im_size (LANCZOS).")(fn)
    return click.option("--train_proportion", "--train-proportion", "train_proportion", default=0.9,
                        show_default=True, help="Fraction of each dated dir's trajectories that go to train.")(fn)


_EXAMPLES = """
\b
Examples:
  bdv2 data sample --out raw                               a small synthetic raw dataset (real layout)
  bdv2 data sample --format rlds --out rl                  a small RLDS dataset shaped like the release
  bdv2 data raw-to-tfrecord --input_path raw --output_path tfr --depth 5
  bdv2 data raw-to-numpy --input_path raw --output_path np --depth 5 --im_size 256
  bdv2 data numpy-to-tfrecord --input_path np --output_path tfr --depth 5 --im_size 256
  bdv2 data rlds-to-tfrecord --input_path bridge_dataset/1.0.0 --output_path tfr
  bdv2 data raw-to-tfrecord ... --shard $SLURM_ARRAY_TASK_ID/64    one part of a cluster-wide run
  bdv2 data rlds-to-tfrecord ... --shard $SLURM_ARRAY_TASK_ID/64   (the same for the RLDS release)
  bdv2 data inspect tfr                                    counts, sizes, instructions, problems
  bdv2 data stats tfr --out tfr/metadata.json              normalisation statistics for the trainer
  bdv2 data identify bridge_dataset/1.0.0                  which release, how complete, cameras, language
  bdv2 data check tfr --metadata tfr/metadata.json         is it safe to train on (exit 1 if not)
  bdv2 data view rl --out page.html                        one HTML page: frames, instruction, actions
  bdv2 data fetch --smoke --out ~/data                     one train + one val shard of the RLDS release
  bdv2 data rlds-to-tfrecord --input_path gs://b/bridge_dataset/1.0.0 --output_path gs://b/tfr   paths may be URLs
"""


@click.group("data", context_settings={"help_option_names": ["-h", "--help"]}, epilog=_EXAMPLES)
def data() -> None:
    """Convert BridgeData V2 (raw -> numpy -> TFRecord, raw -> TFRecord, or the RLDS release -> TFRecord),
    inspect it, compute statistics. Needs the [data] extra: pip install "bdv2[data]"."""


@data.command("raw-to-numpy")
@_common
@_raw_options
def raw_to_numpy_cmd(**kwargs: Any) -> None:
    """Raw trajectories -> <output>/<dirs>/{train,val}/out.npy (the original intermediate)."""
    _run("raw-to-numpy", "convert.raw_to_numpy", **kwargs)


@data.command("numpy-to-tfrecord")
@_common
@click.option("--im_size", "--im-size", "im_size", type=int, default=None,
              help="Check that the numpy images have this size (the original script has no such flag).")
def numpy_to_tfrecord_cmd(**kwargs: Any) -> None:
    """<input>/<dirs>/{train,val}/out.npy -> <output>/<dirs>/{train,val}/out.tfrecord."""
    _run("numpy-to-tfrecord", "convert.numpy_to_tfrecord", **kwargs)


@data.command("raw-to-tfrecord")
@_common
@_raw_options
@click.option("--exact", is_flag=True,
              help="Decode JPEGs at full size, as the original: output identical to raw-to-numpy + "
                   "numpy-to-tfrecord. Default: draft decoding (libjpeg downscales by a power of two, never below "
                   "im_size, before the LANCZOS resize): visually equivalent, pixels differ by a few levels, "
                   "2-3x faster.")
def raw_to_tfrecord_cmd(exact: bool, **kwargs: Any) -> None:
    """Raw trajectories -> <output>/<dirs>/{train,val}/out.tfrecord directly, streaming, parallel over
    trajectories (no numpy intermediate)."""
    _prepare("raw-to-tfrecord", kwargs["verbose"])
    from .raw import ResizeMode

    _run("raw-to-tfrecord", "convert.raw_to_tfrecord", mode=ResizeMode.EXACT if exact else ResizeMode.DRAFT,
         **kwargs)


def _parse_cameras(value: str | None) -> tuple[int, ...]:
    from .rlds import parse_cameras

    try:
        return parse_cameras(value)
    except DataToolsError as e:
        raise click.BadParameter(str(e), param_hint="'--cameras'") from None


@data.command("rlds-to-tfrecord")
@click.option("--input_path", "--input-path", "input_path", required=True,
              type=PathOrUrl(exists=True, file_okay=False, distributions=extra_distributions),
              help="A TFDS/RLDS dataset dir (dataset_info.json, features.json, shards), e.g. bridge_dataset/1.0.0.")
@click.option("--output_path", "--output-path", "output_path", required=True,
              type=PathOrUrl(file_okay=False, distributions=extra_distributions))
@click.option("--cameras", metavar="K", show_default="0",
              help="The camera image_K that becomes observations/images0 (the schema holds one camera).")
@click.option("--im_size", "--im-size", "im_size", type=int, default=None, show_default="the release's size",
              help="Squash frames to im_size x im_size (antialiased Lanczos-3).")
@click.option("--num_workers", "--num-workers", "num_workers", type=int, default=default_workers(),
              show_default="all cores", help="Threads that parse and decode episodes.")
@click.option("--overwrite", is_flag=True, help="Redo outputs that already exist (default: skip them).")
@click.option("--shard", metavar="INDEX/COUNT",
              help="Convert only part INDEX of COUNT disjoint parts of the input shards "
                   "(e.g. $SLURM_ARRAY_TASK_ID/64).")
@verbose_option
@progress_interval_option
def rlds_to_tfrecord_cmd(cameras: str | None, **kwargs: Any) -> None:
    """RLDS/TFDS bridge_dataset -> <output>/<name>/[part<i>/]{train,val}/out.tfrecord (part dirs, one per input
    shard, when a split has several), streaming, one Example per episode, without tensorflow-datasets."""
    _prepare("rlds-to-tfrecord", kwargs["verbose"])
    _run("rlds-to-tfrecord", "rlds.rlds_to_tfrecord", cameras=_parse_cameras(cameras), **kwargs)


@data.command("sample")
@click.option("--out", "out", required=True, type=click.Path(path_type=Path, file_okay=False))
@click.option("--format", "fmt", type=click.Choice(["raw", "rlds"]), default="raw", show_default=True,
              help="raw: the BridgeData raw tree; rlds: a release-shaped RLDS/TFDS dataset (bridge_dataset/1.0.0).")
@click.option("--trajectories", type=int, default=None,
              help="raw: per dated directory (default 4); rlds: train episodes (default 6; val gets half).")
@click.option("--frames", type=int, default=None,
              help="Observations (raw, default 20) or steps (rlds, default 8) per trajectory.")
@click.option("--seed", default=0, show_default=True)
@verbose_option
def sample_cmd(out: Path, fmt: str, trajectories: int | None, frames: int | None, seed: int, verbose: bool) -> None:
    """Write a small synthetic dataset: a raw tree in the real BridgeData layout (convert it with --depth 5) or,
    with --format rlds, an RLDS/TFDS directory shaped like the release (convert it with rlds-to-tfrecord)."""
    _prepare("sample", verbose)
    from .rlds.sample import write_rlds_sample
    from .sample import write_sample

    try:
        if fmt == "rlds":
            train = 6 if trajectories is None else trajectories
            root = write_rlds_sample(out, episodes={"train": train, "val": max(1, train // 2)},
                                     steps=8 if frames is None else frames, seed=seed)
            click.echo(f"wrote a sample RLDS dataset to {root} (convert with rlds-to-tfrecord)")
            return
        write_sample(out, n_trajectories=4 if trajectories is None else trajectories,
                     n_frames=20 if frames is None else frames, seed=seed)
    except DataToolsError as e:
        raise click.ClickException(str(e)) from None
    click.echo(f"wrote a sample raw dataset to {out} (3 task dirs; convert with --depth 5)")


@data.command("inspect")
@click.argument("path", type=PathOrUrl(exists=True, file_okay=False, distributions=extra_distributions))
@click.option("--depth", default=5, show_default=True, help="For raw trees: levels down to the task dirs + 1.")
@click.option("--im_size", "--im-size", "im_size", type=int, default=None, help="Flag images of another size.")
@verbose_option
def inspect_cmd(path: Path, depth: int, im_size: int | None, verbose: bool) -> None:
    """Summarise a raw, numpy, TFRecord or RLDS tree; flag what a trainer would choke on (exit 1 if anything)."""
    _prepare("inspect", verbose)
    from .render import render_inspection
    from .summary import inspect_tree

    try:
        result = inspect_tree(path, depth, im_size)
    except DataToolsError as e:
        raise click.ClickException(str(e)) from None
    render_inspection(path, result, make_console(verbose=verbose))
    sys.exit(1 if result.problems else 0)


@data.command("stats")
@click.argument("path", type=PathOrUrl(exists=True, file_okay=False, distributions=extra_distributions))
@click.option("--out", "out", required=True, type=PathOrUrl(dir_okay=False, distributions=extra_distributions))
@click.option("--depth", default=5, show_default=True, help="For raw trees: levels down to the task dirs + 1.")
@click.option("--relabel/--raw-actions", default=True, show_default=True,
              help="Statistics of the actions the trainer sees (reached-state deltas, binarized gripper) or of "
                   "the raw policy actions.")
@verbose_option
def stats_cmd(path: Path, out: Path, depth: int, relabel: bool, verbose: bool) -> None:
    """Action and proprio mean/std/min/max from the data, as the trainer's metadata JSON."""
    _prepare("stats", verbose)
    from .summary import compute_stats

    try:
        stats = compute_stats(path, depth, relabel)
    except DataToolsError as e:
        raise click.ClickException(str(e)) from None
    write_atomic(out, json.dumps(stats, indent=2) + "\n")  # the trainer may be reading the previous one
    click.echo(f"wrote {out}")


def _output_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    fn = click.option("--markdown", is_flag=True, help="Print a Markdown report for a bug report.")(fn)
    return click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")(fn)


@data.command("identify")
@click.argument("path", type=PathOrUrl(exists=True, file_okay=False, distributions=extra_distributions))
@click.option("--depth", default=5, show_default=True, help="For raw trees: levels down to the task dirs + 1.")
@click.option("--all", "all_episodes", is_flag=True,
              help="RLDS: parse every episode of every shard for cameras and language (default: the first "
                   "4 episodes of up to 8 shards per split; shard and episode counts always cover everything).")
@_output_options
@verbose_option
def identify_cmd(path: Path, depth: int, all_episodes: bool, as_json: bool, markdown: bool, verbose: bool) -> None:
    """Say which BridgeData release or derivative PATH holds (full RLDS release, the Open X-Embodiment
    snapshot, an excerpt, V1 or V2 raw collections, a converted tree), what of it is present, its cameras,
    image sizes and language coverage. Compared with the fingerprints in releases.toml, each with its source.

    \b
    Examples:
      bdv2 data identify ~/tensorflow_datasets/bridge_dataset/1.0.0
      bdv2 data identify raw --json > identity.json
    """
    if as_json and markdown:
        raise click.UsageError("choose one of --json and --markdown")
    _prepare("identify", verbose)
    from . import report
    from .identify import identify

    try:
        result = identify(path, depth=depth, all_episodes=all_episodes)
    except DataToolsError as e:
        raise click.ClickException(str(e)) from None
    match report.output_format(as_json, markdown):
        case report.Format.JSON:
            click.echo(report.identification_json(result))
        case report.Format.MARKDOWN:
            click.echo(report.identification_markdown(result), nl=False)
        case report.Format.TEXT:
            report.render_identification(result, make_console(verbose=verbose), verbose)


@data.command("check")
@click.argument("path", type=PathOrUrl(exists=True, file_okay=False, distributions=extra_distributions))
@click.option("--metadata", type=PathOrUrl(exists=True, dir_okay=False, distributions=extra_distributions),
              help="Normalisation statistics to check against the data (e.g. the run's metadata.json).")
@click.option("--window", type=int, default=1, show_default=True,
              help="Transitions one training example needs (obs_horizon + act_pred_horizon - 1).")
@click.option("--relabel/--raw-actions", default=True, show_default=True,
              help="Compare statistics as the trainer sees the actions (reached-state deltas) or as recorded.")
@click.option("--quick", is_flag=True, help="What bdv2 train runs: no frames, the first 200 episodes.")
@click.option("--no-frames", is_flag=True, help="Skip the frame checks (no image decoding).")
@click.option("--episodes", "limit", type=int, default=None,
              help="Check only the first N episodes (the frame checks decode every frame of every episode).")
@click.option("--depth", default=5, show_default=True, help="For raw trees: levels down to the task dirs + 1.")
@_output_options
@verbose_option
def check_cmd(path: Path, metadata: Path | None, window: int, relabel: bool, quick: bool, no_frames: bool,
              limit: int | None, depth: int, as_json: bool, markdown: bool, verbose: bool) -> None:
    """Content health: NaN/inf, frozen or clipped actions, state jumps, black or static frames, episodes too
    short for the window, duplicates (within and across splits), blank or placeholder instructions, and
    statistics or an action contract that do not match the data. Exit 1 when something would harm training.

    \b
    Examples:
      bdv2 data check bridge_dataset/1.0.0 -v              every affected episode listed
      bdv2 data check tfr --metadata tfr/metadata.json --window 4 --json
    """
    if as_json and markdown:
        raise click.UsageError("choose one of --json and --markdown")
    if window < 1:
        raise click.BadParameter("must be at least 1", param_hint="'--window'")
    _prepare("check", verbose)
    from . import report
    from .check import Options, check_tree

    if limit is not None and limit < 1:
        raise click.BadParameter("must be at least 1", param_hint="'--episodes'")
    opts = Options(window=window, metadata=metadata, relabel=relabel, frames=not no_frames, limit=limit)
    try:
        result = check_tree(path, opts, depth=depth, quick=quick)
    except DataToolsError as e:
        raise click.ClickException(str(e)) from None
    match report.output_format(as_json, markdown):
        case report.Format.JSON:
            click.echo(report.check_json(result))
        case report.Format.MARKDOWN:
            click.echo(report.check_markdown(result), nl=False)
        case report.Format.TEXT:
            report.render_check(result, make_console(verbose=verbose), verbose)
    sys.exit(result.exit_code)


@data.command("view")
@click.argument("path", type=PathOrUrl(exists=True, file_okay=False, distributions=extra_distributions))
@click.option("--out", "out", required=True, type=click.Path(path_type=Path, dir_okay=False),
              help="The HTML page to write (self-contained: open it from disk, no server).")
@click.option("--episode", type=int, default=None, help="Show episode N (reading order, from 0) alone.")
@click.option("--sample", type=int, default=4, show_default=True, help="Otherwise, show the first N episodes.")
@click.option("--png", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Also write a PNG contact sheet (a row of frames per episode, with its instruction).")
@click.option("--depth", default=5, show_default=True, help="For raw trees: levels down to the task dirs + 1.")
@verbose_option
def view_cmd(path: Path, out: Path, episode: int | None, sample: int, png: Path | None, depth: int,
             verbose: bool) -> None:
    """Write one HTML page showing episodes of PATH: camera 0 animated and as a strip, the instruction, the
    actions and proprio plotted over time in the units of the action contract fitted on them.

    \b
    Examples:
      bdv2 data view bridge_dataset/1.0.0 --out page.html --sample 8
      bdv2 data view tfr --episode 12 --out ep12.html --png ep12.png
    """
    if sample < 1:
        raise click.BadParameter("must be at least 1", param_hint="'--sample'")
    _prepare("view", verbose)
    from .view import pick, write_contact_sheet, write_page

    try:
        eps = pick(path, episode, sample, depth)
        page = write_page(path, eps, out)
        if png is not None:
            write_contact_sheet(eps, png)
    except DataToolsError as e:
        raise click.ClickException(str(e)) from None
    click.echo(f"wrote {out}: {len(eps)} episode(s), {page.images} images, {page.plots} plots"
               + (f"; contact sheet {png}" if png else ""))
    for where in page.episodes:
        click.echo(f"  {where}")


@data.command("fetch")
@click.option("--out", "out", required=True, type=click.Path(path_type=Path, file_okay=False),
              help="Where the tree lands, in the release's layout (<out>/bridge_dataset/1.0.0/...).")
@click.option("--from", "source", metavar="URL", default=None, show_default="the public release",
              help="A mirror of https://rail.eecs.berkeley.edu/datasets/bridge_release/data/ (same layout below it).")
@click.option("--split", "splits", multiple=True, metavar="NAME",
              help="Only this split (train, val); repeat for several. Default: every split.")
@click.option("--shards", type=click.IntRange(min=1), default=None,
              help="Only the first N shards of each chosen split. Default: all.")
@click.option("--smoke", is_flag=True, help="The first shard of train and of val: enough for a first training run.")
@click.option("--raw", is_flag=True,
              help="The raw release instead: whole zip archives (demos_8_17.zip is 411 GB), resumed across runs.")
@click.option("--verify", "verify_all", is_flag=True,
              help="Check every file again, also those verified by an earlier run (re-fetch what fails).")
@click.option("--jobs", type=click.IntRange(min=1), default=1, show_default=True,
              help="Files downloaded at once (a few help where the server is slow per connection).")
@click.option("--retries", type=click.IntRange(min=0), default=3, show_default=True,
              help="Resume a dropped transfer this many times in one run before giving up.")
@verbose_option
@progress_interval_option
def fetch_cmd(out: Path, source: str | None, splits: tuple[str, ...], shards: int | None, smoke: bool, raw: bool,
              verify_all: bool, jobs: int, retries: int, verbose: bool, progress_interval: float) -> None:
    """Download the public BridgeData V2 release, or a part of it, resumably and verified: the RLDS release
    shard by shard (the list from its dataset_info.json; each shard's size, record CRCs and episode count
    checked), or the raw zips whole. A re-run continues where the last one stopped and skips what is verified.

    \b
    Examples:
      bdv2 data fetch --smoke --out ~/data                    2 shards (then: bdv2 data identify ~/data)
      bdv2 data fetch --split train --shards 64 --out ~/data  the first 64 of 1024 train shards
      bdv2 data fetch --out ~/data --jobs 4                   the whole RLDS release (re-run to resume)
      bdv2 data fetch --from http://mirror.lab/bridge/ --out /scratch/data
      bdv2 data fetch --raw --out ~/raw                       the raw zips (411 GB and more)
    """
    if smoke and (splits or shards is not None):
        raise click.UsageError("--smoke chooses its own shards; give it without --split and --shards")
    if raw and (smoke or splits or shards is not None):
        raise click.UsageError("--raw fetches whole archives; --split, --shards and --smoke are for the RLDS release")
    _prepare("fetch", verbose)
    from . import render
    from .fetch import SMOKE_SPLITS, Request, fetch

    bad = storage.check_writable(out, "--out")
    if bad is not None:
        raise click.ClickException(f"--out {bad}")
    request = Request(out, source, SMOKE_SPLITS if smoke else (splits or None), 1 if smoke else shards, raw,
                      verify_all, jobs, retries)
    console = make_console(stderr=True, verbose=verbose)
    try:
        with render.fetch_progress(console, progress_interval) as sink:
            result = fetch(request, sink)
    except DataToolsError as e:
        raise click.ClickException(str(e)) from None
    render.render_fetch(result, make_console(verbose=verbose))


if __name__ == "__main__":
    data()
