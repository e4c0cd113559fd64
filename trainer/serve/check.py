"""`bdv2 policy check`: is this run fast enough on this machine for a robot at a given control rate?

Measured on the device JAX picks here, with requests of the run's real shapes:
  * the first call, compilation included (what a robot waits for once, and what `bdv2 serve` does before
    it accepts connections);
  * p50/p95/p99 of ``act()`` over ``n`` calls (gc_ddpm_bc: each call runs the full reverse diffusion,
    diffusion_steps denoiser passes, the chunk included);
  * with ``serve``, the same requests through `bdv2 serve`'s server on loopback (encode, send, decode, act,
    reply), by a client on msgpack + websockets as a robot would have it.

The verdict compares the slowest measured p95 with the control period 1000/hz ms. A policy that predicts a
chunk of k actions does not have to answer at every step: executing n of them per call (receding:n) gives
it n periods; the advice names the smallest such n, when the chunk is long enough.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from . import wire
from .server import PolicyServer, ServeOptions, percentiles


@dataclass(frozen=True)
class CheckResult:
    run: str
    algo: str
    device: str
    hz: float
    image_size: int
    chunk: int
    """Actions per call (act_pred_horizon, 1 when unset)."""
    diffusion_steps: int | None
    first_call_ms: float
    act_ms: dict[str, float]
    serve_ms: dict[str, float] | None
    keeps_up: bool
    verdict: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def verdict(p95_ms: float, hz: float, chunk: int) -> tuple[bool, str]:
    """Whether a p95 latency keeps up with ``hz``, and what to do when it does not."""
    period = 1000.0 / hz
    if p95_ms <= period:
        more = (f"; with a chunk of {chunk} you may also ensemble (execute=ensemble:{chunk})" if chunk > 1 else "")
        return True, f"keeps up with {period - p95_ms:.0f} ms to spare at {hz:g} Hz (p95 {p95_ms:.0f} ms){more}"
    need = math.ceil(p95_ms / period)
    slow = f"too slow for {hz:g} Hz: p95 {p95_ms:.0f} ms > {period:.0f} ms per step"
    if need <= chunk:
        return False, (f"{slow}: execute {need} of the chunk's {chunk} actions per call (execute=receding:{need}, "
                       f"bdv2 serve --execute receding:{need}); ensembling needs a call per step and does not help")
    return False, (f"{slow}: the run predicts {chunk} action(s) per call and would need {need}: train with "
                   f"act_pred_horizon >= {need}, use a faster device or a smaller encoder, or lower the rate")


def _loopback_ms(server: PolicyServer, requests: list[dict[str, Any]]) -> dict[str, float]:
    from websockets.sync.client import connect

    from .server import running

    with running(server) as port, connect(f"ws://127.0.0.1:{port}", compression=None, max_size=None) as ws:
        ws.recv()  # the connect metadata
        times = []
        for i, req in enumerate(requests):
            t0 = time.perf_counter()
            ws.send(wire.packb(req))
            reply = ws.recv()
            times.append((time.perf_counter() - t0) * 1e3)
            if isinstance(reply, str):
                raise RuntimeError(f"the server refused request {i}: {reply}")
    return percentiles(times)


def check_policy(run_path: Path, hz: float = 5.0, n: int = 50, serve: bool = False,
                 image_size: int | None = None) -> CheckResult:
    """Measure the run's policy here (see the module docstring).

    Raises:
        CheckpointError / ServeError: as `bdv2 serve` would.
    """
    import jax

    from . import protocol
    from .server import build

    server = build(run_path, ServeOptions(host="127.0.0.1", port=0), image_size=image_size)
    policy, spec = server.policy, server.spec
    first = server.warm_up() * 1e3
    requests = [protocol.example_request(spec, seed=i) for i in range(n)]
    session = policy.episode()
    times = []
    for req in requests:
        parsed = protocol.parse_request(wire.packb(req), spec)
        t0 = time.perf_counter()
        session.act(parsed.observation, parsed.goal, parsed.language)
        times.append((time.perf_counter() - t0) * 1e3)
    act_ms = percentiles(times)
    serve_ms = _loopback_ms(server, requests) if serve else None
    chunk = policy.act_pred_horizon or 1
    worst = max(act_ms["p95"], serve_ms["p95"] if serve_ms else 0.0)
    ok, text = verdict(worst, hz, chunk)
    dev = jax.devices()[0]
    algo = str(policy.run.algo)
    return CheckResult(policy.run.name, algo, f"{dev.platform}: {dev.device_kind}", hz, spec.image_size, chunk,
                       policy.run.settings.diffusion_steps if algo == "gc_ddpm_bc" else None, first, act_ms,
                       serve_ms, ok, text)


def render_text(r: CheckResult) -> list[str]:
    """The lines `bdv2 policy check` prints."""
    def line(name: str, p: dict[str, float]) -> str:
        return (f"  {name:<22} p50 {p['p50']:8.1f} ms   p95 {p['p95']:8.1f} ms   p99 {p['p99']:8.1f} ms   "
                f"(n={p['n']:.0f})")

    what = f"act() ({r.diffusion_steps}-step reverse diffusion)" if r.diffusion_steps else "act()"
    out = [f"{r.run} ({r.algo}) on {r.device}, {r.image_size}x{r.image_size} images, {r.chunk} action(s) per call",
           f"  {'first call (compile)':<22} {r.first_call_ms:8.1f} ms", line(what, r.act_ms)]
    if r.serve_ms:
        out.append(line("through the server", r.serve_ms))
    out.append(("OK: " if r.keeps_up else "SLOW: ") + r.verdict)
    return out
