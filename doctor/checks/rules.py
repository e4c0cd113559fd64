"""Rules: pure functions from a Snapshot (and the matrix) to Findings.

Most rules are data (``[[rules]]`` with ``when`` conditions in compat_matrix.toml, evaluated by
``_common.eval_rule``); the few that need code are built-in checks, registered by name in registry.py: the
package and metadata ones below, and those of pin_rules.py, gpu_rules.py, ldpath_rules.py, env_rules.py and
api_rules.py.
Nothing here touches the live system: every fact comes from the Snapshot, so every rule is table-tested
from literals.
"""

from __future__ import annotations

import re

from packaging.markers import InvalidMarker, Marker, UndefinedComparison, UndefinedEnvironmentName
from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import SpecifierSet

from ..findings import Area, Finding, Fix, Severity
from ..matrix.load import Matrix, Rule
from ..probe.snapshot import Dist, Snapshot, normalise
from ._common import PIP, finding, in_spec, public
from .pin_rules import tailor_commands
from .registry import Options, check


# -- built-in checks ----------------------------------------------------------------------------
def _min_jaxlib(jax: Dist, matrix: Matrix) -> SpecifierSet | None:
    """jaxlib's range from jax's metadata (jax >= 0.4.30), else jax's `_minimum_jaxlib_version` of that release
    ([knowledge.min_jaxlib])."""
    for req in _requirements(jax):
        if normalise(req.name) == "jaxlib" and not _is_extra(req):
            return req.specifier
    if jax.parsed is None:
        return None
    minimum = matrix.knowledge.min_jaxlib_for(public(jax.parsed))
    return SpecifierSet(f">={minimum}") if minimum is not None else None


@check("jax_jaxlib_lockstep")
def check_jax_jaxlib_lockstep(rule: Rule, snap: Snapshot, matrix: Matrix, opts: Options) -> list[Finding]:
    jax, jaxlib = snap.dist("jax"), snap.dist("jaxlib")
    if jax is None or jax.parsed is None:
        return []
    if jaxlib is None or jaxlib.parsed is None:
        return [finding(rule, f"jax {jax.version} is installed without jaxlib", [f"jax {jax.version}"],
                         "install the matching jaxlib", (f'{PIP} install "jaxlib=={jax.version}"',),
                         ("jax", "jaxlib"))]
    jv, lv = public(jax.parsed), public(jaxlib.parsed)
    ev = [f"jax {jax.version}  ({jax.location})", f"jaxlib {jaxlib.version}  ({jaxlib.location})"]
    if lv > jv:
        return [finding(rule, f"jaxlib {jaxlib.version} is newer than jax {jax.version}", ev,
                         f"upgrade jax to {lv} (or downgrade jaxlib to {jv})",
                         (f'{PIP} install "jax=={lv}" "jaxlib=={lv}"',), ("jax", "jaxlib"))]
    spec = _min_jaxlib(jax, matrix)
    if spec is not None and not in_spec(jaxlib.parsed, spec):
        return [finding(rule, f"jax {jax.version} needs jaxlib {spec}, found {jaxlib.version}", ev,
                         f"install jaxlib {jv} to match jax",
                         (f'{PIP} install "jax=={jv}" "jaxlib=={jv}"',), ("jax", "jaxlib"))]
    return []


@check("jax_plugin_lockstep")
def check_jax_plugin_lockstep(rule: Rule, snap: Snapshot, matrix: Matrix, opts: Options) -> list[Finding]:
    out: list[Finding] = []
    jax, jaxlib = snap.dist("jax"), snap.dist("jaxlib")
    for cuda in ("12", "13"):
        plugin, pjrt = snap.dist(f"jax-cuda{cuda}-plugin"), snap.dist(f"jax-cuda{cuda}-pjrt")
        if plugin is None and pjrt is None:
            continue
        target = jax.version if jax else (plugin or pjrt).version  # type: ignore[union-attr]
        fix_cmd = (f'{PIP} install "jax-cuda{cuda}-plugin=={target}" "jax-cuda{cuda}-pjrt=={target}"',)
        pk = (f"jax-cuda{cuda}-plugin", f"jax-cuda{cuda}-pjrt")
        if plugin is None:
            out.append(finding(rule, f"jax-cuda{cuda}-pjrt {pjrt.version} is installed without its plugin",  # type: ignore[union-attr]
                                [f"jax-cuda{cuda}-pjrt {pjrt.version}"], "install the plugin of the same version",  # type: ignore[union-attr]
                                fix_cmd, pk, Severity.WARNING))
            continue
        ev = [f"jax-cuda{cuda}-plugin {plugin.version}"]
        if pjrt is None:
            title = f"jax-cuda{cuda}-plugin {plugin.version} is installed without jax-cuda{cuda}-pjrt"
            out.append(finding(rule, title,
                                ev, "install the PJRT wheel of the same version", fix_cmd, pk))
            continue
        ev.append(f"jax-cuda{cuda}-pjrt {pjrt.version}")
        if plugin.parsed and pjrt.parsed and public(plugin.parsed) != public(pjrt.parsed):
            out.append(finding(rule, f"jax-cuda{cuda}-plugin {plugin.version} and jax-cuda{cuda}-pjrt "
                                f"{pjrt.version} differ (they must be equal)", ev, "", fix_cmd, pk))
        if plugin.parsed and jax and jax.parsed and jaxlib and jaxlib.parsed:
            p, j, lib = public(plugin.parsed), public(jax.parsed), public(jaxlib.parsed)
            if lib >= matrix.knowledge.plugin_exact_since and p != lib:
                ev += [f"jaxlib {jaxlib.version}"]
                title = (f"jax-cuda{cuda}-plugin {plugin.version} is not jaxlib's version {lib}: jaxlib >= "
                         f"{matrix.knowledge.plugin_exact_since} ignores it (RuntimeWarning 'JAX plugin ... is not "
                         "compatible with the installed jaxlib version ..., so it will not be used')")
                fix_cmd = (f'{PIP} install "jax-cuda{cuda}-plugin=={lib}" "jax-cuda{cuda}-pjrt=={lib}"',)
                out.append(finding(rule, title, ev, "", fix_cmd, (*pk, "jaxlib")))
            elif not lib <= p <= j:
                ev += [f"jax {jax.version}", f"jaxlib {jaxlib.version}"]
                out.append(finding(rule, f"jax-cuda{cuda}-plugin {plugin.version} is outside jaxlib {lib} .. jax {j}",
                                    ev, "", fix_cmd, (*pk, "jax", "jaxlib")))
    if jaxlib and "cuda" in jaxlib.version and (snap.dist("jax-cuda12-plugin") or snap.dist("jax-cuda13-plugin")):
        out.append(finding(rule, f"a CUDA jaxlib ({jaxlib.version}) and a CUDA plugin are both installed",
                            [f"jaxlib {jaxlib.version}"],
                            "keep one: the plugin (jax >= 0.4.30 supports only the plugin)",
                            (f'{PIP} install --force-reinstall "jaxlib=={public(jaxlib.parsed)}"',),  # type: ignore[arg-type]
                            ("jaxlib",), Severity.WARNING))
    return out


def _requirements(d: Dist, skip_extras: bool = False) -> list[Requirement]:
    """``d``'s Requires-Dist entries, parsed (an unparsable one is left out). ``skip_extras``: also leave out,
    unparsed, each entry whose marker names ``extra`` (``_names_extra``), most of a stack's entries."""
    out = []
    for text in d.requires:
        if skip_extras and _names_extra(text):
            continue
        try:
            out.append(Requirement(text))
        except InvalidRequirement:
            continue
    return out


def _names_extra(text: str) -> bool:
    """Whether the Requires-Dist entry ``text`` is one ``_is_extra`` holds for (or one that does not parse), read
    from the text alone: without a URL (``name @ url``) the first ';' starts the marker, and a marker's
    serialised form keeps each of its names and quoted values as written, so ``extra`` appears in one exactly
    when it appears in the other."""
    head, sep, marker = text.partition(";")
    return bool(sep) and "@" not in head and "extra" in marker


def _is_extra(req: Requirement) -> bool:
    return req.marker is not None and "extra" in str(req.marker)


def _marker_ok(marker: Marker | None, env: dict[str, str], extra: str = "") -> bool:
    if marker is None:
        return True
    try:
        return marker.evaluate({**env, "extra": extra})
    except (InvalidMarker, UndefinedComparison, UndefinedEnvironmentName):
        return False


# Matrix groups whose members provide the same import package, so any one stands for another: tf-keras
# requires `tensorflow`, and tensorflow-cpu satisfies it at runtime. (Not tfp: distrax >= 0.1.7 needs
# tfp-nightly itself.)
INTERCHANGEABLE_GROUPS = ("tensorflow",)


def provider(name: str, snap: Snapshot, matrix: Matrix) -> Dist | None:
    """The installed distribution providing ``name`` (tensorflow-cpu provides a row's tensorflow)."""
    d = snap.dist(name)
    if d is not None:
        return d
    for group in INTERCHANGEABLE_GROUPS:
        members = matrix.groups.get(group, ())
        if normalise(name) in members:
            return next((x for x in (snap.dist(m) for m in members) if x is not None), None)
    return None


def _unmet(req: Requirement, snap: Snapshot, matrix: Matrix) -> tuple[Dist | None, bool]:
    d = provider(req.name, snap, matrix)
    if d is None:
        return None, True
    if d.parsed is None or not req.specifier:
        return d, False
    return d, not in_spec(d.parsed, req.specifier)


@check("requires_dist")
def check_requires_dist(rule: Rule, snap: Snapshot, matrix: Matrix, opts: Options) -> list[Finding]:
    """What `pip check` does, from the snapshot's metadata, with the target's own markers."""
    out = []
    for d in snap.distributions:
        for req in _requirements(d, skip_extras=True):
            if _is_extra(req) or not _marker_ok(req.marker, snap.markers):
                continue
            got, bad = _unmet(req, snap, matrix)
            if not bad:
                continue
            spec = str(req.specifier)
            if got is None:
                title = f"{d.name} {d.version} requires {req.name}{spec}, which is not installed"
            else:
                title = f"{d.name} {d.version} requires {req.name}{spec}, but {got.name} {got.version} is installed"
            out.append(finding(rule, title, [f"{d.name} {d.version}: Requires-Dist {req}"],
                                f"install a {req.name} that {d.name} accepts, or move onto a known-good row",
                                (f'{PIP} install "{req.name}{spec}"',), (d.key, normalise(req.name))))
    return out


# Distributions whose extras name the GPU wheels; an extra is in use when a package that only it
# names (a plugin, an nvidia-* wheel) is installed. pip never re-checks extras after install.
_EXTRA_OWNERS = ("jax", "jax-cuda12-plugin", "jax-cuda13-plugin")
_EXTRA_ONLY_PREFIXES = ("jax-cuda", "nvidia-")


@check("extras_in_use")
def check_extras_in_use(rule: Rule, snap: Snapshot, matrix: Matrix, opts: Options) -> list[Finding]:
    out, seen = [], set()
    for owner in _EXTRA_OWNERS:
        d = snap.dist(owner)
        if d is None:
            continue
        reqs = _requirements(d)
        base = {normalise(r.name) for r in reqs if not _is_extra(r)}
        extras = sorted({m for r in reqs if _is_extra(r) for m in re.findall(r'extra\s*==\s*"([^"]+)"', str(r.marker))})
        for extra in extras:
            ereqs = [r for r in reqs if _is_extra(r) and _marker_ok(r.marker, snap.markers, extra)]
            names = {normalise(r.name) for r in ereqs}
            in_use = [n for n in names - base if n.startswith(_EXTRA_ONLY_PREFIXES) and snap.dist(n)]
            if not in_use:
                continue
            for r in ereqs:
                got, bad = _unmet(r, snap, matrix)
                if got is None or not bad or (normalise(r.name), str(r.specifier)) in seen:
                    continue
                seen.add((normalise(r.name), str(r.specifier)))
                out.append(finding(
                    rule, f"{d.name}[{extra}] {d.version} needs {r.name}{r.specifier}, found {got.version}",
                    [f"{d.name} {d.version}: Requires-Dist {r}",
                     f"extra '{extra}' is in use: {', '.join(sorted(in_use))} installed"],
                    f"install the {r.name} that {d.name}[{extra}] {d.version} was built for",
                    (f'{PIP} install "{r.name}{r.specifier}"',), (d.key, normalise(r.name)),
                ))
    return out


@check("shadowed_dists")
def check_shadowed_dists(rule: Rule, snap: Snapshot, matrix: Matrix, opts: Options) -> list[Finding]:
    out = []
    for s in snap.shadowed:
        used = snap.dist(s.name)
        if used is None or used.version == s.version:  # e.g. an editable install's leftover egg-info
            continue
        out.append(finding(
            rule, f"two copies of {s.name} are visible: {used.version} is used, {s.version} is hidden",
            [f"used:   {used.name} {used.version}  ({used.location})", f"hidden: {s.name} {s.version}  ({s.location})"],
            "remove the copy you do not want (often a ~/.local user install or a PYTHONPATH entry)",
            (f'{PIP} uninstall {s.name}   # run with the interpreter that owns {s.location}',), (s.key,),
        ))
    return out


@check("runtime_probes")
def check_runtime_probes(rule: Rule, snap: Snapshot, matrix: Matrix, opts: Options) -> list[Finding]:
    """Each failed --deep probe becomes a finding; its verbatim error is matched against the signatures."""
    out = []
    for p in snap.probes:
        if not p.status.bad:
            continue
        from ..logs.signatures import match_text  # the log wing loads only where a probe failed

        lines = [ln for ln in p.error.strip().splitlines() if ln.strip()]
        evidence = [f"probe '{p.name}' {p.status.value} after {p.seconds:.1f}s", *lines[-8:]]
        causes = [m for m in match_text(p.error, matrix) if not m.noise]
        if causes:
            sig = causes[0]
            out.append(Finding(
                id=rule.id, severity=Severity.ERROR, area=Area.RUNTIME,
                title=f"{p.name}: {sig.cause}", evidence=tuple(evidence),
                fix=Fix(sig.fix, tailor_commands(sig.commands, snap, matrix), dict(sig.env)), source=sig.source,
                packages=(),
            ))
        else:
            out.append(finding(rule, f"{p.name}: the probe {p.status.value}", evidence, packages=()))
    return out


@check("cpu_jaxlib_with_gpu_wheels")
def check_cpu_jaxlib_with_gpu_wheels(rule: Rule, snap: Snapshot, matrix: Matrix, opts: Options) -> list[Finding]:
    jaxlib = snap.dist("jaxlib")
    gpu_wheels = [d for d in snap.distributions if d.key.startswith(("nvidia-cudnn", "nvidia-cublas"))]
    if jaxlib is None or not gpu_wheels or snap.jax_cuda_backend() is not None:
        return []
    jax = snap.dist("jax")
    k = matrix.knowledge
    old = jax is not None and jax.parsed is not None and public(jax.parsed) < k.plugins_only_since
    cmd = (f'{PIP} install "jaxlib=={jaxlib.version}+cuda12.cudnn89" -f https://storage.googleapis.com/jax-releases/jax_cuda_releases.html'
           if old and jaxlib.version.startswith("0.4.") and public(jaxlib.parsed) < k.cudnn89_build_before  # type: ignore[arg-type]
           else f'{PIP} install "jax[cuda12]=={jax.version if jax else jaxlib.version}"')
    evidence = [f"jaxlib {jaxlib.version}", *(f"{d.name} {d.version}" for d in gpu_wheels)]
    torch = snap.dist("torch")
    if torch is not None:  # the wheels are PyTorch's: a CPU jax beside them is a common, working set-up
        return [finding(rule, f"jax runs on the CPU (jaxlib {jaxlib.version}); the NVIDIA wheels here are PyTorch's",
                         [*evidence, f"torch {torch.version} (its CUDA wheels)"],
                         "nothing to do for a CPU jax; for jax on the GPU, install its CUDA extra", (cmd,),
                         ("jaxlib",), severity=Severity.INFO)]
    title = f"NVIDIA CUDA wheels are installed but jaxlib {jaxlib.version} is the CPU build (no CUDA plugin)"
    return [finding(rule, title, evidence, "install jax with its CUDA extra", (cmd,), ("jaxlib",))]
