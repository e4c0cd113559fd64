"""Render findings for people (rich), machines (--json) and bug reports (--markdown).

This is the only module that formats output; ``console`` is passed in, never global.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any, assert_never

from rich.console import Console
from rich.markup import escape

from .findings import AREA_TITLES, Area, Finding, Severity, exit_code
from .matrix.groups import TENSORFLOW, TFP, members
from .probe.snapshot import ProbeStatus, Snapshot
from .repair.envfile import SCRIPT_NAME, describe_op
from .repair.model import Plan, Recheck, Step, StepStatus, Target, TargetKind

if TYPE_CHECKING:
    from .repair.pipmove import Preview

JSON_SCHEMA = 1
_MARK = {Severity.ERROR: "[red]✗[/]", Severity.WARNING: "[yellow]![/]", Severity.INFO: "[blue]i[/]"}
_SECRET = re.compile(r"TOKEN|KEY|SECRET|PASSW|CREDENTIAL|AUTH|COOKIE", re.IGNORECASE)


def counts(findings: list[Finding]) -> dict[str, int]:
    return {s.value + "s": sum(f.severity is s for f in findings) for s in Severity}


def _areas(findings: list[Finding], snap: Snapshot | None) -> list[Area]:
    shown = [Area.PACKAGES, Area.ENV] if snap is not None else []
    if snap is not None and (snap.nvidia_libs or snap.system.driver.known
                             or snap.dist("jax-cuda12-plugin") or snap.dist("jax-cuda13-plugin")):
        shown += [Area.CUDA, Area.DRIVER]
    if snap is not None and snap.probes:
        shown.append(Area.RUNTIME)
    for f in findings:
        if f.area not in shown:
            shown.append(f.area)
    return [a for a in Area if a in shown]


def render_text(findings: list[Finding], snap: Snapshot | None, console: Console, verbose: bool = False,
                strict: bool = False, timings: dict[str, float] | None = None) -> None:
    if snap is not None:
        py = snap.python
        console.print(f"[bold]bdv2 doctor[/] · Python {py.get('version')} · {escape(str(py.get('executable')))}"
                      f" · {len(snap.distributions)} distributions")
    for area in _areas(findings, snap):
        here = [f for f in findings if f.area is area]
        worst = min((f.severity.rank for f in here), default=3)
        mark = {0: "[red]✗[/]", 1: "[yellow]![/]"}.get(worst, "[green]✓[/]")
        console.print(f"\n{mark} [bold]{AREA_TITLES[area]}[/]" + ("" if here else "  no problems found"))
        if area is Area.RUNTIME and snap is not None and verbose:
            for p in snap.probes:
                skipped = p.status is ProbeStatus.SKIPPED and p.error
                console.print(f"    probe {p.name:18} {p.status.value:8} {p.seconds:5.1f}s"
                              + (f"  {escape(p.error.splitlines()[0])}" if skipped else ""))
        for f in here:
            console.print(f"  {_MARK[f.severity]} {escape(f.title)}  [dim]({f.id})[/]")
            if verbose or f.area is Area.LOG:
                for line in f.evidence[: None if verbose else 10]:
                    console.print(f"      [dim]{escape(line)}[/]")
                if f.source:
                    console.print(f"      [dim]source: {escape(f.source)}[/]")
            if f.fix is not None and (f.severity is not Severity.INFO or f.id == "nearest-row"):
                console.print(f"      fix: {escape(f.fix.summary)}")
                for cmd in f.fix.commands:
                    console.print(f"        [cyan]$ {escape(cmd)}[/]")
                for op in f.fix.env_ops:
                    console.print(f"        [cyan]{escape(describe_op(op))}[/]")
    c = counts(findings)
    code = exit_code(findings, strict)
    if snap is None:  # a log, not an environment
        verdict = "[red]known cause found[/]" if code else "[yellow]no known cause[/]"
    else:
        verdict = "[green]healthy[/]" if code == 0 else "[red]problems remain[/]"
    console.print(f"\n{verdict}: {c['errors']} error(s), {c['warnings']} warning(s), {c['infos']} note(s)"
                  + ("" if verbose else "  ·  -v shows the evidence"))
    if verbose and timings:
        console.print("[dim]timings: " + ", ".join(f"{k} {v:.2f}s" for k, v in timings.items()) + "[/]")


def to_json(findings: list[Finding], snap: Snapshot | None, strict: bool = False,
            timings: dict[str, float] | None = None, extra: dict[str, Any] | None = None) -> str:
    from bdv2 import __version__

    doc: dict[str, Any] = {
        "schema": JSON_SCHEMA,
        "bdv2_version": __version__,
        "exit_code": exit_code(findings, strict),
        "summary": counts(findings),
        "target": None if snap is None else {
            "python": snap.python.get("version"), "executable": snap.python.get("executable"),
            "prefix": snap.python.get("prefix"), "distributions": len(snap.distributions),
        },
        "probes": [] if snap is None else [
            {"name": p.name, "status": p.status.value, "seconds": round(p.seconds, 3)} for p in snap.probes
        ],
        "findings": [f.to_dict() for f in findings],
        "timings": {k: round(v, 3) for k, v in (timings or {}).items()},
    }
    if extra:
        doc.update(extra)
    return json.dumps(doc, indent=2)


def redact_env(env: dict[str, str]) -> dict[str, str]:
    return {k: ("<redacted>" if _SECRET.search(k) else v) for k, v in env.items()}


def to_markdown(findings: list[Finding], snap: Snapshot | None, strict: bool = False) -> str:
    """A report to paste into a bug report; values of secret-looking variables are redacted."""
    c = counts(findings)
    lines = ["## bdv2 doctor report", ""]
    if snap is not None:
        lines += [f"- Python {snap.python.get('version')} (`{snap.python.get('executable')}`), "
                  f"{snap.markers.get('platform_system', '')} {snap.markers.get('platform_machine', '')}",
                  f"- {len(snap.distributions)} distributions; key versions: " + ", ".join(
                      f"{d.name} {d.version}" for d in snap.distributions if d.key in _key_packages())]
    code = exit_code(findings, strict)
    lines += [f"- result: {c['errors']} error(s), {c['warnings']} warning(s), exit code {code}", ""]
    for area in Area:
        here = [f for f in findings if f.area is area]
        if not here:
            continue
        lines += [f"### {AREA_TITLES[area]}", ""]
        for f in here:
            lines.append(f"- **{f.severity.value}** `{f.id}`: {f.title}")
            for ev in f.evidence:
                lines.append(f"  - {ev}")
            if f.fix:
                lines.append(f"  - fix: {f.fix.summary}")
                lines += [f"    - `{cmd}`" for cmd in f.fix.commands]
        lines.append("")
    if snap is not None and snap.env:
        lines += ["### Environment variables", "", "```"]
        lines += [f"{k}={v}" for k, v in sorted(redact_env(snap.env).items())]
        lines += ["```", ""]
    return "\n".join(lines)


_KEY_PACKAGES = {
    "jax", "jaxlib", "jax-cuda12-plugin", "jax-cuda12-pjrt", "jax-cuda13-plugin", "jax-cuda13-pjrt", "flax",
    "optax", "chex", "distrax", "orbax-checkpoint", "tensorstore", "ml-dtypes", "numpy", "scipy",
    "nvidia-cudnn-cu12", "nvidia-cudnn-cu13",
}


def _key_packages() -> set[str]:
    """The packages a bug report lists: the ones above and every distribution of TensorFlow's and TFP's groups."""
    return _KEY_PACKAGES | set(members(TENSORFLOW)) | set(members(TFP))


# -- bdv2 doctor --fix (rendering of doctor/repair/model.py's Plan, Steps and Recheck) ------------------------------

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
    if rc.fixed:
        console.print(f"  [green]✓[/] now healthy: {escape(', '.join(rc.fixed))}")
    if rc.probes_ok:
        console.print(f"  [green]✓[/] probes that pass now: {escape(', '.join(rc.probes_ok))}")
    if rc.probes_failing:
        console.print(f"  [red]✗[/] probes still failing: {escape(', '.join(rc.probes_failing))}")
    left = [f for f in rc.findings if f.severity is not Severity.INFO]
    for f in left:
        console.print(f"  {_MARK[f.severity]} still: {escape(f.title)}  [dim]({f.id})[/]")
    verdict = "[green]healthy[/]" if exit_code(rc.findings) == 0 else "[red]problems remain[/]"
    console.print(f"  {verdict}")
