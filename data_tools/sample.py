"""The built-in data: a small synthetic BridgeData V2 raw tree in the real layout (see raw.py's docstring).

Used by the demo and by the tests (which add faults to it). Deterministic for a given seed. Contents:

    <out>/bridge_data_v2/toykitchen1/put_carrot_in_pot/00/2023-07-11_14-06-57/   dict actions, lang + confidence
    <out>/bridge_data_v2/toykitchen1/open_drawer/00/2022-05-02_10-00-00/         two instructions per trajectory
    <out>/rss/toykitchen2/sweep_beans/00/2021-06-15_09-30-00/                    before 2021-07-23: latency
                                                                                 shift; array actions; no lang.txt
Convert it with `--depth 5` (the original's default).
"""

from __future__ import annotations

import json
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bdv2.data_tools.errors import DataToolsError

WIDTH, HEIGHT = 640, 480


@dataclass(frozen=True)
class SampleTask:
    rel: str
    dated: str
    instructions: tuple[str, ...]
    """Empty: no lang.txt (unlabeled, as scripted data)."""
    dict_actions: bool


TASKS = (
    SampleTask("bridge_data_v2/toykitchen1/put_carrot_in_pot/00", "2023-07-11_14-06-57",
               ("put the carrot in the pot",), True),
    SampleTask("bridge_data_v2/toykitchen1/open_drawer/00", "2022-05-02_10-00-00",
               ("open the drawer", "pull the drawer open"), True),
    SampleTask("rss/toykitchen2/sweep_beans/00", "2021-06-15_09-30-00", (), False),
)
CAMERA_TOPICS = ["/D435/color/image_raw", "/blue/image_raw", "/wrist/image_raw"]


def render_frame(t: int, n_frames: int, traj_seed: int, camera: int) -> np.ndarray:
    """A 480x640 RGB scene: a wooden table gradient, a coloured object and a dark gripper moving towards it."""
    rng = np.random.default_rng(traj_seed * 31 + camera)
    ys, xs = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float32)
    img = np.empty((HEIGHT, WIDTH, 3), dtype=np.float32)
    img[..., 0] = 150 + 60 * xs / WIDTH + 10 * np.sin(ys / 9.0 + camera)  # wood grain
    img[..., 1] = 110 + 40 * ys / HEIGHT
    img[..., 2] = 70 + 20 * camera
    obj = rng.uniform([120, 100], [520, 380])  # the object the task is about
    colour = rng.uniform(40, 255, size=3)
    img[(xs - obj[0]) ** 2 + (ys - obj[1]) ** 2 < 40**2] = colour
    frac = t / max(n_frames - 1, 1)
    grip = np.array([60, 60]) * (1 - frac) + obj * frac  # the gripper approaches the object
    img[(abs(xs - grip[0]) < 25) & (abs(ys - grip[1]) < 35)] = (30, 30, 35)
    img += rng.normal(0, 4, size=(HEIGHT, WIDTH, 1))  # sensor noise, so JPEGs are not trivially small
    return np.clip(img, 0, 255).astype(np.uint8)


def _obs_dict(n_obs: int, actions: np.ndarray, rng: np.random.Generator) -> dict[str, object]:
    """Observation pickle with the real keys and dtypes: arrays stacked [T_obs, ...], Python lists otherwise."""
    full_state = np.zeros((n_obs, 7))
    full_state[0] = [0.3, 0.0, 0.1, 0.0, -0.1, 0.0, 1.0]
    for t in range(1, n_obs):
        full_state[t, :6] = full_state[t - 1, :6] + actions[t - 1, :6]
        full_state[t, 6] = actions[t - 1, 6]
    eef = np.tile(np.eye(4), (n_obs, 1, 1))
    eef[:, :3, 3] = full_state[:, :3]
    return {
        "full_state": full_state,
        "state": full_state.copy(),
        "qpos": rng.normal(0, 0.5, size=(n_obs, 6)),
        "qvel": rng.normal(0, 0.05, size=(n_obs, 6)),
        "joint_effort": rng.normal(0, 1, size=(n_obs, 6)),
        "desired_state": full_state + rng.normal(0, 1e-3, size=full_state.shape),
        "time_stamp": [1689000000.0 + 0.2 * t for t in range(n_obs)],
        "eef_transform": eef,
        "high_bound": np.tile([0.41, 0.25, 0.23, 1.57, 1.0], (n_obs, 1)),
        "low_bound": np.tile([0.12, -0.25, 0.04, -1.57, 0.0], (n_obs, 1)),
        "env_done": [False] * n_obs,
        "t_get_obs": [0.01] * n_obs,
        "task_stage": [0] * n_obs,
    }


def _write_pickle(path: Path, obj: object) -> None:
    with open(path, "wb") as f:
        pickle.dump(obj, f)


def write_trajectory(traj_dir: Path, task: SampleTask, n_frames: int, traj_seed: int, n_cameras: int) -> None:
    from PIL import Image

    rng = np.random.default_rng(traj_seed)
    n_act = n_frames - 1
    actions = np.concatenate([rng.normal(0, 0.01, size=(n_act, 6)),
                              (np.arange(n_act) < n_act // 2).astype(float)[:, None]], axis=1)  # open then close
    for cam in range(n_cameras):
        cam_dir = traj_dir / f"images{cam}"
        cam_dir.mkdir(parents=True)
        for t in range(n_frames):
            frame = render_frame(t, n_frames, traj_seed, cam)
            Image.fromarray(frame).save(cam_dir / f"im_{t}.jpg", quality=95)  # cv2's default quality
    (traj_dir / "depth_images0").mkdir()  # depth cameras exist in real data; converters ignore them
    _write_pickle(traj_dir / "obs_dict.pkl", _obs_dict(n_frames, actions, rng))
    if task.dict_actions:
        policy_out: list[object] = [
            {"actions": a, "new_robot_transform": np.eye(4), "delta_robot_transform": np.eye(4),
             "policy_type": "VRTeleopPolicy"} for a in actions
        ]
    else:
        policy_out = list(actions)  # older data stores bare arrays
    _write_pickle(traj_dir / "policy_out.pkl", policy_out)
    _write_pickle(traj_dir / "agent_data.pkl", {"traj_ok": True, "term_t": n_frames - 1})
    if task.instructions:
        lines = [*task.instructions, f"confidence: {0.8 + 0.01 * (traj_seed % 10):.2f}"]
        (traj_dir / "lang.txt").write_text("\n".join(lines) + "\n")


def write_sample(out: Path, n_trajectories: int = 4, n_frames: int = 20, n_cameras: int = 3, seed: int = 0) -> Path:
    """Write the sample raw tree under `out` and return `out`.

    Args:
        n_trajectories: per dated dir (split 0.9 -> all but one go to train when n >= 2).
        n_frames: observations per trajectory (actions = n_frames - 1).
        n_cameras: images0..images<n-1>.

    Raises:
        DataToolsError: `out` exists and is not empty.
    """
    if out.exists() and any(out.iterdir()):
        raise DataToolsError(f"{out}: not empty; `bdv2 data sample` writes into a new or empty directory")
    for task_index, task in enumerate(TASKS):
        dated = out / task.rel / task.dated
        dated.mkdir(parents=True, exist_ok=True)
        config = {"agent": {"env": ["WidowXEnv", {"camera_topics": CAMERA_TOPICS[:n_cameras]}]}}
        (dated / "config.json").write_text(json.dumps(config, indent=4))
        (dated / "collection_metadata.json").write_text(json.dumps({"date_time": "_" + task.dated}))
        for itr in range(n_trajectories):
            traj = dated / "raw" / f"traj_group{itr // 1000}" / f"traj{itr}"
            write_trajectory(traj, task, n_frames, seed * 1000 + task_index * 100 + itr, n_cameras)
    return out
