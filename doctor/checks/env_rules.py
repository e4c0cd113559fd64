"""Built-in checks over environment variables (and the user's --batch-size), one rule id each."""

from __future__ import annotations

from bdv2.devices import IndivisibleBatch, Platform, driver_gpus, require_divisible, visible_devices

from ..findings import EnvOp, EnvOpKind, Finding
from ..matrix.load import Matrix, Rule
from ..probe.snapshot import Snapshot
from ._common import PIP, finding
from .gpu_rules import gpu_backend
from .registry import Options, check


@check("jax_platform_name")
def check_jax_platform_name(rule: Rule, snap: Snapshot, matrix: Matrix, opts: Options) -> list[Finding]:
    """JAX_PLATFORM_NAME: the deprecated spelling of JAX_PLATFORMS."""
    env = snap.env
    if "JAX_PLATFORM_NAME" not in env:
        return []
    value = env["JAX_PLATFORM_NAME"]
    ops = [EnvOp(EnvOpKind.UNSET, "JAX_PLATFORM_NAME")]
    if "JAX_PLATFORMS" not in env and value:
        ops.append(EnvOp(EnvOpKind.SET, "JAX_PLATFORMS", value))
    evidence = [f"JAX_PLATFORM_NAME={value}"] + ([f"JAX_PLATFORMS={env['JAX_PLATFORMS']}"]
                                                 if "JAX_PLATFORMS" in env else [])
    return [finding(rule, f"JAX_PLATFORM_NAME={value} is the deprecated spelling of JAX_PLATFORMS", evidence,
                     env_ops=tuple(ops))]


@check("jax_platforms_gpu")
def check_jax_platforms_gpu(rule: Rule, snap: Snapshot, matrix: Matrix, opts: Options) -> list[Finding]:
    """JAX_PLATFORMS asks for the GPU but jax has no CUDA backend."""
    env = snap.env
    platforms = (env.get("JAX_PLATFORMS") or env.get("JAX_PLATFORM_NAME") or "").lower()
    wants_gpu = any(p.strip() in ("cuda", "gpu") for p in platforms.split(","))
    jax = snap.dist("jax")
    if not wants_gpu or gpu_backend(snap)[0] or jax is None:
        return []
    return [finding(rule, f"JAX_PLATFORMS={platforms} asks for the GPU, but jax has no CUDA backend installed",
                     [f"JAX_PLATFORMS={platforms}"], commands=(f'{PIP} install "jax[cuda12]=={jax.version}"',))]


@check("cuda_visible_devices_hides")
def check_cuda_visible_devices(rule: Rule, snap: Snapshot, matrix: Matrix, opts: Options) -> list[Finding]:
    """CUDA_VISIBLE_DEVICES empty or -1 hides every GPU, from JAX too."""
    cvd = snap.env.get("CUDA_VISIBLE_DEVICES")
    if cvd is None or cvd.strip() not in ("", "-1") or not gpu_backend(snap)[0]:
        return []
    return [finding(rule, f"CUDA_VISIBLE_DEVICES={cvd!r} hides every GPU, from JAX too",
                     [f"CUDA_VISIBLE_DEVICES={cvd!r}"],
                     env_ops=(EnvOp(EnvOpKind.UNSET, "CUDA_VISIBLE_DEVICES"),))]


@check("skip_cuda_constraints")
def check_skip_cuda_constraints(rule: Rule, snap: Snapshot, matrix: Matrix, opts: Options) -> list[Finding]:
    value = snap.env.get("JAX_SKIP_CUDA_CONSTRAINTS_CHECK")
    if not value:
        return []
    return [finding(rule, "JAX_SKIP_CUDA_CONSTRAINTS_CHECK hides CUDA library version errors",
                     ["JAX_SKIP_CUDA_CONSTRAINTS_CHECK=" + value],
                     env_ops=(EnvOp(EnvOpKind.UNSET, "JAX_SKIP_CUDA_CONSTRAINTS_CHECK"),))]


@check("mem_fraction")
def check_mem_fraction(rule: Rule, snap: Snapshot, matrix: Matrix, opts: Options) -> list[Finding]:
    frac = snap.env.get("XLA_PYTHON_CLIENT_MEM_FRACTION")
    if frac is None:
        return []
    try:
        ok = 0.0 < float(frac) <= 1.0
    except ValueError:
        ok = False
    if ok:
        return []
    return [finding(rule, f"XLA_PYTHON_CLIENT_MEM_FRACTION={frac!r} is not a fraction in (0, 1]",
                     [f"XLA_PYTHON_CLIENT_MEM_FRACTION={frac!r}"],
                     env_ops=(EnvOp(EnvOpKind.UNSET, "XLA_PYTHON_CLIENT_MEM_FRACTION"),))]


@check("xla_flags_unknown")
def check_xla_flags(rule: Rule, snap: Snapshot, matrix: Matrix, opts: Options) -> list[Finding]:
    """XLA_FLAGS names a flag the installed jaxlib does not know, or holds a token that is no --flag."""
    flags = snap.env.get("XLA_FLAGS", "")
    bad = [t for t in flags.split() if not t.startswith("--")]
    scan = snap.system.xla_flags
    unknown = list(scan.unknown) if scan else []
    if not bad and not unknown:
        return []
    keep = [t for t in flags.split() if t.startswith("--") and t[2:].split("=", 1)[0] not in unknown]
    what = ([f"flags this jaxlib does not know ({', '.join(unknown)})"] if unknown else []) + (
        [f"tokens that are not --flags ({', '.join(bad)})"] if bad else [])
    return [finding(rule, "XLA_FLAGS holds " + ", ".join(what) + ": XLA aborts at start-up",
                     [f"XLA_FLAGS={flags}", f"checked against {scan.scanned if scan else '-'}"],
                     env_ops=(EnvOp(EnvOpKind.SET, "XLA_FLAGS", " ".join(keep)),) if keep else
                     (EnvOp(EnvOpKind.UNSET, "XLA_FLAGS"),))]


@check("batch_indivisible")
def check_batch(rule: Rule, snap: Snapshot, matrix: Matrix, opts: Options) -> list[Finding]:
    """--batch-size against the devices a process started with this environment sees (bdv2.devices decides)."""
    if not opts.batch_size:
        return []
    driver = snap.system.driver
    gpus = driver_gpus(driver.source, len(driver.gpus), driver.known)
    count = visible_devices(snap.env, gpus, bool(gpu_backend(snap)[0]))
    if not count.n:
        return []
    try:
        require_divisible({"--batch-size": opts.batch_size}, count.n,
                          unit="visible GPU(s)" if count.platform is Platform.GPU else "visible device(s)")
    except IndivisibleBatch as e:
        return [finding(rule, f"batch size {e.problem}", [count.why], e.fix)]
    return []


@check("tf_jax_share_gpu")
def check_tf_jax_share_gpu(rule: Rule, snap: Snapshot, matrix: Matrix, opts: Options) -> list[Finding]:
    env = snap.env
    tf = snap.dist("tensorflow") or snap.dist("tensorflow-gpu")
    if tf is None or not gpu_backend(snap)[0]:
        return []
    if env.get("XLA_PYTHON_CLIENT_PREALLOCATE", "").lower() in ("false", "0") \
            or env.get("TF_FORCE_GPU_ALLOW_GROWTH", "").lower() == "true":
        return []
    return [finding(rule, "TensorFlow's GPU build and JAX share the GPU with default memory settings",
                     [f"{tf.name} {tf.version}", "XLA_PYTHON_CLIENT_PREALLOCATE unset (JAX takes 75% at start)",
                      "TF_FORCE_GPU_ALLOW_GROWTH unset (TF takes what is left)"],
                     env_ops=(EnvOp(EnvOpKind.SET, "TF_FORCE_GPU_ALLOW_GROWTH", "true"),))]
