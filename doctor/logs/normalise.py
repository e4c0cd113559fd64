"""Put a log into one shape before anything matches it, and read version numbers in every encoding.

A log reaches the doctor through terminals, SLURM, containers, CI runners and issue threads: lines carry
timestamps, rank and container labels; progress bars rewrite one line with carriage returns; a terminal or a
pasted thread breaks a message in the middle of a word; one line can be megabytes of base64 or minified JSON.
`normalise` undoes what it safely can and bounds the rest, so that every pattern after it sees short, clean lines
(the doctor's patterns are written to run in linear time on any input; this is the second guard).

Versions: TensorFlow, XLA and jax have printed the same versions as dotted strings (``9.1.0``), as packed
integers (cuDNN ``8100`` = 8.1.0, ``8302`` = 8.3.2, ``90100`` = 9.1.0; CUDA ``11080`` = 11.8, ``12020`` = 12.2;
cuBLAS ``120103`` = 12.1.3) and with build labels (``0.4.26+cuda12.cudnn89``, ``2.15.0.post1``). `decode`
turns any of them into a dotted release string. Stdlib only.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from typing import Any

MAX_LINE = 2000
"""Longest line kept whole; longer ones keep their head and tail (where messages and their verdicts sit)."""
_HEAD, _TAIL = 1500, 400
MAX_LINES = 400_000
"""Beyond this many lines only the first and last parts are read (a failure is at the start or near the end)."""

_ANSI = re.compile(r"\x1b\[[0-9;?]{0,32}[A-Za-z]|\x1b\][^\x07\n]{0,256}\x07")
# One prefix at the start of a line, each alternative bounded: rank/task labels (torchrun, SLURM `srun -l`),
# ISO or syslog timestamps with an optional level word, `docker compose` / Kubernetes container labels, GitHub
# Actions' timestamps. TensorFlow's and XLA's own `I0101 12:00:00.000 123 file.cc:12]` stay: the source file
# tells a bundled XLA from TensorFlow.
_PREFIX = re.compile(
    r"^(?:"
    r"\[(?:rank|RANK|Rank)\s?\d{1,6}\]:?\s?"
    r"|\d{1,6}: "
    r"|srun: "
    r"|(?:Step #\d{1,4}(?: - \"[\w.-]{1,64}\")?: ){1,4}"
    r"|>{1,4} {1,4}"
    r"|[\w.-]{1,64}(?:[-_]\d{1,4})?\s{1,8}\|\s"
    r"|\[?\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:[.,]\d{1,9})?(?:Z|[+-]\d\d:?\d\d)?\]?:?"
    r"(?:\s{0,4}[-|]?\s{0,4}\[?(?:INFO|ERROR|WARNING|WARN|DEBUG|CRITICAL|FATAL)\]?\s{0,4}[-|:]?)?\s?"
    r"|[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d [\w.-]{1,64} [\w./-]{1,64}(?:\[\d{1,9}\])?: "
    r")")
_WORD_END = re.compile(r"([A-Za-z]{1,40})$")
_WORD_START = re.compile(r"^([A-Za-z]{1,40})")
# An exception's message hard-wrapped by a paste, a mail client or a notebook (``ImportError: ... requires
# TensorFlow`` / ``version >= 2.5; Detected ...``): its first line, and a wrapped line's end mid-sentence.
_MESSAGE_HEAD = re.compile(r"^[\s`'\">]{0,8}(?:[A-Za-z_][\w.]{0,80}\.)?[A-Z]\w{0,60}(?:Error|Exception|Warning): \S")
_MID_SENTENCE = re.compile(r"[A-Za-z0-9,]$")
_CONTINUES = re.compile(r"^[a-z0-9(]")
# a line ending in a word no sentence ends with goes on even when the next starts with a capital ("requires" /
# "TensorFlow version >= 2.18")
_OPEN_END = re.compile(r"\b(?:a|an|the|of|to|with|for|and|or|than|by|in|on|from|at|as|is|are|was|were|be|requires?|"
                       r"needs?|expected|got|but|not|version|found|detected|installed|loaded)$", re.IGNORECASE)
_CONTINUES_CAPITAL = re.compile(r"^[A-Z][\w.-]{0,40} ")
_WRAP_MIN = 50
"""A line shorter than this ended where its writer ended it, not where a wrap did."""


# a whole line a thread's markdown made bold or italic (**Killed**, __Error: ...__)
_EMPHASIS = re.compile(r"^(\s{0,12})(\*{1,3}|_{2,3})(?=\S)([^\n]{1,2000}?)(?<=\S)\2\s{0,4}$")


def _strip_prefixes(line: str) -> str:
    for _ in range(3):  # a container label before a timestamp before a rank label
        cut = _PREFIX.sub("", line, count=1)
        if cut == line:
            break
        line = cut
    if line and line[-1] in "*_" and line.lstrip()[:1] in ("*", "_"):
        line = _EMPHASIS.sub(r"\1\3", line, count=1)
    return line


# Windows names CUDA's libraries by release in the file name (cudart64_110.dll is CUDA 11.0's runtime, cudart64_90.dll
# 9.0's, cudnn64_8.dll cuDNN 8): the readers of sonames see the Linux soname of the same release in its place, and
# the line keeps the Windows names at its end ("... 'libcudart.so.11.0' not found [Windows: cudart64_110.dll]")
_DLL = re.compile(r"\b(?P<lib>cudart|cublasLt|cublas|cufft|curand|cusolver|cusparse|cudnn|nvrtc|nccl)64_"
                  r"(?P<ver>\d{1,3})\.dll\b", re.IGNORECASE)


def _dll_soname(m: re.Match[str]) -> str:
    ver = m["ver"]
    if len(ver) == 3 or (len(ver) == 2 and ver[0] in "6789"):
        ver = f"{ver[:-1]}.{ver[-1]}"  # 110 -> 11.0, 101 -> 10.1, 90 -> 9.0; 11, 12, 8 are majors
    return f"lib{m['lib']}.so.{ver}"


def _with_soname(line: str) -> str:
    if "64_" not in line or ".dll" not in line.lower():
        return line
    names = list(dict.fromkeys(m[0] for m in _DLL.finditer(line)))
    return f"{_DLL.sub(_dll_soname, line)} [Windows: {', '.join(names)}]" if names else line


def _cut(line: str) -> str:
    if len(line) <= MAX_LINE:
        return line
    return f"{line[:_HEAD]} [... {len(line) - _HEAD - _TAIL} characters cut ...] {line[-_TAIL:]}"


_TERMINALS = {80, 100, 120, 132, 150, 160, 180, 200, 240}


def _terminal_width(lines: list[str]) -> int | None:
    """The width a terminal wrapped the log at: no line is longer, and the lines it broke are exactly that long
    (at least three of them, or any at a common terminal width)."""
    width = max((len(ln) for ln in lines), default=0)
    if not 60 <= width <= 400:
        return None
    n = len({ln for ln in lines if len(ln) == width})
    return width if n >= 3 or width in _TERMINALS else None


# typographic quotes a paste through a rich-text editor or a web page puts in place of the program's own
# ("these aren’t available", “tensorflow”): the program printed ASCII
_QUOTES = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "\u2032": "'"})


# markdown's bold around words of a message pasted into a thread ("**jaxlib version 0.4.30** is newer than ..."): the
# program printed no stars (not `**kwargs` or `a**b`: a word character or a star borders those)
_BOLD = re.compile(r"(?<![\w*])\*\*(?=[A-Za-z])([^*\n]{1,200}?[\w.)'\"])\*\*(?![\w*])")


def _unbold(line: str) -> str:
    return _BOLD.sub(r"\1", line) if "**" in line else line


def normalise_lines(text: str, vocabulary: Iterable[str] = ()) -> list[str]:
    text = _ANSI.sub("", text.replace("\x00", "")).translate(_QUOTES)
    raw = text.replace("\r\n", "\n").split("\n")
    if len(raw) > MAX_LINES:
        half = MAX_LINES // 2
        raw = [*raw[:half], f"[... {len(raw) - MAX_LINES} lines cut ...]", *raw[-half:]]
    shown = []
    for ln in raw:
        if "\r" in ln:  # a progress bar redrawn in place: what the terminal finally showed
            ln = next((seg for seg in reversed(ln.split("\r")) if seg.strip()), "")
        shown.append(ln)
    lines = [_with_soname(_strip_prefixes(_unbold(_cut(ln.rstrip())))) for ln in _join_width(shown)]
    return _join_wrapped_messages(_join_loader_labels(_join_broken_words(lines, {w.lower() for w in vocabulary})))


# the dynamic loader's message broken after a label: "lib.so:" / "undefined symbol:" ending a line, the library or
# the symbol starting the next ("...libtensorflow_io.so:\nundefined symbol:\n_ZNK10tensorflow4data...")
_LOADER_LABEL = re.compile(r"(?:\.so(?:\.[\d.]{1,12})?|\.dylib|\.pyd|\.dll|\bsymbol|\bsymbols)\s{0,2}:$")


def _join_loader_labels(lines: list[str]) -> list[str]:
    out: list[str] = []
    for ln in lines:
        if out and _LOADER_LABEL.search(out[-1]) and ln.strip() and not _NEW_RECORD.match(ln) \
                and len(out[-1]) + len(ln) < MAX_LINE:
            out[-1] = out[-1].rstrip() + " " + ln.strip()
        else:
            out.append(ln)
    return out


_NEW_RECORD = re.compile(r'\s{0,8}(?:File "|Traceback \(|During handling|The above exception|[A-Z]\w{0,60}(?:Error|'
                         r'Exception|Warning):|[IWEF]\d{4} |\d{4}-\d\d-\d\d)')


# a traceback's frame line that is whole (it ends with the function's name): one of the terminal's width is not broken
_WHOLE_FRAME = re.compile(r'\s{0,8}File "[^"\n]{1,1000}", line \d{1,7}, in [\w<>.]{1,200}$')


def _same_start(a: str, b: str) -> bool:
    shape = re.compile(r"\d")
    return len(b) >= 8 and shape.sub("0", a[:8]) == shape.sub("0", b[:8]) and not b[:8].isalpha()


def _join_width(lines: list[str]) -> list[str]:
    """Join a line of exactly the terminal's width to the next: the terminal broke it there."""
    width = _terminal_width(lines)
    if not width:
        return lines
    out: list[str] = []
    joining = False
    for ln in lines:
        # a line that starts like the broken one (the same label or timestamp shape) is a new record, and so is
        # a traceback's frame or an exception
        if joining and out and len(out[-1]) < 8 * MAX_LINE and not _same_start(out[-1], ln) \
                and not _NEW_RECORD.match(ln) and not _WHOLE_FRAME.match(out[-1]):
            out[-1] += ln
        else:
            out.append(ln)
        joining = len(ln) == width
    return out


def _join_broken_words(lines: list[str], words: set[str]) -> list[str]:
    """Join a line ending in a fragment to the next starting with one when together, not apart, they make a word
    of ``words`` (the terms the doctor's families and signatures look for): a paste broke the word there."""
    if not words:
        return lines
    out: list[str] = []
    for ln in lines:
        if out and ln[:1].isalpha():  # "CuD" / "NN library": a break inside a capitalised word too
            end = _WORD_END.search(out[-1][-41:]) if out[-1][-1:].isalpha() else None
            start = _WORD_START.match(ln)
            if end and start:
                head, tail = end[1].lower(), start[1].lower()
                if (head + tail) in words and head not in words and tail not in words:
                    out[-1] += ln
                    continue
        out.append(ln)
    return out


def _join_wrapped_messages(lines: list[str]) -> list[str]:
    """Join the lines of an exception message that a wrap broke mid-sentence: after a line that starts an exception
    (``ImportError: ...``) or continues one, a line of at least ``_WRAP_MIN`` characters that ends inside a sentence,
    followed by an unindented line that starts in lower case, is that message's next part."""
    out: list[str] = []
    open_message = False
    last = ""  # the previous physical line (the joined one can be longer than any wrap)
    for ln in lines:
        if open_message and out and len(last) >= _WRAP_MIN and _MID_SENTENCE.search(last) \
                and (_CONTINUES.match(ln) or (_CONTINUES_CAPITAL.match(ln) and _OPEN_END.search(last[-12:]))) \
                and len(out[-1]) + len(ln) < MAX_LINE and not _NEW_RECORD.match(ln):
            out[-1] += " " + ln
        else:
            out.append(ln)
            open_message = bool(_MESSAGE_HEAD.match(ln))
        last = ln
    return out


def normalise(text: str, vocabulary: Iterable[str] = ()) -> str:
    """``text`` with prefixes stripped, broken words joined, redrawn lines collapsed and every line bounded."""
    return "\n".join(normalise_lines(text, vocabulary))


# ---------------------------------------------------------------------------------------------------------------
# Versions
# ---------------------------------------------------------------------------------------------------------------

_DOTTED = re.compile(r"v?(\d{1,4}(?:\.\d{1,6}){1,3})(?:[.-]?(?:post|dev|rc|a|b)\d{1,6})?(?:\+[\w.]{1,40})?")
_PACKED = re.compile(r"\d{3,7}")
# How each library's version is packed into one integer (the C headers' own macros).
# cuDNN 8: major*1000 + minor*100 + patch (cudnn.h CUDNN_VERSION); cuDNN 9: major*10000 + minor*100 + patch.
# CUDA runtime/driver: major*1000 + minor*10 (cuda.h CUDA_VERSION). cuBLAS: major*10000 + minor*100 + patch;
# cuSPARSE/cuSOLVER/cuFFT: major*1000 + minor*100 + patch (the libraries' *_VER_* macros, as jax prints them).
_PACKING = {
    "cudnn": "cudnn", "cuda": "cuda", "cuda runtime": "cuda", "cuda driver": "cuda", "driver": "cuda",
    "cublas": "wide", "cusparse": "narrow", "cusolver": "narrow", "cufft": "narrow", "cupti": "cuda",
    "nccl": "nccl",
}


def _unpack(n: int, packing: str) -> str | None:
    if packing == "cudnn":
        if n >= 10000:  # cuDNN 9+: 90100 = 9.1.0, 91000 = 9.10.0
            return f"{n // 10000}.{n // 100 % 100}.{n % 100}"
        if n >= 1000:  # cuDNN 7/8: 8302 = 8.3.2, 7605 = 7.6.5
            return f"{n // 1000}.{n // 100 % 10}.{n % 100}"
        return None
    if packing == "cuda":  # 11080 = 11.8, 12020 = 12.2, 10010 = 10.1
        if n >= 1000:
            return f"{n // 1000}.{n % 1000 // 10}"
        return None
    if packing == "wide":  # cuBLAS 120103 = 12.1.3
        return f"{n // 10000}.{n // 100 % 100}.{n % 100}" if n >= 10000 else None
    if packing == "narrow":  # cuSPARSE 12002 = 12.0.2, cuSOLVER 11501 = 11.5.1
        return f"{n // 1000}.{n // 100 % 10}.{n % 100}" if n >= 1000 else None
    if packing == "nccl":  # NCCL 2.18.1 = 21801 (>= 2.9), 2708 = 2.7.8 before
        if n >= 20900:
            return f"{n // 10000}.{n // 100 % 100}.{n % 100}"
        return f"{n // 1000}.{n // 100 % 10}.{n % 100}" if n >= 1000 else None
    return None


def decode(raw: str, library: str = "") -> str | None:
    """A dotted release for ``raw`` as ``library`` printed it ('8302' cudnn -> '8.3.2', '11080' cuda -> '11.8',
    '0.4.26+cuda12.cudnn89' -> '0.4.26', '9.1.0' -> '9.1.0'); None when it is not a version."""
    raw = raw.strip().strip("'\"(),;")
    m = _DOTTED.fullmatch(raw)
    if m:
        return m[1]
    if _PACKED.fullmatch(raw):
        return _unpack(int(raw), _PACKING.get(library.lower(), ""))
    return None


def release(raw: str) -> tuple[int, ...]:
    """A comparable tuple for a dotted release ('9.1' < '9.10.0'); () when there is none."""
    m = re.match(r"\d{1,6}(?:\.\d{1,6}){0,3}", raw or "")
    return tuple(int(x) for x in m[0].split(".")) if m else ()


def newer(a: str, b: str) -> bool:
    """Whether release ``a`` is newer than ``b`` (missing parts count as 0)."""
    ta, tb = release(a), release(b)
    n = max(len(ta), len(tb))
    return ta + (0,) * (n - len(ta)) > tb + (0,) * (n - len(tb))


# ---------------------------------------------------------------------------------------------------------------
# A literal pre-check for any pattern: most patterns cannot match most logs, and `str.__contains__` finds that out
# far faster than a regex scan (which, without a literal prefix, tries every position).
# ---------------------------------------------------------------------------------------------------------------

# Words nearly every framework log carries: as a pre-check's key they rule nothing out ("jax[-_]mps" is better
# looked for as "mps", "tensorflow[-_]metal" as "metal")
_COMMON = frozenset({"jax", "jaxlib", "tensorflow", "tensorflow/", "python", "module", "graph", "import", "error",
                     "version", "file", "line", "device", "found", "failed", "could not", "cannot", "lib", "site-"})


def _worth(keys: tuple[str, ...]) -> int:
    """How well a set of literals rules a log out: its shortest, and nothing for a word every log carries."""
    return min(0 if k.strip() in _COMMON else len(k) for k in keys)


def _seq_keys(items: list[tuple[Any, Any]]) -> tuple[str, ...] | None:
    """Literals one of which any match of the sequence ``items`` contains (lower-cased), or None if unknown."""
    from re import _constants as c  # type: ignore[attr-defined]

    best: tuple[str, ...] | None = None
    run: list[str] = []

    def close() -> None:
        nonlocal best, run
        key = ("".join(run).lower(),)
        if len(run) >= 3 and (best is None or _worth(best) < _worth(key)):
            best = key
        run = []

    for op, av in items:
        if op is c.LITERAL:
            run.append(chr(av))
            continue
        close()
        sub: tuple[str, ...] | None = None
        if op is c.SUBPATTERN:
            sub = _seq_keys(list(av[-1]))
        elif op is c.BRANCH:
            alts = [_seq_keys(list(a)) for a in av[1]]
            sub = None if any(a is None for a in alts) else tuple(k for a in alts if a for k in a)
        elif op in (c.MAX_REPEAT, c.MIN_REPEAT) and av[0] >= 1:
            sub = _seq_keys(list(av[2]))
        if sub and (best is None or _worth(sub) > _worth(best)):
            best = sub
    close()
    return best


@functools.lru_cache(maxsize=4096)
def literal_keys(pattern: str, flags: int = 0) -> tuple[str, ...] | None:
    """Lower-cased literals of which every match of ``pattern`` contains at least one (None: no such set known,
    the pattern must be run)."""
    try:
        from re import _parser  # type: ignore[attr-defined]

        return _seq_keys(list(_parser.parse(pattern, flags & ~re.VERBOSE).data))
    except Exception:  # a private parser that changed: no pre-check, the regex still runs
        return None


@functools.lru_cache(maxsize=4096)
def required_keys(pattern: str, flags: int = 0) -> tuple[tuple[str, ...], ...]:
    """Every set of literals of which a match of ``pattern`` must contain one, for each part of its top-level
    sequence whose literals are known (a pattern "A...B" needs both A and B); () when none is known."""
    from re import _constants as c  # type: ignore[attr-defined]

    try:
        from re import _parser  # type: ignore[attr-defined]

        items = list(_parser.parse(pattern, flags & ~re.VERBOSE).data)
    except Exception:  # a private parser that changed: no pre-check, the regex still runs
        return ()
    out: list[tuple[str, ...]] = []
    run: list[str] = []
    for op, av in [*items, (None, None)]:
        if op is c.LITERAL:
            run.append(chr(av))
            continue
        if len(run) >= 3:
            out.append(("".join(run).lower(),))
        run = []
        sub = _seq_keys([(op, av)]) if op is not None else None
        if sub:
            out.append(sub)
    whole = literal_keys(pattern, flags)
    return tuple(dict.fromkeys([*([whole] if whole else []), *out]))


@functools.lru_cache(maxsize=4)
def distinct_lines(text: str) -> str:
    """``text`` with each line kept only where it first appears: a cue counts once however often it matches, and a
    log repeating its lines (a loader probing each step, a retry loop, one line per rank) is read at the cost of its
    distinct lines."""
    lines = text.split("\n")
    kept = "\n".join(dict.fromkeys(lines))
    return text if len(kept) == len(text) else kept


@functools.lru_cache(maxsize=4)
def _lower(text: str) -> str:
    return text.lower()


@functools.lru_cache(maxsize=4)
def _presence(low: str) -> dict[str, bool]:
    """Whether each literal looked for so far occurs in ``low`` (cues share literals: each is looked for once)."""
    return {}


def _has(key: str, low: str) -> bool:
    seen = _presence(low)
    found = seen.get(key)
    if found is None:
        found = seen[key] = key in low
    return found


def may_match(pattern: re.Pattern[str], text: str) -> bool:
    """False when ``text`` lacks every literal of one set a match of ``pattern`` must contain one of (a cheap,
    exact pre-check)."""
    low = _lower(text)
    return all(any(_has(k, low) for k in keys) for keys in required_keys(pattern.pattern, pattern.flags))


def search(pattern: re.Pattern[str], text: str) -> re.Match[str] | None:
    """``pattern.search(text)``, skipped when the pre-check shows it cannot match."""
    return pattern.search(text) if may_match(pattern, text) else None


# Lines that carry no text of the run: blank, code fences, rules of dashes or stars, a bare shell or REPL prompt
# ("$", ">>>", "(base) user@host:~/x$", "In [3]:", "PS C:\x>"), a quote's closing bracket
_NO_TEXT = re.compile(r"^\s{0,40}(?:`{3}[\w-]{0,20}|[-=~_*#>.`'\"\])}]{0,200}|\$|>>>|\.\.\.|In \[\d{1,6}\]:|"
                      r"(?:\([\w.-]{1,60}\) ?)?[\w.-]{1,60}@[\w.-]{1,80}:[^\n]{0,200}[$#%]|PS [A-Za-z]:\\[^\n]{0,200}>|"
                      r"(?:\([\w.-]{1,60}\) ?)?[\w/~.-]{0,200}[$#%])\s{0,40}$")


def last_lines(text: str, n: int = 3) -> str:
    """The last ``n`` lines of ``text`` that carry text (no blank lines, code fences, rules or bare prompts), one
    per line: how a log ends (a shell's ``Killed``, a crash's last words) is evidence of its own."""
    out: list[str] = []
    end = len(text)
    looked = 0
    while end > 0 and len(out) < n and looked < 200:
        start = text.rfind("\n", 0, end) + 1
        line = text[start:end].strip()
        if line and not _NO_TEXT.match(line[:400]):
            out.append(line[:400])
        end = start - 1
        looked += 1
    return "\n".join(reversed(out))
