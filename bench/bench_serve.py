"""`bdv2 serve`'s cost on this machine: p50/p99 ms of one request answered in-process (`Policy.act` on the
decoded request) and through the server on loopback (msgpack encode, WebSocket send, decode and checks,
act, reply), measured in the same run, request by request in turn, and their ratio.

    python bench/bench_serve.py [--algo gc_bc] [--encoder tiny] [--image 128] [--calls 200]

The run directory is written from freshly initialised parameters (bench_policy.write_run): a latency needs
no training. The client is a plain msgpack + websockets one, as on a robot.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from bench_policy import write_run


def main() -> None:
    from bdv2.console import quiet_native_logs

    quiet_native_logs()
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--algo", default="gc_bc", choices=["bc", "gc_bc", "gc_ddpm_bc"])
    ap.add_argument("--encoder", default="tiny")
    ap.add_argument("--image", type=int, default=128)
    ap.add_argument("--calls", type=int, default=200)
    args = ap.parse_args()

    import jax
    from websockets.sync.client import connect

    from bdv2.trainer.serve import ServeOptions, build, example_request, packb, parse_request, percentiles, running

    with tempfile.TemporaryDirectory() as tmp:
        server = build(write_run(Path(tmp), args.algo, args.encoder), ServeOptions(port=0), image_size=args.image)
    compile_s = server.warm_up()
    requests = [example_request(server.spec, seed=i) for i in range(args.calls)]

    episode, local, remote = server.policy.episode(), [], []
    with running(server) as port, connect(f"ws://127.0.0.1:{port}", compression=None, max_size=None) as ws:
        ws.recv()  # the connect metadata
        # Interleaved, request by request, so that a change in the machine's load hits both series alike.
        for req in requests:
            parsed = parse_request(packb(req), server.spec)
            t0 = time.perf_counter()
            episode.act(parsed.observation, parsed.goal, parsed.language)
            t1 = time.perf_counter()
            ws.send(packb(req))
            if isinstance(ws.recv(), str):
                raise SystemExit("the server refused a request")
            local.append((t1 - t0) * 1e3)
            remote.append((time.perf_counter() - t1) * 1e3)

    a, b = percentiles(local), percentiles(remote)
    print(f"{args.algo} {args.encoder} {args.image}px on {jax.devices()[0].platform} "
          f"({jax.devices()[0].device_kind}), {args.calls} calls, compile {compile_s:.1f} s")
    print(f"  in-process act()   p50 {a['p50']:7.2f} ms   p99 {a['p99']:7.2f} ms")
    print(f"  through the server p50 {b['p50']:7.2f} ms   p99 {b['p99']:7.2f} ms   "
          f"(ratio p50 {b['p50'] / a['p50']:.2f}, p99 {b['p99'] / a['p99']:.2f}; "
          f"+{b['p50'] - a['p50']:.2f} ms at p50)")


if __name__ == "__main__":
    main()
