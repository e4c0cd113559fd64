"""The report for a bug report (``--markdown``); values of secret-looking variables are redacted."""

from __future__ import annotations

from ..findings import AREA_TITLES, Area, Finding, exit_code
from ..matrix.groups import TENSORFLOW, TFP, members
from ..probe.snapshot import Snapshot
from ._common import counts, redact_env


def to_markdown(findings: list[Finding], snap: Snapshot | None, strict: bool = False) -> str:
    """A report to paste into a bug report; values of secret-looking variables are redacted."""
    c = counts(findings)
    lines = ["## bdv2 doctor report", ""]
    if snap is not None:
        lines += [f"- Python {snap.python.get('version')} (`{snap.python.get('executable')}`), "
                  f"{snap.markers.get('platform_system', '')} {snap.markers.get('platform_machine', '')}",
                  f"- {len(snap.distributions)} distributions; key versions: " + ", ".join(
                      f"{d.name} {d.version}" for d in snap.distributions if d.key in _key_packages())]
    code = exit_code(findings, strict)
    lines += [f"- result: {c['errors']} error(s), {c['warnings']} warning(s), exit code {code}", ""]
    for area in Area:
        here = [f for f in findings if f.area is area]
        if not here:
            continue
        lines += [f"### {AREA_TITLES[area]}", ""]
        for f in here:
            lines.append(f"- **{f.severity.value}** `{f.id}`: {f.title}")
            for ev in f.evidence:
                lines.append(f"  - {ev}")
            if f.fix:
                lines.append(f"  - fix: {f.fix.summary}")
                lines += [f"    - `{cmd}`" for cmd in f.fix.commands]
        lines.append("")
    if snap is not None and snap.env:
        lines += ["### Environment variables", "", "```"]
        lines += [f"{k}={v}" for k, v in sorted(redact_env(snap.env).items())]
        lines += ["```", ""]
    return "\n".join(lines)


_KEY_PACKAGES = {
    "jax", "jaxlib", "jax-cuda12-plugin", "jax-cuda12-pjrt", "jax-cuda13-plugin", "jax-cuda13-pjrt", "flax",
    "optax", "chex", "distrax", "orbax-checkpoint", "tensorstore", "ml-dtypes", "numpy", "scipy",
    "nvidia-cudnn-cu12", "nvidia-cudnn-cu13",
}


def _key_packages() -> set[str]:
    """The packages a bug report lists: the ones above and every distribution of TensorFlow's and TFP's groups."""
    return _KEY_PACKAGES | set(members(TENSORFLOW)) | set(members(TFP))
