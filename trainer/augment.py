"""Image augmentation with the distribution of the original's per-image `augment`
(https://github.com/rail-berkeley/bridge_data_v2/blob/main/jaxrl_m/data/tf_augmentations.py), run in JAX on the
whole device batch inside the jitted train step (loop.train_step) instead of per transition in tf.data.

Why on the device: at 128 px the CPU pipeline spends nearly all its time in the pixel math (crop, two HSV
round trips, contrast) -- bench/bench_train.py; per batch in TF it is no faster, since the per-pixel work,
not the per-element overhead, dominates. On an accelerator it is ~80 MFLOP per sample (mostly the crop's two
small matrix products per image) against ~7 GFLOP for a ResNet-34 train step at 128 px (~1%). On a CPU-only
machine it competes with the train step for the same cores.

The original hands every op of `augment_order` the same stateless seed, and each of TF's stateless ops then
draws the *same* uniform number u from it: one u in [0, 1) per image sets every parameter:

    crop        scale = s0 + (s1 - s0) u, ratio = exp(log r0 + (log r1 - log r0) u),
                offsets u (1 - h), u (1 - w)  (h = sqrt(scale / ratio), w = sqrt(scale ratio), clipped to 1)
    brightness  + (-d + 2 d u)               contrast  (x - mean) (c0 + (c1 - c0) u) + mean, per channel
    saturation  S (a0 + (a1 - a0) u) in HSV  hue       H + (-d + 2 d u) in HSV
    flip        left-right when u < 0.5

each op followed by a clip to [0, 1], the result truncated to uint8. Here row n of a batch gets u[n], drawn
from (seed, step); its obs, next obs and goal share it, unless augment_next_obs_goal_differently (three
independent draws, as the original's three sub-seeds). tests/trainer/test_augment_original.py compares the
per-op statistics with the original's function.

`check_kwargs` (pure Python, no JAX import; settings.py uses it) validates the original's augment_kwargs.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from .errors import ConfigError

OPS = ("random_resized_crop", "random_brightness", "random_contrast", "random_saturation", "random_hue",
       "random_flip_left_right")
DEFAULT_KWARGS: dict[str, Any] = {
    "random_resized_crop": {"scale": [0.8, 1.0], "ratio": [0.9, 1.1]},
    "random_brightness": [0.2],
    "random_contrast": [0.8, 1.2],
    "random_saturation": [0.8, 1.2],
    "random_hue": [0.1],
    "augment_order": ["random_resized_crop", "random_brightness", "random_contrast", "random_saturation",
                      "random_hue"],
}
"""The original's experiments/configs/train_config.py augment_kwargs."""
_EXAMPLE = "e.g. {random_brightness: [0.2], augment_order: [random_brightness]}"


# -- validation (pure Python) ---------------------------------------------------------------------

def _numbers(value: Any, n: int, file: str, key: str, what: str) -> list[float]:
    if isinstance(value, int | float) and not isinstance(value, bool) and n == 1:
        value = [value]
    if (not isinstance(value, list | tuple) or len(value) != n
            or any(isinstance(v, bool) or not isinstance(v, int | float) for v in value)):
        raise ConfigError(file, key, f"expected {what}, got {value!r}")
    return [float(v) for v in value]


def _range(value: Any, file: str, key: str, low: float, positive: bool = False) -> list[float]:
    lo, hi = _numbers(value, 2, file, key, "a list [lower, upper]")
    if not (lo > low if positive else lo >= low) or hi < lo:
        raise ConfigError(file, key, f"needs {low} {'<' if positive else '<='} lower <= upper, got [{lo}, {hi}]")
    return [lo, hi]


def _check_op(op: str, value: Any, file: str, key: str) -> Any:
    if op == "random_resized_crop":
        if not isinstance(value, Mapping) or set(value) != {"scale", "ratio"}:
            raise ConfigError(file, key, f"expected a mapping with scale and ratio, got {value!r}",
                              "e.g. {scale: [0.8, 1.0], ratio: [0.9, 1.1]}")
        return {"scale": _range(value["scale"], file, f"{key}.scale", 0.0, positive=True),
                "ratio": _range(value["ratio"], file, f"{key}.ratio", 0.0, positive=True)}
    if op in ("random_brightness", "random_hue"):
        [d] = _numbers(value, 1, file, key, "[max_delta]")
        top = 0.5 if op == "random_hue" else math.inf
        if not 0.0 <= d <= top:
            raise ConfigError(file, key, f"max_delta must lie in [0, {top}], got {d}")
        return [d]
    if op in ("random_contrast", "random_saturation"):
        lo, hi = _range(value, file, key, 0.0)
        if hi <= lo:  # TF's stateless_random_contrast/saturation refuse an empty range
            raise ConfigError(file, key, f"needs lower < upper, got [{lo}, {hi}]")
        return [lo, hi]
    if value not in (None, [], {}):  # random_flip_left_right takes no parameters
        raise ConfigError(file, key, f"takes no parameters, got {value!r}")
    return []


def check_kwargs(value: Any, file: str, key: str) -> dict[str, Any]:
    """The original's augment_kwargs, checked and normalised to lists of floats.

    Raises:
        ConfigError: naming the key: an unknown op, a missing augment_order or parameter, a bad range.
    """
    if not isinstance(value, Mapping):
        raise ConfigError(file, key, f"expected a mapping of augmentation ops, got {value!r}", _EXAMPLE)
    allowed = (*OPS, "augment_order")
    for k in value:
        if k not in allowed:
            raise ConfigError(file, f"{key}.{k}", "unknown augmentation op", f"allowed: {', '.join(allowed)}")
    order = value.get("augment_order")
    if not isinstance(order, list | tuple) or not all(isinstance(o, str) for o in order):
        raise ConfigError(file, f"{key}.augment_order", f"expected a list of op names, got {order!r}", _EXAMPLE)
    out: dict[str, Any] = {"augment_order": list(order)}
    for i, op in enumerate(order):
        if op not in OPS:
            raise ConfigError(file, f"{key}.augment_order[{i}]", f"unknown augmentation op {op!r}",
                              f"allowed: {', '.join(OPS)}")
        if op not in value and op != "random_flip_left_right":
            raise ConfigError(file, f"{key}.{op}", "missing: augment_order names it",
                              f"give its parameters, as in {DEFAULT_KWARGS.get(op)!r}")
        out[op] = _check_op(op, value.get(op), file, f"{key}.{op}")
    return out


# -- the ops, in JAX, on a whole batch inside the jitted train step ----------------------------------

Op = Callable[[Any, Any, Any], Any]
"""(images [N, 3, H, W] float in [0, 1], u [N], the op's parameters) -> images. Planar (channels first): the
per-channel arithmetic vectorises over whole planes instead of strided triples."""


def _np() -> Any:
    import jax.numpy as jnp  # lazily: settings.py imports this module for check_kwargs alone

    return jnp


def _col(u: Any) -> Any:
    return u[:, None, None, None]


def _lerp(lo: float, hi: float, u: Any) -> Any:
    return lo + (hi - lo) * u  # tf.random.stateless_uniform's minval + (maxval - minval) u


def crop_boxes(u: Any, p: Mapping[str, list[float]]) -> Any:
    """[N] -> [N, 4] boxes (y0, x0, y1, x1) in [0, 1], the original's random_resized_crop from one draw each."""
    jnp = _np()
    scale = _lerp(p["scale"][0], p["scale"][1], u)
    ratio = jnp.exp(_lerp(math.log(p["ratio"][0]), math.log(p["ratio"][1]), u))
    h = jnp.clip(jnp.sqrt(scale / ratio), 0.0, 1.0)
    w = jnp.clip(jnp.sqrt(scale * ratio), 0.0, 1.0)
    y0, x0 = u * (1.0 - h), u * (1.0 - w)
    return jnp.stack([y0, x0, y0 + h, x0 + w], axis=1)


def _taps(lo: Any, hi: Any, n: int) -> Any:
    """[N] box edges -> [N, n, n] bilinear weights: output pixel i samples lo (n - 1) + i (hi - lo), the grid of
    tf.image.crop_and_resize with an output as large as the input."""
    import jax

    jnp = _np()
    pos = jnp.clip(lo[:, None] * (n - 1) + jnp.arange(n)[None] * (hi - lo)[:, None], 0.0, n - 1.0)  # [N, n]
    below = jnp.floor(pos)
    frac = (pos - below)[..., None]
    return ((1.0 - frac) * jax.nn.one_hot(below.astype(jnp.int32), n)
            + frac * jax.nn.one_hot(jnp.ceil(pos).astype(jnp.int32), n))


def crop(x: Any, u: Any, p: Mapping[str, list[float]]) -> Any:
    """Resampling as two small matrix products per plane (rows, then columns): dense, no gathers."""
    jnp = _np()
    boxes = crop_boxes(u, p)
    rows = jnp.einsum("nih,nchw->nciw", _taps(boxes[:, 0], boxes[:, 2], x.shape[2]), x)
    return jnp.einsum("njw,nciw->ncij", _taps(boxes[:, 1], boxes[:, 3], x.shape[3]), rows)


def brightness(x: Any, u: Any, p: list[float]) -> Any:
    return x + _col(_lerp(-p[0], p[0], u))


def contrast(x: Any, u: Any, p: list[float]) -> Any:
    mean = x.mean(axis=(2, 3), keepdims=True)  # per image and channel, as tf.image.adjust_contrast
    return (x - mean) * _col(_lerp(p[0], p[1], u)) + mean


def flip(x: Any, u: Any, p: Any) -> Any:
    return _np().where(_col(u) < 0.5, x[..., ::-1], x)  # tf.image.stateless_random_flip_left_right


def rgb_to_hsv(r: Any, g: Any, b: Any) -> tuple[Any, Any, Any]:
    """RGB planes in [0, 1] -> (H, S, V) planes, hue in [0, 1) (tf.image.rgb_to_hsv's convention)."""
    jnp = _np()
    v, lo = jnp.maximum(jnp.maximum(r, g), b), jnp.minimum(jnp.minimum(r, g), b)
    span = v - lo
    s = jnp.where(v > 0, span / jnp.where(v > 0, v, 1.0), 0.0)
    safe = jnp.where(span > 0, span, 1.0)
    h = jnp.where(v == r, (g - b) / safe, jnp.where(v == g, (b - r) / safe + 2.0, (r - g) / safe + 4.0))
    h = jnp.where(span > 0, h / 6.0, 0.0)
    return h - jnp.floor(h), s, v


def hsv_to_rgb(h: Any, s: Any, v: Any) -> tuple[Any, Any, Any]:
    jnp = _np()
    h6 = h * 6.0
    d = (jnp.clip(jnp.abs(h6 - 3.0) - 1.0, 0.0, 1.0), jnp.clip(2.0 - jnp.abs(h6 - 2.0), 0.0, 1.0),
         jnp.clip(2.0 - jnp.abs(h6 - 4.0), 0.0, 1.0))
    return tuple((1.0 - s + s * c) * v for c in d)


def hsv_ops(x: Any, u: Any, ops: list[tuple[str, list[float]]]) -> Any:
    """Adjacent saturation/hue ops in one HSV round trip (TF's adjust_saturation and adjust_hue do one each;
    the clip between them changes nothing: HSV -> RGB keeps values in [0, 1])."""
    jnp = _np()
    h, s, v = rgb_to_hsv(x[:, 0], x[:, 1], x[:, 2])  # [N, H, W] each
    for op, p in ops:
        if op == "random_saturation":
            s = jnp.clip(s * _lerp(p[0], p[1], u)[:, None, None], 0.0, 1.0)
        else:
            h = h + _lerp(-p[0], p[0], u)[:, None, None]
            h = h - jnp.floor(h)
    return jnp.stack(hsv_to_rgb(h, s, v), axis=1)


_PIXEL_OPS: dict[str, Op] = {"random_resized_crop": crop, "random_brightness": brightness,
                             "random_contrast": contrast, "random_flip_left_right": flip}
_HSV = ("random_saturation", "random_hue")


def _steps(order: list[str]) -> list[list[str]]:
    """augment_order in runs: each HSV run one step, every other op a step of its own."""
    runs: list[list[str]] = []
    for op in order:
        if op in _HSV and runs and runs[-1][-1] in _HSV:
            runs[-1].append(op)
        else:
            runs.append([op])
    return runs


def augment_images(images: Any, u: Any, kwargs: Mapping[str, Any]) -> Any:
    """uint8 [N, (h,) H, W, 3] and u [N] in [0, 1) -> augmented uint8: row n (all its h frames alike) by u[n],
    each op followed by a clip to [0, 1], truncated to uint8 at the end, as the original."""
    jnp = _np()
    shape = images.shape
    frames = math.prod(shape[1:-3])  # h, or 1 without a history axis
    x = images.reshape((-1, *shape[-3:])).transpose(0, 3, 1, 2).astype(jnp.float32) / 255.0  # [N h, 3, H, W]
    u = jnp.repeat(u, frames)
    for step in _steps(list(kwargs["augment_order"])):
        if step[0] in _HSV:
            x = hsv_ops(x, u, [(op, kwargs[op]) for op in step])
        else:
            x = _PIXEL_OPS[step[0]](x, u, kwargs.get(step[0]))
        x = jnp.clip(x, 0.0, 1.0)
    return (x * 255.0).astype(jnp.uint8).transpose(0, 2, 3, 1).reshape(shape)


IMAGE_KEYS = ("observations", "next_observations", "goals")


def augment_batch(batch: dict[str, Any], key: Any, kwargs: Mapping[str, Any], differently: bool) -> dict[str, Any]:
    """The obs, next obs and goal images of a batch [B, ...]: one draw u per row from ``key``, shared by the
    three unless ``differently`` (augment_next_obs_goal_differently)."""
    import jax

    n = batch["observations"]["image"].shape[0]
    draws = jax.random.uniform(key, (3 if differently else 1, n))  # [1 or 3, B]
    out = dict(batch)
    for k, name in enumerate(IMAGE_KEYS):
        if "image" in batch.get(name, {}):
            out[name] = {**batch[name], "image": augment_images(batch[name]["image"], draws[k % len(draws)],
                                                                kwargs)}
    return out


Augmenter = Callable[[dict[str, Any], Any], dict[str, Any]]
"""(device batch, the step) -> the augmented batch, inside the jitted train step."""


def augmenter(*, enabled: bool, seed: int, kwargs: Mapping[str, Any] | None,
              differently: bool) -> Augmenter | None:
    """A run's augmentation (None when ``enabled`` is off: its augment setting), its draws keyed by (seed, step):
    a run resumed at step n draws at each step what an uninterrupted run draws at that step. The arguments
    are the run's augment, seed, augment_kwargs and augment_next_obs_goal_differently settings."""
    if not enabled:
        return None
    import jax

    base = jax.random.fold_in(jax.random.PRNGKey(seed), 0x617567)  # a stream of its own
    kwargs = kwargs or DEFAULT_KWARGS

    def apply(batch: dict[str, Any], step: Any) -> dict[str, Any]:
        return augment_batch(batch, jax.random.fold_in(base, step), kwargs, differently)

    return apply
