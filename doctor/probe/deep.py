"""Runtime probes (--deep): each imports a heavy package and makes the smallest real call bdv2's trainer
makes with it (a jit and a grad, a flax apply and an optax update, a distribution built from Python floats
sampled and scored, an orbax save and restore, a tf.data map), each in its own subprocess.

A probe that segfaults, hangs or raises becomes a ProbeResult with the verbatim error, never a
crash of the doctor. Probes run in parallel under the target interpreter, with a timeout each.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from ..api import deep as api_deep
from ..matrix.groups import TENSORFLOW, TFP, members
from .snapshot import ProbeResult, ProbeStatus, Snapshot

_MARK = "BDV2_PROBE_RESULT="


@dataclass(frozen=True)
class Probe:
    name: str
    needs: tuple[str, ...]
    """Run only when one of these distributions is installed."""
    code: str
    also_needs: tuple[str, ...] = ()
    """And one of these too (e.g. TFP's TensorFlow substrate needs TensorFlow)."""


_TF = members(TENSORFLOW)
_TFP = members(TFP)

# Listed slowest first: with fewer cores than probes, starting the long ones first ends soonest.
PROBES = (
    Probe("tensorflow", _TF, """
import tensorflow as tf
gpus = tf.config.list_physical_devices("GPU")
x = int((tf.constant(1) + 1).numpy())
# A tf.data map, as the trainer's input pipeline runs: traces a tf.function and runs it.
total = int(tf.data.Dataset.range(4).map(lambda v: v * 2).reduce(tf.constant(0, tf.int64), lambda a, b: a + b))
assert total == 12, total
out = {"version": tf.__version__, "gpus": [g.name for g in gpus], "built_with_cuda": tf.test.is_built_with_cuda()}
"""),
    Probe("distrax", ("distrax",), """
import distrax, jax, jax.numpy as jnp
d = distrax.MultivariateNormalDiag(jnp.zeros(2), jnp.ones(2))
# One jitted function traces TFP's JAX substrate for both paths; eager ops would each compile on their own.
lp, s = jax.jit(lambda x, key: (d.log_prob(x), d.sample(seed=key)))(jnp.zeros(2), jax.random.PRNGKey(0))
# Built from Python floats, as policies' fixed-std heads do; an era mismatch often breaks only this path.
n = distrax.Normal(0., 1.)
lp2 = jax.jit(lambda key: n.log_prob(n.sample(seed=key)))(jax.random.PRNGKey(1))
assert jnp.isfinite(lp) and jnp.isfinite(lp2)
out = {"version": distrax.__version__, "log_prob": float(lp)}
"""),
    Probe("tfp-jax", _TFP, """
import jax
from tensorflow_probability.substrates import jax as tfp
d = tfp.distributions.Normal(0., 1.)
lp = jax.jit(lambda key: d.log_prob(d.sample(seed=key)))(jax.random.PRNGKey(0))
out = {"log_prob": float(lp)}
""", also_needs=("jax",)),
    Probe("tfp-tensorflow", _TFP, """
import tensorflow_probability as tfp
d = tfp.distributions.Normal(0., 1.)
lp = d.log_prob(d.sample(seed=0))
out = {"version": tfp.__version__, "log_prob": float(lp)}
""", also_needs=_TF),
    Probe("jax", ("jax",), """
import jax, jax.numpy as jnp
import jax.scipy.linalg
x = int(jnp.arange(3).sum())
# jit and grad of a tiny function: the compile path, not only the import.
g = jax.jit(jax.grad(lambda w: jnp.sum(jnp.tanh(w) ** 2)))(jnp.arange(3.0))
assert g.shape == (3,) and bool(jnp.all(jnp.isfinite(g)))
out = {"version": jax.__version__, "backend": jax.default_backend(), "devices": [str(d) for d in jax.devices()]}
"""),
    Probe("flax-optax", ("flax",), """
import jax, jax.numpy as jnp, flax, flax.linen as nn
model = nn.Dense(2)
params = model.init(jax.random.PRNGKey(0), jnp.ones((1, 3)))
y = jax.jit(model.apply)(params, jnp.ones((1, 3)))
assert y.shape == (1, 2)
out = {"flax": flax.__version__}
try:
    import optax
except ImportError:
    optax = None
if optax is not None:
    tx = optax.adam(1e-3)
    grads = jax.tree_util.tree_map(jnp.ones_like, params)
    updates, _ = jax.jit(tx.update)(grads, tx.init(params), params)  # one compile, not one per eager op
    out["optax"] = optax.__version__
"""),
    Probe("tensorstore-orbax", ("tensorstore", "orbax-checkpoint"), """
out = {}
try:
    import tensorstore
    out["tensorstore"] = "ok"
except ModuleNotFoundError as e:
    if e.name != "tensorstore":
        raise
import importlib.util
if importlib.util.find_spec("orbax") is not None:
    # A save and a restore of a small pytree, as the trainer's checkpoints do.
    import os, tempfile
    import jax.numpy as jnp
    import orbax.checkpoint as ocp
    tree = {"w": jnp.arange(4.0), "b": {"c": jnp.ones((2,))}}
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "ckpt")
        ckptr = ocp.StandardCheckpointer() if hasattr(ocp, "StandardCheckpointer") else ocp.PyTreeCheckpointer()
        ckptr.save(path, tree)
        if hasattr(ckptr, "wait_until_finished"):
            ckptr.wait_until_finished()
        back = ckptr.restore(path, tree)
        if hasattr(ckptr, "close"):
            ckptr.close()
    assert bool(jnp.allclose(back["w"], tree["w"])) and bool(jnp.allclose(back["b"]["c"], tree["b"]["c"]))
    out["orbax"] = "saved and restored"
"""),
)


def _wrap(code: str) -> str:
    return f"import json\n{code}\nprint({_MARK!r} + json.dumps(out))\n"


def _skip_reason(probe: Probe, snap: Snapshot) -> str:
    if not any(snap.dist(n) for n in probe.needs):
        return "not installed: " + " / ".join(probe.needs)
    if probe.also_needs and not any(snap.dist(n) for n in probe.also_needs):
        return "not installed: " + " / ".join(probe.also_needs)
    if probe.name == "tfp-jax" and snap.dist("distrax"):
        return "covered by the distrax probe (distrax runs on TFP's JAX substrate)"
    if probe.name == "tfp-tensorflow":
        tfp = next((d for d in map(snap.dist, _TFP) if d is not None), None)
        if tfp and tfp.parsed and tfp.parsed.release >= (0, 24) and not snap.dist("tf-keras"):
            return ("TFP >= 0.24's TensorFlow substrate needs tf-keras, which is not installed "
                    "(the JAX substrate does not)")
    return ""


def run_probe(python: str, probe: Probe, timeout: float, env: dict[str, str] | None = None,
              cwd: str | None = None) -> ProbeResult:
    t0 = time.perf_counter()
    try:
        # `python -c` puts the working directory first on sys.path: run from an empty folder, so a local
        # jax/ or numpy.py (or a source checkout) cannot stand in for the installed package.
        res = subprocess.run([python, "-c", _wrap(probe.code)], capture_output=True, text=True,
                             timeout=timeout, env=env, check=False, stdin=subprocess.DEVNULL,
                             cwd=cwd or tempfile.gettempdir())
    except subprocess.TimeoutExpired:
        return ProbeResult(probe.name, ProbeStatus.TIMEOUT, time.perf_counter() - t0,
                           error=f"no answer in {timeout:.0f}s (a hang in import or device initialisation)")
    except OSError as e:
        return ProbeResult(probe.name, ProbeStatus.FAILED, time.perf_counter() - t0, error=f"cannot run {python}: {e}")
    dt = time.perf_counter() - t0
    for line in reversed(res.stdout.splitlines()):
        if line.startswith(_MARK) and res.returncode == 0:
            return ProbeResult(probe.name, ProbeStatus.OK, dt, output=json.loads(line[len(_MARK):]),
                               error=_tail(res.stderr, 20))
    why = f"exit code {res.returncode}" + (" (killed by a signal)" if res.returncode < 0 else "")
    return ProbeResult(probe.name, ProbeStatus.FAILED, dt, error=_tail(res.stderr, 40) or why)


def _tail(text: str, n: int) -> str:
    return "\n".join(text.strip().splitlines()[-n:])


def run_probes(snap: Snapshot, python: str, timeout: float = 120.0,
               probes: Sequence[Probe] = PROBES, env: dict[str, str] | None = None) -> tuple[ProbeResult, ...]:
    """Run every applicable probe in parallel; skipped ones say why."""
    todo, results = [], {}
    for p in probes:
        reason = _skip_reason(p, snap)
        if reason:
            results[p.name] = ProbeResult(p.name, ProbeStatus.SKIPPED, error=reason)
        else:
            todo.append(p)
    # One probe per core: each is CPU-bound while importing, and oversubscribing only adds switching.
    workers = max(1, min(len(todo), os.cpu_count() or 2))
    with tempfile.TemporaryDirectory(prefix="bdv2-probe-") as cwd, ThreadPoolExecutor(max_workers=workers) as pool:
        running = [pool.submit(run_probe, python, p, timeout, env, cwd) for p in todo]
        # The source scan (api/deep.py) reads files in this thread while the probes' subprocesses run.
        scanned = (_scan_result(lambda: api_deep.scan(snap)),) if probes is PROBES else ()
        for f in running:
            r = f.result()
            results[r.name] = r
    return tuple(results[p.name] for p in probes) + scanned


def _scan_result(get: Callable[[], ProbeResult]) -> ProbeResult:
    """The source scan's result; a bug in it is reported as its own failed step, never a crash of --deep."""
    try:
        return get()
    except Exception as e:
        return ProbeResult(api_deep.NAME, ProbeStatus.FAILED, error=f"{type(e).__name__}: {e}")
