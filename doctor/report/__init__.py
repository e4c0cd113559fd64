"""Render findings: for people (``text.py``, rich), for machines (``json.py``, ``--json``, schema 1) and for bug
reports (``markdown.py``, ``--markdown``); ``repair.py`` renders ``--fix``'s plan, steps and recheck.

``render`` picks the renderer of the request's output format; each formats, nothing here decides.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, assert_never

from rich.console import Console

from ..findings import Finding
from ..probe.snapshot import Snapshot
from ..request import OutputFormat
from ._common import counts, redact_env
from .json import JSON_SCHEMA, to_json
from .markdown import to_markdown
from .repair import render_plan, render_preview, render_recheck, render_steps
from .text import render_text

__all__ = ["JSON_SCHEMA", "OutputFormat", "counts", "redact_env", "render", "render_plan", "render_preview",
           "render_recheck", "render_steps", "render_text", "to_json", "to_markdown"]


def render(output: OutputFormat, findings: list[Finding], snap: Snapshot | None, console: Console,
           echo: Callable[[str], Any], *, timings: dict[str, float] | None = None, strict: bool = False,
           verbose: bool = False, extra: dict[str, Any] | None = None) -> None:
    """Write the report in ``output``: text to ``console``, JSON and Markdown as one string through ``echo``.
    ``extra``: more top-level keys of the JSON object (the plan of --fix --dry-run --json)."""
    match output:
        case OutputFormat.TEXT:
            render_text(findings, snap, console, verbose=verbose, strict=strict, timings=timings)
        case OutputFormat.JSON:
            echo(to_json(findings, snap, strict, timings, extra=extra))
        case OutputFormat.MARKDOWN:
            echo(to_markdown(findings, snap, strict))
        case _:
            assert_never(output)
