"""Read a resolver's refusal in a log: pip, uv and conda/mamba, as who requires what of whom.

Wordings: pip's ResolutionImpossible and post-install check
(https://pip.pypa.io/en/stable/topics/dependency-resolution/), uv's "No solution found" derivation
(https://docs.astral.sh/uv/reference/troubleshooting/), conda's UnsatisfiableError and libmamba's
"Could not solve for environment specs" tree. Stdlib only (the matrix's specifiers are used, not imported).
"""

from __future__ import annotations

import enum
import itertools
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..api.wheel_pythons import wheel_pythons
from ..findings import Area, Finding, Fix, Severity
from .normalise import release

if TYPE_CHECKING:
    from ..matrix.load import Matrix, Row

_NAME = r"[A-Za-z0-9][A-Za-z0-9._-]{0,100}"  # every repeat bounded: linear time on any line
_VER = r"\d[\w.+!*-]{0,60}"


class Resolver(str, enum.Enum):
    PIP = "pip"
    PIP_CHECK = "pip (installed set)"
    STATED = "a package's own check of the installed set"
    UV = "uv"
    POETRY = "poetry"
    CONDA = "conda"


class ResolverKind(str, enum.Enum):
    """The finding ids this module produces."""

    CONFLICT = "log-resolver-conflict"
    INSTALLED_CONFLICT = "log-installed-conflict"
    NO_DISTRIBUTION = "log-no-matching-distribution"


@dataclass(frozen=True)
class Requirement:
    """``who`` (at ``version``, '' when a user request) requires ``target`` within ``spec``."""

    who: str
    version: str
    target: str
    spec: str
    have: str = ""
    """The installed version of ``target`` (pip's post-install check)."""

    def __str__(self) -> str:
        who = f"{self.who} {self.version}".strip()
        have = "" if not self.have else f", but {self.target} {self.have} is installed" if self.have[:1].isdigit() \
            else f" ({self.have})"
        return f"{who} requires {self.target}{(' ' + self.spec) if self.spec else ''}{have}"


@dataclass
class Conflict:
    resolver: Resolver
    parties: list[str] = field(default_factory=list)
    """What was asked for ('jax==0.4.13'), as the resolver wrote it."""
    requirements: list[Requirement] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)

    @property
    def packages(self) -> list[str]:
        names = [_split(p)[0] for p in self.parties] + [n for r in self.requirements for n in (r.who, r.target)]
        out: list[str] = []
        for n in names:
            n = normalise(n)
            if re.fullmatch(r"[a-z0-9][a-z0-9-]*", n) and n not in _NOT_PACKAGES and n not in out:
                out.append(n)
        return out


_NOT_PACKAGES = {"the-user", "you", "your", "project", "both"}  # subjects of the resolvers' sentences


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _split(req: str) -> tuple[str, str]:
    m = re.match(rf"\s*({_NAME})(?:\[[^\]]*\])?\s*(.*)$", req)
    return (m[1], m[2].strip()) if m else (req, "")


_PIP_CANNOT = re.compile(r"Cannot install (.+?) because these package versions have conflicting dependencies")
_PIP_CAUSED = re.compile(r"^\s*The conflict is caused by:", re.MULTILINE)
_PIP_DEP = re.compile(rf"^\s*({_NAME})(?:\[[^\]]*\])? ({_VER}) depends on ({_NAME})(?:\[[^\]]*\])?"
                      r"\s*([^;]*?)\s*(?:;|$)")
_PIP_USER = re.compile(rf"^\s*The user requested (?:\(constraint\) )?({_NAME})(?:\[[^\]]*\])?\s*(\S*)")
_PIP_CHECK = re.compile(rf"({_NAME}) ({_VER}) (?:requires|has requirement) ({_NAME})(?:\[[^\]]*\])?(.*?), but you"
                        rf"(?: have|'ll have) ({_NAME}) ({_VER}?)(?: which is incompatible|\.?$)", re.MULTILINE)
# (`pip check` ends the same sentence at the version: "... has requirement ml-dtypes~=0.2.0, but you have ml-dtypes
# 0.4.0.", pip/_internal/commands/check.py)
_PIP_MISSING = re.compile(rf"({_NAME}) ({_VER}) requires ({_NAME}), which is not installed")


def _pip_block(c: Conflict, after: str) -> Conflict:
    """The requirement lines after a refusal's header (pip prints them under "The conflict is caused by:")."""
    for line in after.splitlines()[1:40]:
        d, u = _PIP_DEP.match(line), _PIP_USER.match(line)
        if d:
            c.requirements.append(Requirement(d[1], d[2], d[3], d[4]))
        elif u:
            c.requirements.append(Requirement("the user", "", u[1], u[2]))
        if d or u:
            c.lines.append(line.strip())
        if "ResolutionImpossible" in line or line.startswith("To fix this"):
            break
    return c


_SPEC1 = r"(?:[=<>!~]=?|>|<)\s?\d[\w.*+!-]{0,40}(?:\s?,\s?(?:[=<>!~]=?|>|<)\s?\d[\w.*+!-]{0,40}){0,6}"
# A package's own check of what is installed beside it, in the wordings libraries print (for any package):
# "tensorstore 0.1.45 is installed but orbax-checkpoint requires tensorstore>=0.1.51", transformers'
# "tokenizers>=0.11.1,!=0.11.3,<0.14 is required for a normal functioning of this module, but found
# tokenizers==0.14.0", setuptools' pkg_resources "VersionConflict: (ml-dtypes 0.3.1 (/p), Requirement.parse(
# 'ml-dtypes~=0.2.0'), {'tensorflow'})", and "X requires Y>=2, but found/you have Y 1.0".
_STATED = (
    re.compile(rf"(?P<a>{_NAME}) (?:version )?(?P<have>\d[\w.+]{{0,40}}) is installed,? but (?P<b>{_NAME})"
               rf"(?: (?P<bver>\d[\w.+]{{0,40}}))? requires (?P<a2>{_NAME}) ?(?P<spec>{_SPEC1})"),
    # setuptools' `setup.py install` / easy_install: "error: scipy 1.5.2 is installed but scipy==1.4.1 is required
    # by {'tensorflow'}"
    re.compile(rf"(?P<a>{_NAME}) (?P<have>\d[\w.+]{{0,40}}) is installed,? but (?P<a2>{_NAME}) ?(?P<spec>{_SPEC1}) is "
               rf"required by \{{'(?P<b>{_NAME})'"),
    re.compile(rf"(?P<a2>{_NAME})(?P<spec>{_SPEC1}) is required for a normal functioning of this module, but found "
               rf"(?P<a>{_NAME})==(?P<have>\d[\w.+]{{0,40}})"),
    re.compile(rf"VersionConflict: \((?P<a>{_NAME}) (?P<have>\d[\w.+]{{0,40}}) \([^)\n]{{0,300}}\), Requirement\."
               rf"parse\('(?P<a2>{_NAME}) ?(?P<spec>{_SPEC1})'\)(?:, \{{'(?P<b>{_NAME})'\}})?"),
    re.compile(rf"(?P<b>{_NAME})(?: (?P<bver>\d[\w.+]{{0,40}}))? requires (?P<a2>{_NAME}) ?(?P<spec>{_SPEC1}),? but "
               rf"(?:you have|found|got|the installed version is) (?P<a>{_NAME})?[ =]{{0,2}}v?"
               rf"(?P<have>\d[\w.+]{{0,40}})"),
)
_STATED_WORDS = ("is installed", "is required for a normal functioning", "VersionConflict", "requires")


def stated_conflicts(text: str) -> list[tuple[Requirement, str]]:
    """(requirement, line) for each "A version X is installed but B requires A spec" the log states, for any
    package; a statement whose spec admits the installed version is not a conflict and is left out."""
    out: list[tuple[Requirement, str]] = []
    if not any(w in text for w in _STATED_WORDS):
        return out
    for ln in text.splitlines():
        if not any(w in ln for w in _STATED_WORDS) or "which is incompatible" in ln:  # pip's own: _PIP_CHECK
            continue
        for pat in _STATED:
            m = pat.search(ln)
            if not m:
                continue
            target = m["a2"] or m["a"]
            if m["a"] and normalise(m["a"]) != normalise(target):
                continue
            spec = re.sub(r"\s", "", m["spec"])
            have = m["have"].rstrip(".")
            if admits(spec, have) is True:
                continue
            who = m.groupdict().get("b") or "a package"
            out.append((Requirement(who, m.groupdict().get("bver") or "", target, spec, have=have), m[0]))
            break
    return out


def _pip(text: str) -> list[Conflict]:
    out: list[Conflict] = []
    ends: list[int] = []
    for m in _PIP_CANNOT.finditer(text):
        out.append(_pip_block(Conflict(Resolver.PIP, [p.strip() for p in re.split(r",\s*(?:and\s+)?|\s+and\s+", m[1])
                                                       if p.strip()], lines=[m[0]]), text[m.end():]))
        ends.append(m.end())
    for m in _PIP_CAUSED.finditer(text):  # a log that kept only the explanation, not the "Cannot install" line
        if not any(0 <= m.start() - e < 400 for e in ends):
            c = _pip_block(Conflict(Resolver.PIP, lines=[m[0].strip()]), text[m.start():])
            c.parties += [f"{r.target}{r.spec}" for r in c.requirements if r.who == "the user"]
            out += [c] if c.requirements else []
    check = Conflict(Resolver.PIP_CHECK)
    # pip's post-install check: only lines with its verdicts can hold one (a cheap filter before the patterns)
    said = "\n".join(ln for ln in text.splitlines() if "which is incompatible" in ln or "which is not installed" in ln
                     or ("has requirement" in ln and "but you have" in ln))
    for m in _PIP_CHECK.finditer(said):
        check.requirements.append(Requirement(m[1], m[2], m[3], m[4].strip(), have=m[6]))
        check.lines.append(m[0])
    for m in _PIP_MISSING.finditer(said):
        check.requirements.append(Requirement(m[1], m[2], m[3], "", have="not installed"))
        check.lines.append(m[0])
    stated = Conflict(Resolver.STATED)
    for req, line in stated_conflicts(text):
        if req not in check.requirements and req not in stated.requirements:
            stated.requirements.append(req)
            stated.lines.append(line)
    return out + [c for c in (check, stated) if c.requirements]


_UV_START = re.compile(r"No solution found when resolving (?:dependencies|`--with` dependencies)")
_POETRY_START = re.compile(r"version solving failed|SolverProblemError")
_POETRY_VERDICT = re.compile(r"version solving failed")
_SPEC = r"(?:[=<>!~]=?|>|<)[^\s,]{1,60}(?:,[<>=!~]{1,3}[^\s,]{1,60}){0,8}"
# uv writes `jax==0.4.13 depends on jaxlib>=0.4.13`; poetry writes `jax (0.4.13) depends on jaxlib (>=0.4.13)`
_UV_DEP = re.compile(rf"({_NAME})(?:\[[^\]]*\])?(?:({_SPEC})| \(([^)]*)\))? depends on ({_NAME})(?:\[[^\]]*\])?"
                     rf"(?:({_SPEC})| \(([^)]*)\))?")
_BOTH = re.compile(rf"({_NAME})(?: \([^)]*\))? depends on both ({_NAME} \([^)]*\)) and ({_NAME} \([^)]*\))")
_UV_REQUIRE = re.compile(rf"you require ({_NAME})((?:[=<>!~]=?|>|<)[^\s,]+)?")


# PubGrub's derivation itself (uv, poetry, pdm's and pixi's solvers share it): "Because A depends on B and there is no
# version of B, we can conclude that A cannot be used." -- a verdict even when the installer's header was cut off
_PUBGRUB = re.compile(r"\bBecause (?:there is no version of |no versions of |only |all versions of |[\w.\[\]-]{1,80}"
                      r"(?:[=<>!~]{1,2}\S{1,60})? depends on )[^\n]{0,400}")
_PUBGRUB_VERDICT = re.compile(r"conclude that|cannot be used|(?:is|are) unsatisfiable")


def _uv(text: str) -> list[Conflict]:
    m = _UV_START.search(text)
    # poetry's verdict ends its derivation; its exception's name (SolverProblemError) comes before it
    poetry = (_POETRY_VERDICT.search(text) or _POETRY_START.search(text)) if not m else None
    derivation = _PUBGRUB.search(text) if not m and not poetry and "Because" in text else None
    if derivation and _PUBGRUB_VERDICT.search(text, derivation.start()):
        body, c = text[derivation.start():], Conflict(Resolver.UV, lines=[])
        if _UV_MISSING.search(" ".join(body[:2000].split())):
            return []  # what the user asked for is not there at all: missing() reads it
    elif not m and not poetry:
        return []
    elif poetry:  # poetry prints its derivation before the verdict
        start = text.rfind("Because", 0, poetry.start())
        body, c = text[max(start, 0):poetry.end()], Conflict(Resolver.POETRY, lines=[])
    else:
        assert m is not None
        body, c = text[m.end():], Conflict(Resolver.UV, lines=[m[0]])
        if _UV_MISSING.search(" ".join(body[:2000].split())):
            return []  # nothing to install, not two requirements in conflict: missing() reads it
    body = " ".join(ln.strip(" │╰─▶×") for ln in body.splitlines()[:30]).split("hint:")[0]
    body = _BOTH.sub(r"\1 depends on \2, \1 depends on \3", body)  # poetry: "depends on both A (1) and B (2)"
    for d in _UV_DEP.finditer(body):
        c.requirements.append(Requirement(d[1], (d[2] or d[3] or "").lstrip("="), d[4], d[5] or d[6] or ""))
    for r in _UV_REQUIRE.finditer(body):
        c.parties.append(f"{r[1]}{r[2] or ''}")
    c.lines += [s.strip() + "." for s in re.split(r"\.\s", body) if "depends on" in s or "unsatisfiable" in s][:6]
    return [c] if c.requirements or c.parties else []


# conda 4.3 and older said "UnsatisfiableSpecifications" and "found to be in conflict"
_CONDA_START = re.compile(r"following specifications were found\s+to be (?:incompatible|in conflict)|"
                          r"Could not solve for environment specs|LibMambaUnsatisfiableError|"
                          r"Unsatisfiable(?:Error|Specifications)|Encountered problems while solving")
_TREE = re.compile(r"^[\s│]*[├└]─\s*(?P<body>\S.*)$", re.MULTILINE)  # libmamba's "incompatible packages" tree
_TREE_STOP = re.compile(r"^(?:is|are|which|,)")
_CONDA_CMD = re.compile(r"(?:conda|mamba|micromamba)(?:\.exe)? (?:install|create)\b([^\n]*)")
_CONDA_ARROW = re.compile(rf"^\s*(?:-\s+)?({_NAME})(?: ?[=<>]=?({_VER}))?(?:=\S+)?\s*->\s*({_NAME})"
                          rf"(?:\[version='([^']+)'\]|\s*=?\s*(\S+))?", re.MULTILINE)
_CONDA_SPEC = re.compile(rf"^\s*-\s+({_NAME}) ?==?(\d[\w.]*)(?:=\S+)?\s*$", re.MULTILINE)  # `  - cudatoolkit==8.0=3`
_LIBMAMBA = re.compile(rf"package ({_NAME})-({_VER})-\S+ requires ({_NAME}) ([^,]+), but none of the providers")
_NOTHING = re.compile(rf"nothing provides (?:requested )?(\S+)(?: (?!needed\b)(\S+))?"
                      rf"(?: needed by ({_NAME})-({_VER})-\S+)?")


def _tree(body: str, c: Conflict) -> None:
    """libmamba's tree: a top-level node is a request, a child is what its parent requires."""
    stack: list[tuple[int, str, str]] = []  # (depth, name, version)
    for m in _TREE.finditer(body):
        depth = m.start("body") - body.rfind("\n", 0, m.start("body"))
        words = re.findall(r"[^\s,]+(?:,[^\s,]+)*|,", m["body"])  # `>=20.0,<23` stays one word, a lone `,` ends it
        before = list(itertools.takewhile(lambda w: not _TREE_STOP.match(w), words[1:]))
        spec = before[0] if before and before[0] != "*" else ""  # then a build string, then the verdict
        while stack and stack[-1][0] >= depth:
            stack.pop()
        if stack:
            c.requirements.append(Requirement(stack[-1][1], stack[-1][2], words[0], spec))
        else:
            c.parties.append(f"{words[0]} {spec}".strip())
        stack.append((depth, words[0], re.sub(r"^[=~]+|[*]+$", "", spec)))


def _conda(text: str) -> list[Conflict]:
    m = _CONDA_START.search(text)
    if not m:
        return []
    body = text[m.start():]
    c = Conflict(Resolver.CONDA, lines=[m[0]])
    cmd = _CONDA_CMD.search(text[:m.start()])
    if cmd:  # the request itself: the words of `conda install ...` that are not options or their values
        words = cmd[1].split()
        c.parties += [w for i, w in enumerate(words) if not w.startswith("-") and
                      not (i and words[i - 1] in ("-c", "--channel", "-n", "--name", "-p", "--prefix", "-f", "--file"))]
    _tree(body, c)
    c.parties += [f"{r[1]}=={r[2]}" for r in _CONDA_SPEC.finditer(body)]
    for r in _CONDA_ARROW.finditer(body):
        c.requirements.append(Requirement(r[1], r[2] or "", r[3], r[4] or r[5] or ""))
    for r in _LIBMAMBA.finditer(body):
        c.requirements.append(Requirement(r[1], r[2], r[3], r[4].strip()))
    for r in _NOTHING.finditer(body):
        req = Requirement(r[3] or "the user", r[4] or "", r[1], "" if r[2] in (None, "needed") else r[2],
                          have="nothing provides it")
        if req not in c.requirements:
            c.requirements.append(req)
    c.lines += [ln.strip() for ln in body.splitlines()[1:40]
                if re.search(r"requires|->|is requested|conflicts with|nothing provides|installable", ln)][:8]
    return [c]  # the solver's verdict stands even when the log kept none of its explanation


def conflicts(text: str) -> list[Conflict]:
    return _pip(text) + _uv(text) + _conda(text)


def _aliases(matrix: Matrix, names: set[str]) -> set[str]:
    """``names`` plus every member of a matrix group that has one of them (tensorflow ~ tensorflow-cpu)."""
    return names | {normalise(m) for g in matrix.groups.values() if names & {normalise(x) for x in g} for m in g}


def row_for(c: Conflict, matrix: Matrix) -> Row | None:
    """The known-good row that pins the most of the conflict's packages (at least two; the default row on a tie)."""
    wanted = set(c.packages)
    have = {normalise(r.who): r.version for r in c.requirements if r.version}
    have |= {normalise(n): v[2:] for n, v in map(_split, c.parties) if v.startswith("==")}

    def admitted(row: Row) -> int:  # how many versions seen in the log the row's pins allow
        return sum(1 for n, spec in row.packages.items() if normalise(n) in have and
                   _contains(spec, have[normalise(n)]))

    scored = [(len(wanted & _aliases(matrix, {normalise(n) for n in r.packages})), admitted(r), r.default, -i, r)
              for i, r in enumerate(matrix.rows)]
    best = max(scored, key=lambda t: t[:4], default=None)
    return best[4] if best and best[0] >= 2 else None


def _contains(spec: object, version: str) -> bool:
    try:
        return bool(spec.contains(version, prereleases=True))  # type: ignore[attr-defined]
    except Exception:  # an unparsable version seen in a log
        return False


def _row_names(row: Row, packages: list[str], matrix: Matrix) -> list[str]:
    wanted = _aliases(matrix, set(packages))
    return [n for n in row.packages if normalise(n) in wanted] or list(row.packages)


_CLAUSE = re.compile(r"^\s*(==|!=|<=|>=|~=|<|>)?\s*v?(\d+(?:\.\d+)*)\s*$")


def _vt(v: str) -> tuple[int, ...]:
    return tuple(int(x) for x in v.split("."))


def admits(spec: str, version: str) -> bool | None:
    """Whether a plain specifier ('>=0.4.6', '<=0.4.20,>=0.3.2', '2.16.5') admits a release version; None if unsure
    (pre-releases, local versions, wildcards: the resolver's own words stand then)."""
    clauses = [_CLAUSE.match(part) for part in re.split(r",|\band\b", spec)]
    if not spec.strip() or not all(clauses) or not re.fullmatch(r"\d+(?:\.\d+)*", version):
        return None
    v = _vt(version)
    for m in clauses:
        assert m is not None
        r = _vt(m[2])
        a, b = v + (0,) * (len(r) - len(v)), r + (0,) * (len(v) - len(r))
        ok = {None: a == b, "==": a == b, "!=": a != b, "<=": a <= b, ">=": a >= b, "<": a < b, ">": a > b,
              "~=": a >= b and a[:len(r) - 1] == b[:len(r) - 1]}[m[1]]
        if not ok:
            return False
    return True


def exclusions(c: Conflict) -> list[str]:
    """Which requirement excludes which version: the versions asked for, pinned by another party, or installed."""
    seen: dict[str, list[tuple[str, str, Requirement | None]]] = {}
    for n, v in map(_split, c.parties):
        if v.startswith("=="):
            seen.setdefault(normalise(n), []).append((v[2:], "the requested", None))
    for r in c.requirements:
        pin = re.fullmatch(r"(?:==)?\s*(\d[\w.]*)", r.spec)
        if pin:
            who = "the requested" if r.who == "the user" else f"{r.who} {r.version}".rstrip() + "'s pin,"
            seen.setdefault(normalise(r.target), []).append((pin[1], who, r))
        if r.have[:1].isdigit():
            seen.setdefault(normalise(r.target), []).append((r.have, "the installed", None))
    out: list[str] = []
    for r in c.requirements:
        for version, why, source in seen.get(normalise(r.target), []):
            if source is not r and r.who != "the user" and admits(r.spec, version) is False:
                spec = f" {r.spec}" if r.spec[:1].isdigit() else r.spec
                who = f"{r.who} {r.version}".strip()
                line = f"{who} needs {r.target}{spec}, which excludes {why} {r.target} {version}"
                out += [line] if line not in out else []
    return out


def finding(c: Conflict, matrix: Matrix | None, name: str = "log") -> Finding:
    excluded = exclusions(c)
    shown = excluded or [str(r) for r in c.requirements]
    more = len(shown) - 3
    reqs = "; ".join(shown[:3]) or "no requirement lines in the log"
    reqs += f" (+{more} more)" if more > 0 else ""
    asked = " and ".join(c.parties[:3]) + (f" (+{len(c.parties) - 3} more)" if len(c.parties) > 3 else "")
    if c.resolver is Resolver.PIP_CHECK:
        kind, title = ResolverKind.INSTALLED_CONFLICT, f"pip installed an inconsistent set: {reqs}"
    elif c.resolver is Resolver.STATED:
        kind = ResolverKind.INSTALLED_CONFLICT
        title = f"the installed set is inconsistent (the message says so): {reqs}"
    else:
        kind = ResolverKind.CONFLICT
        title = f"{c.resolver.value} cannot install {asked or 'the requested packages'} together: {reqs}"
    row = row_for(c, matrix) if matrix else None
    if row:
        names = _row_names(row, c.packages, matrix) if matrix else []
        pins = ", ".join(f"{n}{row.packages[n]}" for n in names)
        fix = Fix(f"install the known-good row {row.name} ({pins}) instead of the conflicting pins",
                  (f"bdv2 matrix constraints {row.name} > constraints.txt", "pip install -c constraints.txt "
                   + " ".join(names)))
    else:
        fix = Fix("relax one of the pins above so one requirement admits the other's version (pick versions from "
                  "`bdv2 matrix list`), then resolve again", ("bdv2 matrix list",))
    evidence = (*excluded[:4], *(f"{name}: {ln[:400]}" for ln in c.lines[:8]))
    return Finding(kind.value, Severity.ERROR, Area.LOG, title, evidence, fix, packages=tuple(c.packages))


_PIP_NONE = re.compile(r"Could ?not find a version that satisfies the requirement (?P<req>[^\s\"'`]+)"
                       r"(?: \(from versions: (?P<have>[^)]*)\))?|No matching distribution found for (?P<req2>\S+)",
                       re.IGNORECASE)  # pip's words as a user retypes them in a title ("No Matching distribution")
# only what the user asked for directly: a dependency missing from the index is a conflict
# (https://github.com/astral-sh/uv/issues/7616)
_UV_MISSING = re.compile(rf"there is no version of (?P<req>[A-Za-z0-9]\S{{0,160}}) and you require|"
                         rf"(?P<req2>[A-Za-z0-9]\S{{0,160}}) has no "
                         rf"wheels with a matching (?P<what>[\w ]{{1,60}}?tag).{{0,200}}? and you require|"
                         rf"(?P<req3>{_NAME}) was not found in the package registry and you require")
# the same verdict in other installers' words: a wheel file for another Python or platform (pip; the file name as the
# user typed it, a stray space included), conda's channels
# without the package, poetry without a candidate
_OTHER_NONE = re.compile(rf"(?P<wheel>(?P<wname>{_NAME}?)-(?P<wver>\d[\w.+!]{{0,60}})-(?P<wtags>[\w.-][\w. -]{{0,119}})"
                         rf"\.whl) is not a supported wheel on this platform|"
                         rf"PackagesNotFoundError: The following packages are not available from current channels:"
                         rf"\s{{0,40}}-\s{{0,4}}(?P<conda>\S{{1,160}})|"
                         rf"(?:Unable to find installation candidates for|Package) (?P<poetry>{_NAME}) "
                         rf"\((?P<pver>[^)\n]{{1,60}})\)(?: not found)?|"
                         rf"could not determine any available versions for (?P<pixi>{_NAME})|"
                         # pip refusing a PyPI package's direct-URL requirement: no index it was given serves it
                         rf"cannot depend on packages which are not also hosted on PyPI\.?\s{{0,4}}"
                         rf"(?:{_NAME} depends on )?(?P<direct>{_NAME}) ?@ ?(?P<url>\S{{1,300}})")
_HINT = re.compile(r"hint: (.*(?:\n[ \t]+\S.*)*)")


_LOG_PYTHON = re.compile(r"(?:\bcp3(?P<cp>\d{1,2})\b|[Pp]ython (?:version )?3\.(?P<py>\d{1,2})(?:\.\d{1,3})?\b)")


def python_in_log(text: str) -> str | None:
    """The Python a log's installer ran under, when the log says (wheel tags `cp311`, 'Python 3.12.1')."""
    m = _LOG_PYTHON.search(text[:200_000])
    return f"3.{m['cp'] or m['py']}" if m else None


def matrix_says(reqs: list[str], text: str, matrix: Matrix | None) -> list[str]:
    """For a requirement pinned to one version: the known-good rows with that release and the Python they run on,
    against the Python the log shows (a cross-check of "no matching distribution" with the matrix)."""
    if matrix is None:
        return []
    py = python_in_log(text)
    out = []
    for r in reqs:
        pkg, spec = _split(r)
        pin = re.fullmatch(r"==\s?(\d[\w.]{0,40})", spec)
        if not pin:
            continue
        rows = [row for row in matrix.rows if any(normalise(n) == normalise(pkg) and _contains(s, pin[1])
                                                  for n, s in row.packages.items())]
        for row in rows[:2]:
            runs = str(row.python) or "any Python"
            clash = py and row.python and not _contains(row.python, py + ".0")
            out.append(f"matrix: row {row.name} has {pkg} {pin[1]} and runs on Python {runs}" +
                       (f"; the log's Python is {py}, which it does not cover" if clash else ""))
    return out


def outside_wheel_pythons(reqs: list[str], have: str, text: str, name: str) -> Finding | None:
    """A pinned release PyPI has wheels of for other Pythons only (tools/wheel_pythons' table): the Python that ran is
    outside them when the log shows it, or, when it does not, when the index offered only later releases (older
    ones were filtered out for this Python) or the release's newest CPython is older than 3.10."""
    py = python_in_log(text)
    offered = [v for v in (x.strip() for x in have.split(",")) if re.fullmatch(r"\d{1,4}(?:\.\d{1,4}){1,3}", v)]
    for r in reqs:
        pkg, spec = _split(r)
        pin = re.fullmatch(r"===?\s?(\d{1,4}(?:\.\d{1,4}){0,2}(?:\.\*)?)", spec)
        span = wheel_pythons(pkg, pin[1]) if pin else None
        if not pin or not span:
            continue
        lo, hi = span
        asked = release(pin[1].rstrip(".*"))
        if py:
            direction = "newer" if release(py) > release(hi) else \
                "older" if release(py) < release(lo) else ""
        elif offered:
            direction = "newer" if all(release(v) > asked for v in offered) else ""
        else:
            direction = "newer" if release(hi) < (3, 10) else ""
        if not direction:
            continue
        ran = f"this log's Python is {py}" if py else "the log does not show which Python ran"
        title = (f"{pkg} {pin[1]} has wheels only for CPython {lo}-{hi}, and {ran}: pip finds no {pkg} {pin[1]} for a "
                 f"Python {direction} than that")
        evidence = (f"{name}: no distribution for {r}", f"PyPI: {pkg} {pin[1]} has wheels for CPython {lo}-{hi}",
                    *([f"{name}: the index offered only later releases: {have[:200]}"] if offered and not py else []))
        kind = "log-python-too-new" if direction == "newer" else "log-python-too-old"
        return Finding(kind, Severity.ERROR, Area.LOG, title, evidence,
                       Fix(f"install it under a Python in {lo}-{hi} (a new virtual environment or conda env with "
                           f"that Python), or pin a {pkg} release made for this Python (the index's list in the log "
                           "shows which it has)", (f"conda create -n {pkg}-env python={hi}", "python --version")),
                       source=f"https://pypi.org/project/{pkg}/{pin[1].rstrip('.*')}/#files", packages=(pkg,))
    return None


def missing(text: str, name: str = "log", matrix: Matrix | None = None) -> list[Finding]:
    """The installer found no distribution of a requirement (no such version, none for this Python or platform)."""
    reqs: list[str] = []
    have, why = "", ""
    # uv wraps its sentences: read them flat (only when uv's words are there at all)
    flat = " ".join(text.split()) if "you require" in text or "package registry" in text else ""
    for m in list(_PIP_NONE.finditer(text)) + list(_UV_MISSING.finditer(flat)):
        req = next(g for g in (m.groupdict().get(k) for k in ("req", "req2", "req3")) if g).rstrip(".,;:)_*")
        reqs += [req] if req not in reqs else []
        have = have or (m.groupdict().get("have") or "")
        why = why or (f"no wheel with a matching {m['what']}" if m.groupdict().get("what") else "")
    words = (".whl", "PackagesNotFound", "candidates", "not found", "available versions", "hosted on PyPI")
    others = _OTHER_NONE.finditer(text) if any(w in text for w in words) else ()
    for m in others:
        if m["wheel"]:
            req = f"{m['wname']}=={m['wver']}"
            why = why or f"the wheel's tags ({m['wtags']}) are not this Python's or platform's"
        else:
            if m["poetry"] and not (m[0].startswith("Unable") or m[0].endswith("not found")):
                continue  # "Package x (1.0)" alone is not a verdict
            req = m["conda"] or m["pixi"] or m["direct"] or f"{m['poetry']}=={m['pver']}"
            if m["direct"]:
                why = why or (f"a package from PyPI pins it to {m['url']}, and no index or find-links page pip was "
                              "given serves it (check the -f/--find-links URL)")
        reqs += [req] if req not in reqs else []
    if not reqs:
        return []
    hint = _HINT.search(text)
    local = [r for r in reqs if "+" in r]
    fix = (f"{', '.join(local)} carries a local build label (+...) that only a separate wheel index served; install "
           "the plain release with its extra instead (for jax: `pip install -U \"jax[cuda12]\"`)" if local else
           "ask for a version the index has for this Python and platform (the log lists them), or use a Python that "
           "release has wheels for; `bdv2 matrix list` shows the known-good sets")
    evidence = (f"{name}: no distribution for {', '.join(reqs)}" + (f" ({why})" if why else ""),
                *([f"{name}: available: {have[:300]}"] if have else []),
                *([f"{name}: hint: {' '.join(hint[1].split())[:300]}"] if hint else []),
                *matrix_says(reqs, text, matrix))
    python = outside_wheel_pythons(reqs, have, text, name)
    return [*([python] if python else []), Finding(ResolverKind.NO_DISTRIBUTION.value, Severity.ERROR, Area.LOG,
                    f"no installable distribution of {' and '.join(reqs[:3])} for this Python and platform", evidence,
                    Fix(fix, ("bdv2 matrix list",)), source="https://packaging.python.org/en/latest/specifications/"
                    "platform-compatibility-tags/", packages=tuple(_split(r)[0] for r in reqs))]


def resolver_findings(text: str, matrix: Matrix | None = None, name: str = "log") -> list[Finding]:
    return [finding(c, matrix, name) for c in conflicts(text)] + missing(text, name, matrix)
