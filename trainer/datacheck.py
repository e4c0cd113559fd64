"""The data preflight of `bdv2 train`: before any run starts, the quick part of `bdv2 data check` on each run's
training sources, against the run's metadata (statistics and action contract) and, for a run being resumed,
against the statistics it stored when it started (its config.json); for a run that starts
from another checkpoint (`init_from`, e.g. an imported original), that checkpoint's action contract against
the data it will be fine-tuned on. `--skip-data-check` turns it off.

Runs that share sources, metadata and the settings the check depends on are checked once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape

from bdv2.paths import AnyPath, as_path

from .model import Run


@dataclass
class DataVerdict:
    runs: list[str]
    result: Any
    """data_tools.check.CheckResult"""
    init_from: list[str] = field(default_factory=list)
    """Disagreements between an init_from checkpoint's action contract and the data's."""
    stored: list[str] = field(default_factory=list)
    """Disagreements between a resumed run's stored statistics (its config.json) and the data's contract."""
    notes: list[str] = field(default_factory=list)

    @property
    def errors(self) -> int:
        from bdv2.data_tools.check import Severity

        return sum(f.severity is Severity.ERROR for f in self.result.findings) + len(self.init_from) + \
            len(self.stored)


def _window(run: Run) -> int:
    s = run.settings
    return (s.obs_horizon or 1) + (s.act_pred_horizon or 1) - 1


def _key(run: Run) -> tuple[Any, ...]:
    s = run.settings
    files = tuple(f for src in run.task.sources for f in src.train_files)
    dirs = tuple(d for src in run.task.sources for d in src.rlds_train)
    return files, dirs, run.task.metadata, s.relabel_actions, _window(run), s.init_from


def _init_from_contract(path: str) -> tuple[Any, str]:
    """(the contract of the checkpoint `path` starts from, or None; a note when it cannot be read)."""
    from bdv2.data_tools import contract

    from . import ckpt_tree
    from .errors import TrainerError

    try:
        run_dir, _ = ckpt_tree.locate(Path(path))
        meta = ckpt_tree.read_snapshot(run_dir)["metadata"]
    except TrainerError as e:
        return None, f"init_from {path}: {e}"
    try:
        return contract.from_statistics(meta), ""
    except ValueError as e:
        return None, f"init_from {path}: {e}"


def check_runs(runs: list[Run], resume: bool = True) -> list[DataVerdict]:
    """The quick data check of every distinct (sources, metadata, settings) among `runs`; with `resume`, a run
    that has a config.json is checked against the statistics stored there too."""
    from bdv2.data_tools import contract
    from bdv2.data_tools.check import Options, quick_check_sources

    verdicts: dict[tuple[Any, ...], DataVerdict] = {}
    for run in runs:
        key = _key(run)
        if key in verdicts:
            verdicts[key].runs.append(run.name)
            continue
        files, dirs, metadata, relabel, window, init_from = key
        opts = Options(window=window, metadata=as_path(metadata), relabel=relabel, frames=False)
        result = quick_check_sources([as_path(f) for f in files], [as_path(d) for d in dirs], opts)
        verdict = DataVerdict([run.name], result)
        if init_from and result.contract is not None:
            theirs, note = _init_from_contract(init_from)
            if theirs is not None:
                ours = contract.ActionContract.from_dict(result.contract)
                verdict.init_from = contract.compare(theirs, ours, f"the checkpoint {init_from}", "this data")
            elif note:
                verdict.notes.append(note)
        verdicts[key] = verdict
    for run in runs if resume else []:  # a resumed run trains on with the statistics it stored when it started
        v = verdicts[_key(run)]
        snapshot = run.workdir / "config.json"
        if snapshot.is_file() and v.result.contract is not None:
            v.stored += _stored(snapshot, contract.ActionContract.from_dict(v.result.contract))
    return list(verdicts.values())


def _stored(snapshot: AnyPath, ours: Any) -> list[str]:
    import json

    from bdv2.data_tools import contract

    try:
        theirs = contract.from_statistics(json.loads(snapshot.read_text())["metadata"])
    except (OSError, ValueError, KeyError, TypeError):
        return []  # not a snapshot this check can read; resuming reports it
    return [] if theirs is None else contract.compare(theirs, ours, f"the resumed run's {snapshot}",
                                                      "this data")


def render(verdicts: list[DataVerdict], console: Console) -> None:
    from bdv2.data_tools.report import render_check

    for v in verdicts:
        console.print(f"data check for {', '.join(v.runs)}:", highlight=False)
        render_check(v.result, console)
        for line in v.init_from:
            console.print(f"  [red]✗[/] {escape(line)}  [dim](init_from_contract)[/]", highlight=False)
        for line in v.stored:
            console.print(f"  [red]✗[/] {escape(line)}  [dim](stored_contract)[/]", highlight=False)
        for note in v.notes:
            console.print(f"  [yellow]note[/]: {escape(note)}", highlight=False)
