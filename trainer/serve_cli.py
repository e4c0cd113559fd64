"""`bdv2 serve` and `bdv2 policy check`: a trained run behind openpi's WebSocket protocol, and whether it keeps
up with a robot (trainer/serve/).

Importing this module imports click and the stdlib only (neither jax, TensorFlow nor numpy); each command
checks for its extras before importing the library. `serve` is where the process is set up: logging to
stderr, Ctrl-C and SIGTERM turned into a clean stop.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import sys
from pathlib import Path
from typing import Any

import click

from bdv2.console import quiet_native_logs, require_extra, verbose_option

from .cli import TRAIN_MODULES, extra_distributions
from .errors import TrainerError

SERVE_MODULES = ("websockets", "msgpack")
"""Top-level modules of the [serve] extra."""

SERVE_EXAMPLES = """
\b
Examples:
  bdv2 serve runs/gc_bc_kitchen                           ws://127.0.0.1:8000, the chunk as predicted
  bdv2 serve runs/gc_bc_kitchen --execute receding:2      one action per request, re-planning every 2 steps
  bdv2 serve runs/gc_ddpm_bc_all --port 9000 --sample     draw actions instead of the deterministic answer
  bdv2 serve runs/bc_all --host 0.0.0.0 --allow-remote    reachable from other machines (no authentication!)
\b
Clients: openpi_client.websocket_client_policy.WebsocketClientPolicy("127.0.0.1", 8000).infer(obs), or
msgpack + websockets alone (python -m bdv2.trainer.serve.example_client). The request and reply keys are in
the README; the connect metadata lists the ones this run takes. Ctrl-C stops the server and prints a
latency summary.
"""

CHECK_EXAMPLES = """
\b
Examples:
  bdv2 policy check runs/gc_bc_kitchen                    first call, act() p50/p95/p99, verdict at 5 Hz
  bdv2 policy check runs/gc_ddpm_bc_all --hz 10 --serve   also through the server on loopback
  bdv2 policy check runs/bc_all --json                    for scripts
\b
Exit codes: 0 keeps up, 1 too slow (or the run cannot be loaded), 2 usage error.
"""


def _errors() -> tuple[type[Exception], ...]:
    from .ckpt_tree import CheckpointError
    from .execute import ExecuteError
    from .serve import ServeError

    return TrainerError, CheckpointError, ExecuteError, ServeError


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@click.command("serve", epilog=SERVE_EXAMPLES, context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("run", type=click.Path(path_type=Path, file_okay=False, exists=True))
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True, help="0: any free port.")
@click.option("--allow-remote", is_flag=True, help="Allow a --host that is not loopback (the server has no "
                                                    "authentication: anyone who reaches it can drive the policy).")
@click.option("--execute", default=None, metavar="STRATEGY",
              help="Return one action per request from the chunk: all, receding:N, ensemble:W[:M] "
                   "(default: the whole chunk every request).")
@click.option("--sample", is_flag=True, help="Draw actions (a new seed per request); default: deterministic.")
@click.option("--seed", type=int, default=0, show_default=True, help="The seed of deterministic requests.")
@click.option("--image-size", type=click.IntRange(min=1), default=None, metavar="S",
              help="The image side the run takes (default: read from the run's training data).")
@verbose_option
def serve(run: Path, host: str, port: int, allow_remote: bool, execute: str | None, sample: bool, seed: int,
          image_size: int | None, verbose: bool) -> None:
    """Serve RUN's policy over WebSocket + msgpack, the protocol of openpi's policy server and client."""
    if not _loopback(host) and not allow_remote:
        raise click.UsageError(f"--host {host} is not a loopback address: add --allow-remote to serve other "
                               "machines (there is no authentication)")
    require_extra("bdv2 serve", "train", TRAIN_MODULES, extra_distributions)
    require_extra("bdv2 serve", "serve", SERVE_MODULES, extra_distributions)
    quiet_native_logs(verbose=verbose)
    log = logging.getLogger("bdv2.serve")  # our lines only: orbax and absl log their own at INFO
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%Y-%m-%d %H:%M:%S"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False
    if verbose:
        logging.getLogger("websockets").addHandler(handler)
        logging.getLogger("websockets").setLevel(logging.DEBUG)
    from . import data as pipeline
    from .serve import ServeOptions, build

    pipeline.hide_gpus_from_tf()
    try:
        server = build(run, ServeOptions(host, port, sample, seed), execute=execute, image_size=image_size)
    except _errors() as e:
        raise click.ClickException(str(e)) from e
    compile_s = server.warm_up()
    sys.exit(_serve_until_stopped(server, compile_s, log))


def _serve_until_stopped(server: Any, compile_s: float, log: logging.Logger) -> int:
    import asyncio
    import signal

    def ready(port: int) -> None:
        spec = server.spec
        log.info("serving %s (%s) on ws://%s:%d; compiled in %.1f s; request keys %s, %dx%d images, %s",
                 server.policy.run.name, server.policy.run.algo, server.options.host, port, compile_s,
                 list(spec.required), spec.image_size, spec.image_size,
                 f"execute {server.policy.execute}" if server.policy.execute else "the whole chunk per request")

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await server.serve(stop, ready)

    try:
        asyncio.run(main())
    except OSError as e:  # the port is taken, the address is not ours
        log.error("cannot listen on %s:%d: %s", server.options.host, server.options.port, e)
        return 1
    log.info("stopped: %s", server.stats.summary())
    return 0


@click.group("policy", context_settings={"help_option_names": ["-h", "--help"]})
def policy() -> None:
    """A trained run as a robot's policy."""


@policy.command("check", epilog=CHECK_EXAMPLES, context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("run", type=click.Path(path_type=Path, file_okay=False, exists=True))
@click.option("--hz", type=click.FloatRange(min=0, min_open=True), default=5.0, show_default=True,
              help="The control rate (BridgeData V2 was collected at 5 Hz).")
@click.option("--serve", "through_server", is_flag=True, help="Also measure through the server on loopback.")
@click.option("-n", "--calls", type=click.IntRange(min=5), default=50, show_default=True, help="Timed calls.")
@click.option("--image-size", type=click.IntRange(min=1), default=None, metavar="S",
              help="The image side the run takes (default: read from the run's training data).")
@click.option("--json", "as_json", is_flag=True, help="Print the measurements and the verdict as JSON.")
@verbose_option
def check(run: Path, hz: float, through_server: bool, calls: int, image_size: int | None, as_json: bool,
          verbose: bool) -> None:
    """Measure RUN's policy on this machine's device and say whether it keeps up with --hz."""
    require_extra("bdv2 policy check", "train", TRAIN_MODULES, extra_distributions)
    if through_server:
        require_extra("bdv2 policy check --serve", "serve", SERVE_MODULES, extra_distributions)
    quiet_native_logs(verbose=verbose)
    from . import data as pipeline
    from .serve import check_policy, render_check

    pipeline.hide_gpus_from_tf()
    try:
        result = check_policy(run, hz, calls, through_server, image_size)
    except _errors() as e:
        raise click.ClickException(str(e)) from e
    if as_json:
        click.echo(json.dumps(result.to_json(), indent=2))
    else:
        for line in render_check(result):
            click.echo(line)
    sys.exit(0 if result.keeps_up else 1)
