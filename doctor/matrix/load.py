"""Load and validate compat_matrix.toml: known-good rows, rules between packages, log signatures.

Versions and specifiers become ``packaging`` objects here, once; a malformed entry raises
MatrixError naming the file, the entry and the key, so a bad edit never turns into a wrong
diagnosis.
"""

from __future__ import annotations

import enum
import functools
import re
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from packaging.specifiers import InvalidSpecifier, SpecifierSet

from .. import diskcache
from ..errors import MatrixError
from ..findings import Area, Severity
from ..probe.snapshot import normalise
from .knowledge import Knowledge, default_knowledge, parse_knowledge
from .shipped import default_matrix_path, shipped_toml

__all__ = ["Condition", "Matrix", "Row", "RowKind", "Rule", "Signature", "Verified", "default_matrix_path",
           "load_matrix"]

E = TypeVar("E", bound=enum.Enum)
_FLAGS = re.IGNORECASE | re.MULTILINE



class RowKind(str, enum.Enum):
    """Which JAX backend a row installs."""

    CPU = "cpu"
    CUDA11 = "cuda11"
    """A '+cuda11' jaxlib (jax <= 0.4.25) with the nvidia-*-cu11 wheels."""
    CUDA12 = "cuda12"
    CUDA13 = "cuda13"


class Verified(str, enum.Enum):
    """How a row is known to work."""

    HERE = "here"
    """Installed and exercised on a CPU machine like CI's."""
    CI = "ci"
    """Checked by CI (.ci/run) on every commit."""
    DOCUMENTED = "documented"
    """Taken from the projects' metadata and docs, not yet run."""


@dataclass(frozen=True)
class Condition:
    """One `when`/`unless` entry: a package (or @group, or 'python') whose version is in ``spec``."""

    key: str
    spec: SpecifierSet
    """An empty SpecifierSet matches every version: 'installed at all'."""


@dataclass(frozen=True)
class Row:
    """A known-good combination (``[[rows]]``)."""

    name: str
    title: str
    kind: RowKind
    python: SpecifierSet
    packages: dict[str, SpecifierSet]
    verified: Verified
    verified_note: str
    reason: str
    source: str
    default: bool = False
    extends: str = ""
    own_packages: tuple[str, ...] = ()
    """The packages this row adds to the one it extends (what a pip extra installs)."""
    known_warnings: tuple[str, ...] = ()
    """Warning ids accepted on this row (each explained in its verified_note): verify tolerates them."""
    trainer: bool = False
    """bdv2's own trainer runs on this row (verify then includes a training smoke run)."""
    find_links: tuple[str, ...] = ()
    """Pages pip needs with `-f` to find some of the row's wheels (jaxlib's '+cuda' builds)."""


@dataclass(frozen=True)
class Rule:
    """A constraint (``[[rules]]``): data conditions or a built-in check, with its words."""

    id: str
    severity: Severity
    area: Area
    title: str
    reason: str
    source: str
    fix: str
    commands: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    when: tuple[Condition, ...] = ()
    unless: tuple[Condition, ...] = ()
    absent: tuple[str, ...] = ()
    check: str = ""
    needs_jax_cuda: bool = False
    """Fire only where jax itself has a CUDA backend (a jax-cuda plugin or a '+cuda' jaxlib): NVIDIA wheels
    beside a CPU jax (PyTorch's, for example) are not jax's libraries."""


@dataclass(frozen=True)
class Signature:
    """A known error wording (``[[signatures]]``) and its cause and fix."""

    id: str
    severity: Severity
    regex: str
    """The pattern's text (``pattern`` compiles it, case-insensitive and multi-line, on first use)."""
    cause: str
    fix: str
    source: str
    commands: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    rule: str = ""
    examples: tuple[str, ...] = ()
    noise: bool = False
    """Harmless log lines that look alarming; recognised so they are never named as the cause."""
    unless: str = ""
    """A pattern whose presence anywhere in the log shows this signature's cause is not the one (a cuInit that found
    no device rules out "a GPU is present but jaxlib is CPU-only")."""

    @functools.cached_property
    def pattern(self) -> re.Pattern[str]:
        return re.compile(self.regex, _FLAGS)

    @functools.cached_property
    def unless_pattern(self) -> re.Pattern[str] | None:
        return re.compile(self.unless, _FLAGS) if self.unless else None


@dataclass(frozen=True)
class Matrix:
    """A loaded, validated compat_matrix.toml."""

    path: str
    groups: dict[str, tuple[str, ...]]
    rows: tuple[Row, ...]
    rules: tuple[Rule, ...]
    signatures: tuple[Signature, ...]
    knowledge: Knowledge = field(default_factory=default_knowledge)
    """Version thresholds of the GPU checks (the shipped ones when this file has no [knowledge] tables)."""

    def row(self, name: str) -> Row:
        for r in self.rows:
            if r.name == name:
                return r
        raise KeyError(name)

    @property
    def default_row(self) -> Row:
        return next(r for r in self.rows if r.default)

    def members(self, key: str) -> tuple[str, ...]:
        """Distribution names a condition key stands for ('@tensorflow' -> tensorflow, tensorflow-cpu...)."""
        if key.startswith("@"):
            return self.groups[key[1:]]
        return (key,)


def load_matrix(path: Path | str | None, checks: Collection[str]) -> Matrix:
    """Read and validate the matrix at ``path`` (None: the shipped one). ``checks``: the names of the built-in
    checks a rule's ``check = "..."`` may use, given by the caller (the doctor passes its check registry), so
    this loader needs no rule code."""
    shipped = not path
    path = Path(path) if path else default_matrix_path()
    try:
        if shipped:
            raw, source_key = shipped_toml()
        else:
            import tomllib

            raw, source_key = tomllib.loads(path.read_text()), ""
    except OSError as e:
        raise MatrixError(f"{path}: cannot read ({e.strerror})") from e
    except ValueError as e:
        import tomllib  # already loaded: only its parser raises TOMLDecodeError

        if not isinstance(e, tomllib.TOMLDecodeError):
            raise
        raise MatrixError(f"{path}: not valid TOML: {e}") from e
    # The shipped file's signature patterns were compiled (so checked) by an earlier run when the cache says so;
    # then each compiles on first use, and a plain check, which reads none, compiles none.
    checked_key = diskcache.key(source_key, "\0".join(sorted(checks))) if shipped else ""
    checked = shipped and diskcache.get("matrix-checked", checked_key) is True
    matrix = _build(raw, str(path), checks, compile_patterns=not checked)
    if shipped and not checked:
        diskcache.put("matrix-checked", checked_key, True)
    return matrix


# ---------------------------------------------------------------------------------------------
class _Entry:
    """Reads one table, remembering where it is so every error names file, entry and key."""

    def __init__(self, path: str, where: str, table: Any, allowed: set[str], required: set[str]):
        self.path, self.where = path, where
        if not isinstance(table, dict):
            self.fail("", "must be a table")
        self.t: dict[str, Any] = table
        unknown = set(table) - allowed
        if unknown:
            self.fail(sorted(unknown)[0], f"unknown key (allowed: {', '.join(sorted(allowed))})")
        missing = required - set(table)
        if missing:
            self.fail(sorted(missing)[0], "required key is missing")

    def fail(self, key: str, msg: str) -> None:
        at = f"{self.where}, key '{key}'" if key else self.where
        raise MatrixError(f"{self.path}: {at}: {msg}")

    def text(self, key: str, default: str = "") -> str:
        v = self.t.get(key, default)
        if not isinstance(v, str):
            self.fail(key, f"must be a string, not {type(v).__name__}")
        return v

    def texts(self, key: str) -> tuple[str, ...]:
        v = self.t.get(key, [])
        if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
            self.fail(key, "must be a list of strings")
        return tuple(v)

    def flag(self, key: str) -> bool:
        v = self.t.get(key, False)
        if not isinstance(v, bool):
            self.fail(key, "must be true or false")
        return bool(v)

    def textmap(self, key: str) -> dict[str, str]:
        v = self.t.get(key, {})
        if not isinstance(v, dict) or not all(isinstance(x, str) for x in v.values()):
            self.fail(key, "must be a table of strings")
        return dict(v)

    def choice(self, key: str, kind: type[E]) -> E:
        v = self.text(key)
        try:
            return kind(v)
        except ValueError:
            self.fail(key, f"must be one of {', '.join(str(k.value) for k in kind)}")
            raise

    def spec(self, key: str, value: Any) -> SpecifierSet:
        if not isinstance(value, str):
            self.fail(key, "a version specifier must be a string such as '>=0.4.14'")
        text = "" if value.strip() in ("", "*") else value
        try:
            return SpecifierSet(text)
        except InvalidSpecifier:
            self.fail(key, f"invalid version specifier {value!r}")
            raise  # unreachable: fail() raises

    def severity(self) -> Severity:
        v = self.text("severity", "error")
        try:
            return Severity(v)
        except ValueError:
            self.fail("severity", f"must be one of {', '.join(s.value for s in Severity)}, not {v!r}")
            raise

    def area(self, default: str) -> Area:
        v = self.text("area", default)
        try:
            return Area(v)
        except ValueError:
            self.fail("area", f"must be one of {', '.join(a.value for a in Area)}, not {v!r}")
            raise


def _conditions(e: _Entry, key: str, groups: dict[str, tuple[str, ...]]) -> tuple[Condition, ...]:
    table = e.t.get(key, {})
    if not isinstance(table, dict):
        e.fail(key, "must be a table of package = 'specifier'")
    out = []
    for name, spec in table.items():
        if name.startswith("@") and name[1:] not in groups:
            e.fail(key, f"unknown group {name!r} (groups: {', '.join('@' + g for g in groups)})")
        k = name if name.startswith("@") or name == "python" else normalise(name)
        out.append(Condition(k, e.spec(f"{key}.{name}", spec)))
    return tuple(out)


def _build(raw: dict[str, Any], path: str, checks: Collection[str], compile_patterns: bool = True) -> Matrix:
    top = _Entry(path, "top level", raw, {"schema", "groups", "knowledge", "rows", "rules", "signatures"},
                 {"rows", "rules", "signatures"})
    if raw.get("schema", 1) != 1:
        top.fail("schema", "this bdv2 understands schema 1 only")
    groups_raw = raw.get("groups", {})
    groups: dict[str, tuple[str, ...]] = {}
    for g, members in groups_raw.items():
        if not isinstance(members, list) or not members:
            top.fail(f"groups.{g}", "a group is a non-empty list of distribution names")
        groups[g] = tuple(normalise(m) for m in members)

    rows = _rows(raw["rows"], path)
    ids: set[str] = set()
    rules = tuple(_rule(path, i, t, groups, ids, checks) for i, t in enumerate(raw["rules"]))
    rule_ids = {r.id for r in rules}
    sigs = tuple(_signature(path, i, t, rule_ids, ids, compile_patterns) for i, t in enumerate(raw["signatures"]))
    for row in rows:
        unknown = [w for w in row.known_warnings if w not in rule_ids]
        if unknown:
            raise MatrixError(f"{path}: row '{row.name}', key 'known_warnings': names no rule: {unknown[0]!r}")
    knowledge = parse_knowledge(raw["knowledge"], path) if "knowledge" in raw else default_knowledge()
    return Matrix(path=path, groups=groups, rows=rows, rules=rules, signatures=sigs, knowledge=knowledge)


def _where(kind: str, i: int, t: Any) -> str:
    return f"{kind}[{i}]" + (f" (id '{t['id']}')" if isinstance(t, dict) and "id" in t else "")


def _new_id(e: _Entry, ids: set[str]) -> str:
    new = e.text("id")
    if new in ids:
        e.fail("id", f"duplicate id {new!r}")
    ids.add(new)
    return new


def _rule(path: str, i: int, t: Any, groups: dict[str, tuple[str, ...]], ids: set[str],
          checks: Collection[str]) -> Rule:
    e = _Entry(path, _where("rules", i, t), t,
               {"id", "severity", "area", "title", "reason", "source", "fix", "commands", "env",
                "when", "unless", "absent", "check", "needs_jax_cuda"},
               {"id", "title", "reason", "source", "fix"})
    rid = _new_id(e, ids)
    check = e.text("check")
    if check and check not in checks:
        e.fail("check", f"unknown built-in check {check!r} (known: {', '.join(checks)})")
    when = _conditions(e, "when", groups)
    if not check and not when:
        e.fail("when", "a rule needs either 'when' conditions or a built-in 'check'")
    if not e.text("source").startswith(("http://", "https://", "measured:")):
        e.fail("source", "must be a URL (or 'measured: ...' for a measurement made for bdv2)")
    return Rule(
        id=rid, severity=e.severity(), area=e.area("packages"), title=e.text("title"),
        reason=e.text("reason"), source=e.text("source"), fix=e.text("fix"),
        commands=e.texts("commands"), env=e.textmap("env"), when=when,
        unless=_conditions(e, "unless", groups),
        absent=tuple(normalise(a) for a in e.texts("absent")), check=check,
        needs_jax_cuda=e.flag("needs_jax_cuda"),
    )


def _signature(path: str, i: int, t: Any, rule_ids: set[str], ids: set[str], compile_pattern: bool) -> Signature:
    e = _Entry(path, _where("signatures", i, t), t,
               {"id", "severity", "pattern", "cause", "fix", "source", "commands", "env", "rule",
                "examples", "noise", "unless"},
               {"id", "pattern", "cause", "fix", "source"})
    sid = _new_id(e, ids)
    regex = e.text("pattern")
    compiled = None
    if compile_pattern:
        try:
            compiled = re.compile(regex, _FLAGS)
        except re.error as err:
            e.fail("pattern", f"invalid regular expression: {err}")
            raise
    unless = e.text("unless") if "unless" in t else ""
    if unless and compile_pattern:
        try:
            re.compile(unless, _FLAGS)
        except re.error as err:
            e.fail("unless", f"invalid regular expression: {err}")
            raise
    rule = e.text("rule")
    if rule and rule not in rule_ids:
        e.fail("rule", f"names no rule: {rule!r}")
    noise = t.get("noise", False)
    if not isinstance(noise, bool):
        e.fail("noise", "must be true or false")
    sig = Signature(
        id=sid, severity=e.severity(), regex=regex, cause=e.text("cause"), fix=e.text("fix"),
        source=e.text("source"), commands=e.texts("commands"), env=e.textmap("env"), rule=rule,
        examples=e.texts("examples"), noise=noise, unless=unless,
    )
    if compiled is not None:
        sig.__dict__["pattern"] = compiled  # the cached_property's slot: compiled once, here
    return sig


def _rows(raw_rows: Any, path: str) -> tuple[Row, ...]:
    if not isinstance(raw_rows, list) or not raw_rows:
        raise MatrixError(f"{path}: 'rows' must be a non-empty array of tables")
    by_name: dict[str, Row] = {}
    for i, t in enumerate(raw_rows):
        where = f"rows[{i}]" + (f" (name '{t['name']}')" if isinstance(t, dict) and "name" in t else "")
        e = _Entry(path, where, t,
                   {"name", "title", "kind", "default", "extends", "python", "packages", "verified",
                    "verified_note", "reason", "source", "known_warnings", "trainer", "find_links"},
                   {"name", "title", "kind", "packages", "verified", "reason", "source"})
        name = e.text("name")
        if name in by_name:
            e.fail("name", f"duplicate row name {name!r}")
        kind = e.choice("kind", RowKind)
        verified = e.choice("verified", Verified)
        pk = t["packages"]
        if not isinstance(pk, dict) or not pk:
            e.fail("packages", "must be a non-empty table of package = 'specifier'")
        own = {normalise(k): e.spec(f"packages.{k}", v) for k, v in pk.items()}
        packages = dict(own)
        extends = e.text("extends")
        if extends:
            if extends not in by_name:
                e.fail("extends", f"names no earlier row: {extends!r}")
            packages = {**by_name[extends].packages, **own}
        default, trainer = t.get("default", False), t.get("trainer", False)
        if not isinstance(default, bool):
            e.fail("default", "must be true or false")
        if not isinstance(trainer, bool):
            e.fail("trainer", "must be true or false")
        links = e.texts("find_links")
        if any(not link.startswith("https://") for link in links):
            e.fail("find_links", "each entry must be an https:// URL")
        by_name[name] = Row(
            name=name, title=e.text("title"), kind=kind, python=e.spec("python", t.get("python", "")),
            packages=packages, verified=verified, verified_note=e.text("verified_note"),
            reason=e.text("reason"), source=e.text("source"), default=default, extends=extends,
            own_packages=tuple(own), known_warnings=e.texts("known_warnings"), trainer=trainer,
            find_links=links,
        )
    defaults = [r for r in by_name.values() if r.default]
    if len(defaults) != 1:
        raise MatrixError(f"{path}: exactly one row must have default = true (found {len(defaults)})")
    return tuple(by_name.values())
