"""bdv2's augmentation (trainer/augment.py: JAX, a whole batch, one draw per row) against the original's
per-image tf_augmentations.augment (https://github.com/rail-berkeley/bridge_data_v2/blob/main/jaxrl_m/data/
tf_augmentations.py) with its augment_kwargs, on the same input images:

* the same draw gives the same image: the original's ops all take one uniform u from their shared seed; fed
  that u, bdv2 reproduces its output to within one grey level, op by op and in the default order;
* the same distribution: over many draws (the original's per-element seeds vs bdv2's per-row draws), the
  per-image statistics of each op (crop scale, ratio and offset; brightness shift; contrast factor;
  saturation factor; hue shift) and of the whole chain agree: two-sample Kolmogorov-Smirnov, means, and the
  1%/99% quantiles (the ends of each range).

Skips when the original checkout is absent (tests/original_code.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from original_code import import_original

from bdv2.trainer import augment, data

N = 400  # draws per side
SIDE = 32
KS_LIMIT = 1.95 * np.sqrt(2.0 / N)  # two-sample KS critical value at alpha = 0.001


@pytest.fixture(scope="module")
def original() -> Callable[..., Any]:
    import_original()
    data.hide_gpus_from_tf()
    from jaxrl_m.data.tf_augmentations import augment as original_augment

    return original_augment


def _only(op: str) -> dict[str, Any]:
    return {op: augment.DEFAULT_KWARGS[op], "augment_order": [op]}


def _gradient() -> np.ndarray:
    """R encodes x and G encodes y (0..255 across the image): a crop's box can be read off its corners."""
    ramp = np.linspace(0, 255, SIDE)
    image = np.zeros((SIDE, SIDE, 3))
    image[..., 0], image[..., 1], image[..., 2] = ramp[None, :], ramp[:, None], 128
    return image.astype(np.uint8)


def _colourful() -> np.ndarray:
    """Moderately saturated, mid-bright texture: brightness, contrast, saturation and hue rarely clip."""
    rng = np.random.default_rng(0)
    base = np.array([90, 140, 160]) + rng.normal(0, 12, (SIDE, SIDE, 3))  # hue ~0.55: +-0.1 never wraps
    return np.clip(base, 0, 255).astype(np.uint8)


def _run_original(original: Callable[..., Any], image: np.ndarray, kwargs: dict[str, Any]) -> np.ndarray:
    """N draws of the original, seeded as BridgeDataset seeds its elements ([i, i] for element i)."""
    import tensorflow as tf

    def one(i: Any) -> Any:
        return original(tf.constant(image), tf.stack([i, i]), **kwargs)

    ds = tf.data.Dataset.range(N).map(one).batch(N)
    return next(iter(ds)).numpy()


def _run_bdv2(image: np.ndarray, kwargs: dict[str, Any]) -> np.ndarray:
    import jax

    u = jax.random.uniform(jax.random.PRNGKey(1), (N,))
    return np.asarray(augment.augment_images(np.repeat(image[None], N, axis=0), u, kwargs))


def _hsv(images: np.ndarray) -> np.ndarray:
    import tensorflow as tf  # TF's conversion, not the one under test

    return tf.image.rgb_to_hsv(images.astype(np.float32) / 255.0).numpy()


def _line(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares (start, end) of [M, SIDE] ramps in [0, 1]: finer than one truncated pixel."""
    j = np.arange(SIDE) - (SIDE - 1) / 2
    slope = (values * j).sum(-1) / (j * j).sum()
    mid = values.mean(-1)
    return mid - slope * (SIDE - 1) / 2, mid + slope * (SIDE - 1) / 2


def _crop_stats(out: np.ndarray) -> dict[str, np.ndarray]:
    x0, x1 = _line(out[:, 0, :, 0] / 255.0)  # R along the first row
    y0, y1 = _line(out[:, :, 0, 1] / 255.0)  # G along the first column
    return {"scale": (x1 - x0) * (y1 - y0), "ratio": (x1 - x0) / (y1 - y0), "x0": x0, "y0": y0}


def _hue_shift(out: np.ndarray, image: np.ndarray) -> np.ndarray:
    d = _hsv(out)[..., 0].mean(axis=(1, 2)) - _hsv(image[None])[..., 0].mean()
    return (d + 0.5) % 1.0 - 0.5


STATS: dict[str, Callable[[np.ndarray, np.ndarray], dict[str, np.ndarray]]] = {
    "random_resized_crop": lambda out, image: _crop_stats(out),
    "random_brightness": lambda out, image: {"shift": out.mean(axis=(1, 2, 3)) - image.mean()},
    "random_contrast": lambda out, image: {"factor": out.std(axis=(1, 2)).mean(-1) / image.std(axis=(0, 1)).mean()},
    "random_saturation": lambda out, image: {"factor": _hsv(out)[..., 1].mean(axis=(1, 2))
                                             / _hsv(image[None])[..., 1].mean()},
    "random_hue": lambda out, image: {"shift": _hue_shift(out, image)},
}


def _tails_differ(a: np.ndarray, b: np.ndarray) -> float:
    """How far apart the 1% and 99% quantiles are, in units of their tolerance: 4 standard errors of a quantile
    of N uniform draws (each statistic is monotone in the draw) over the statistic's spread, plus 2% of it for
    the uint8 truncation. Catches a wrong range that KS, with its power of ~0.14 at N = 400, would miss."""
    spread = b.max() - b.min()
    tol = (4 * np.sqrt(2 * 0.01 * 0.99 / N) + 0.02) * spread
    return max(abs(np.percentile(a, q) - np.percentile(b, q)) for q in (1, 99)) / tol


def _ks(a: np.ndarray, b: np.ndarray) -> float:
    grid = np.sort(np.concatenate([a, b]))
    cdf_a = np.searchsorted(np.sort(a), grid, side="right") / len(a)
    cdf_b = np.searchsorted(np.sort(b), grid, side="right") / len(b)
    return float(np.abs(cdf_a - cdf_b).max())


@pytest.mark.parametrize("op", [*STATS, "default order"])
def test_the_same_draw_gives_the_same_image(original: Callable[..., Any], op: str) -> None:
    import tensorflow as tf

    kwargs = augment.DEFAULT_KWARGS if op == "default order" else _only(op)
    image = _colourful()
    for s in range(16):
        seed = tf.constant([s, s], tf.int64)
        want = original(tf.constant(image), seed, **kwargs).numpy().astype(int)
        u = tf.random.stateless_uniform([1], seed).numpy()  # the number each of the original's ops draws
        got = np.asarray(augment.augment_images(image[None], u, kwargs))[0].astype(int)
        assert np.abs(got - want).max() <= 1, (op, s)


@pytest.mark.parametrize("op", list(STATS))
def test_each_op_has_the_original_distribution(original: Callable[..., Any], op: str) -> None:
    image = _gradient() if op == "random_resized_crop" else _colourful()
    want = STATS[op](_run_original(original, image, _only(op)).astype(np.float64), image.astype(np.float64))
    got = STATS[op](_run_bdv2(image, _only(op)).astype(np.float64), image.astype(np.float64))
    for name in want:
        assert np.std(want[name]) > 0, (op, name)  # the statistic does vary with the draw
        assert _ks(got[name], want[name]) < KS_LIMIT, (op, name)
        assert _tails_differ(got[name], want[name]) < 1, (op, name)
        se = np.sqrt((np.var(got[name]) + np.var(want[name])) / N)
        assert abs(got[name].mean() - want[name].mean()) < 4 * se + 1e-6, (op, name)


def test_the_default_chain_has_the_original_distribution(original: Callable[..., Any]) -> None:
    image = _colourful()
    want = _run_original(original, image, augment.DEFAULT_KWARGS).astype(np.float64)
    got = _run_bdv2(image, augment.DEFAULT_KWARGS).astype(np.float64)
    for stat in (lambda x: x.mean(axis=(1, 2, 3)), lambda x: x.std(axis=(1, 2, 3)),
                 lambda x: _hsv(x.astype(np.uint8))[..., 1].mean(axis=(1, 2))):
        assert _ks(stat(got), stat(want)) < KS_LIMIT


@pytest.mark.parametrize("differently", [False, True])
def test_next_obs_and_goal_draws_follow_the_original(differently: bool) -> None:
    """augment_next_obs_goal_differently: the original's BridgeDataset._augment gives obs, next obs and goal one
    shared seed or three sub-seeds; bdv2 one shared draw per row or three. Compared through the brightness
    shifts of the three images of each element: identical when shared, uncorrelated and alike in distribution
    when not."""
    import types

    import jax
    import tensorflow as tf

    import_original()
    data.hide_gpus_from_tf()
    from jaxrl_m.data.bridge_dataset import BridgeDataset

    kwargs = _only("random_brightness")
    image = _colourful()
    fake = types.SimpleNamespace(augment_next_obs_goal_differently=differently, augment_kwargs=kwargs)

    def one(i: Any) -> Any:
        element = {k: {"image": tf.constant(image)} for k in augment.IMAGE_KEYS}
        out = BridgeDataset._augment(fake, tf.cast(i, tf.int32), element)
        return tf.stack([out[k]["image"] for k in augment.IMAGE_KEYS])

    theirs = next(iter(tf.data.Dataset.range(N).map(one).batch(N))).numpy()  # [N, 3, S, S, 3]
    batch = {k: {"image": np.repeat(image[None], N, axis=0)} for k in augment.IMAGE_KEYS}
    out = augment.augment_batch(batch, jax.random.PRNGKey(3), kwargs, differently)
    ours = np.stack([np.asarray(out[k]["image"]) for k in augment.IMAGE_KEYS], axis=1)
    for name, got in (("original", theirs), ("bdv2", ours)):
        shift = got.astype(np.float64).mean(axis=(2, 3, 4)) - image.mean()  # [N, 3]
        corr = np.corrcoef(shift[:, 0], shift[:, 2])[0, 1]
        if differently:
            assert abs(corr) < 4 / np.sqrt(N), (name, corr)  # independent draws
        else:
            np.testing.assert_array_equal(got[:, 0], got[:, 2], err_msg=name)  # one draw for all three
    for k in range(3):
        a = theirs[:, k].astype(np.float64).mean(axis=(1, 2, 3))
        b = ours[:, k].astype(np.float64).mean(axis=(1, 2, 3))
        assert _ks(a, b) < KS_LIMIT, (k, _ks(a, b))
