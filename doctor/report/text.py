"""The report for people: rich, grouped by area, one line per finding (``-v`` adds evidence and sources)."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape

from ..findings import AREA_TITLES, Area, Finding, Severity, exit_code
from ..probe.snapshot import ProbeStatus, Snapshot
from ..rooms import missing_rooms
from ._common import MARK, areas, counts


def render_text(findings: list[Finding], snap: Snapshot | None, console: Console, verbose: bool = False,
                strict: bool = False, timings: dict[str, float] | None = None) -> None:
    if snap is not None:
        py = snap.python
        console.print(f"[bold]bdv2 doctor[/] · Python {py.get('version')} · {escape(str(py.get('executable')))}"
                      f" · {len(snap.distributions)} distributions")
    for area in areas(findings, snap):
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
            console.print(f"  {MARK[f.severity]} {escape(f.title)}  [dim]({f.id})[/]")
            if verbose or f.area is Area.LOG:
                for line in f.evidence[: None if verbose else 10]:
                    console.print(f"      [dim]{escape(line)}[/]")
                if f.source:
                    console.print(f"      [dim]source: {escape(f.source)}[/]")
            if f.fix is not None and (f.severity is not Severity.INFO or f.id == "nearest-row"):
                console.print(f"      fix: {escape(f.fix.summary)}")
                for cmd in f.fix.commands:
                    console.print(f"        [cyan]$ {escape(cmd)}[/]")
                if f.fix.env_ops:
                    from ..repair.envfile import describe_op  # the repair wing loads only for an env edit
                for op in f.fix.env_ops:
                    console.print(f"        [cyan]{escape(describe_op(op))}[/]")
    c = counts(findings)
    code = exit_code(findings, strict)
    if snap is None:  # a log, not an environment
        verdict = "[red]known cause found[/]" if code else "[yellow]no known cause[/]"
    else:
        examined = [AREA_TITLES[a].lower() for a in areas(findings, snap)]
        console.print(f"\nexamined: {', '.join(examined)} ({len(snap.distributions)} distributions' metadata)"
                      + ("" if snap.probes else "; imports and calls not tried (--deep tries them)"))
        missing = missing_rooms(snap)
        for room in missing:
            console.print(f"[yellow]![/] {escape(room.sentence())}")
        if code:
            verdict = "[red]problems remain[/]"
        elif any(m.room == "train" for m in missing):
            verdict = "[yellow]no problems in what is installed, but it cannot train[/]"
        else:
            verdict = "[green]healthy[/]"
    console.print(f"\n{verdict}: {c['errors']} error(s), {c['warnings']} warning(s), {c['infos']} note(s)"
                  + ("" if verbose else "  ·  -v shows the evidence"))
    if verbose and timings:
        console.print("[dim]timings: " + ", ".join(f"{k} {v:.2f}s" for k, v in timings.items()) + "[/]")


