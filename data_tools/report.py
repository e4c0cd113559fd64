"""What `bdv2 data identify` and `bdv2 data check` print: for people (rich; plain in logs), as one JSON
object, or as Markdown for a bug report, like `bdv2 doctor`. rich and stdlib only; the results come in as
identify.Identification and check.CheckResult (typed as Any so this module imports neither)."""

from __future__ import annotations

import enum
import json
from typing import Any

from rich.console import Console
from rich.markup import escape

from bdv2 import __version__

_MARK = {"error": "[red]✗[/]", "warning": "[yellow]![/]", "info": "[blue]i[/]"}


class Format(enum.Enum):
    TEXT = "text"
    JSON = "json"
    MARKDOWN = "markdown"


def output_format(as_json: bool, markdown: bool) -> Format:
    return Format.JSON if as_json else Format.MARKDOWN if markdown else Format.TEXT


# -- identify ------------------------------------------------------------------------------------------------

def _contract_line(c: dict[str, Any]) -> str:
    g = c["gripper"]
    return (f"frame {c['frame']}, {c['units']} (scale {c['scale']:.3g}, R² {c['fit'].get('translation', 0):.2f}), "
            f"latency {c['latency']} step(s) (R² margin {c['fit'].get('latency_margin', 0):.2f}, "
            f"{c['fit'].get('steps', 0):.0f} steps), gripper {g['range']} "
            f"{'binary' if g['binary'] else 'continuous'}, {g['polarity']}")


def _size(n: int) -> str:
    return f"{n / 1e9:.2f} GB" if n >= 1e9 else f"{n / 1e6:.1f} MB"


def _identity_lines(r: Any) -> list[str]:
    """The facts of an Identification as plain sentences (shared by text and Markdown)."""
    best = r.best
    lines = []
    if best is not None:
        lines.append(f"identified as: {best.verdict} {best.title} [{best.release}]")
    else:
        lines.append("identified as: no known release (see the comparisons)")
    if r.dataset_name:
        lines.append(f"dataset: {r.dataset_name} {r.version}")
    if r.keys:
        lines.append(f"keys: {r.key_title} [{r.keys}]")
    if r.generation:
        lines.append(f"generation: {r.generation}")
    if r.collections:
        lines.append("collections: " + ", ".join(f"{k} ({v})" for k, v in sorted(r.collections.items())))
    if r.converted_from:
        lines.append(f"converted from: {r.converted_from}")
    lines.append(f"episodes: {r.episodes_total:,} (parsed for cameras and language: {r.episodes_parsed:,}"
                 + (f", {r.steps_parsed:,} steps)" if r.steps_parsed else ")"))
    for s in r.splits:
        part = f"split {s.name}: {s.episodes_present:,} episodes"
        if s.shards_declared:
            part += (f" in {s.shards_present}/{s.shards_declared} shards ({_size(s.bytes_present)}), "
                     f"{s.episodes_declared:,} declared")
        lines.append(part + ("" if not s.missing else f"; {len(s.missing)} shards missing"))
        lines += [f"  damaged: {d}" for d in s.damaged[:10]]
    if r.cameras_declared:
        lines.append("cameras declared: " + ", ".join(r.cameras_declared))
    if r.cameras:
        lines.append("cameras with images: " + ", ".join(f"{k} ({v} episodes)" for k, v in r.cameras.items()))
    for shard, cams in list(r.shards_without_images.items())[:20]:
        lines.append(f"  no images in {shard}: {', '.join(cams)}")
    if r.image_sizes:
        lines.append("image sizes: " + ", ".join(f"{k} ({v})" for k, v in r.image_sizes.items()))
    if r.contract:
        lines.append("action contract (recorded actions): " + _contract_line(r.contract))
    if r.language:
        lg = r.language
        lines.append(f"language: {lg['labeled']} of {lg['episodes']} episodes labeled, {lg['blank']} blank, "
                     f"{lg['distinct']} distinct instructions")
    return lines


def render_identification(r: Any, console: Console, verbose: bool = False) -> None:
    console.print(f"[bold]bdv2 data identify[/] · {escape(r.path)} ({r.format})")
    for line in _identity_lines(r):
        console.print(escape(line), highlight=False)
    for note in r.notes:
        console.print(f"[yellow]note[/]: {escape(note)}", highlight=False)
    console.print("\ncompared with the known releases (data_tools/releases.toml):")
    for m in r.matches:
        console.print(f"  {m.verdict:14} {escape(m.title)} [dim]{escape('[' + m.release + ']')}[/]", highlight=False)
        if verbose:
            for ev in m.evidence:
                console.print(f"      [dim]{escape(ev)}[/]", highlight=False)
            for fact, src in m.sources.items():
                console.print(f"      [dim]source ({fact}): {escape(src)}[/]", highlight=False)
    if not verbose:
        console.print("[dim]-v shows the evidence and the sources[/]")


def identification_markdown(r: Any) -> str:
    lines = ["## bdv2 data identify", "", f"- path: `{r.path}` ({r.format})"]
    lines += [f"- {line.strip()}" for line in _identity_lines(r)]
    lines += [f"- note: {n}" for n in r.notes]
    lines += ["", "### Known releases", ""]
    for m in r.matches:
        lines.append(f"- **{m.verdict}** {m.title} (`{m.release}`)")
        lines += [f"  - {ev}" for ev in m.evidence]
        lines += [f"  - source ({fact}): {src}" for fact, src in m.sources.items()]
    return "\n".join(lines) + "\n"


def identification_json(r: Any) -> str:
    return json.dumps({"schema": 1, "bdv2_version": __version__, **r.to_dict()}, indent=2)


# -- check ---------------------------------------------------------------------------------------------------

def render_check(r: Any, console: Console, verbose: bool = False) -> None:
    what = "quick check" if r.quick else "check"
    console.print(f"[bold]bdv2 data {what}[/] · {escape(r.path)} ({r.kind}) · {r.episodes:,} episodes, "
                  f"{r.steps:,} transitions")
    for f in r.findings:
        console.print(f"  {_MARK[f.severity.value]} {escape(f.title)}  [dim]({f.id})[/]", highlight=False)
        for line in f.evidence[: None if verbose else 3]:
            console.print(f"      [dim]{escape(line)}[/]", highlight=False)
        if f.fix and f.severity.value != "info":
            console.print(f"      fix: {escape(f.fix)}", highlight=False)
        if verbose and f.episodes:
            console.print("      episodes:", highlight=False)
            for ep in f.episodes:
                console.print(f"        {escape(ep)}", highlight=False)
    if r.contract:
        console.print(f"action contract ({r.contract['actions']} actions): {_contract_line(r.contract)}",
                      highlight=False)
    d = r.to_dict()["counts"]
    verdict = "[red]not safe to train on as it is[/]" if r.exit_code else "[green]no harmful problem found[/]"
    console.print(f"\n{verdict}: {d['error']} error(s), {d['warning']} warning(s), {d['info']} note(s)"
                  + ("" if verbose else "  ·  -v lists every affected episode"))


def check_markdown(r: Any) -> str:
    d = r.to_dict()
    lines = ["## bdv2 data check", "", f"- path: `{r.path}` ({r.kind}), {r.episodes} episodes, {r.steps} transitions",
             f"- result: {d['counts']['error']} error(s), {d['counts']['warning']} warning(s), exit code {r.exit_code}"]
    if r.contract:
        lines.append(f"- action contract: `{json.dumps(r.contract)}`")
    lines.append("")
    for f in r.findings:
        lines.append(f"- **{f.severity.value}** `{f.id}`: {f.title}")
        lines += [f"  - {ev}" for ev in f.evidence]
        if f.fix:
            lines.append(f"  - fix: {f.fix}")
    return "\n".join(lines) + "\n"


def check_json(r: Any) -> str:
    return json.dumps({"schema": 1, "bdv2_version": __version__, **r.to_dict()}, indent=2)
