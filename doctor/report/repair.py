"""``bdv2 doctor --fix``: the plan, the resolver's preview, the steps taken and the check afterwards, for people."""

from __future__ import annotations

from typing import TYPE_CHECKING, assert_never

from rich.console import Console
from rich.markup import escape

from ..findings import Severity, exit_code
from ..repair.envfile import SCRIPT_NAME, describe_op
from ..repair.model import Plan, Recheck, Step, StepStatus, Target, TargetKind
from ._common import MARK

if TYPE_CHECKING:
    from ..repair.pipmove import Preview


def render_plan(plan: Plan, target: Target, console: Console, commands: tuple[list[str], str] | None = None) -> None:
    """``commands``: the version moves as the environment's installer runs them, and a note (default: pip's)."""
    console.print("\n[bold]Repair plan[/]" + ("  nothing to fix" if plan.empty else ""))
    if plan.env_ops:
        where = _where(target)
        console.print(f"  environment edits ({escape(where)}), from {escape(', '.join(plan.because))}:")
        for op in plan.env_ops:
            console.print(f"    {escape(describe_op(op))}")
    if plan.pip:
        source = "from the findings' own fixes" if plan.own_fixes else f"to row '{escape(plan.row)}'"
        console.print(f"  version moves {source} (with {escape(plan.python)}):")
        for line in plan.changes:
            console.print(f"    [dim]{escape(line)}[/]")
        shown, note = commands if commands is not None else (list(plan.pip), "")
        for cmd in shown:
            console.print(f"    [cyan]$ {escape(cmd)}[/]")
        if note:
            console.print(f"    [dim]({escape(note)})[/]")
    for note in plan.notes:
        console.print(f"  [yellow]note:[/] {escape(note)}")


def render_preview(pv: Preview, row: str, console: Console) -> None:
    """The resolver's answer to the plan's version moves: one 'name: old -> new' line each."""
    console.print(f"  the resolver's preview ({escape(pv.installer.name)}, --dry-run with row '{escape(row)}' "
                  "constraints):")
    for c in pv.changes:
        console.print(f"    {escape(c.line())}")
    if not pv.changes:
        console.print("    nothing to change")


def _where(target: Target) -> str:
    match target.kind:
        case TargetKind.VENV:
            return f"{target.prefix}/bin/{SCRIPT_NAME}, sourced by bin/activate"
        case TargetKind.CONDA:
            return f"{target.prefix}/etc/conda/activate.d/{SCRIPT_NAME}"
        case TargetKind.SYSTEM:
            return "this shell only: eval \"$(bdv2 doctor --fix --print-env)\""
        case _:
            assert_never(target.kind)


def _step_mark(status: StepStatus) -> str:
    match status:
        case StepStatus.APPLIED:
            return "[green]✓[/]"
        case StepStatus.UNCHANGED:
            return "[dim]=[/]"
        case StepStatus.SKIPPED:
            return "[yellow]-[/]"
        case StepStatus.FAILED:
            return "[red]✗[/]"
        case _:
            assert_never(status)


def render_steps(title: str, steps: list[Step], console: Console) -> None:
    console.print(f"\n[bold]{escape(title)}[/]")
    for s in steps:
        console.print(f"  {_step_mark(s.status)} {s.status.value:9} {escape(s.what)}")
        for line in s.detail.splitlines():
            console.print(f"      [dim]{escape(line)}[/]")


def render_recheck(rc: Recheck, console: Console) -> None:
    console.print("\n[bold]After the fix[/]")
    if rc.fixed and not rc.probes_failing:
        console.print(f"  [green]✓[/] now healthy: {escape(', '.join(rc.fixed))}")
    elif rc.fixed:  # the rules are satisfied, but the runtime probes say the environment still does not work
        console.print(f"  [yellow]-[/] gone from the static check, not yet working: {escape(', '.join(rc.fixed))}")
    if rc.probes_ok:
        console.print(f"  [green]✓[/] probes that pass now: {escape(', '.join(rc.probes_ok))}")
    if rc.probes_failing:
        console.print(f"  [red]✗[/] probes still failing: {escape(', '.join(rc.probes_failing))}")
    left = [f for f in rc.findings if f.severity is not Severity.INFO]
    for f in left:
        console.print(f"  {MARK[f.severity]} still: {escape(f.title)}  [dim]({f.id})[/]")
    verdict = "[green]healthy[/]" if exit_code(rc.findings) == 0 else "[red]problems remain[/]"
    console.print(f"  {verdict}")
