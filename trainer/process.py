"""The processes of a run: what a training process sets up around the pure loop (stop signals, the tie to its
launcher, the compilation cache; the worker's ``main`` calls these, and the loop only polls the `StopRequest` it
is given), and the launcher's `Forwarder`, which passes its stop signals on to its children.

Stop signals (SIGTERM, SIGINT, SIGUSR1; the last is what ``sbatch --signal=USR1@120`` sends before the hard
kill): the first one asks the loop to finish its step, save a checkpoint and return; the worker then exits
with PREEMPTED_EXIT, which the launcher reports as "preempted at step N, checkpoint saved". A second SIGINT
(Ctrl-C twice) ends the process at once, by the default action of SIGINT; an interrupted orbax write leaves
only a temporary directory, never a checkpoint under a step's name.

Several hosts (jax.distributed): every host must save the same step, so the request goes through the
coordination service's preemption sync point (orbax's ``reached_preemption``, which calls
jax.experimental.multihost_utils.reached_preemption_sync_point): a notice on any host reaches every host, and
all of them stop after the same step. That service listens for SIGTERM itself (it installs its own handler
when jax.distributed starts), so here SIGINT and SIGUSR1 are turned into a SIGTERM to this process and
SIGTERM is left to it.

Stdlib only at import: the launcher uses PREEMPTED_EXIT and the signal names.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1)
PREEMPTED_EXIT = 75
"""The worker's exit code after a stop signal, once its checkpoint is saved (EX_TEMPFAIL in sysexits.h:
a temporary failure; running the same command again continues)."""
PARENT_ENV = "BDV2_PARENT_PID"
"""The launcher's pid, set in each child's environment: the child stops (and saves) when its launcher dies."""
CACHE_DIR = "jax_cache"
"""The persistent compilation cache, in save_dir: shared by the runs of a config and by their restarts."""
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


class StopRequest:
    """A stop signal's arrival, as the loop sees it: call it with the step just finished.

    One host: the signal's name once a stop signal arrived. Several hosts: the same, at the step the
    preemption sync point chose, on every host at once.
    """

    def __init__(self, distributed: bool = False) -> None:
        self.distributed = distributed
        self.signal: int | None = None
        self.interrupts = 0

    def __call__(self, step: int) -> str | None:
        """The reason to stop after ``step`` (the signal's name), or None to go on."""
        if self.distributed:
            from orbax.checkpoint import multihost

            return self.name if multihost.reached_preemption(step) else None
        return self.name if self.signal is not None else None

    @property
    def name(self) -> str:
        """The signal that asked to stop (on several hosts, a host that did not receive it says so)."""
        if self.signal is None:
            return "a preemption notice (SIGTERM, here or on another host)"
        return signal.Signals(self.signal).name

    def handle(self, signum: int, frame: FrameType | None = None) -> None:
        """The signal handler: remember the signal; a second SIGINT ends the process now."""
        if signum == signal.SIGINT:
            self.interrupts += 1
            if self.interrupts > 1:
                print("second interrupt: stopping now, without a checkpoint", file=sys.stderr, flush=True)
                signal.signal(signal.SIGINT, signal.SIG_DFL)
                os.kill(os.getpid(), signal.SIGINT)
                return
        if self.signal is None:
            self.signal = signum
            print(f"{signal.Signals(signum).name} received: finishing this step, then saving a checkpoint "
                  "(Ctrl-C again to stop at once)", flush=True)
        if self.distributed and signum != signal.SIGTERM:
            os.kill(os.getpid(), signal.SIGTERM)  # to the coordination service's notifier, which tells every host


def install_stop_handlers(distributed: bool = False) -> StopRequest:
    """Handlers for STOP_SIGNALS feeding one StopRequest (main thread only). With ``distributed``, call it after
    jax.distributed.initialize: SIGTERM stays with the preemption notifier that initialize installed."""
    request = StopRequest(distributed)
    for sig in STOP_SIGNALS:
        if not (distributed and sig == signal.SIGTERM):
            signal.signal(sig, request.handle)
    return request


def die_with_parent(environ: Mapping[str, str] | None = None) -> None:
    """Send this process SIGTERM (a stop with a checkpoint) when the launcher named in PARENT_ENV dies.

    Linux: the kernel's parent-death signal (prctl PR_SET_PDEATHSIG, https://man7.org/linux/man-pages/man2/prctl.2.html),
    then a check that the parent did not die before it was set. Elsewhere: a thread that polls the parent pid.
    """
    env = os.environ if environ is None else environ
    parent = env.get(PARENT_ENV, "")
    if not parent.isdigit():
        return
    pid = int(parent)
    if sys.platform.startswith("linux"):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) == 0:
            if os.getppid() != pid:
                os.kill(os.getpid(), signal.SIGTERM)
            return

    def watch() -> None:
        while os.getppid() == pid:
            threading.Event().wait(1.0)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="bdv2-parent-watch", daemon=True).start()


@dataclass
class CompilationCache:
    """Where the persistent compilation cache is, and how many programs this process loaded from it (hits)
    or had to compile (misses), counted from jax.monitoring's events."""

    directory: str
    loaded: int = 0
    compiled: int = 0

    def count(self, event: str, **kwargs: Any) -> None:
        if event == "/jax/compilation_cache/cache_hits":
            self.loaded += 1
        elif event == "/jax/compilation_cache/cache_misses":
            self.compiled += 1

    def describe(self) -> str:
        return f"compilation cache {self.directory}: {self.loaded} program(s) loaded, {self.compiled} compiled"


def enable_compilation_cache(save_dir: str | Path, environ: Mapping[str, str] | None = None) -> CompilationCache:
    """jax's persistent compilation cache in ``<save_dir>/jax_cache`` (for a URL save_dir, in its local side on
    this machine, bdv2.paths.local_shadow: every lookup would otherwise be a round trip), unless the user set one
    (JAX_COMPILATION_CACHE_DIR). A restarted or requeued run then loads its compiled steps instead of compiling
    them again (https://docs.jax.dev/en/latest/persistent_compilation_cache.html); jax stores only programs
    that took at least jax_persistent_cache_min_compile_time_secs (1 s by default) to compile.
    """
    env = os.environ if environ is None else environ
    import jax

    from bdv2.paths import local_shadow
    from bdv2.storage import remote_scheme

    local = Path(save_dir) if remote_scheme(str(save_dir)) is None else local_shadow(str(save_dir))
    cache = CompilationCache(env.get("JAX_COMPILATION_CACHE_DIR") or str(local / CACHE_DIR))
    jax.config.update("jax_compilation_cache_dir", cache.directory)
    jax.monitoring.register_event_listener(cache.count)
    return cache


def exit_code(status: Any) -> int:
    """The worker's exit code for a run's final status (status.RunStatus)."""
    return PREEMPTED_EXIT if str(status) == "preempted" else 0



class Forwarder:
    """The launcher's side: stop signals it receives are passed on to its children, once per signal received.

    The children run in sessions of their own, so a terminal's Ctrl-C (sent to the launcher's process group)
    reaches them only through here, once; a second Ctrl-C is then a second SIGINT for them too (stop at once).
    Used as a context manager in the main thread (elsewhere it installs nothing and forwards nothing).
    """

    def __init__(self) -> None:
        self.received: list[int] = []
        self.children: list[Any] = []
        """subprocess.Popen objects of the running children."""
        self._old: dict[int, Any] = {}

    def __enter__(self) -> Forwarder:
        if threading.current_thread() is threading.main_thread():
            self._old = {sig: signal.signal(sig, self.handle) for sig in STOP_SIGNALS}
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)
        self._old = {}

    def handle(self, signum: int, frame: FrameType | None = None) -> None:
        self.received.append(signum)
        for child in self.children:
            if child.returncode is None:  # not reaped yet, so its pid is still its own
                with contextlib.suppress(ProcessLookupError):
                    os.kill(child.pid, signum)

    @property
    def name(self) -> str:
        """The first signal received ("" when none)."""
        return signal.Signals(self.received[0]).name if self.received else ""

    @property
    def interrupts(self) -> int:
        return self.received.count(signal.SIGINT)
