"""`bdv2 serve` against the real openpi-client from the package index, as a robot would use it: in a virtual
environment of its own without jax (openpi-client 0.1.2 plus typing_extensions, which it imports but does not
declare), talking to a `bdv2 serve` process on loopback that serves a run trained here.

Checked: the actions equal load_policy().act() for the same observations; bad requests are refused with a
message and the server keeps serving; 200 requests from 4 concurrent clients are all answered, each with the
actions of its own observation history; Ctrl-C stops the server with one log line per connection and a summary.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import threading
import venv
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bdv2.trainer import config, loop
from bdv2.trainer.policy import load_policy

from . import helpers

pytestmark = pytest.mark.slow
pytest.importorskip("websockets", reason="the [serve] extra (websockets) is not installed")
S = helpers.IM
CLIENT = r'''
import json, sys, threading
import numpy as np
from openpi_client.websocket_client_policy import WebsocketClientPolicy

mode, port, data, out = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
reqs = dict(np.load(data))  # image [C, N, S, S, 3], proprio [C, N, 7], goal_image [C, S, S, 3]
result = {}

def request(c, i):
    r = {"image": reqs["image"][c, i], "proprio": reqs["proprio"][c, i], "goal_image": reqs["goal_image"][c]}
    return {**r, "reset": True} if i == 0 else r

def stream(c, n, actions, steps):
    client = WebsocketClientPolicy("127.0.0.1", port)
    for i in range(n):
        reply = client.infer(request(c, i))
        actions[c, i], steps[c, i] = reply["actions"], reply["step"]
    return client

if mode == "stream":  # clients one after another, or all at once
    C, N = reqs["image"].shape[:2]
    actions, steps = np.full((C, N, 3, 7), np.nan, np.float32), np.full((C, N), -1)
    threads = [threading.Thread(target=stream, args=(c, N, actions, steps)) for c in range(C)]
    [t.start() for t in threads] if sys.argv[5] == "concurrent" else None
    [(t.start() if sys.argv[5] != "concurrent" else None, t.join()) for t in threads]
    np.savez(out, actions=actions, steps=steps)
    meta = WebsocketClientPolicy("127.0.0.1", port).get_server_metadata()
    json.dump(meta, open(out + ".json", "w"), default=str)
elif mode == "bad":
    client = WebsocketClientPolicy("127.0.0.1", port)
    good = request(0, 0)
    errors = []
    for bad in ({"image": good["image"]},                                            # missing keys
                {**good, "prompt": "pick"},                                          # unknown key
                {**good, "image": good["image"].astype(np.float32)},                 # wrong dtype
                {**good, "proprio": good["proprio"][:3]},                            # wrong shape
                {**good, "image": np.zeros((2 * good["image"].shape[0],) * 2 + (3,), np.uint8)}):  # wrong size
        try:
            client.infer(bad)
            errors.append(None)
        except RuntimeError as e:
            errors.append(str(e))
    client._ws.send(b"\xc1\xc1 not msgpack")                                          # garbage bytes
    errors.append(client._ws.recv())
    result["errors"] = errors
    result["after"] = client.infer(good)["actions"].tolist()                         # the same connection goes on
    # A client that sends a request and disconnects before the answer.
    from websockets.sync.client import connect
    from openpi_client import msgpack_numpy
    ws = connect(f"ws://127.0.0.1:{port}", max_size=None)
    ws.recv()
    ws.send(msgpack_numpy.packb(good))
    ws.close()
    result["fresh"] = WebsocketClientPolicy("127.0.0.1", port).infer(good)["actions"].tolist()
    json.dump(result, open(out, "w"))
'''


@pytest.fixture(scope="session")
def openpi_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A venv with openpi-client 0.1.2 from the package index and nothing of bdv2's stack."""
    root = tmp_path_factory.mktemp("openpi_client_venv")
    venv.create(root, with_pip=True)
    python = root / "bin" / "python"
    pip = subprocess.run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                          "openpi-client==0.1.2", "typing_extensions"], capture_output=True, text=True, timeout=900)
    if pip.returncode:
        pytest.skip(f"cannot install openpi-client from the package index: {pip.stderr[-500:]}")
    probe = subprocess.run([str(python), "-c", "import importlib.util as u; print(u.find_spec('jax') is None)"],
                           capture_output=True, text=True, check=True)
    assert probe.stdout.strip() == "True", "the robot-side venv must not have jax"
    return python


@pytest.fixture(scope="module")
def trained_run(tfdata: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("served")
    g = helpers.base_global(tfdata, tmp / "runs", num_steps=2, save_interval=2, eval_interval=2, log_interval=1,
                            augment=False, use_proprio=True, obs_horizon=2, act_pred_horizon=3)
    y = helpers.write_yaml(tmp / "m.yaml", {"global": g, "matrix": {"algos": ["gc_bc"], "tasks": ["kitchen"]}})
    run = config.load(y).runs[0]
    loop.train_and_evaluate(run)
    return run.workdir


class Server:
    def __init__(self, run: Path) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "bdv2.cli", "serve", str(run), "--port", "0"],
                                     stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.lines: list[str] = []
        self.up = threading.Event()
        self.port = 0
        threading.Thread(target=self._read, daemon=True).start()
        if not self.up.wait(300) or not self.port:
            self.proc.kill()
            raise AssertionError("bdv2 serve did not start:\n" + "".join(self.lines))

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line)
            found = re.search(r"on ws://127\.0\.0\.1:(\d+)", line)
            if found:
                self.port = int(found.group(1))
                self.up.set()
        self.up.set()


@pytest.fixture(scope="module")
def server(trained_run: Path) -> Iterator[Server]:
    srv = Server(trained_run)
    yield srv
    if srv.proc.poll() is None:
        srv.proc.kill()
        srv.proc.wait()


def requests(clients: int, n: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(clients * 1000 + n)
    return {"image": rng.integers(0, 256, (clients, n, S, S, 3), dtype=np.uint8),
            "proprio": rng.normal(size=(clients, n, 7)).astype(np.float32),
            "goal_image": rng.integers(0, 256, (clients, S, S, 3), dtype=np.uint8)}


def expected(run: Path, reqs: dict[str, np.ndarray]) -> np.ndarray:
    """What load_policy().act() returns for each client's stream, one fresh episode per client."""
    policy = load_policy(run)
    out = np.zeros((*reqs["image"].shape[:2], 3, 7), np.float32)
    for c in range(len(reqs["image"])):
        episode = policy.episode()
        for i in range(reqs["image"].shape[1]):
            out[c, i] = episode.act({"image": reqs["image"][c, i], "proprio": reqs["proprio"][c, i]},
                                    {"image": reqs["goal_image"][c]})
    return out


def client(python: Path, tmp: Path, mode: str, port: int, reqs: dict[str, np.ndarray], *extra: str) -> Any:
    script, data, out = tmp / "client.py", tmp / f"{mode}.npz", tmp / f"{mode}_out"
    script.write_text(CLIENT)
    np.savez(data, **reqs)
    done = subprocess.run([str(python), str(script), mode, str(port), str(data), str(out), *extra],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    if mode == "bad":
        return json.loads(out.read_text())
    return dict(np.load(f"{out}.npz")), json.loads(Path(f"{out}.json").read_text())


def test_actions_equal_load_policy(openpi_python: Path, server: Server, trained_run: Path, tmp_path: Path) -> None:
    reqs = requests(1, 6)
    got, meta = client(openpi_python, tmp_path, "stream", server.port, reqs, "sequential")
    np.testing.assert_allclose(got["actions"], expected(trained_run, reqs), rtol=1e-5, atol=1e-6)
    assert got["steps"].tolist() == [list(range(6))]
    assert meta["required"] == ["image", "proprio", "goal_image"]
    assert meta["request"]["image"]["shape"] == [S, S, 3] and meta["image_resize"] == "refuse"
    assert meta["reply"]["actions"]["shape"] == [3, 7] and meta["deterministic"] is True
    assert meta["action"]["normalised"] is False and meta["action"]["gripper"]["range"] == "[0, 1]"


def test_bad_requests_get_errors_and_the_server_stays_up(openpi_python: Path, server: Server,
                                                         trained_run: Path, tmp_path: Path) -> None:
    reqs = requests(1, 1)
    res = client(openpi_python, tmp_path, "bad", server.port, reqs)
    errors = res["errors"]
    assert all(e is not None for e in errors), errors
    for e, words in zip(errors, ["missing key(s) ['proprio', 'goal_image']", "unknown key(s) ['prompt']",
                                 "'image' must be uint8", "'proprio' must have shape [7]", "does not resize",
                                 "not a msgpack message"], strict=True):
        assert words in e, (words, e)
    want = expected(trained_run, {k: v[:, :1] if k != "goal_image" else v for k, v in reqs.items()})[0, 0]
    np.testing.assert_allclose(res["after"], want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(res["fresh"], want, rtol=1e-5, atol=1e-6)
    assert server.proc.poll() is None


def test_200_requests_from_4_concurrent_clients(openpi_python: Path, server: Server, trained_run: Path,
                                                tmp_path: Path) -> None:
    reqs = requests(4, 50)
    got, _ = client(openpi_python, tmp_path, "stream", server.port, reqs, "concurrent")
    assert not np.isnan(got["actions"]).any(), "a request went unanswered"
    assert (got["steps"] == np.arange(50)[None]).all()
    # Each client's answers are those of its own observation history (nothing lost, nothing swapped).
    np.testing.assert_allclose(got["actions"], expected(trained_run, reqs), rtol=1e-5, atol=1e-6)


def test_the_example_client_needs_no_jax(openpi_python: Path, server: Server) -> None:
    example = Path(__file__).resolve().parents[2] / "trainer" / "serve" / "example_client.py"
    done = subprocess.run([str(openpi_python), str(example), f"ws://127.0.0.1:{server.port}"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith("gc_bc_kitchen ") and "infer_ms" in done.stdout


def test_ctrl_c_stops_cleanly_with_a_line_per_connection(openpi_python: Path, server: Server) -> None:
    server.proc.send_signal(signal.SIGINT)
    assert server.proc.wait(timeout=120) == 0
    text = "".join(server.lines)
    conns = re.findall(r"connection 127\.0\.0\.1:\d+: (\d+) answered, (\d+) refused", text)
    # stream 1 + its metadata probe, bad 3, concurrent 4 + probe, the example client 1: a line each.
    assert len(conns) == 11, text
    summary = re.search(r"stopped: 11 connection\(s\), (\d+) requests answered, (\d+) refused", text)
    assert summary, text
    assert int(summary.group(1)) == sum(int(a) for a, _ in conns) and int(summary.group(2)) == 6
