"""What a request to `bdv2 serve` holds, how it is checked, and what comes back.

The transport is openpi's (https://github.com/Physical-Intelligence/openpi, src/openpi/serving/
websocket_policy_server.py and packages/openpi-client): on connect the server sends one msgpack map, the
metadata; then each binary frame from the client is one request map and each answer is one reply map. An
answer that is a text frame is an error message (openpi-client raises it as RuntimeError); the connection
stays open and the next request is served.

Request (one observation, not a batch):
    image        uint8 [S, S, 3]   the camera image, S = the run's training image size. Other sizes are
                                   refused, not resized: resize on the robot side, as the training data was
    proprio      float [7]         the robot state, when the run uses it (use_proprio)
    goal_image   uint8 [S, S, 3]   goal-conditioned runs (gc_bc, gc_ddpm_bc)
    instruction  str | float [512] language-conditioned runs (lc_bc): the text when the run has a
                                   text_encoder, else its embedding
    reset        bool (optional)   true: this observation starts a new episode (history and chunk forgotten);
                                   a request holding only {reset: true} resets and returns {reset: true}
Reply:
    actions        float32 [k, 7]  in the robot's units (un-normalised): the chunk, or [1, 7] with an
                                   execution strategy (one action per control step)
    step           int             the step of the episode this answers (0 after a reset)
    replanned      bool            whether the policy ran for this step (false: from the current chunk)
    server_timing  {infer_ms, prev_total_ms}   as openpi's server: the policy's time for this request, and
                                   the server's whole time (decode, wait, infer, encode, send) for the previous one
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import wire

LANGUAGE_DIM = 512
"""The width of an instruction embedding the trainer's networks take (checkpoint_io.example_batch)."""
IMAGE_KEYS = ("image", "goal_image")


class RequestError(ValueError):
    """A request the server refuses; its message goes back to the client."""


@dataclass(frozen=True)
class RequestSpec:
    """The keys and shapes one run takes."""

    image_size: int
    proprio: bool
    goal: str | None
    """``goal_image``, ``instruction`` or None (bc)."""
    text: bool
    """An instruction may be text (the run has a text_encoder)."""

    @classmethod
    def of(cls, policy: Any, image_size: int) -> RequestSpec:
        algo = str(policy.run.algo)
        goal = {"gc_bc": "goal_image", "gc_ddpm_bc": "goal_image", "lc_bc": "instruction"}.get(algo)
        return cls(image_size, bool(policy.use_proprio), goal, bool(policy.run.settings.text_encoder))

    @property
    def required(self) -> tuple[str, ...]:
        return ("image", *(("proprio",) if self.proprio else ()), *((self.goal,) if self.goal else ()))

    @property
    def allowed(self) -> tuple[str, ...]:
        return (*self.required, "reset")

    def describe(self) -> dict[str, Any]:
        """The request keys for the connect metadata."""
        image = {"dtype": "uint8", "shape": [self.image_size, self.image_size, 3]}
        keys: dict[str, Any] = {"image": image}
        if self.proprio:
            keys["proprio"] = {"dtype": "float32", "shape": [7]}
        if self.goal == "goal_image":
            keys["goal_image"] = image
        elif self.goal == "instruction":
            keys["instruction"] = {"dtype": "str" if self.text else "float32", "shape": [] if self.text
                                   else [LANGUAGE_DIM]}
        keys["reset"] = {"dtype": "bool", "shape": [], "optional": True}
        return keys


@dataclass(frozen=True)
class Request:
    observation: dict[str, np.ndarray]
    goal: dict[str, np.ndarray] | None
    language: Any
    reset: bool


def _image(value: Any, key: str, size: int) -> np.ndarray:
    if not isinstance(value, np.ndarray):
        raise RequestError(f"'{key}' must be a numpy uint8 array [{size}, {size}, 3], got {type(value).__name__}")
    if value.dtype != np.uint8:
        raise RequestError(f"'{key}' must be uint8 (0..255), got {value.dtype}")
    if value.ndim != 3 or value.shape[-1] != 3:
        raise RequestError(f"'{key}' must be one RGB image [{size}, {size}, 3], got shape {list(value.shape)}")
    if value.shape[:2] != (size, size):
        raise RequestError(f"'{key}' is {value.shape[0]}x{value.shape[1]}; this run was trained on "
                           f"{size}x{size} images and the server does not resize: resize on the client "
                           f"(e.g. openpi_client.image_tools.resize_with_pad(image, {size}, {size}))")
    return value


def _floats(value: Any, key: str, width: int) -> np.ndarray:
    if not isinstance(value, np.ndarray) or value.dtype.kind != "f":
        got = value.dtype if isinstance(value, np.ndarray) else type(value).__name__
        raise RequestError(f"'{key}' must be a float numpy array [{width}], got {got}")
    if value.shape != (width,):
        raise RequestError(f"'{key}' must have shape [{width}], got {list(value.shape)}")
    if not np.all(np.isfinite(value)):
        raise RequestError(f"'{key}' holds NaN or infinity")
    return value.astype(np.float32)


def _language(value: Any, spec: RequestSpec) -> Any:
    if isinstance(value, str):
        if not spec.text:
            raise RequestError("this run has no text_encoder: send 'instruction' as its embedding, "
                               f"float [{LANGUAGE_DIM}]")
        return value
    return _floats(value, "instruction", LANGUAGE_DIM)


def parse_request(message: bytes | str, spec: RequestSpec) -> Request:
    """Decode and check one request frame.

    Raises:
        RequestError: a text frame, bytes that are not msgpack, or keys, dtypes or shapes the run does not take.
    """
    if isinstance(message, str):
        raise RequestError("send the request as a binary msgpack frame, not text")
    try:
        obj = wire.unpackb(message)
    except wire.WireError as e:
        raise RequestError(str(e)) from e
    if not isinstance(obj, Mapping) or not all(isinstance(k, str) for k in obj):
        raise RequestError(f"a request is a map with string keys ({', '.join(spec.allowed)}), got {type(obj).__name__}")
    unknown = sorted(set(obj) - set(spec.allowed))
    if unknown:
        raise RequestError(f"unknown key(s) {unknown}; this run takes {list(spec.allowed)}")
    reset = obj.get("reset", False)
    if not isinstance(reset, (bool, np.bool_)):
        raise RequestError(f"'reset' must be a boolean, got {type(reset).__name__}")
    if set(obj) == {"reset"}:
        return Request({}, None, None, bool(reset))
    missing = [k for k in spec.required if k not in obj]
    if missing:
        raise RequestError(f"missing key(s) {missing}; this run takes {list(spec.required)} (+ optional 'reset')")
    observation = {"image": _image(obj["image"], "image", spec.image_size)}
    if spec.proprio:
        observation["proprio"] = _floats(obj["proprio"], "proprio", 7)
    goal = None
    language = None
    if spec.goal == "goal_image":
        goal = {"image": _image(obj["goal_image"], "goal_image", spec.image_size)}
    elif spec.goal == "instruction":
        language = _language(obj["instruction"], spec)
    return Request(observation, goal, language, bool(reset))


def warmup_request(spec: RequestSpec) -> Request:
    """A request of the run's real shapes (zeros), to compile the policy before serving."""
    image = np.zeros((spec.image_size, spec.image_size, 3), np.uint8)
    observation: dict[str, np.ndarray] = {"image": image}
    if spec.proprio:
        observation["proprio"] = np.zeros(7, np.float32)
    goal = {"image": image} if spec.goal == "goal_image" else None
    language = np.zeros(LANGUAGE_DIM, np.float32) if spec.goal == "instruction" else None
    return Request(observation, goal, language, True)


def example_request(spec: RequestSpec, seed: int = 0) -> dict[str, Any]:
    """A random request of the run's shapes, as a client would send it (tests, benches, `policy check`)."""
    rng = np.random.default_rng(seed)
    s = spec.image_size
    req: dict[str, Any] = {"image": rng.integers(0, 256, (s, s, 3), dtype=np.uint8)}
    if spec.proprio:
        req["proprio"] = rng.normal(size=7).astype(np.float32)
    if spec.goal == "goal_image":
        req["goal_image"] = rng.integers(0, 256, (s, s, 3), dtype=np.uint8)
    elif spec.goal == "instruction":
        req["instruction"] = "put the carrot on the plate" if spec.text else rng.normal(
            size=LANGUAGE_DIM).astype(np.float32)
    return req
