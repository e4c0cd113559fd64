"""The wire format and the request checks of `bdv2 serve`, without a server: openpi-client's array layout,
and one clear refusal per kind of bad request."""

from __future__ import annotations

from typing import Any

import msgpack
import numpy as np
import pytest

from bdv2.trainer.serve import RequestError, RequestSpec, WireError, example_request, packb, parse_request, unpackb
from bdv2.trainer.serve.check import verdict

SPEC = RequestSpec(image_size=16, proprio=True, goal="goal_image", text=False)


def test_arrays_use_openpi_clients_layout() -> None:
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    raw = msgpack.unpackb(packb({"actions": a, "n": np.int64(3)}), raw=False)
    # msgpack_numpy.py of openpi-client: binary keys, raw bytes, numpy's dtype string, the shape.
    assert raw["actions"] == {b"__ndarray__": True, b"data": a.tobytes(), b"dtype": "<f4", b"shape": [2, 3]}
    assert raw["n"] == {b"__npgeneric__": True, b"data": 3, b"dtype": "<i8"}
    back = unpackb(packb({"actions": a, "n": np.int64(3), "s": "x", "none": None}))
    np.testing.assert_array_equal(back["actions"], a)
    assert back["n"] == 3 and back["n"].dtype == np.int64 and back["s"] == "x" and back["none"] is None
    f = np.asfortranarray(np.arange(6, dtype=np.uint8).reshape(2, 3))  # written in C order whatever the layout
    np.testing.assert_array_equal(unpackb(packb(f)), f)


@pytest.mark.parametrize(("data", "message"), [
    (b"\xc1", "not a msgpack message"),
    (packb({"x": 1}) + b"\x00", "not a msgpack message"),
    (msgpack.packb({b"__ndarray__": True, b"data": b"\x00" * 5, b"dtype": "<f4", b"shape": [2]}), "needs 8 bytes"),
    (msgpack.packb({b"__ndarray__": True, b"data": b"", b"dtype": "|O", b"shape": [0]}), "not accepted"),
    (msgpack.packb({b"__ndarray__": True, b"data": b"", b"dtype": "nope", b"shape": [0]}), "not a numpy dtype"),
    (msgpack.packb({b"__ndarray__": True, b"data": b"", b"dtype": "<f4", b"shape": [-1]}), "non-negative"),
])
def test_malformed_bytes_raise_wire_errors(data: bytes, message: str) -> None:
    with pytest.raises(WireError, match=message):
        unpackb(data)


def test_objects_are_not_sent() -> None:
    with pytest.raises(TypeError):
        packb({"x": np.array([object()])})


def test_a_good_request_and_a_reset_alone() -> None:
    req = parse_request(packb({**example_request(SPEC), "reset": True}), SPEC)
    assert req.reset and req.observation["image"].shape == (16, 16, 3)
    assert req.observation["proprio"].dtype == np.float32 and req.goal is not None and req.language is None
    only = parse_request(packb({"reset": True}), SPEC)
    assert only.reset and not only.observation
    proprio64 = parse_request(packb({**example_request(SPEC), "proprio": np.zeros(7)}), SPEC)
    assert proprio64.observation["proprio"].dtype == np.float32


def _bad(**change: Any) -> bytes:
    req = example_request(SPEC)
    for k, v in change.items():
        if v is None:
            req.pop(k)
        else:
            req[k] = v
    return packb(req)


@pytest.mark.parametrize(("message", "refusal"), [
    ("a text frame", "binary msgpack frame"),
    (b"\x92\x01", "not a msgpack message"),
    (packb([1, 2]), "a request is a map"),
    (packb({1: 2}), "a request is a map"),
    (_bad(prompt="hi"), r"unknown key\(s\) \['prompt'\]"),
    (_bad(goal_image=None), r"missing key\(s\) \['goal_image'\]"),
    (_bad(image=np.zeros((16, 16, 3), np.float32)), "'image' must be uint8"),
    (_bad(image=np.zeros((16, 16), np.uint8)), "one RGB image"),
    (_bad(image=np.zeros((2, 16, 16, 3), np.uint8)), "one RGB image"),
    (_bad(image=np.zeros((32, 32, 3), np.uint8)), "does not resize"),
    (_bad(goal_image=np.zeros((8, 16, 3), np.uint8)), "'goal_image' is 8x16"),
    (_bad(image=[[1, 2, 3]]), "numpy uint8 array"),
    (_bad(proprio=np.zeros(6, np.float32)), r"'proprio' must have shape \[7\]"),
    (_bad(proprio=np.zeros(7, np.int32)), "float numpy array"),
    (_bad(proprio=np.full(7, np.nan, np.float32)), "NaN"),
    (_bad(reset="yes"), "'reset' must be a boolean"),
])
def test_bad_requests_are_refused_with_a_reason(message: bytes | str, refusal: str) -> None:
    with pytest.raises(RequestError, match=refusal):
        parse_request(message, SPEC)


def test_language_requests() -> None:
    text = RequestSpec(16, False, "instruction", True)
    assert parse_request(packb(example_request(text)), text).language == "put the carrot on the plate"
    emb = RequestSpec(16, False, "instruction", False)
    assert parse_request(packb(example_request(emb)), emb).language.shape == (512,)
    with pytest.raises(RequestError, match="no text_encoder"):
        parse_request(packb({"image": np.zeros((16, 16, 3), np.uint8), "instruction": "hi"}), emb)
    assert text.describe()["instruction"] == {"dtype": "str", "shape": []}
    assert set(SPEC.describe()) == {"image", "proprio", "goal_image", "reset"}


@pytest.mark.parametrize(("p95", "hz", "chunk", "ok", "words"), [
    (50.0, 5, 1, True, "keeps up with 150 ms to spare"),
    (150.0, 5, 4, True, "ensemble:4"),
    (450.0, 5, 4, False, "execute 3 of the chunk's 4 actions per call (execute=receding:3"),
    (450.0, 5, 1, False, "act_pred_horizon >= 3"),
    (120.0, 10, 2, False, "receding:2"),
])
def test_verdict(p95: float, hz: float, chunk: int, ok: bool, words: str) -> None:
    keeps_up, text = verdict(p95, hz, chunk)
    assert keeps_up is ok and words in text
