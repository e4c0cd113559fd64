"""The policy server in this process, on loopback, with a plain websockets client: chunk execution through the
server, reset, determinism and --sample, the policy failing on a well-formed request, and the log lines."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bdv2.trainer.policy import load_policy

from .test_policy import _obs, written_run

pytest.importorskip("websockets", reason="the [serve] extra (websockets) is not installed")


def _exchange(port: int, requests: list[dict[str, Any] | bytes]) -> tuple[dict[str, Any], list[Any]]:
    from websockets.sync.client import connect

    from bdv2.trainer.serve import packb, unpackb

    with connect(f"ws://127.0.0.1:{port}", max_size=None) as ws:
        meta = unpackb(ws.recv())  # type: ignore[arg-type]
        out = []
        for req in requests:
            ws.send(req if isinstance(req, bytes) else packb(req))
            reply = ws.recv()
            out.append(reply if isinstance(reply, str) else unpackb(reply))
    return meta, out


def _request(seed: int) -> dict[str, Any]:
    o = _obs(seed=seed)
    return {"image": o["image"], "goal_image": _obs(seed=99)["image"]}


def test_execute_through_the_server(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from bdv2.trainer.serve import ServeOptions, build, running

    run = written_run(tmp_path, "gc_bc", act_pred_horizon=3)
    server = build(run, ServeOptions(port=0), execute="receding:2", image_size=16)
    server.warm_up()
    reqs = [_request(s) for s in range(4)]
    with caplog.at_level(logging.INFO, logger="bdv2.serve"), running(server) as port:
        meta, replies = _exchange(port, [*reqs, {"reset": True}, reqs[3]])
    assert meta["execute"] == "receding:2" and meta["reply"]["actions"]["shape"] == [1, 7]
    local = load_policy(run, execute="receding:2")
    goal = {"image": reqs[0]["goal_image"]}
    for req, reply in zip(reqs, replies, strict=False):
        want = local.act({"image": req["image"]}, goal)
        assert reply["actions"].shape == (1, 7) and reply["replanned"] == local.replanned
        np.testing.assert_allclose(reply["actions"][0], want, atol=1e-6)
    assert [r["step"] for r in replies[:4]] == [0, 1, 2, 3]
    assert [r["replanned"] for r in replies[:4]] == [True, False, True, False]
    assert replies[4] == {"reset": True, "step": 0, "server_timing": replies[4]["server_timing"]}
    assert replies[5]["step"] == 0 and replies[5]["replanned"]  # the reset dropped the half-used chunk
    assert "prev_total_ms" in replies[1]["server_timing"] and replies[0]["server_timing"]["infer_ms"] > 0
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("connection ")]
    assert len(lines) == 1 and "6 answered, 0 refused" in lines[0] and "closed by the client" in lines[0]
    assert "5 requests answered" in server.stats.summary()


def test_deterministic_by_default_and_sample_draws(tmp_path: Path) -> None:
    from bdv2.trainer.serve import ServeOptions, build, running

    run = written_run(tmp_path, "gc_ddpm_bc", obs_horizon=1, act_pred_horizon=2, diffusion_steps=3)
    req = {**_request(0), "reset": True}
    first: dict[bool, np.ndarray] = {}
    for sample in (False, True):
        server = build(run, ServeOptions(port=0, sample=sample), image_size=16)
        with running(server) as port:
            meta, (a, b) = _exchange(port, [req, req])
        assert meta["deterministic"] is (not sample)
        assert np.array_equal(a["actions"], b["actions"]) is (not sample)
        first[sample] = a["actions"]
    # Deterministic: the reverse diffusion from seed 0, as load_policy().act() draws it.
    want = load_policy(run).act({"image": req["image"]}, {"image": req["goal_image"]}, seed=0)
    np.testing.assert_allclose(first[False], want, atol=1e-6)


def test_a_policy_failure_is_answered_and_the_connection_goes_on(tmp_path: Path) -> None:
    from bdv2.trainer.serve import ServeOptions, build, running

    server = build(written_run(tmp_path, "bc"), ServeOptions(port=0), image_size=16)

    class Broken:
        calls = 0

        def __init__(self, inner: Any) -> None:
            self.inner, self.replanned = inner, True

        def reset(self) -> None:
            self.inner.reset()

        def act(self, *args: Any, **kw: Any) -> Any:
            Broken.calls += 1
            if Broken.calls == 1:
                raise FloatingPointError("the first call fails")
            return self.inner.act(*args, **kw)

    inner_episode = server.policy.episode
    server.policy.episode = lambda: Broken(inner_episode())  # type: ignore[method-assign]
    with running(server) as port:
        _, (first, second) = _exchange(port, [{"image": _obs()["image"]}] * 2)
    assert first == "policy error: FloatingPointError: the first call fails"
    assert second["actions"].shape == (1, 7)
