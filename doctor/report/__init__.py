"""Render findings: for people (``text.py``, rich), for machines (``json.py``, ``--json``, schema 1) and for bug
reports (``markdown.py``, ``--markdown``); ``repair.py`` renders ``--fix``'s plan, steps and recheck.

``render`` picks the renderer of the request's output format; each formats, nothing here decides.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, assert_never

from ..findings import Finding
from ..lazy import lazy_names
from ..probe.snapshot import Snapshot
from ..request import OutputFormat
from ._common import counts, redact_env

if TYPE_CHECKING:
    from rich.console import Console

    from .json import JSON_SCHEMA, to_json
    from .markdown import to_markdown
    from .repair import render_plan, render_preview, render_recheck, render_steps
    from .text import render_text

__all__ = ["JSON_SCHEMA", "OutputFormat", "counts", "redact_env", "render", "render_plan", "render_preview",
           "render_recheck", "render_steps", "render_text", "to_json", "to_markdown"]


_RENDERERS = {"JSON_SCHEMA": ".json", "to_json": ".json", "to_markdown": ".markdown", "render_text": ".text",
              **dict.fromkeys(("render_plan", "render_preview", "render_recheck", "render_steps"), ".repair")}
"""Each renderer's module, imported on first use: --json loads no rich, a plain check no repair report."""


__getattr__ = lazy_names(__name__, _RENDERERS, globals())


def render(output: OutputFormat, findings: list[Finding], snap: Snapshot | None, console: Console | None,
           echo: Callable[[str], Any], *, timings: dict[str, float] | None = None, strict: bool = False,
           verbose: bool = False, extra: dict[str, Any] | None = None) -> None:
    """Write the report in ``output``: text to ``console`` (needed for text only), JSON and Markdown as one string
    through ``echo``. ``extra``: more top-level keys of the JSON object (the plan of --fix --dry-run --json)."""
    match output:
        case OutputFormat.TEXT:
            from .text import render_text

            assert console is not None, "text needs a console"
            render_text(findings, snap, console, verbose=verbose, strict=strict, timings=timings)
        case OutputFormat.JSON:
            from .json import to_json

            echo(to_json(findings, snap, strict, timings, extra=extra))
        case OutputFormat.MARKDOWN:
            from .markdown import to_markdown

            echo(to_markdown(findings, snap, strict))
        case _:
            assert_never(output)
