"""Built-in checks that judge ml-dtypes, NumPy and protobuf against what the installed TensorFlow and jaxlib
declare, and the tailoring of fix commands to the installed stack.

TensorFlow's own pins per release are the [knowledge.tensorflow] table of compat_matrix.toml (read from each
release's wheel metadata). A command that moves ml-dtypes or protobuf must never break the packages that pin
them: `pip install "ml-dtypes>=0.5.0"` alone resolves to the newest ml-dtypes, and a NumPy-1 stack (TensorFlow
< 2.18, jaxlib < 0.4.26) needs that command to carry `"numpy<2"`.
"""

from __future__ import annotations

import re

from packaging.version import Version

from ..findings import Finding, Fix
from ..matrix.knowledge import Knowledge, TfPins
from ..matrix.load import Matrix, Rule
from ..probe.snapshot import Dist, Snapshot
from ._common import PIP, eval_rule, finding, in_spec, public
from .gpu_rules import cudnn_command
from .registry import Options, check


def tensorflow(snap: Snapshot, matrix: Matrix) -> Dist | None:
    """The installed TensorFlow distribution (any member of the @tensorflow group)."""
    for name in matrix.groups.get("tensorflow", ("tensorflow",)):
        d = snap.dist(name)
        if d is not None and d.parsed is not None:
            return d
    return None


def tf_pins(snap: Snapshot, matrix: Matrix) -> tuple[Dist, TfPins] | None:
    tf = tensorflow(snap, matrix)
    if tf is None or tf.parsed is None:
        return None
    pins = matrix.knowledge.tf_pins(public(tf.parsed))
    return (tf, pins) if pins is not None else None


def numpy1_holders(snap: Snapshot, matrix: Matrix) -> list[str]:
    """The installed packages built against NumPy 1.x: TensorFlow < 2.18, jaxlib < 0.4.26."""
    out = []
    k = matrix.knowledge
    tf = tensorflow(snap, matrix)
    if tf is not None and tf.parsed is not None and public(tf.parsed) < k.numpy2_tensorflow:
        out.append(f"{tf.name} {tf.version}")
    lib = snap.dist("jaxlib")
    if lib is not None and lib.parsed is not None and public(lib.parsed) < k.numpy2_jaxlib:
        out.append(f"jaxlib {lib.version}")
    return out


_RAISES_ML_DTYPES = re.compile(r'"ml-dtypes[^"]*?(>=|~=|==)\s*0\.(\d+)')
_CUDNN = re.compile(r'"nvidia-cudnn-cu\d+[^"]*"')
_PROTOBUF = re.compile(r'"protobuf[^"]*"')


def _capped(cmd: str, holders: list[str], k: Knowledge) -> str:
    m = _RAISES_ML_DTYPES.search(cmd)
    if not holders or m is None or Version(f"0.{m.group(2)}") < k.numpy2_ml_dtypes or "numpy<2" in cmd:
        return cmd
    head = cmd.partition("   #")[0]
    return f'{head.rstrip()} "numpy<2"   # {", ".join(holders)} need NumPy 1'


def _held_by_tensorflow(cmd: str, tfp: tuple[Dist, TfPins] | None, k: Knowledge) -> str | None:
    """An ml-dtypes upgrade the installed TensorFlow's own pin forbids (TF 2.15.1: ml-dtypes ~=0.3.1) would break
    TensorFlow: hold back the package that wants the new dtypes instead (tensorstore 0.1.75 is the first to
    need ml-dtypes >= 0.5.0, its wheel metadata)."""
    m = _RAISES_ML_DTYPES.search(cmd)
    if tfp is None or m is None:
        return None
    tf, pins = tfp
    if pins.ml_dtypes.contains(f"0.{m.group(2)}.0") or pins.ml_dtypes.contains(f"0.{m.group(2)}.1"):
        return None
    ts, orbax = k.tensorstore_ml_dtypes_05, k.orbax_new_tensorstore
    return (f'{PIP} install "tensorstore<{ts}"   # {tf.name} {tf.version} declares ml-dtypes{pins.ml_dtypes}; '
            f'with orbax-checkpoint >= {orbax} installed add "orbax-checkpoint<{orbax}"')


def tailor_commands(commands: tuple[str, ...], snap: Snapshot, matrix: Matrix) -> tuple[str, ...]:
    """A signature's or rule's pip commands adapted to the installed stack: the cuDNN jax's CUDA backend was
    built for, protobuf within TensorFlow's range, and a NumPy cap where ml-dtypes moves next to a NumPy-1 stack."""
    out: list[str] = []
    holders = numpy1_holders(snap, matrix)
    cudnn = cudnn_command(snap, matrix.knowledge)
    tfp = tf_pins(snap, matrix)
    for cmd in commands:
        if _CUDNN.search(cmd) and cudnn is not None:
            cmd = cudnn
        elif _PROTOBUF.search(cmd) and tfp is not None:
            tf, pins = tfp
            cmd = f'{PIP} install "protobuf{pins.protobuf}"   # what {tf.name} {tf.version} declares'
        if not holders and "ml-dtypes" in cmd and '"numpy<2"' in cmd:
            continue  # the NumPy-1 variant of a command, and nothing here needs NumPy 1
        held = _held_by_tensorflow(cmd, tfp, matrix.knowledge)
        if held is not None:
            cmd = held
        cmd = _capped(cmd, holders, matrix.knowledge)
        if cmd not in out:
            out.append(cmd)
    return tuple(out)


@check("ml_dtypes_upgrade")
def check_ml_dtypes_upgrade(rule: Rule, snap: Snapshot, matrix: Matrix, opts: Options) -> list[Finding]:
    """The rule's own `when`/`unless` conditions, with the upgrade command capped at NumPy 1 where needed."""
    f = eval_rule(rule, snap, matrix)
    if f is None or f.fix is None:
        return []
    holders = numpy1_holders(snap, matrix)
    cmds = tuple(_capped(c, holders, matrix.knowledge) for c in f.fix.commands)
    evidence = f.evidence + ((f"built against NumPy 1: {', '.join(holders)} (so the upgrade keeps numpy < 2)",)
                             if holders else ())
    return [Finding(id=f.id, severity=f.severity, area=f.area, title=f.title, evidence=evidence,
                    fix=Fix(f.fix.summary, cmds, dict(f.fix.env)), source=f.source, packages=f.packages)]


def _outside_tf_pin(rule: Rule, snap: Snapshot, matrix: Matrix, package: str, holders: list[str]) -> list[Finding]:
    """``package`` (ml-dtypes or protobuf) outside the range the installed TensorFlow release declares for it."""
    found = tf_pins(snap, matrix)
    dist = snap.dist(package)
    if found is None or dist is None or dist.parsed is None:
        return []
    tf, pins = found
    declared = pins.ml_dtypes if package == "ml-dtypes" else pins.protobuf
    if not declared or in_spec(dist.parsed, declared):
        return []
    spec = str(declared)
    cmd = _capped(f'{PIP} install "{package}{spec}"', holders, matrix.knowledge)
    return [finding(rule, f"TensorFlow {tf.version} declares {package} {spec}, found {dist.version}",
                     [f"{tf.name} {tf.version}: Requires-Dist {package}{spec}", f"{package} {dist.version}"],
                     commands=(cmd,), packages=(tf.key, package))]


@check("tensorflow_ml_dtypes")
def check_tensorflow_ml_dtypes(rule: Rule, snap: Snapshot, matrix: Matrix, opts: Options) -> list[Finding]:
    """ml-dtypes outside the range the installed TensorFlow release declares (kept below NumPy 2 where needed)."""
    return _outside_tf_pin(rule, snap, matrix, "ml-dtypes", numpy1_holders(snap, matrix))


@check("tensorflow_protobuf")
def check_tensorflow_protobuf(rule: Rule, snap: Snapshot, matrix: Matrix, opts: Options) -> list[Finding]:
    """protobuf outside the range the installed TensorFlow release declares."""
    return _outside_tf_pin(rule, snap, matrix, "protobuf", [])
