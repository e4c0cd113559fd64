"""The input pipeline on sample TFRecords: shapes, relabelling, normalisation, goals, chunking, augmentation
(its per-row draws), determinism given (seed, start step) and a validation split smaller than one batch."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bdv2.trainer import augment, config, data, model, transforms

from . import helpers


@pytest.fixture(scope="module")
def tf() -> Any:
    data.hide_gpus_from_tf()
    import tensorflow as tf

    return tf


def _run(tfdata: Path, tmp_path: Path, algo: str = "gc_bc", **over: Any) -> model.Run:
    g = helpers.base_global(tfdata, tmp_path / "runs", **over)
    y = helpers.write_yaml(tmp_path / "m.yaml", {"global": g, "matrix": {"algos": [algo], "tasks": ["kitchen"]}})
    return config.load(y).runs[0]


def test_binarize_gripper_matches_the_original(tf: Any) -> None:
    raw = tf.constant([1, 1, 1, 0.5, 0, 0, 0.6, 1, 0.5], tf.float32)
    np.testing.assert_allclose(transforms.binarize_gripper(raw).numpy(), [1, 1, 1, 0, 0, 0, 1, 1, 0.5])


def _toy_traj(tf: Any, length: int = 6) -> dict[str, Any]:
    idx = tf.cast(tf.range(length), tf.float32)[:, None] * tf.ones([1, 7])  # proprio row t = t
    img = tf.zeros([length, 4, 4, 3], tf.uint8)
    return {"observations": {"image": img, "proprio": idx}, "next_observations": {"image": img, "proprio": idx + 1},
            "actions": idx * 10, "terminals": tf.zeros([length], tf.bool)}


def test_relabel_and_normalise(tf: Any) -> None:
    meta = model.Metadata(np.full(7, 1.0, np.float32), np.full(7, 2.0, np.float32),
                         np.zeros(7, np.float32), np.full(7, 4.0, np.float32))
    traj = transforms.normalise(transforms.relabel_actions(_toy_traj(tf)), meta)
    actions = traj["actions"].numpy()
    np.testing.assert_allclose(actions[:, :6], 0.0)  # delta 1 -> (1 - 1) / 2
    np.testing.assert_allclose(actions[:, 6], [-0.5, 0, 0, 0, 0, 0])  # 0, 10, 20.. -> {0, 1} -> (g - 1) / 2
    np.testing.assert_allclose(traj["observations"]["proprio"].numpy()[:, 0], np.arange(6) / 4.0)  # own stats


def test_zero_std_does_not_divide_by_zero(tmp_path: Path) -> None:
    p = tmp_path / "m.json"
    p.write_text('{"action": {"mean": [0,0,0,0,0,0,0], "std": [0,1,1,1,1,1,1]},'
                 ' "proprio": {"mean": [0,0,0,0,0,0,0], "std": [1,1,1,1,1,1,0]}}')
    meta = model.Metadata.load(p)
    assert meta.action_std[0] == 1.0 and meta.proprio_std[6] == 1.0


@pytest.mark.parametrize("strategy", ["uniform", "last_state_upweighted"])
def test_goal_relabeling_picks_future_states(tf: Any, strategy: str) -> None:
    traj = transforms.add_goals(_toy_traj(tf, 10), tf.constant([1, 2], tf.int64), strategy, 0.0)
    goal_index = traj["goals"]["proprio"].numpy()[:, 0] - 1  # next_obs row g holds g + 1
    t = np.arange(10)
    assert (goal_index[:-1] > t[:-1]).all() and goal_index[-1] == 9  # strictly future; the last reaches itself
    np.testing.assert_array_equal(traj["rewards"].numpy(), np.where(goal_index == t, 0, -1))
    reached = transforms.add_goals(_toy_traj(tf, 10), tf.constant([1, 2], tf.int64), strategy, 1.0)
    np.testing.assert_array_equal(reached["rewards"].numpy(), 0)


def test_chunking_pads_at_the_edges(tf: Any) -> None:
    traj = transforms.chunk(_toy_traj(tf, 5), obs_horizon=2, act_pred_horizon=3)
    assert traj["actions"].shape == (5, 3, 7) and traj["observations"]["image"].shape == (5, 2, 4, 4, 3)
    np.testing.assert_array_equal(traj["actions"].numpy()[:, :, 0] / 10, [[0, 1, 2], [1, 2, 3], [2, 3, 4], [3, 4, 4],
                                                                          [4, 4, 4]])
    np.testing.assert_array_equal(traj["observations"]["proprio"].numpy()[:, :, 0], [[0, 0], [0, 1], [1, 2], [2, 3],
                                                                                     [3, 4]])


def _image_batch(n: int = 4, side: int = 16) -> dict[str, Any]:
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (n, side, side, 3)).astype(np.uint8)
    return {"observations": {"image": image}, "next_observations": {"image": image}, "goals": {"image": image}}


def test_augmentation_shares_one_draw_per_row() -> None:
    import jax

    batch = _image_batch()
    out = augment.augment_batch(batch, jax.random.PRNGKey(7), augment.DEFAULT_KWARGS, differently=False)
    obs, goal = np.asarray(out["observations"]["image"]), np.asarray(out["goals"]["image"])
    assert obs.dtype == np.uint8 and obs.shape == (4, 16, 16, 3)
    assert not np.array_equal(obs, batch["observations"]["image"])
    np.testing.assert_array_equal(obs, goal)  # same image, same draw
    assert len({obs[i].tobytes() for i in range(4)}) == 4  # the rows of identical inputs got different draws
    apart = augment.augment_batch(batch, jax.random.PRNGKey(7), augment.DEFAULT_KWARGS, differently=True)
    assert not np.array_equal(np.asarray(apart["observations"]["image"]), np.asarray(apart["goals"]["image"]))


def test_augmentation_keeps_the_history_frames_together() -> None:
    import jax

    frames = np.repeat(_image_batch()["observations"]["image"][:, None], 3, axis=1)  # [4, 3, 16, 16, 3]
    out = np.asarray(augment.augment_images(frames, jax.random.uniform(jax.random.PRNGKey(0), (4,)),
                                            augment.DEFAULT_KWARGS))
    assert out.shape == frames.shape
    np.testing.assert_array_equal(out[:, 0], out[:, 2])  # one draw for all frames of a row


def test_batches_shapes_and_normalisation(tfdata: Path, tmp_path: Path) -> None:
    run = _run(tfdata, tmp_path, augment=False)
    batch = next(data.train_iterator(run))
    assert batch["observations"]["image"].shape == (8, 16, 16, 3) and batch["observations"]["image"].dtype == np.uint8
    assert batch["goals"]["image"].shape == (8, 16, 16, 3)
    assert batch["actions"].shape == (8, 7) and batch["observations"]["proprio"].shape == (8, 7)
    assert set(np.unique(batch["actions"][:, 6])) <= {-1.0, 1.0}  # binarised gripper, (g - 0.5) / 0.5
    assert 0.5 < batch["actions"][:, :6].mean() < 3.5  # steps of 0.02 +- 0.01 with std 0.01 -> about 2


def test_chunked_batches_for_ddpm(tfdata: Path, tmp_path: Path) -> None:
    batch = next(data.train_iterator(_run(tfdata, tmp_path, algo="gc_ddpm_bc")))
    assert batch["observations"]["image"].shape == (8, 1, 16, 16, 3)
    assert batch["observations"]["proprio"].shape == (8, 1, 7) and batch["actions"].shape == (8, 1, 7)
    assert batch["goals"]["image"].shape == (8, 16, 16, 3)


def test_pipeline_is_deterministic_given_seed_and_start_step(tfdata: Path, tmp_path: Path) -> None:
    run = _run(tfdata, tmp_path)
    for start in (0, 3):
        one, two = data.train_iterator(run, start_step=start), data.train_iterator(run, start_step=start)
        for _ in range(3):
            a, b = next(one), next(two)
            np.testing.assert_array_equal(a["observations"]["image"], b["observations"]["image"])
            np.testing.assert_array_equal(a["goals"]["proprio"], b["goals"]["proprio"])
            np.testing.assert_array_equal(a["actions"], b["actions"])


def test_weighted_sampling_follows_the_weights(tfdata: Path, tmp_path: Path) -> None:
    data_ = {"global": helpers.base_global(tfdata, tmp_path / "runs", augment=False, train_batch_size=64),
             "tasks": {"mix": {"include": ["kitchen", "sink"], "sample_weights": [0.99, 0.01]}},
             "matrix": {"algos": ["bc"], "tasks": ["mix"]}}
    run = config.load(helpers.write_yaml(tmp_path / "w.yaml", data_)).runs[0]
    batch = next(data.train_iterator(run))
    assert batch["actions"].shape == (64, 7)


def test_val_split_smaller_than_a_batch(tfdata: Path, tmp_path: Path) -> None:
    run = _run(tfdata, tmp_path, val_batch_size=64)  # kitchen val: 2 trajectories x 8 steps = 16 rows
    batches = list(data.val_batches(run, devices=1, limit=None))
    assert [len(b["actions"]) for b in batches] == [16]
    assert [len(b["actions"]) for b in data.val_batches(run, devices=3, limit=None)] == [15]  # trimmed to devices


@pytest.mark.parametrize(("kwargs", "key", "message"), [
    ({"random_blur": [1], "augment_order": []}, "augment_kwargs.random_blur", "unknown augmentation op"),
    ({"augment_order": ["random_brightness", "random_zoom"], "random_brightness": [0.2]},
     "augment_kwargs.augment_order[1]", "unknown augmentation op 'random_zoom'"),
    ({"random_brightness": [0.2]}, "augment_kwargs.augment_order", "expected a list"),
    ({"augment_order": ["random_contrast"]}, "augment_kwargs.random_contrast", "missing"),
    ({"augment_order": ["random_contrast"], "random_contrast": [1.2, 0.8]}, "augment_kwargs.random_contrast",
     "lower <= upper"),
    ({"augment_order": ["random_hue"], "random_hue": [0.7]}, "augment_kwargs.random_hue", "max_delta"),
    ({"augment_order": ["random_resized_crop"], "random_resized_crop": {"scale": [0.8, 1.0]}},
     "augment_kwargs.random_resized_crop", "scale and ratio"),
])
def test_bad_augment_kwargs_name_the_key(tfdata: Path, tmp_path: Path, kwargs: dict[str, Any], key: str,
                                         message: str) -> None:
    with pytest.raises(config.ConfigError) as e:
        _run(tfdata, tmp_path, augment_kwargs=kwargs)
    assert key in str(e.value) and message in str(e.value)


def test_augment_kwargs_are_read_in_the_original_form(tfdata: Path, tmp_path: Path) -> None:
    kwargs = {"random_brightness": [0.1], "random_flip_left_right": None,
              "augment_order": ["random_flip_left_right", "random_brightness"]}
    run = _run(tfdata, tmp_path, augment_kwargs=kwargs, augment_next_obs_goal_differently=True)
    assert run.settings.augment_kwargs == {"augment_order": ["random_flip_left_right", "random_brightness"],
                                           "random_flip_left_right": [], "random_brightness": [0.1]}
    assert run.settings.augment_next_obs_goal_differently is True
    default = augment.check_kwargs(augment.DEFAULT_KWARGS, "defaults", "augment_kwargs")
    assert _run(tfdata, tmp_path).settings.augment_kwargs == default  # carried by the settings, not decided later
    assert _run(tfdata, tmp_path, augment_kwargs=None).settings.augment_kwargs == default  # null: the defaults


@pytest.mark.parametrize(("strategy", "kwargs"), [("geometric", {"discount": 0.9}),
                                                  ("delta_goals", {"goal_delta": [1, 3]})])
def test_relabeling_kwargs_reach_the_pipeline(tfdata: Path, tmp_path: Path, strategy: str,
                                              kwargs: dict[str, Any]) -> None:
    """The strategy's own arguments travel from the YAML to add_goals (without them it raises)."""
    run = _run(tfdata, tmp_path, augment=False, goal_relabeling=strategy, goal_relabeling_kwargs=kwargs)
    assert dict(data.PipelineConfig.of(run, True).goal_relabeling_kwargs).keys() == kwargs.keys()
    batch = next(data.train_iterator(run))
    assert batch["goals"]["image"].shape == (8, 16, 16, 3) and batch["rewards"].shape == (8,)
