"""Read a log or traceback and name the cause: the matrix's signatures are regexes over real wordings.

The patterns match the message body, never paths or line numbers, so a log from any machine
can be read anywhere. Harmless noise (signatures with ``noise = true``) is recognised so it is
never reported as the cause.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from .findings import Area, Finding, Fix, Severity

if TYPE_CHECKING:
    from .matrix import Matrix, Signature

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_RELEVANT = re.compile(
    r"error|exception|fatal|fail|traceback|cannot|can't|unable|not found|abort|segmentation fault|core dumped|"
    r"killed|out of memory|no such file|undefined symbol", re.IGNORECASE)


def clean(text: str) -> str:
    return _ANSI.sub("", text).replace("\r\n", "\n")


def match_text(text: str, matrix: Matrix) -> list[Signature]:
    """Signatures whose pattern occurs in ``text``, in catalogue order (the more specific first)."""
    text = clean(text)
    return [s for s in matrix.signatures if s.pattern.search(text)]


def _line_of(text: str, m: re.Match[str]) -> str:
    start = text.rfind("\n", 0, m.start()) + 1
    end = text.find("\n", m.end())
    line = text[start:end if end != -1 else len(text)].strip()
    return line if len(line) <= 400 else line[:400] + " ..."


def diagnose_log(text: str, matrix: Matrix, name: str = "log") -> list[Finding]:
    """Findings for every known cause in a log; if none is known, say so and show the likely lines."""
    text = clean(text)
    out: list[Finding] = []
    for sig in matrix.signatures:
        m = sig.pattern.search(text)
        if not m:
            continue
        count = len(sig.pattern.findall(text))
        evidence = [f"{name}: {_line_of(text, m)}"] + ([f"(matched {count} times)"] if count > 1 else [])
        out.append(Finding(
            id=sig.id, severity=Severity.INFO if sig.noise else sig.severity, area=Area.LOG,
            title=("harmless: " if sig.noise else "") + sig.cause, evidence=tuple(evidence),
            fix=Fix(sig.fix, sig.commands, dict(sig.env)), source=sig.source,
        ))
    if not any(f.severity is not Severity.INFO for f in out):
        all_lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
        lines = [ln for ln in all_lines if _RELEVANT.search(ln)] or all_lines[-5:]
        out.append(Finding(
            id="log-no-known-cause", severity=Severity.WARNING, area=Area.LOG,
            title=f"no known cause found in {name}",
            evidence=tuple(lines[-10:]) or ("(no line looks like an error)",),
            fix=Fix("run `bdv2 doctor --deep` on the machine that produced the log, and attach its "
                    "`--markdown` report to a bug report"),
        ))
    return out
