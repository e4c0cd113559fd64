"""Read a log or traceback and name the cause: the matrix's signatures are regexes over real wordings, and the
log's structure (tracebacks.py, resolver.py, loader.py) names causes no single wording covers.

The patterns match the message body, never paths or line numbers, so a log from any machine
can be read anywhere. Harmless noise (signatures with ``noise = true``) is recognised so it is
never reported as the cause.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from ..findings import Area, Finding, Fix, Severity
from .loader import LoaderKind, loader_findings, lookups
from .resolver import resolver_findings
from .tracebacks import Lack, blames, last_exception, traceback_findings

if TYPE_CHECKING:
    from ..matrix.load import Matrix, Signature

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


# Signatures that name a symptom rather than its cause: a structural finding (the loader's trace, a resolver's
# refusal, a traceback's missing name) ranks above them (tests/doctor/test_log_ranking.py).
GENERIC = frozenset({"sig-cuda-backend-failed"})
_NOISE_LINE = re.compile(r"cpu_feature_guard|oneDNN custom operations|absl::InitializeLog|Unable to register "
                         r"(cuDNN|cuFFT|cuBLAS) factory|TF-TRT Warning|computation_placer|NUMA node")
_SHOWN = 8
_LOADER_IDS = {k.value for k in LoaderKind}


def _signature_finding(sig: Signature, text: str, line: str, name: str) -> Finding:
    count = len(sig.pattern.findall(text))
    evidence = [f"{name}: {line}"] + ([f"(matched {count} times)"] if count > 1 else [])
    return Finding(
        id=sig.id, severity=Severity.INFO if sig.noise else sig.severity, area=Area.LOG,
        title=("harmless: " if sig.noise else "") + sig.cause, evidence=tuple(evidence),
        fix=Fix(sig.fix, sig.commands, dict(sig.env)), source=sig.source,
    )


# Other wordings of a catalogued message, restated in the wording the catalogue's patterns know, so that one pattern
# covers every era and layout of it; the finding keeps the log's own line as evidence.
_VERSION_CHECK = re.compile(r"(?P<lib>[\w-]+) is version (?P<have>[\w.+]+),? but this version of (?P<pkg>[\w-]+) "
                            r"requires version (?:>= ?)?(?P<need>\d[\w.]*?)\.?$", re.MULTILINE)  # before jax 0.3
# jaxlib bundles XLA as an external repository: its own loader lines say `external/...dso_loader.cc` and are the
# cause; TensorFlow's (`tensorflow/...dso_loader.cc`) are usually harmless probes for optional libraries
_BUNDLED_LOADER = re.compile(r"external/\S*dso_loader\.cc:\d+\] Could not load dynamic library '(?P<lib>[^']+)'; "
                             r"dlerror: (?P=lib): cannot open shared object file")


def restatements(text: str) -> list[tuple[str, str]]:
    """(the catalogue's wording, the log's line) for each message the log words differently."""
    out = [(f"{m['lib']} is version {m['have']}, but this version of {m['pkg']} requires version >= {m['need']}",
            m[0]) for m in _VERSION_CHECK.finditer(text)]
    out += [(f"{m['lib']}: cannot open shared object file", m[0]) for m in _BUNDLED_LOADER.finditer(text)]
    # a missing name in any wording (cannot import name, no attribute, was removed, chained): one sentence
    out += [(f"module '{b.module}' has no attribute '{b.name}'", b.exception.line) for b in blames(text)
            if b.lack is Lack.NAME]
    return out


def _match(sig: Signature, text: str, restated: list[tuple[str, str]]) -> str | None:
    """The log line that shows ``sig``, directly or through a restatement."""
    m = sig.pattern.search(text)
    if m:
        return _line_of(text, m)
    return next((line[:400] for said, line in restated if sig.pattern.search(said)), None)


def structural_findings(text: str, matrix: Matrix | None = None, name: str = "log") -> list[Finding]:
    """What the log's structure says, most specific first: a resolver's refusal, the loader's trace, tracebacks."""
    return (resolver_findings(text, matrix, name) + loader_findings(text, name)
            + traceback_findings(text, name))


def relevant_lines(text: str, noise: list[Signature]) -> list[str]:
    """The last exception and the lines that look like errors (never a known-harmless one), at most a few."""
    def harmless(ln: str) -> bool:
        return bool(_NOISE_LINE.search(ln)) or any(s.pattern.search(ln) for s in noise)

    all_lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    lines = [ln for ln in all_lines if _RELEVANT.search(ln) and not harmless(ln)] or \
        [ln for ln in all_lines if not harmless(ln)][-5:]
    last = last_exception(text)
    head = [f"last exception: {last.line[:400]}"] if last else []
    return head + [ln[:400] for ln in lines if not last or last.line[:200] not in ln][-(_SHOWN - len(head)):]


def diagnose_log(text: str, matrix: Matrix, name: str = "log") -> list[Finding]:
    """Findings for every known cause in a log, the most specific first and harmless lines last; if no cause
    is known, say so and show the likely lines."""
    text = clean(text)
    specific: list[Finding] = []
    generic: list[Finding] = []
    noise: list[Finding] = []
    restated = restatements(text)
    for sig in matrix.signatures:
        line = _match(sig, text, restated)
        if line is not None:
            bucket = noise if sig.noise else generic if sig.id in GENERIC else specific
            bucket.append(_signature_finding(sig, text, line, name))
    structural = structural_findings(text, matrix, name)
    # a one-line symptom about a library whose search the loader's own trace shows comes after that trace
    traced = {lk.lib for lk in lookups(text)} if any(f.id in _LOADER_IDS for f in structural) else set()
    echoes = [f for f in specific if any(lib in f.evidence[0] for lib in traced)]
    out = [f for f in specific if f not in echoes] + structural + echoes + generic + noise
    if not any(f.severity is not Severity.INFO for f in out):
        lines = relevant_lines(text, [s for s in matrix.signatures if s.noise])
        out.append(Finding(
            id="log-no-known-cause", severity=Severity.WARNING, area=Area.LOG,
            title=f"no known cause found in {name}",
            evidence=tuple(lines) or ("(no line looks like an error)",),
            fix=Fix("run `bdv2 doctor --deep` on the machine that produced the log, and attach its "
                    "`--markdown` report to a bug report"),
        ))
    return out
