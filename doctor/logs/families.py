"""Log families (log_families.toml): one cause and one fix template each, recognised by weighted cues, made
precise by the facts its cues and extractors read out of the log. A new wording of a known cause is a new cue
in the data file, not new code.

Also the log's own statements that no family needs: "X was removed in P vN / is deprecated, use Y", and which
framework raised an error (TensorFlow's ops and data pipeline, or jax/XLA), which decides whose CUDA libraries a
finding talks about. Stdlib and `packaging` (the specifiers a Python range is read with) only.
"""

from __future__ import annotations

import functools
import itertools
import re
import string
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

from ..api.advice import advise
from ..findings import Area, Finding, Fix, Severity
from .normalise import decode, distinct_lines, last_lines, may_match, newer, release, search
from .tracebacks import KNOWN_DISTS, Raised, culprit, dist_of, exception_types, only_tensorflow_1, parse, versions_in

FAMILIES_PATH = Path(__file__).parent.parent / "log_families.toml"
"""Beside the matrix (compat_matrix.toml), shipped in the wheel."""


class FamilyError(ValueError):
    """log_families.toml is malformed (the message names the family and the field)."""


@dataclass(frozen=True)
class Cue:
    weight: float
    pattern: re.Pattern[str]


@dataclass(frozen=True)
class Family:
    id: str
    title: str
    threshold: float
    source: str
    fix: str
    cues: tuple[Cue, ...]
    commands: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    defaults: dict[str, str] = field(default_factory=dict)
    outranks: tuple[str, ...] = ()
    outranks_when: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """More findings this family outranks when a fact was read from the log (``installed_clause``: the log shows
    the installed release, so "a library of another release" is more specific than "a library not found")."""
    packages: tuple[str, ...] = ()
    order: tuple[str, ...] = ()
    fix_by: dict[str, str] = field(default_factory=dict)
    extract: tuple[str, ...] = ()
    severity: Severity = Severity.ERROR
    signature: bool = False
    """The family is a catalogued signature's cause read from other wordings: its finding is that signature's
    (id, cause, fix), given only when the signature's own pattern did not already name it."""
    types: tuple[Cue, ...] = ()
    """Cues on the log's structure: the class names of the exceptions it raised (one per line, as `Raised` and
    `exception_types` read them, tolerant of spacing: ``PermissionError:[Errno13]``)."""
    last: tuple[Cue, ...] = ()
    """Cues on how the log ends: its last line that carries text (not a blank line, a code fence or a bare prompt),
    where a shell's ``Killed`` sits when nothing else stopped the run."""
    reports: str = ""
    """The finding id this family reports under, when it is one wording-independent reading of a cause another
    family (or a reader in code) also names: family ids stay unique, findings of one cause share one id."""

    @property
    def finding_id(self) -> str:
        return self.reports or self.id


@dataclass
class Fit:
    """How well one family fits a log: its score, the cues that matched (their lines) and the facts read."""

    family: Family
    score: float = 0.0
    lines: list[str] = field(default_factory=list)
    facts: dict[str, str] = field(default_factory=dict)
    severity: Severity | None = None

    @property
    def fits(self) -> bool:
        return self.score >= self.family.threshold


# ---------------------------------------------------------------------------------------------------------------
# Loading and validating the data
# ---------------------------------------------------------------------------------------------------------------

_UNBOUNDED = re.compile(r"\{\d+,\}")


def unbounded_repeat(pattern: str) -> str | None:
    """The first unbounded repeat (`*`, `+`, `{m,}`) outside a character class in ``pattern``, or None."""
    i, in_class = 0, False
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            i += 2
            continue
        if in_class:
            in_class = c != "]"
        elif c == "[":
            in_class = True
            if pattern[i + 1:i + 2] == "]" or pattern[i + 1:i + 3] == "^]":
                i += 2 if pattern[i + 1] == "]" else 3
                continue
        elif c in "*+":
            return pattern[max(0, i - 20):i + 1]
        elif c == "{":
            m = _UNBOUNDED.match(pattern, i)
            if m:
                return pattern[max(0, i - 20):m.end()]
        i += 1
    return None


def _fields(template: str) -> set[str]:
    return {f for _, f, _, _ in string.Formatter().parse(template) if f}


def _family(i: int, t: Any) -> Family:
    where = f"families[{i}]" + (f" ({t.get('id')})" if isinstance(t, dict) else "")
    if not isinstance(t, dict):
        raise FamilyError(f"{where}: must be a table")
    signature = bool(t.get("signature", False))
    for key in ("id", "threshold", "cues") + (() if signature else ("title", "source", "fix")):
        if key not in t:
            raise FamilyError(f"{where}: missing '{key}'")
    if signature:
        t = {"title": "", "fix": "", "source": "https://", **t}
    if not str(t["source"]).startswith(("https://", "measured:")):
        raise FamilyError(f"{where}.source: must be a URL")
    cues = _cues(where, "cues", t["cues"], re.IGNORECASE | re.MULTILINE)
    types = _cues(where, "types", t.get("types", []), re.MULTILINE)
    last = _cues(where, "last_line", t.get("last_line", []), re.IGNORECASE | re.MULTILINE)
    defaults = {k: str(v) for k, v in t.get("defaults", {}).items()}
    extracted = {_fact_name(g)[0] for c in (*cues, *types, *last) for g in c.pattern.groupindex}
    for key in ("title", "fix"):
        missing = _fields(t[key]) - set(defaults)
        if missing:
            raise FamilyError(f"{where}.{key}: placeholders {sorted(missing)} need a value in [defaults]")
    fix_by = dict(t.get("fix_by", {}))
    unknown = set(_fields(" ".join(map(str, t.get("commands", []))))) - set(defaults) - extracted - {"caller"}
    unknown -= {f"v_{p}" for p in t.get("packages", [])} | {"tf_minor", "pkg", "version"}
    if unknown:
        raise FamilyError(f"{where}.commands: placeholders {sorted(unknown)} are never filled")
    return Family(
        id=t["id"], title=t["title"], threshold=float(t["threshold"]), source=t["source"], fix=t["fix"],
        cues=tuple(cues), commands=tuple(t.get("commands", ())), env=dict(t.get("env", {})), defaults=defaults,
        outranks=tuple(t.get("outranks", ())),
        outranks_when={str(k): tuple(v) for k, v in dict(t.get("outranks_when", {})).items()},
        packages=tuple(t.get("packages", ())), order=tuple(t.get("order", ())),
        fix_by=fix_by, extract=tuple(t.get("extract", ())), severity=Severity(t.get("severity", "error")),
        signature=signature, types=tuple(types), last=tuple(last), reports=str(t.get("reports", "")),
    )


def _cues(where: str, key: str, raw: Any, flags: int) -> list[Cue]:
    if not isinstance(raw, list):
        raise FamilyError(f"{where}.{key}: must be a list of [weight, regex]")
    out = []
    for j, cue in enumerate(raw):
        ok = isinstance(cue, list) and len(cue) == 2 and isinstance(cue[0], (int, float)) and isinstance(cue[1], str)
        if not ok:
            raise FamilyError(f"{where}.{key}[{j}]: must be [weight, regex]")
        bad = unbounded_repeat(cue[1])
        if bad:
            raise FamilyError(f"{where}.{key}[{j}]: unbounded repeat near {bad!r}: bound it ({{0,80}})")
        try:
            out.append(Cue(float(cue[0]), re.compile(cue[1], flags)))
        except re.error as e:
            raise FamilyError(f"{where}.{key}[{j}]: invalid regex: {e}") from None
    return out


@dataclass(frozen=True)
class Variant:
    """Another cause and fix for a signature when a given framework raised the error."""

    cause: str
    fix: str
    commands: tuple[str, ...] = ()


def _decoded(value: str, how: str) -> str:
    """A cue group's value as its suffix asks: a version in a library's packing (``__cudnn``), or the
    distribution an import name belongs to (``__dist``: PIL -> pillow)."""
    if how == "dist":
        return dist_of(value.split(".")[0]) or value
    return (decode(value, how) or value) if how else value


def _fact_name(group: str) -> tuple[str, str]:
    """A cue group's fact and how to decode it: ``have__cudnn`` is the fact ``have`` in cuDNN's packing; a regex
    cannot name two groups alike, so ``op2`` (another wording's group in the same cue) is the fact ``op`` too."""
    name, _, lib = group.partition("__")
    return name.rstrip("0123456789") or name, lib


@dataclass(frozen=True)
class Restatement:
    """Another era's wording of a catalogued message and the catalogue's wording of it (``says``)."""

    pattern: re.Pattern[str]
    says: str

    def apply(self, text: str) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        if not may_match(self.pattern, text):
            return out
        for m in self.pattern.finditer(text):
            facts = {}
            for group, value in m.groupdict().items():
                name, lib = _fact_name(group)
                if value or name not in facts:
                    facts[name] = _decoded(value, lib) if value else ""
            said = _fill(self.says, facts)
            if said:
                out.append((said, _line_at(text, m.start(), m.start())))
        return out


@dataclass(frozen=True)
class Catalogue:
    families: tuple[Family, ...]
    variants: dict[str, dict[str, Variant]]
    """signature id -> framework -> what to say instead."""
    vocabulary: frozenset[str]
    """Words the cues look for (lognorm joins a word a paste broke in two when together they make one)."""
    restatements: tuple[Restatement, ...] = ()
    tensorflow_builds: tuple[tuple[str, str, str, str], ...] = ()
    """(first TF release, last, CUDA, cuDNN) of TensorFlow's tested GPU builds."""
    renames: dict[str, str] = field(default_factory=dict)
    """Old dotted name -> its successor (the one-line change named for the user's own code)."""
    driver_cuda: tuple[tuple[str, str], ...] = ()
    """(first driver of a CUDA release, that CUDA release), oldest first."""
    sonames: tuple[tuple[str, str, str], ...] = ()
    """(library, soname version, the CUDA release that ships it): libcusolver.so.10 is CUDA 10.1-11.0's."""


def _vocabulary(families: tuple[Family, ...]) -> frozenset[str]:
    words: set[str] = set()
    for f in families:
        for c in f.cues:
            words.update(w.lower() for w in re.findall(r"[A-Za-z]{5,}", re.sub(r"\\.", " ", c.pattern.pattern)))
    return frozenset(words)


def load_catalogue(path: Path | str | None = None) -> Catalogue:
    p = Path(path) if path else FAMILIES_PATH
    try:
        raw = tomllib.loads(p.read_text())
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise FamilyError(f"{p}: {e}") from None
    fams = tuple(_family(i, t) for i, t in enumerate(raw.get("families", [])))
    ids = [f.id for f in fams]
    if len(set(ids)) != len(ids):
        raise FamilyError(f"{p}: duplicate family ids")
    variants: dict[str, dict[str, Variant]] = {}
    for sig, by_fw in raw.get("variants", {}).items():
        for fw, v in by_fw.items():
            if not str(v.get("source", "")).startswith("https://"):
                raise FamilyError(f"{p}: variants.{sig}.{fw} needs a source URL")
            variants.setdefault(sig, {})[fw] = Variant(v["cause"], v["fix"], tuple(v.get("commands", ())))
    restate = []
    for i, r in enumerate(raw.get("restate", [])):
        bad = unbounded_repeat(r.get("pattern", ""))
        if bad or not r.get("says") or not str(r.get("source", "")).startswith("https://"):
            raise FamilyError(f"{p}: restate[{i}] needs a bounded pattern, says and a source URL ({bad or ''})")
        restate.append(Restatement(re.compile(r["pattern"], re.IGNORECASE), r["says"]))
    renames = {k: str(v) for k, v in raw.get("renames", {}).items() if k != "source"}
    builds = tuple(tuple(str(x) for x in row) for row in raw.get("tensorflow_builds", {}).get("table", []))
    sonames = tuple(tuple(str(x) for x in row) for row in raw.get("cuda_sonames", {}).get("table", []))
    if any(len(row) != 3 for row in sonames):
        raise FamilyError(f"{p}: cuda_sonames.table rows are [library, soname version, CUDA release]")
    return Catalogue(fams, variants, _vocabulary(fams), restatements=tuple(restate), renames=renames,
                     tensorflow_builds=builds, sonames=sonames,  # type: ignore[arg-type]
                     driver_cuda=tuple((str(a), str(b)) for a, b in raw.get("driver_cuda", {}).get("table", [])))


@functools.lru_cache(maxsize=1)
def catalogue() -> Catalogue:
    return load_catalogue()


# ---------------------------------------------------------------------------------------------------------------
# Facts the log states
# ---------------------------------------------------------------------------------------------------------------

_NAME = r"[A-Za-z_][\w.]{0,80}"
_VER = r"\d{1,4}(?:\.\d{1,4}){0,3}"
# "jax.tree_map was removed in JAX v0.6.0", "`np.float_` was removed in the NumPy 2.0 release", "X is deprecated
# and will be removed ... Use Y instead", "X has been removed in version 3.0; use Y"
_REMOVED = re.compile(
    rf"[`'\"]?(?P<what>[A-Za-z_][\w.-]{{0,80}})[`'\"]?(?:\(\))?(?: (?:package|distribution|wheel))? "
    rf"(?:was|were|has been|have been|is|are)(?: deprecated and)? removed"
    rf"(?: from (?P<pkg0>[A-Za-z][\w-]{{0,40}}))?"
    rf"(?: (?:in|as of|since|starting (?:with|from)) (?:the )?(?:(?P<pkg>[A-Za-z][\w-]{{0,40}}) )?"
    rf"(?:version |release |v)?(?P<version>{_VER})(?: release)?)?", re.IGNORECASE)
_INSTEAD = re.compile(r"(?:[Uu]se|[Pp]lease use|[Tt]ry|[Mm]igrate to|[Rr]eplace (?:it )?with|[Ii]nstall) [`'\"]?"
                      r"(?P<instead>[A-Za-z_][\w.-]{0,80}(?<![.-])(?:\(\))?)[`'\"]?(?: \([^)\n]{0,60}\))?"
                      r"(?: instead)?")
_PACKAGE_GONE = re.compile(r"[`'\"][A-Za-z][\w.-]{0,80}[`'\"] (?:package|distribution) (?:has been|was|is) removed")
_DEPRECATED = re.compile(rf"`?(?P<what>{_NAME})`?(?:\(\))? (?:is|was|has been) deprecated")
# A name the package says is past its use without the word "removed" ("jax.tools.colab_tpu.setup_tpu() was required
# for older JAX versions ..., and should no longer be used", "X is no longer supported; use Y")
_RETIRED = re.compile(
    rf"[`'\"]?(?P<what>{_NAME})[`'\"]?(?:\(\))? (?:[^\n]{{0,160}}?(?:,? and |; |, ))?"
    rf"(?:(?:should|must|can|may) no longer be (?:used|called)|"
    rf"(?:is|are) no longer (?:supported|needed|required|used))")


def stated_removal(text: str, chains: list[list[Raised]]) -> tuple[float, dict[str, str], list[str], Severity]:
    """What a message says was removed (and what to use instead): from the last exceptions first (an error), else
    from a warning line (harmless until it becomes one: INFO)."""
    raised = [r for chain in chains for r in chain][-6:]
    for r in reversed(raised):
        facts = _read_removal(r.message)
        if facts:
            caller = _user_or_package_caller(r, facts.get("pkg"))
            if caller:
                facts["caller"] = caller
            return 4.0, facts, [r.line[:400], *_history_says(facts)], Severity.ERROR
    lines = text.splitlines()
    tail = lines[-400:]
    for i, ln in enumerate(tail):  # the message printed without its class (IPython, a quoted excerpt): a dotted name
        if "removed" in ln and "Warning" not in ln and "warn" not in ln and len(ln) < 600:
            facts = _read_removal(ln)
            if facts and facts.get("version") and "." in facts["what"]:
                return 3.0, facts, [ln.strip()[:400], *_history_says(facts)], Severity.ERROR
            # a distribution withdrawn from the index, its successor on the next line ('The "tensorflow-gpu" package
            # has been removed! Please install "tensorflow" instead.')
            said = " ".join(x.strip() for x in tail[i:i + 3] if x.strip())
            facts = _read_removal(said) if _PACKAGE_GONE.search(ln) else None
            if facts and facts.get("instead"):
                return 3.0, facts | {"kind": "distribution"}, [said[:400]], Severity.ERROR
    for ln in lines:
        if ("Warning" in ln or "warn" in ln) and ("removed" in ln or "deprecated" in ln):
            facts = _read_removal(ln)
            if facts and facts.get("version"):
                return 3.0, facts, [ln.strip()[:400]], Severity.INFO
    return 0.0, {}, [], Severity.ERROR


_ALIASES = {"np": "numpy", "jnp": "jax.numpy", "tf": "tensorflow", "tfp": "tensorflow_probability"}


def _history_says(facts: dict[str, str]) -> list[str]:
    """The API history's account of the stated name, where it covers the package (a cross-check of the message)."""
    what = facts.get("what", "").strip("`")
    head, _, rest = what.partition(".")
    dotted = f"{_ALIASES.get(head, head)}.{rest}" if rest else what
    a = advise(facts.get("pkg", ""), dotted, None) if "." in dotted else None
    return [f"API history: {a.sentence}"] if a else []


def _read_removal(message: str) -> dict[str, str] | None:
    m = _REMOVED.search(message[:2000])
    retired = None if m else _RETIRED.search(message[:2000])
    if retired and not ("." in retired["what"] or retired[0][0] in "`'\"" or
                        "()" in retired[0][:len(retired["what"]) + 4]):
        retired = None  # a sentence's subject ("This function is no longer supported"), not a name of code
    dep = None if m or retired else _DEPRECATED.search(message[:2000])
    hit = m or retired or dep
    if not hit:
        return None
    facts = {"what": f"`{hit['what']}`"}
    if retired:
        facts["pkg"] = _dist_name(hit["what"].split(".")[0])
    if m:
        pkg = m["pkg"] or m["pkg0"] or ""
        if pkg.lower() in ("the", "version", "release"):
            pkg = ""
        pkg = pkg or hit["what"].split(".")[0].lstrip("`")
        if m["version"]:
            facts |= {"version": m["version"], "in_release": f" in {pkg} {m['version']}"}
        facts["pkg"] = _dist_name(pkg)
    inst = _INSTEAD.search(message[hit.end():hit.end() + 300])
    if inst and inst["instead"] != hit["what"]:
        facts["instead"] = f"; use `{inst['instead']}` instead"
    if dep and not m and "instead" not in facts:
        return None  # "X is deprecated" alone says nothing to do
    return facts


def _dist_name(module: str) -> str:
    low = module.lower()
    aliases = {"np": "numpy", "tf": "tensorflow", "jnp": "jax", "pd": "pandas"}
    low = aliases.get(low, low)
    return KNOWN_DISTS.get(low, low.replace("_", "-"))


def _user_or_package_caller(r: Raised, lacking: str | None) -> str | None:
    c = culprit(r.frames, lacking)
    return c.describe() if c else None


# Which framework raised: TensorFlow's ops and data pipeline, or jax/XLA. It decides whose CUDA libraries a
# finding talks about (TensorFlow's own CUDA/cuDNN build, or jax's wheels).
# TensorFlow's own C++ sources log as `tensorflow/...`; a jaxlib that bundles XLA logs `external/org_tensorflow/
# tensorflow/...` or `external/xla/...` (jax's marks)
_TF_MARKS = re.compile(r"Failed to (?:load the native TensorFlow runtime|import the TensorFlow module)|The GPU "
                       r"version of TensorFlow|tensorflow[/\\]python[/\\]|"
                       r"tensorflow\.python\.framework\.errors_impl|\[\[\{\{node [^}\n]{1,200}\}\}"
                       r"\]\]|IteratorGetNext|tf\.data|Op:\w{1,80}\]|(?<!org_tensorflow/)(?<!external/)tensorflow/"
                       r"(?:core/(?:kernels|common_runtime)|stream_executor|compiler/xla/stream_executor)/")
_JAX_MARKS = re.compile(r"jaxlib\.xla_extension|XlaRuntimeError|jax/_src/|jax\._src\.|jaxlib/|external/xla/|"
                        r"xla/service/")


_SONAME = re.compile(r"lib(?P<lib>cudart|cublas|cublasLt|cufft|curand|cusolver|cusparse|cudnn)\.so\.(?P<ver>\d{1,2}"
                     r"(?:\.\d{1,2})?)")


def tensorflow_build_for(text: str, cat: Catalogue) -> str | None:
    """'TensorFlow 2.4 was built with CUDA 11.0 and cuDNN 8.0' for the CUDA release a soname in ``text`` names
    (libcudart.so.11.0 -> CUDA 11.0); None when no soname or no build matches."""
    m = _SONAME.search(text)
    if not m:
        return None
    lib, ver = m["lib"], m["ver"]
    if lib == "cudnn":
        rows = [r for r in cat.tensorflow_builds if r[3].split(".")[0] == ver.split(".")[0]]
        what = f"cuDNN {ver}"
    else:
        rows = [r for r in cat.tensorflow_builds if r[2] == ver or (("." not in ver) and r[2].split(".")[0] == ver)]
        what = f"CUDA {ver}"
    if not rows:
        return None
    span = ", ".join(f"TensorFlow {a}" + (f"-{b}" if b != a else "") + f" (CUDA {c}, cuDNN {d})" for a, b, c, d in rows)
    return f"lib{lib}.so.{ver} is {what}'s: the builds that use it are {span}"


# A versioned soname a loader asked for and could not open: TensorFlow's dso_loader ("Could not load dynamic library
# 'libcusolver.so.10'"), or the dynamic linker's own message ("libcudart.so.10.2: cannot open shared object file").
_ASKED_SONAME = re.compile(r"(?:library '?|^|[\s'\"(:])lib(?P<lib>cudart|cublasLt|cublas|cufft|curand|cusolver|"
                           r"cusparse|cudnn|nvrtc|nccl)\.so\. ?(?P<ver>\d{1,2}(?:\.\d{1,2})?)(?=['\";:\s]|$)"
                           r"(?=[^\n]{0,120}(?:cannot open shared object|dlerror|No such file|not found))",
                           re.MULTILINE)
# the loader's failure as the ImportError that carries it, its message cut after the soname ("ImportError:
# libcusolver.so.8.0")
_IMPORT_SONAME = re.compile(r"ImportError: ['\"`]?lib(?P<lib>cudart|cublasLt|cublas|cufft|curand|cusolver|cusparse|"
                            r"cudnn|nvrtc|nccl)\.so\.(?P<ver>\d{1,2}(?:\.\d{1,2})?)(?![\d.]{0,1}\d)")
# the same, the loader's verb first in any wording ("Cannot open dynamic library **libcublas.so.10**")
_VERB_SONAME = re.compile(r"(?:(?:Could not|Cannot|Can't|Couldn't|Unable to|Failed to|trying to|tries to|"
                          r"attempting to) (?:load|open|find|dlopen)|looks? for|looking for|asks? for) "
                          r"(?:the )?(?:dynamic |shared |CUDA )?(?:library|lib|object)?[ '\"`*]{0,4}"
                          r"lib(?P<lib>cudart|cublasLt|cublas|cufft|curand|cusolver|cusparse|cudnn|nvrtc|nccl)\.so\. ?"
                          r"(?P<ver>\d{1,2}(?:\.\d{1,2})?)(?![\d.]{0,1}\d)", re.IGNORECASE)
# the CUDA a log shows installed: nvidia-smi, a toolkit path, nvcc, TensorFlow's issue template ("- CUDA/cuDNN
# version: 10.2"), a sentence ("installed CUDA 10.2")
_INSTALLED_CUDA = re.compile(r"CUDA Version: ?(?P<a>\d{1,2}\.\d)\b|/cuda-(?P<b>\d{1,2}\.\d)\b|"
                             r"Cuda compilation tools, release (?P<c>\d{1,2}\.\d)\b|"
                             r"CUDA/cuDNN version\*{0,2}:\s{0,4}(?:CUDA\s{0,2})?v?(?P<d>\d{1,2}\.\d)\b|"
                             r"\b(?:installed|have|using) (?:the )?(?:CUDA|cuda|Cuda)(?: toolkit| Toolkit)? ?"
                             r"v?(?P<e>\d{1,2}\.\d)\b|"
                             # a toolkit soname said installed (CUDA 10.x and older name theirs by the release)
                             r"\blib(?:cudart|cublas|cufft|curand|cusolver|cusparse)\.so\.(?P<f>\d\.\d|10\.\d)\b['\"`]{0,2}"
                             r" (?:is |was )?installed")


def _cuda_of(lib: str, ver: str, cat: Catalogue) -> str | None:
    """The CUDA release that ships lib<lib>.so.<ver>: the table first, then the rule of the toolkit's own sonames
    up to CUDA 10.0 (libcublas.so.10.0 is CUDA 10.0's), or the major alone for a cuDNN."""
    for name, soname, shipped_by in cat.sonames:
        if name.lower() == lib.lower() and soname == ver:
            return shipped_by
    major = int(ver.split(".")[0])
    if "." in ver and major <= 10 and lib != "cudnn":
        return f"CUDA {ver}"
    return None


def _in_release(version: str, release: str) -> bool:
    """Whether CUDA ``version`` (11.2) lies in ``release`` ("CUDA 10.1-11.0", "CUDA 11.x", "CUDA 10.2", "cuDNN 8
    (CUDA 10.2-12.x)")."""
    m = re.search(r"CUDA (\d{1,2})\.(\d{1,2}|x)(?:-(\d{1,2})\.(\d{1,2}|x))?\b", release)
    v = re.match(r"(\d{1,2})\.(\d{1,2})", version)
    if not m or not v:
        return True  # unknown: never claim a difference
    lo = (int(m[1]), 0 if m[2] == "x" else int(m[2]))
    hi_major, hi_minor = (m[3], m[4]) if m[3] else (m[1], m[2])
    hi = (int(hi_major), 99 if hi_minor == "x" else int(hi_minor))
    return lo <= (int(v[1]), int(v[2])) <= hi


def _tensorflow_builds_of(release: str, cat: Catalogue) -> str:
    """TensorFlow's tested builds whose CUDA lies in ``release`` ("CUDA 10.1-11.0", "CUDA 11.x", "CUDA 10.2")."""
    m = re.match(r"CUDA (\d{1,2})\.(\d{1,2}|x)(?:-(\d{1,2})\.(\d{1,2}|x))?$", release)
    if not m:
        return ""
    lo = (int(m[1]), 0 if m[2] == "x" else int(m[2]))
    hi_major, hi_minor = (m[3], m[4]) if m[3] else (m[1], m[2])
    hi = (int(hi_major), 99 if hi_minor == "x" else int(hi_minor))
    rows = [r for r in cat.tensorflow_builds if lo <= tuple(int(x) for x in r[2].split(".")[:2]) <= hi]
    return ", ".join(f"{a}" + (f"-{b}" if b != a else "") + f" (CUDA {c})" for a, b, c, _ in rows)


@functools.lru_cache(maxsize=2)
def _asked_sonames(text: str) -> list[re.Match[str]]:
    """The loader failures for versioned CUDA sonames in the log's tail, the verb after the soname or before it."""
    tail = text[-200_000:]
    if ".so." not in tail:
        return []
    found = [*(_ASKED_SONAME.finditer(tail) if may_match(_ASKED_SONAME, tail) else ()),
             *(_VERB_SONAME.finditer(tail) if may_match(_VERB_SONAME, tail) else ()),
             *(_IMPORT_SONAME.finditer(tail) if "ImportError" in tail else ())]
    return sorted(found, key=lambda m: m.start())[:40]


# what else a log shows failing: an exception, a fatal check, a crash, a failed call
_OTHER_FAILURE = re.compile(r"(?<!dl)error|exception|fatal|failed|segmentation fault|core dumped|killed|abort",
                            re.IGNORECASE)


def _lone(text: str, asked: list[re.Match[str]]) -> bool:
    """Whether the loader's failures are the only failure the log shows: no exception raised, and no line that
    says error, failed or fatal besides the loader's own (a user's paste of the one message they met)."""
    tail = text[-200_000:]
    loader_lines = {tail.rfind("\n", 0, m.start()) + 1 for m in asked}
    pos = 0
    while m := _OTHER_FAILURE.search(tail, pos):
        start = tail.rfind("\n", 0, m.start()) + 1
        if start not in loader_lines and ".so." not in tail[start:m.start()]:
            return False
        end = tail.find("\n", m.end())
        if end == -1:
            break
        pos = end  # one look per line
    return True


def lone_loader_failure(text: str, chains: list[list[Raised]]) -> tuple[float, dict[str, str], list[str],
                                                                         Severity]:
    """1 point when a loader failure for a versioned CUDA soname is the only failure in a log without a traceback."""
    asked = [] if chains else _asked_sonames(text)
    if asked and _lone(text, asked):
        return 1.0, {}, [], Severity.ERROR
    return 0.0, {}, [], Severity.ERROR


def soname_release(text: str, chains: list[list[Raised]]) -> tuple[float, dict[str, str], list[str], Severity]:
    """The versioned CUDA sonames a loader could not open, each with the CUDA release that ships it, and the CUDA
    the log shows installed (nvidia-smi, a /usr/local/cuda-X.Y path, nvcc)."""
    cat = catalogue()
    asked: dict[str, tuple[str, str, str]] = {}
    tail = text[-200_000:]
    matches = _asked_sonames(text)
    for m in matches:
        soname = f"lib{m['lib']}.so.{m['ver']}"
        release = _cuda_of(m["lib"], m["ver"], cat)
        if release and soname not in asked:
            asked[soname] = (m["lib"], release, _line_at(tail, m.start(), m.end()))
        if len(asked) >= 6:
            break
    if not asked:
        return 0.0, {}, [], Severity.ERROR
    first, (lib, release, line) = next(iter(asked.items()))
    facts = {"soname": first, "lib": lib, "provider": release}
    others = [f"{s} ({r})" for s, (_, r, _) in list(asked.items())[1:]]
    if others:
        facts["also"] = f" (and {', '.join(others)})"
    score = 0.0
    inst = _INSTALLED_CUDA.search(text)
    if lib == "cudnn":
        # a cuDNN soname is cuDNN's release, not CUDA's: compare it with the cuDNN the log shows installed
        have = _INSTALLED_CUDNN.search(text)
        major = first.rsplit(".so.", 1)[-1].split(".")[0]
        if have:
            installed = next(v for v in have.groups() if v)
            facts["installed"] = installed
            if installed.split(".")[0] == major:
                return -1.0, facts, [], Severity.ERROR  # that cuDNN is installed: a search path, not a release
            facts["installed_clause"] = f", while the log shows cuDNN {installed} installed"
        score += 1.0
    elif inst:
        installed = next(v for v in inst.groups() if v)
        facts["installed"] = installed
        if not _in_release(installed, release):
            facts["installed_clause"] = f", while the log shows CUDA {installed} installed"
            score += 1.0
        elif "CUDA " in release:
            return -1.0, facts, [], Severity.ERROR  # the installed CUDA ships it: a search path, not a release
    # cudart alone is TensorFlow's probe at import; the others are loaded when it sets up a GPU
    elif len({lib for lib, _, _ in asked.values()} - {"cudart"}) >= 1:
        score += 1.0
    builds = _tensorflow_builds_of(release, cat)
    if builds:
        facts["tf_builds"] = f" (TensorFlow's builds on {release}: {builds})"
    return score, facts, [line], Severity.ERROR


# Any library's versioned soname the dynamic loader could not open ("librocm_smi64.so.6: cannot open shared object
# file", "ImportError: libffi.so.6: ...", "error while loading shared libraries: libssl.so.1.1"), the soname first
_ANY_SONAME_FAILED = re.compile(r"(?:^|[\s'\"(:/])(?P<lib>lib[A-Za-z][\w+-]{0,60})\.so\."
                                r"(?P<ver>\d{1,3}(?:\.\d{1,6}){0,3})['\"]?:? ?(?:cannot open shared object file|"
                                r"No such file or directory|not found\b|could not be (?:found|opened|loaded))",
                                re.MULTILINE | re.IGNORECASE)
# a line that lists an installed library file: `ls`, `ldconfig -p` ("libx.so.7 (libc6,x86-64) => /usr/lib/...") or
# `find`'s paths, `ls -l`'s symlinks ("libx.so -> libx.so.7.3")
def _listed(lib: str) -> re.Pattern[str]:
    name, ver, path = re.escape(lib) + r"\.so\.", r"\d{1,3}(?:\.\d{1,6}){0,3}", r"(?:/[\w.+-]{1,80}){0,12}/?"
    return re.compile(rf"^[ \t]{{0,8}}(?:[-lrwxs.@]{{10,11}}[^\n]{{0,80}}?\s)?{path}{name}(?P<ver>{ver})\b"
                      rf"(?=[ \t]{{0,4}}(?:$|\(|=>|->))|(?:->|=>)[ \t]{{0,4}}{path}{name}(?P<ver2>{ver})\b",
                      re.MULTILINE)


def soname_listed(text: str, chains: list[list[Raised]]) -> tuple[float, dict[str, str], list[str], Severity]:
    """A versioned soname of any library the loader could not open, while the log lists the same library installed
    under another soname (``ls``, ``ldconfig -p``, ``find``): 5 points, with both lines. A listed file of the same
    release (libx.so.6.1 for libx.so.6) means the release is there and the search path is the question: nothing."""
    tail = text[-200_000:]
    if ".so." not in tail:
        return 0.0, {}, [], Severity.ERROR
    seen: set[tuple[str, str]] = set()
    for m in itertools.islice(_ANY_SONAME_FAILED.finditer(tail), 200):
        if (m["lib"], m["ver"]) in seen:
            continue  # a loader's failure repeated (every import, every worker): read once
        seen.add((m["lib"], m["ver"]))
        if len(seen) > 6:
            break
        lib, want = m["lib"], m["ver"].split(".")
        listed = _listed(lib)
        others = []
        for o in itertools.islice(listed.finditer(tail), 40):
            have = (o["ver"] or o["ver2"]).split(".")
            if have[:len(want)] == want:
                return 0.0, {}, [], Severity.ERROR  # that release is installed: not a release question
            others.append((have, o))
        if others:
            have, o = max(others, key=lambda x: len(x[0]))
            facts = {"soname": f"{lib}.so.{m['ver']}", "lib": lib, "present": f"{lib}.so.{'.'.join(have)}"}
            return 5.0, facts, [_line_at(tail, m.start(), m.end()), _line_at(tail, o.start(), o.end())], Severity.ERROR
    return 0.0, {}, [], Severity.ERROR


# cuDNN's own load-time check in both eras' wordings: TensorFlow 1.x packed integers, XLA's dotted releases
_CUDNN_LOADED = re.compile(r"Loaded runtime CuDNN library:? ?(?P<have>\d{1,2}\.\d{1,2}\.\d{1,3}|\d{3,6})"
                           r"[^\n]{0,60}? but (?:the )?source was compiled with:? ?"
                           r"(?P<built>\d{1,2}\.\d{1,2}\.\d{1,3}|\d{3,6})",
                           re.IGNORECASE)


def cudnn_newer_major(text: str, chains: list[list[Raised]]) -> tuple[float, dict[str, str], list[str], Severity]:
    """4 points when the cuDNN loaded at run time is of a newer major release than the one the build was compiled
    with (cuDNN 6 under a build for cuDNN 5): the check refuses any other major, and "older" would be wrong."""
    tail = text[-200_000:]
    m = _CUDNN_LOADED.search(tail)
    have = decode(m["have"], "cudnn") if m else None
    built = decode(m["built"], "cudnn") if m else None
    if not m or not have or not built or release(have)[:1] <= release(built)[:1]:
        return 0.0, {}, [], Severity.ERROR
    return 4.0, {"have": have, "built": built, "major": str(release(built)[0])}, \
        [_line_at(tail, m.start(), m.end())], Severity.ERROR


# A Python outside a package's declared range, in the installers' words: pip's Requires-Python check, uv's, apt's
# dependency of a Debian package on python3 ("python3-tflite-runtime : Depends: python3 (< 3.10) but 3.11.2-1 is to
# be installed")
_PYTHON_RANGE = re.compile(
    r"(?:Package '(?P<pkg>[\w.-]{1,60})' )?requires a different Python: (?P<have>\d{1,2}\.\d{1,2}(?:\.\d{1,3})?) "
    r"not in '(?P<spec>[^'\n]{1,60})'|(?:the )?(?:current|requested) Python version "
    r"\((?P<have2>\d{1,2}\.\d{1,2}(?:\.\d{1,3})?)\) does not satisfy Python ?(?P<spec2>[<>=!~][^\n]{0,60}?)(?:\s|$)|"
    r"(?P<pkg3>[\w.+-]{1,60}) ?: Depends: python3? \((?P<op3><<|<=|<|>=|>>|>|=) ?(?P<v3>\d\.\d{1,2})[^)\n]{0,20}\) but "
    r"(?P<have3>\d\.\d{1,2})[\w.+~-]{0,20} is to be installed")


_PYTHON_RANGE_WORDS = ("requires a different Python", "does not satisfy Python", "Depends: python")


@functools.lru_cache(maxsize=2)
def _python_direction(text: str) -> tuple[str, dict[str, str], str] | None:
    """("newer" or "older", facts, line) for the first refusal of this Python by a package's declared range (read
    only on the lines that carry one of the installers' words: the pattern has no literal start)."""
    lines = [ln for ln in text[-200_000:].splitlines() if any(w in ln for w in _PYTHON_RANGE_WORDS)][:20]
    said = "\n".join(lines)
    m = _PYTHON_RANGE.search(said) if lines else None
    if not m:
        return None
    have = m["have"] or m["have2"] or m["have3"]
    spec = m["spec"] or m["spec2"] or f"{'<' if m['op3'] == '<<' else '>' if m['op3'] == '>>' else m['op3']}{m['v3']}"
    try:
        specs = SpecifierSet(spec.replace(" ", "").rstrip(".,;"))
        version = Version(have)
    except (InvalidSpecifier, InvalidVersion):
        return None
    failed = [sp for sp in specs if not sp.contains(version, prereleases=True)]
    newer = bool(failed) and all(sp.operator in ("<", "<=", "==", "~=") and Version(sp.version.rstrip(".*")) < version
                                 for sp in failed)
    facts = {"have": have, "need": spec, **({"pkg": m["pkg"] or m["pkg3"]} if m["pkg"] or m["pkg3"] else {})}
    return ("newer" if newer else "older"), facts, _line_at(said, m.start(), m.end())


def python_above_range(text: str, chains: list[list[Raised]]) -> tuple[float, dict[str, str], list[str], Severity]:
    """5 points when the Python that ran is above the range a package declares (its ceiling, not its floor)."""
    got = _python_direction(text)
    if not got or got[0] != "newer":
        return 0.0, {}, [], Severity.ERROR
    return 5.0, got[1], [got[2]], Severity.ERROR


def python_not_below_range(text: str, chains: list[list[Raised]]) -> tuple[float, dict[str, str], list[str],
                                                                         Severity]:
    """-5 points when the refused Python is above the declared range: not a Python too old."""
    got = _python_direction(text)
    return (-5.0 if got and got[0] == "newer" else 0.0), {}, [], Severity.ERROR


def tensorflow_1_only(text: str, chains: list[list[Raised]]) -> tuple[float, dict[str, str], list[str], Severity]:
    """-4 points when every TensorFlow version the log shows is a 1.x: Keras 3 and TensorFlow 2's layout are not
    the question there."""
    return (-4.0 if only_tensorflow_1(text) else 0.0), {}, [], Severity.ERROR


_DRIVER_CUDA = re.compile(r"CUDA Version: ?(?P<cuda>\d{1,2}\.\d{1,2})|Driver Version: ?(?P<driver>\d{3}\.\d{1,3})|"
                          r"driver's CUDA version is (?P<said>\d{1,2}\.\d{1,2})")
_TOOLKIT_CUDA = re.compile(r"Cuda compilation tools, release (?P<a>\d{1,2}\.\d{1,2})|"
                           r"ptxas[^\n]{0,60}?(?:version|release) (?P<b>\d{1,2}\.\d{1,2})|"
                           r"(?:cudatoolkit|cuda-nvcc|cuda-toolkit|nvidia-cuda-nvcc-cu\d{2})"
                           r"[ =:-]{1,3}(?P<c>\d{1,2}\.\d{1,2})|CUDA (?:toolkit |Toolkit )?(?P<d>1\d\.\d)\.\d{1,3}\b|"
                           r"/cuda-(?P<e>\d{1,2}\.\d{1,2})\b|"
                           # an issue template's own line ("CUDA: 9.0", "- CUDA version: 10.1"), not nvidia-smi's
                           r"^[ \t]{0,4}(?:[-*] )?CUDA(?: version| toolkit)?: ?v?(?P<f>\d{1,2}\.\d)\b", re.MULTILINE)


# the cuDNN a log shows installed: TensorFlow's issue template ("- CUDA/cuDNN version: 10.2, 8.0.2"), a version
# line, an apt or conda package pin
_INSTALLED_CUDNN = re.compile(r"CUDA/cuDNN version\*{0,2}:\s{0,4}(?:CUDA\s{0,2})?v?\d{1,2}\.\d{1,2}(?:\.\d{1,3})?"
                              r"\s{0,3}[,/;]"
                              r"\s{0,3}(?:cuDNN\s{0,2})?v?(?P<a>\d{1,2}\.\d{1,2}(?:\.\d{1,3})?)|"
                              r"cuDNN (?:version:? ?|v)?(?P<b>\d{1,2}\.\d{1,2}(?:\.\d{1,3})?)|"
                              r"\bcudnn[ =:-]{1,30}v?(?P<c>\d{1,2}\.\d{1,2}(?:\.\d{1,3})?)|"
                              r"\blibcudnn\d{0,2}[ =:-]{1,30}(?P<d>\d{1,2}\.\d{1,2}(?:\.\d{1,3})?)", re.IGNORECASE)


def _cuda_tuple(v: str) -> tuple[int, ...]:
    return tuple(int(x) for x in v.split(".")[:2])


def driver_older(text: str, chains: list[list[Raised]]) -> tuple[float, dict[str, str], list[str], Severity]:
    """The driver's CUDA (nvidia-smi's header, or its driver version read in the driver table) older than the
    toolkit the log shows compiling (nvcc, ptxas, a cudatoolkit pin, a /usr/local/cuda-X.Y path): the facts, and
    3 points when the log shows both and the driver is older."""
    cat = catalogue()
    drv = tool = None
    line = ""
    for m in _DRIVER_CUDA.finditer(text[-200_000:]):
        if m["cuda"] or m["said"]:
            drv, line = m["cuda"] or m["said"], _line_at(text, m.start(), m.end())
            break
        if m["driver"] and not drv:
            known = [c for d, c in cat.driver_cuda if _cuda_tuple(d) <= _cuda_tuple(m["driver"])]
            if known:
                drv, line = known[-1], _line_at(text, m.start(), m.end())
    for m in _TOOLKIT_CUDA.finditer(text[-200_000:]):
        v = next(g for g in m.groups() if g)
        if tool is None or _cuda_tuple(v) > _cuda_tuple(tool):
            tool = v
    facts = {k: v for k, v in (("driver_cuda", drv), ("toolkit_cuda", tool)) if v}
    if drv and tool and _cuda_tuple(drv) < _cuda_tuple(tool):
        return 3.0, facts, [line], Severity.ERROR
    return 0.0, facts, [], Severity.ERROR


_RESHAPE = re.compile(r"cannot reshape array of size (?P<size>\d{1,6}) into shape "
                      r"\((?P<shape>\d{1,6}(?:, ?\d{1,6}){0,7}),?\)")


def _reshape_sizes(text: str) -> tuple[int, int, str] | None:
    """(array size, product of the shape, the line) of numpy's reshape refusal, the last in the log."""
    tail = text[-200_000:]
    if "cannot reshape" not in tail:
        return None
    last = None
    for m in _RESHAPE.finditer(tail):
        last = m
    if last is None:
        return None
    product = 1
    for d in last["shape"].split(","):
        product *= int(d)
    return int(last["size"]), product, _line_at(tail, last.start(), last.end())


# A batch split over devices by a reshape to (devices, batch // devices, *rest): jax's lax wording ("reshape total size
# must be unchanged, got new_sizes (8, 2, 224) (of total size ...) for shape (20, 224)") and numpy's ("cannot reshape
# array of shape (20, 224) (size 4480) into shape (8, 2, 224)", or only the size)
_SPLIT = re.compile(
    r"got new_sizes \((?P<new>\d{1,9}(?:, ?\d{1,9}){1,7}),?\)(?: \(of total size \d{1,12}\))? for shape "
    r"\((?P<old>\d{1,9}(?:, ?\d{1,9}){0,7}),?\)|"
    r"cannot reshape array of (?:shape \((?P<old2>\d{1,9}(?:, ?\d{1,9}){0,7}),?\) \()?size (?P<size>\d{1,12})\)? into "
    r"shape \((?P<new2>\d{1,9}(?:, ?\d{1,9}){1,7}),?\)")


_DEVICE_WORDS = re.compile(r"device|pmap|shard|\bmesh\b|replica|\bjax\b|\bTPUs?\b|\bGPUs\b", re.IGNORECASE)


def _device_count(n: int) -> bool:
    """A count of devices a machine or slice has: up to 8 of anything, else a power of two."""
    return 1 < n <= 8 or (n <= 8192 and n & (n - 1) == 0)


def _dims(s: str | None) -> list[int]:
    return [int(d) for d in s.split(",") if d.strip()] if s else []


def batch_split(text: str, chains: list[list[Raised]]) -> tuple[float, dict[str, str], list[str], Severity]:
    """4 points when a reshape splits a leading batch over a device-sized first axis and the batch does not divide:
    the new shape is (n, m, *rest), rest not empty, for an array (b, *rest) with b not a multiple of n."""
    tail = text[-200_000:]
    if ("new_sizes" not in tail and "cannot reshape" not in tail) or not _DEVICE_WORDS.search(tail):
        return 0.0, {}, [], Severity.ERROR  # a grid or a weight reshape is not a split over devices
    for m in _SPLIT.finditer(tail):
        new, old = _dims(m["new"] or m["new2"]), _dims(m["old"] or m["old2"])
        n, rest = new[0], new[2:]
        if not rest:  # (b,) -> (n, m) is as often any 1-D array's reshape as a batch's split
            continue
        if not old and m["size"]:  # only the size: the batch is what the rest leaves
            inner = 1
            for d in rest:
                inner *= d
            old = [int(m["size"]) // inner, *rest] if inner and int(m["size"]) % inner == 0 else []
        if len(old) == len(new) - 1 and old[1:] == rest and _device_count(n) and old[0] % n:
            return 4.0, {"batch": str(old[0]), "devices": str(n)}, [_line_at(tail, m.start(), m.end())], \
                Severity.ERROR
    return 0.0, {}, [], Severity.ERROR


def devices_beyond_mesh(text: str, chains: list[list[Raised]]) -> tuple[float, dict[str, str], list[str], Severity]:
    """3 points when the reshaped array (the device list) holds more elements than the mesh's shape: the mesh was
    sized for a machine with fewer devices than this one shows."""
    got = _reshape_sizes(text)
    if not got or not 0 < got[1] < got[0]:
        return 0.0, {}, [], Severity.ERROR
    return 3.0, {"have": str(got[0]), "mesh": str(got[1])}, [got[2]], Severity.ERROR


def mesh_beyond_devices(text: str, chains: list[list[Raised]]) -> tuple[float, dict[str, str], list[str],
                                                                         Severity]:
    """-4 points when the device list is larger than the mesh (the machine shows more devices than the code asks
    for, not fewer)."""
    got = _reshape_sizes(text)
    return (-4.0 if got and 0 < got[1] < got[0] else 0.0), {}, [], Severity.ERROR


# What starts jax's backends (a device query, an array, a key), and the settings jax and XLA read only then: an
# environment variable (os.environ, %env, os.putenv) or jax.config option set after the first is too late
# (https://docs.jax.dev/en/latest/faq.html: XLA_FLAGS and friends are read when the backend initialises)
_BACKEND_STARTS = re.compile(r"\bjax\.(?:devices|device_count|local_devices|local_device_count|default_backend)\(|"
                             r"\b(?:jnp|jax\.numpy)\.\w{1,30}\(|\bjax\.random\.(?:PRNGKey|key)\(|"
                             r"^\[(?:Cpu|Cuda|Gpu|Tpu|Rocm)Device\(id=0|^\[(?:cpu|gpu|cuda|tpu)\(id=0\)", re.MULTILINE)
_BACKEND_SETTING = re.compile(
    r"(?:os\.environ\[['\"]|os\.environ\.(?:update|setdefault)\(\{?['\"]|os\.putenv\(['\"]|%env |%set_env )"
    r"(?P<setting>XLA_FLAGS|JAX_PLATFORMS?|CUDA_VISIBLE_DEVICES|HIP_VISIBLE_DEVICES|TPU_VISIBLE_CHIPS|"
    r"XLA_PYTHON_CLIENT_(?:PREALLOCATE|MEM_FRACTION|ALLOCATOR)|JAX_NUM_CPU_DEVICES)|"
    r"jax\.config\.update\(['\"](?P<option>jax_platforms?|jax_num_cpu_devices|jax_cuda_visible_devices)['\"]")
_TOP_LEVEL = re.compile(r"(?:>>> |In \[\d{1,4}\]: )?\S")


def setting_after_start(text: str, chains: list[list[Raised]]) -> tuple[float, dict[str, str], list[str], Severity]:
    """A backend setting made in the program after a line that started the backends (a notebook or a REPL shows both
    in order): 4 points, with both lines."""
    settings = list(_BACKEND_SETTING.finditer(text))
    # only a top-level statement (or a REPL's) runs where it stands: a call inside a def runs when called
    start = next((s for s in _BACKEND_STARTS.finditer(text, 0, settings[-1].start())
                  if _TOP_LEVEL.match(text, text.rfind("\n", 0, s.start()) + 1)), None) if settings else None
    late = next((m for m in settings if start and m.start() > start.end()), None)
    if not start or not late:
        return 0.0, {}, [], Severity.ERROR
    lines = [_line_at(text, start.start(), start.end()), _line_at(text, late.start(), late.end())]
    return 4.0, {"setting": late["setting"] or late["option"]}, lines, Severity.ERROR


def raised_by(text: str, chains: list[list[Raised]] | None = None) -> str | None:
    """'tensorflow' or 'jax' for the framework whose frames or messages carry the last error; None if unsure."""
    chains = parse(text) if chains is None else chains
    last = chains[-1] if chains else []
    dists = [f.dist for r in last for f in r.frames if f.dist in ("tensorflow", "jax", "jaxlib", "flax")]
    types = " ".join(r.type for r in last)
    if "tensorflow.python" in types or (dists and dists[-1] == "tensorflow"):
        return "tensorflow"
    if "XlaRuntimeError" in types or (dists and dists[-1] in ("jax", "jaxlib", "flax")):
        return "jax"
    tail = text[-20000:]
    tf, jx = len(_TF_MARKS.findall(tail)), len(_JAX_MARKS.findall(tail))
    return "tensorflow" if tf > jx else "jax" if jx > tf else None


# ---------------------------------------------------------------------------------------------------------------
# Scoring
# ---------------------------------------------------------------------------------------------------------------

_OWN_IMPORT = re.compile(r"^\s{0,8}(?:from (?P<mod>[\w.]{1,160}) import |import (?P<mod2>[\w.]{1,160}))")


def own_import_broken(text: str, chains: list[list[Raised]]) -> tuple[float, dict[str, str], list[str], Severity]:
    """An import that fails inside TensorFlow's own files, at a line importing from TensorFlow itself: the innermost
    frame of an ImportError is a TensorFlow module asking another TensorFlow module for a name it lacks, so the
    installed files are not of one release (two TensorFlow distributions over one import name, an upgrade stopped
    half-way): 5 points. A failure deeper down (a missing library, another package) has its own innermost frame."""
    last = chains[-1][-1] if chains else None
    if not last or not last.type.endswith(("ImportError", "ModuleNotFoundError")) or not last.frames:
        return 0.0, {}, [], Severity.ERROR
    inner = last.frames[-1]
    m = _OWN_IMPORT.match(inner.code)
    mod = (m["mod"] or m["mod2"]) if m else ""
    # what is missing must be TensorFlow's own: a name of one of its modules, or one of its modules (a paste cut
    # before the message says nothing else); a library it loads (libcudart, a DLL) is another cause
    says = last.message
    own = not says or re.search(r"cannot import name '\w{1,120}'(?! from '(?!tensorflow))|"
                                r"No module named '?tensorflow\.", says)
    if inner.module != "tensorflow" or not mod.startswith("tensorflow.") or not own:
        return 0.0, {}, [], Severity.ERROR
    return 5.0, {"module": mod}, [f"{inner.path}: {inner.code}", *([last.line[:400]] if last.message else [])], \
        Severity.ERROR


_EXTRACTORS: dict[str, Callable[[str, list[list[Raised]]], tuple[float, dict[str, str], list[str], Severity]]] = {
    "stated_removal": stated_removal,
    "soname_release": soname_release,
    "soname_listed": soname_listed,
    "cudnn_newer_major": cudnn_newer_major,
    "python_above_range": python_above_range,
    "tensorflow_1_only": tensorflow_1_only,
    "python_not_below_range": python_not_below_range,
    "driver_older": driver_older,
    "lone_loader_failure": lone_loader_failure,
    "devices_beyond_mesh": devices_beyond_mesh,
    "batch_split": batch_split,
    "mesh_beyond_devices": mesh_beyond_devices,
    "setting_after_start": setting_after_start,
    "own_import_broken": own_import_broken,
}


def _last_line(text: str) -> str:
    return last_lines(text, 1)


def _line_at(text: str, start: int, end: int) -> str:
    a = text.rfind("\n", 0, start) + 1
    b = text.find("\n", end)
    return text[a:b if b != -1 else len(text)].strip()[:400]


_ORDER_WORDS = {"later": "newer", "earlier": "older"}


def score(family: Family, text: str, chains: list[list[Raised]]) -> Fit:
    fit = Fit(family)
    # the log's words, then its structure: the exception classes it raised and the line it ends on
    readings = ((family.cues, None, "{}"), (family.types, exception_types, "raised {}"),
                (family.last, _last_line, "the log ends: {}"))
    for cues, read, say in readings:
        said = read(text) if read and cues else distinct_lines(text)
        for cue in cues:
            m = search(cue.pattern, said) if read is None else cue.pattern.search(said)
            if not m:
                continue
            fit.score += cue.weight
            line = say.format(_line_at(said, m.start(), m.end()))
            if line not in fit.lines:
                fit.lines.append(line)
            for group, value in m.groupdict().items():
                if not value:
                    continue
                name, lib = _fact_name(group)
                fit.facts.setdefault(name, _decoded(value, lib))
    for name in family.extract:
        s, facts, lines, severity = _EXTRACTORS[name](text, chains)
        fit.score += s
        fit.lines += [ln for ln in lines if ln not in fit.lines]
        fit.facts |= {k: v for k, v in facts.items() if k not in fit.facts}
        fit.severity = severity if s else fit.severity
    if fit.score <= 0:
        return fit
    for pkg in family.packages:
        seen = versions_in(text, pkg)
        if seen:
            fit.facts.setdefault(f"v_{pkg}", seen[0])
    tf = fit.facts.get("v_tensorflow")
    if tf:
        fit.facts.setdefault("tf_minor", ".".join(tf.split(".")[:2]))
    # a message that states the direction itself ("built with a later version than the framework")
    fit.facts["order"] = _ORDER_WORDS.get(fit.facts.get("order", ""), fit.facts.get("order", ""))
    if not fit.facts["order"]:
        del fit.facts["order"]
    if len(family.order) == 2 and all(k in fit.facts for k in family.order):
        a, b = (fit.facts[k] for k in family.order)
        fit.facts["order"] = "newer" if newer(a, b) else "older" if newer(b, a) else "same"
    return fit


def fits(text: str, chains: list[list[Raised]] | None = None, cat: Catalogue | None = None) -> list[Fit]:
    """Every family with any cue in ``text``, best first (the ones that fit, then the near misses)."""
    cat = cat or catalogue()
    chains = parse(text) if chains is None else chains
    scored = [score(f, text, chains) for f in cat.families]
    return sorted((f for f in scored if f.score > 0), key=lambda f: (not f.fits, -f.score / f.family.threshold))


class _Facts(dict[str, str]):
    def __missing__(self, key: str) -> str:
        raise KeyError(key)


def _fill(template: str, facts: dict[str, str]) -> str | None:
    try:
        return template.format_map(_Facts(facts))
    except (KeyError, IndexError, ValueError):
        return None


def finding(fit: Fit, name: str = "log") -> Finding:
    fam = fit.family
    facts = {**fam.defaults, **fit.facts}
    title = _fill(fam.title, facts) or fam.title
    summary = fam.fix_by.get(facts.get(fam.fix_by.get("fact", ""), ""), "") if fam.fix_by else ""
    summary = (_fill(summary, facts) or summary) if summary else (_fill(fam.fix, facts) or fam.fix)
    commands = tuple(c for c in (_fill(c, fit.facts | {k: v for k, v in fam.defaults.items()
                                                       if k not in _fields(fam.title) | _fields(fam.fix)})
                                 for c in fam.commands) if c)
    shown = {k: v for k, v in fit.facts.items()
             if not k.startswith("v_") and k != "order" and v[:1] not in (" ", ";")}  # not the templates' clauses
    versions = [f"{k[2:]} {v}" for k, v in fit.facts.items() if k.startswith("v_")]
    evidence = (*(ln if ln.startswith("API history: ") else f"{name}: {ln}" for ln in fit.lines[:4]),
                *(["read from the log: " + ", ".join(f"{k}={v}" for k, v in shown.items())] if shown else []),
                *([f"versions in the log: {', '.join(versions)}"] if versions else []))
    return Finding(fam.finding_id, fit.severity or fam.severity, Area.LOG, title, evidence,
                   Fix(summary, commands, dict(fam.env)), source=fam.source,
                   packages=tuple(k[2:] for k in fit.facts if k.startswith("v_")))


def family_findings(text: str, chains: list[list[Raised]] | None = None, name: str = "log",
                    cat: Catalogue | None = None) -> tuple[list[Finding], list[Fit]]:
    """(findings of the families that fit, the near misses best first)."""
    all_fits = fits(text, chains, cat)
    return [finding(f, name) for f in all_fits if f.fits], [f for f in all_fits if not f.fits]
