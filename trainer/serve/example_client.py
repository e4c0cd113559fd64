"""A robot-side client of `bdv2 serve` needing only numpy, msgpack and websockets (no jax, no bdv2):
    python example_client.py [ws://127.0.0.1:8000]
openpi-client does the same: WebsocketClientPolicy("127.0.0.1", 8000).infer(request)."""

import sys
from typing import Any

import msgpack
import numpy as np
from websockets.sync.client import connect


def encode(x: Any) -> Any:  # numpy arrays in openpi-client's msgpack layout
    if isinstance(x, np.ndarray):
        return {b"__ndarray__": True, b"data": x.tobytes(), b"dtype": x.dtype.str, b"shape": list(x.shape)}
    raise TypeError(type(x))


def decode(d: dict) -> Any:
    if b"__ndarray__" in d:
        return np.frombuffer(d[b"data"], np.dtype(d[b"dtype"])).reshape(d[b"shape"])
    return d


with connect(sys.argv[1] if len(sys.argv) > 1 else "ws://127.0.0.1:8000", max_size=None) as ws:
    meta = msgpack.unpackb(ws.recv(), object_hook=decode)  # what this run takes and returns
    size = meta["request"]["image"]["shape"]
    request = {"image": np.zeros(size, np.uint8), "reset": True}
    if "proprio" in meta["request"]:
        request["proprio"] = np.zeros(7, np.float32)
    if "goal_image" in meta["request"]:
        request["goal_image"] = np.zeros(size, np.uint8)
    if "instruction" in meta["request"]:  # text, or its embedding when the run has no text encoder
        spec = meta["request"]["instruction"]
        request["instruction"] = "pick up the spoon" if spec["dtype"] == "str" else np.zeros(spec["shape"], np.float32)
    ws.send(msgpack.packb(request, default=encode))
    reply = ws.recv()
    if isinstance(reply, str):  # a text frame is the server's error message
        sys.exit(reply)
    reply = msgpack.unpackb(reply, object_hook=decode)
    print(meta["run"], meta["action"]["units"], reply["actions"], reply["server_timing"])
