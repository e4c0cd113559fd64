"""Helpers the rule modules share: version comparison, data-rule evaluation, the finding a built-in check
returns, and what the snapshot says about jax's CUDA backend. Public to the checks wing, to nobody else."""

from __future__ import annotations

import re

from packaging.specifiers import SpecifierSet
from packaging.version import InvalidVersion, Version

from ..findings import EnvOp, Finding, Fix, Severity
from ..matrix.load import Condition, Matrix, Rule
from ..probe.snapshot import Dist, Snapshot
from ..probe.system import parse_lib_name

PIP = "python -m pip"


def public(v: Version) -> Version:
    """Drop the local label: jaxlib '0.4.13+cuda12.cudnn89' compares as 0.4.13, as jax itself does."""
    return Version(v.public)


def in_spec(v: Version, spec: SpecifierSet) -> bool:
    # Pre-releases count (tfp-nightly is only ever a .dev release); local labels do not.
    return spec.contains(public(v), prereleases=True)


def _holds(cond: Condition, snap: Snapshot, matrix: Matrix) -> Dist | bool | None:
    """The installed Dist satisfying ``cond`` (True for a python condition), else None/False."""
    if cond.key == "python":
        return in_spec(snap.python_version, cond.spec)
    for name in matrix.members(cond.key):
        d = snap.dist(name)
        if d is not None and d.parsed is not None and in_spec(d.parsed, cond.spec):
            return d
    return None


def _format(text: str, values: dict[str, str]) -> str:
    return re.sub(r"\{([a-z0-9_.@-]+)\}", lambda m: values.get(m.group(1), m.group(0)), text)


def eval_rule(rule: Rule, snap: Snapshot, matrix: Matrix) -> Finding | None:
    """A data rule fires when every `when` holds, not every `unless` holds, and no `absent` is there."""
    values = {"python": str(snap.python_version), "pip": PIP}
    evidence, packages = [], []
    for cond in rule.when:
        got = _holds(cond, snap, matrix)
        if not got:
            return None
        if isinstance(got, Dist):
            label = cond.key.lstrip("@")
            values[label] = got.version
            values[label + "_name"] = got.name
            evidence.append(f"{got.name} {got.version}" + (f"  ({got.location})" if got.location else ""))
            packages.append(got.key)
        else:
            evidence.append(f"Python {snap.python_version}")
    if rule.unless and all(_holds(c, snap, matrix) for c in rule.unless):
        return None
    if any(snap.dist(a) for a in rule.absent):
        return None
    if rule.absent:
        evidence.append("not installed: " + ", ".join(rule.absent))
    if rule.needs_jax_cuda:
        backend = snap.jax_cuda_backend()
        if backend is None:
            return None
        evidence.append(f"jax's CUDA backend: {backend.name} {backend.version}")
    return Finding(
        id=rule.id, severity=rule.severity, area=rule.area, title=_format(rule.title, values),
        evidence=(*evidence, "why: " + _format(rule.reason, values)),
        fix=Fix(_format(rule.fix, values), tuple(_format(c, values) for c in rule.commands), dict(rule.env)),
        source=rule.source, packages=tuple(packages),
    )


def finding(rule: Rule, title: str, evidence: list[str], fix: str = "", commands: tuple[str, ...] = (),
             packages: tuple[str, ...] = (), severity: Severity | None = None,
             env_ops: tuple[EnvOp, ...] = ()) -> Finding:
    return Finding(
        id=rule.id, severity=severity or rule.severity, area=rule.area, title=title,
        evidence=(*evidence, "why: " + rule.reason), fix=Fix(fix or rule.fix, commands, env_ops=env_ops),
        source=rule.source, packages=packages,
    )



def as_version(text: str) -> Version | None:
    try:
        return Version(text)
    except InvalidVersion:
        return None


def pip_libs(snap: Snapshot) -> dict[str, tuple[str, str]]:
    """stem -> (pip lib dir, soname) for the wheels' libraries."""
    out: dict[str, tuple[str, str]] = {}
    for d in snap.nvidia_libs:
        for name in d.files:
            parsed = parse_lib_name(name)
            if parsed and parsed[0] not in out:
                out[parsed[0]] = (d.dir, name)
    return out


def major_of(version: str) -> str:
    return version.split(".")[0] if version else ""


