"""The policy server: one loaded, compiled policy behind a WebSocket, openpi's protocol (protocol.py).

Each connection is an episode stream of its own (its own observation history and action chunk); the
policy's parameters and compiled function are shared, and one worker thread runs every forward pass, so the
policy answers one request at a time whatever the number of clients. The event loop keeps accepting,
decoding and refusing bad requests meanwhile.

Library only: `serve_forever` is what `bdv2 serve` calls; `running` starts the same server in a thread (for
`bdv2 policy check --serve`, the bench and tests). Neither installs signal handlers: the caller owns the
process (`bdv2 serve` turns Ctrl-C and SIGTERM into the stop event).
"""

from __future__ import annotations

import asyncio
import contextlib
import http
import logging
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import protocol, wire
from .protocol import Request, RequestError, RequestSpec

log = logging.getLogger("bdv2.serve")
LOOPBACK = ("127.0.0.1", "::1", "localhost")
MAX_MESSAGE = 16 * 2**20
"""The largest request frame accepted (bytes): two 1024x1024 RGB images fit; more is refused, not buffered."""


@dataclass(frozen=True)
class ServeOptions:
    host: str = "127.0.0.1"
    port: int = 8000
    sample: bool = False
    """Draw actions (a new seed per request) instead of the deterministic answer."""
    seed: int = 0
    """The seed of every deterministic request (gc_ddpm_bc's reverse diffusion)."""


def percentiles(ms: list[float]) -> dict[str, float]:
    """p50/p95/p99/max of a list of milliseconds (empty: {})."""
    if not ms:
        return {}
    a = np.asarray(ms)
    return {"n": len(ms), "p50": float(np.percentile(a, 50)), "p95": float(np.percentile(a, 95)),
            "p99": float(np.percentile(a, 99)), "max": float(a.max())}


@dataclass
class Stats:
    """What the server did, for the summary at shutdown."""

    infer_ms: list[float] = field(default_factory=list)
    total_ms: list[float] = field(default_factory=list)
    connections: int = 0
    errors: int = 0

    def summary(self) -> str:
        inf, tot = percentiles(self.infer_ms), percentiles(self.total_ms)
        if not inf:
            return f"{self.connections} connection(s), no requests answered, {self.errors} refused"
        return (f"{self.connections} connection(s), {inf['n']} requests answered, {self.errors} refused; "
                f"policy p50 {inf['p50']:.1f} ms, p95 {inf['p95']:.1f} ms, p99 {inf['p99']:.1f} ms; "
                f"server p50 {tot['p50']:.1f} ms, p99 {tot['p99']:.1f} ms")


def connect_metadata(policy: Any, spec: RequestSpec, options: ServeOptions, contract: dict[str, Any]) -> dict[str, Any]:
    """The map sent to every client on connect: what to send, what comes back, and in which units."""
    from bdv2 import __version__

    k = 1 if policy.execute else (policy.act_pred_horizon or 1)
    return {
        "server": "bdv2", "version": __version__, "run": policy.run.name, "algo": str(policy.run.algo),
        "request": spec.describe(), "required": list(spec.required), "image_resize": "refuse",
        "reply": {"actions": {"dtype": "float32", "shape": [k, 7]}, "step": "int", "replanned": "bool",
                  "server_timing": {"infer_ms": "float", "prev_total_ms": "float"}},
        "action": contract, "execute": policy.execute, "act_pred_horizon": policy.act_pred_horizon,
        "obs_horizon": policy.obs_horizon, "deterministic": not options.sample,
    }


class PolicyServer:
    """Serves one policy; see the module docstring."""

    def __init__(self, policy: Any, spec: RequestSpec, options: ServeOptions, metadata: dict[str, Any]) -> None:
        self.policy, self.spec, self.options = policy, spec, options
        self._hello = wire.packb(metadata)
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bdv2-policy")
        self._rng = np.random.default_rng()
        self.stats = Stats()

    def warm_up(self) -> float:
        """Compile the policy for the run's real shapes; seconds taken."""
        t0 = time.perf_counter()
        session = self.policy.episode()
        self._infer(session, protocol.warmup_request(self.spec), [0])
        return time.perf_counter() - t0

    def _infer(self, session: Any, req: Request, step: list[int]) -> dict[str, Any]:
        """One request on one connection's episode (runs in the worker thread)."""
        if req.reset:
            session.reset()
            step[0] = 0
        if not req.observation:
            return {"reset": True, "step": step[0]}
        seed = int(self._rng.integers(2**31)) if self.options.sample else self.options.seed
        actions = session.act(req.observation, req.goal, req.language, seed=seed,
                              deterministic=not self.options.sample)
        reply = {"actions": np.asarray(actions, np.float32).reshape(-1, 7), "step": step[0],
                 "replanned": bool(session.replanned)}
        step[0] += 1
        return reply

    async def _handler(self, ws: Any) -> None:
        peer = ":".join(str(x) for x in ws.remote_address[:2]) if ws.remote_address else "?"
        loop = asyncio.get_running_loop()
        session, step = self.policy.episode(), [0]
        answered = refused = 0
        prev_total: float | None = None
        started, how = time.monotonic(), "closed by the client"
        self.stats.connections += 1
        try:
            await ws.send(self._hello)
            async for message in ws:
                t0 = time.perf_counter()
                try:
                    req = protocol.parse_request(message, self.spec)
                    t1 = time.perf_counter()
                    reply = await loop.run_in_executor(self._worker, self._infer, session, req, step)
                    infer = time.perf_counter() - t1
                except RequestError as e:
                    refused += 1
                    self.stats.errors += 1
                    await ws.send(f"bad request: {e}")
                    continue
                except Exception as e:  # the policy itself failed on a well-formed request: say so, keep serving
                    refused += 1
                    self.stats.errors += 1
                    log.exception("%s: the policy failed", peer)
                    await ws.send(f"policy error: {type(e).__name__}: {e}")
                    continue
                reply["server_timing"] = {"infer_ms": infer * 1e3,
                                          **({"prev_total_ms": prev_total * 1e3} if prev_total is not None else {})}
                await ws.send(wire.packb(reply))
                answered += 1
                prev_total = time.perf_counter() - t0
                if "actions" in reply:
                    self.stats.infer_ms.append(infer * 1e3)
                    self.stats.total_ms.append(prev_total * 1e3)
        except Exception as e:  # websockets.ConnectionClosed and friends: the client went away mid-request
            how = f"dropped ({type(e).__name__}: {e})"
        finally:
            log.info("connection %s: %d answered, %d refused, %.1f s, %s", peer, answered, refused,
                     time.monotonic() - started, how)

    def _health(self, connection: Any, request: Any) -> Any:
        if request.path == "/healthz":  # as openpi's server: a plain HTTP probe for orchestration
            return connection.respond(http.HTTPStatus.OK, "OK\n")
        return None

    async def serve(self, stop: asyncio.Event, ready: Callable[[int], None] | None = None) -> None:
        """Accept connections until ``stop`` is set; ``ready(port)`` once listening."""
        from websockets.asyncio.server import serve

        async with serve(self._handler, self.options.host, self.options.port, compression=None,
                         max_size=MAX_MESSAGE, process_request=self._health) as server:
            port = next(iter(server.sockets)).getsockname()[1]
            if ready is not None:
                ready(port)
            await stop.wait()
            server.close(close_connections=True)
            await server.wait_closed()
        self._worker.shutdown(wait=True)


def build(run_path: Any, options: ServeOptions, execute: str | None = None,
          image_size: int | None = None) -> PolicyServer:
    """Load the run's policy and describe it (compiling is `warm_up`'s job).

    Raises:
        CheckpointError / ExecuteError / ServeError: as load_policy, parse_execute and image_size_of.
    """
    from ..policy import load_policy
    from .contract import action_contract, image_size_of

    policy = load_policy(run_path, execute=execute)
    spec = RequestSpec.of(policy, image_size or image_size_of(policy.run))
    return PolicyServer(policy, spec, options, connect_metadata(policy, spec, options, action_contract(policy)))


@contextlib.contextmanager
def running(server: PolicyServer) -> Iterator[int]:
    """The server on a thread of its own event loop; yields its port and stops it on exit."""
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    port: list[int] = []
    failed: list[BaseException] = []
    up = threading.Event()

    def ready(p: int) -> None:
        port.append(p)
        up.set()

    def main() -> None:
        try:
            loop.run_until_complete(server.serve(stop, ready))
        except BaseException as e:  # handed to the caller below (a taken port, an address not ours)
            failed.append(e)
        finally:
            up.set()

    thread = threading.Thread(target=main, name="bdv2-serve", daemon=True)
    thread.start()
    up.wait()
    if not port:
        thread.join()
        loop.close()
        raise RuntimeError(f"the server did not start on {server.options.host}:{server.options.port}: "
                           f"{failed[0] if failed else 'no reason given'}") from (failed[0] if failed else None)
    try:
        yield port[0]
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join()
        loop.close()
