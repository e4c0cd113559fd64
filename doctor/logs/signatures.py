"""Read a log or traceback and name the cause: the matrix's signatures are regexes over real wordings, and the
log's structure (tracebacks.py, resolver.py, loader.py) names causes no single wording covers.

The patterns match the message body, never paths or line numbers, so a log from any machine
can be read anywhere. Harmless noise (signatures with ``noise = true``) is recognised so it is
never reported as the cause.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import replace
from typing import TYPE_CHECKING

from ..findings import Area, Finding, Fix, Severity
from .families import Catalogue, Fit, catalogue, fits, raised_by, tensorflow_build_for
from .families import finding as family_finding
from .loader import LoaderKind, loader_findings, lookups
from .normalise import may_match, normalise, search
from .resolver import resolver_findings
from .tracebacks import (
    Blame,
    Lack,
    Raised,
    blames,
    distinct,
    is_wrapper,
    last_exception,
    parse,
    traceback_findings,
    versions_in,
)
from .tracebacks import finding as traceback_finding

if TYPE_CHECKING:
    from ..matrix.load import Matrix, Signature

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_RELEVANT_WORDS = ("error", "exception", "fatal", "fail", "traceback", "cannot", "can't", "unable", "not found",
                   "abort", "segmentation fault", "core dumped", "killed", "out of memory", "no such file",
                   "undefined symbol")


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
_VERSION_CHECK = re.compile(r"(?P<lib>[\w-]{1,60}) is version (?P<have>[\w.+]{1,60}),? but this version of "
                            r"(?P<pkg>[\w-]{1,60}) "
                            r"requires version (?:>= ?)?(?P<need>\d[\w.]*?)\.?$", re.MULTILINE)  # before jax 0.3
# jaxlib bundles XLA as an external repository: its own loader lines say `external/...dso_loader.cc` and are the
# cause; TensorFlow's (`tensorflow/...dso_loader.cc`) are usually harmless probes for optional libraries
_BUNDLED_LOADER = re.compile(r"external/\S{0,300}dso_loader\.cc:\d+\] Could not load dynamic library '(?P<lib>[^']+)'; "
                             r"dlerror: (?P=lib): cannot open shared object file")


def restatements(text: str) -> list[tuple[str, str]]:
    """(the catalogue's wording, the log's line) for each message the log words differently."""
    checks = _VERSION_CHECK.finditer(text) if may_match(_VERSION_CHECK, text) else ()
    loaders = _BUNDLED_LOADER.finditer(text) if may_match(_BUNDLED_LOADER, text) else ()
    out = [(f"{m['lib']} is version {m['have']}, but this version of {m['pkg']} requires version >= {m['need']}",
            m[0]) for m in checks]
    out += [(f"{m['lib']}: cannot open shared object file", m[0]) for m in loaders]
    # a missing name in any wording (cannot import name, no attribute, was removed, chained): one sentence
    out += [(f"module '{b.module}' has no attribute '{b.name}'", b.exception.line) for b in distinct(blames(text))
            if b.lack is Lack.NAME]
    return out


def _match(sig: Signature, text: str, restated: list[tuple[str, str]]) -> str | None:
    """The log line that shows ``sig``, directly or through a restatement; none where the log rules it out."""
    if sig.unless_pattern is not None and search(sig.unless_pattern, text):
        return None
    m = search(sig.pattern, text)
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
    lower, starts = text.lower(), set()
    for word in _RELEVANT_WORDS:  # str.find per word: far faster than one alternation tried at every position
        i = lower.find(word)
        while i != -1:
            start = lower.rfind("\n", 0, i) + 1
            starts.add(start)
            end = lower.find("\n", i)
            i = lower.find(word, end if end != -1 else len(lower))
    hits = (text[a:(b if (b := text.find("\n", a)) != -1 else len(text))].strip() for a in sorted(starts))
    lines = [ln[:400] for ln in dict.fromkeys(hits) if ln and not harmless(ln)]
    if not lines:  # the last few lines that are not known noise
        lines = list(reversed(list(itertools.islice((ln for ln in reversed(all_lines) if not harmless(ln)), 5))))
    last = last_exception(text)
    head = [f"last exception: {last.line[:400]}"] if last else []
    return head + [ln[:400] for ln in lines if not last or last.line[:200] not in ln][-(_SHOWN - len(head)):]


def _vocabulary(matrix: Matrix, cat: Catalogue) -> frozenset[str]:
    words = set(cat.vocabulary)
    for sig in matrix.signatures:
        for src in (sig.pattern.pattern, *sig.examples):
            words.update(w.lower() for w in re.findall(r"[A-Za-z]{5,}", re.sub(r"\\.", " ", src)))
    return frozenset(words)


_VOCAB: dict[int, frozenset[str]] = {}


def prepare(text: str, matrix: Matrix, cat: Catalogue | None = None) -> str:
    """The log as every matcher sees it: ANSI codes gone, prefixes stripped, broken words joined, lines bounded."""
    cat = cat or catalogue()
    key = id(matrix)
    if key not in _VOCAB:
        _VOCAB.clear()
        _VOCAB[key] = _vocabulary(matrix, cat)
    return normalise(clean(text), _VOCAB[key])


def _about_blame(sig: Signature, blames_: list[Blame]) -> Blame | None:
    """The missing-name exception a signature's match is about, when the frames name who made the call."""
    for b in blames_:
        if b.lack is not Lack.NAME or not (b.caller or b.own):
            continue
        if sig.pattern.search(b.exception.line) or sig.pattern.search(f"module '{b.module}' has no attribute "
                                                                       f"'{b.name}'"):
            return b
    return None


def _from_frames(f: Finding, b: Blame, text: str, name: str, renames: dict[str, str]) -> Finding:
    """A signature's finding told with the caller the frames name (the signature's own guess at the caller is
    generic; the log's frames are not)."""
    framed = traceback_finding(b, text, name, renames)
    return replace(f, title=framed.title, fix=framed.fix, evidence=(*f.evidence, *framed.evidence[1:]),
                   packages=framed.packages)


def _variant(f: Finding, framework: str | None, cat: Catalogue) -> Finding:
    v = cat.variants.get(f.id, {}).get(framework or "")
    if v is None:
        return f
    assert f.fix is not None
    build = tensorflow_build_for(f.evidence[0], cat) if framework == "tensorflow" else None
    return replace(f, title=v.cause, fix=Fix(v.fix, v.commands or f.fix.commands, dict(f.fix.env)),
                   evidence=(*f.evidence, f"raised by {framework} (its frames and messages carry the error)",
                             *((f"TensorFlow's tested builds: {build}",) if build else ())))


def _evidence_lines(f: Finding, name: str) -> list[str]:
    return [e[len(name) + 2:] for e in f.evidence if e.startswith(f"{name}: ")]


def _as_signature(fit: Fit, matrix: Matrix, name: str, framework: str | None, cat: Catalogue) -> Finding | None:
    """A family that reads a catalogued signature's cause from other wordings: that signature's finding (told for
    the framework that raised it, as the signature's own match would be)."""
    sig = next((s for s in matrix.signatures if s.id == fit.family.id), None)
    if sig is None:
        return None
    f = _signature_finding(sig, "", fit.lines[0] if fit.lines else "", name)
    read = ", ".join(f"{k}={v}" for k, v in fit.facts.items() if not k.startswith("v_") and k != "order")
    f = replace(f, evidence=(*f.evidence, *(f"{name}: {ln}" for ln in fit.lines[1:3]),
                             *([f"read from the log: {read}"] if read else []),
                             f"read as {sig.id} from its cues ({fit.score:g} points)"))
    return _variant(f, framework, cat)


def _place(families: list[tuple[Finding, Fit]], ordered: list[Finding]) -> list[Finding]:
    """Each family finding before the first finding it outranks (``outranks``, and ``outranks_when`` for the facts
    its fit read), else after the specific ones; a family whose finding is already there (a signature that named it
    directly, or another family reporting the same cause) adds nothing."""
    out = list(ordered)
    for ff, fit in families:
        if any(o.id == ff.id for o in out):
            continue
        fam, read = fit.family, fit.facts
        beaten = set(fam.outranks).union(*(ids for fact, ids in fam.outranks_when.items() if read.get(fact)))
        at = next((i for i, o in enumerate(out) if o.id in beaten), None)
        if at is None:
            at = next((i for i, o in enumerate(out) if o.id in GENERIC or o.severity is Severity.INFO), len(out))
        out.insert(at, ff)
    return out


def diagnose_log(text: str, matrix: Matrix, name: str = "log") -> list[Finding]:
    """Findings for every known cause in a log, the most specific first and harmless lines last; if no cause
    is known, say which causes came closest, show the exception and the lines that matter, and name the packages
    of the failing frames."""
    cat = catalogue()
    text = prepare(text, matrix, cat)
    chains = parse(text)
    specific: list[Finding] = []
    generic: list[Finding] = []
    noise: list[Finding] = []
    restated = restatements(text) + [r for rs in cat.restatements for r in rs.apply(text)]
    all_blames = distinct(blames(text))
    framework = raised_by(text, chains)
    for sig in matrix.signatures:
        line = _match(sig, text, restated)
        if line is not None:
            bucket = noise if sig.noise else generic if sig.id in GENERIC else specific
            f = _signature_finding(sig, text, line, name)
            b = None if sig.noise else _about_blame(sig, all_blames)
            f = _from_frames(f, b, text, name, cat.renames) if b else _variant(f, framework, cat)
            bucket.append(f)
    structural = (resolver_findings(text, matrix, name) + loader_findings(text, name)
                  + traceback_findings(text, name, cat.renames))
    # a one-line symptom about a library whose search the loader's own trace shows comes after that trace
    traced = {lk.lib for lk in lookups(text)} if any(f.id in _LOADER_IDS for f in structural) else set()
    echoes = [f for f in specific if any(lib in f.evidence[0] for lib in traced)]
    out = [f for f in specific if f not in echoes] + structural + echoes + generic + noise
    scored = fits(text, chains, cat)
    near = [f for f in scored if not f.fits and f.score >= f.family.threshold / 2]  # half-way or better
    fitted = [fit for fit in scored if fit.fits]
    told = [(_as_signature(fit, matrix, name, framework, cat) if fit.family.signature else family_finding(fit, name),
             fit) for fit in fitted]
    fam_found = [(f, fit) for f, fit in told if f is not None]
    # a removal the frames already explain (who made the call, the one-line change) needs no second telling
    framed = {b.exception.line for b in all_blames if b.caller or b.own}
    fam_found = [(f, fit) for f, fit in fam_found
                 if not (f.id == "log-stated-removal" and any(ln in framed for ln in _evidence_lines(f, name)))]
    out = _place([(f, fit) for f, fit in fam_found if f.severity is not Severity.INFO], out) + \
        [f for f, _ in fam_found if f.severity is Severity.INFO]
    noise_signatures = [s for s in matrix.signatures if s.noise]
    if not any(f.severity is not Severity.INFO for f in out):
        out.append(unsure(text, chains, near, noise_signatures, name))
    elif not any(f.severity is Severity.ERROR for f in out) and (aside := _unexplained(chains)):
        # warnings about the environment (jax on the CPU, a driver older than ptxas) do not raise an exception that
        # is not about devices: the exception's cause is unknown, and the warnings are told after it
        first = unsure(text, chains, near, noise_signatures, name)
        raised = aside.type.rsplit(".", 1)[-1]
        out.insert(0, replace(first, title=f"no known cause for the {raised} raised in {name}; the warnings after "
                                           "this one are beside it, not its cause"))
    return out


# what an exception must be about for a warning of the environment (where jax runs, which ptxas or driver) to explain it
_ABOUT_DEVICES = re.compile(r"device|backend|platform|plugin|gpu|cuda|cudnn|cublas|ptx|driver|nccl|tpu|xla|memory|"
                            r"resource_exhausted|\bdnn\b|jaxlib", re.IGNORECASE)


def _unexplained(chains: list[list[Raised]]) -> Raised | None:
    """The log's last exception, when neither its class nor its message is about devices, drivers or memory."""
    last = chains[-1][-1] if chains else None
    return last if last and not _ABOUT_DEVICES.search(last.line[:2000]) else None


def _frame_packages(chains: list[list[Raised]], text: str) -> list[str]:
    """The distributions in the last traceback's frames, innermost first, with the versions the log shows."""
    seen: list[str] = []
    for r in reversed(chains[-1] if chains else []):
        for fr in reversed(r.frames):
            if fr.dist and fr.dist not in seen and not is_wrapper(fr):
                seen.append(fr.dist)
    out = []
    for d in seen[:6]:
        v = versions_in(text, d)
        out.append(f"{d} {v[0]}" if v else d)
    return out


def unsure(text: str, chains: list[list[Raised]], near: list[Fit], noise: list[Signature], name: str) -> Finding:
    """No family fits: the closest ones and why, the exception and the lines that matter, the failing frames'
    packages, and what to do with only the log in hand."""
    lines = relevant_lines(text, noise)
    close = [f"closest known cause: {f.family.id} ({f.score:g} of {f.family.threshold:g} points; it saw: "
             f"{'; '.join(ln[:120] for ln in f.lines[:2])})" for f in near[:2]]
    pkgs = _frame_packages(chains, text)
    where = [f"packages in the failing frames (innermost first): {', '.join(pkgs)}"] if pkgs else []
    evidence = (*lines[:1], *close, *where, *lines[1:])[:_SHOWN]
    last = chains[-1][-1] if chains else None
    steps = []
    if pkgs:
        steps.append(f"compare the versions of {', '.join(p.split()[0] for p in pkgs[:3])} with a known-good row "
                     "(`bdv2 matrix list`)")
    if last:
        steps.append(f"search the exact exception ({last.type}) in those packages' issue trackers")
    steps.append("with that environment at hand, `bdv2 doctor --python PATH` (static, no GPU needed) names version "
                 "skews; on the machine itself `bdv2 doctor --deep` checks the GPU stack")
    return Finding(
        id="log-no-known-cause", severity=Severity.WARNING, area=Area.LOG,
        title=f"no known cause found in {name}" + (f"; closest: {near[0].family.id}" if near else ""),
        evidence=tuple(evidence) or ("(no line looks like an error)",),
        fix=Fix("; ".join(steps), ("bdv2 matrix list",)),
    )
