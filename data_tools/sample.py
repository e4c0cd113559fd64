"""The built-in data: a small synthetic BridgeData V2 raw tree in the real layout (see raw.py's docstring),
with behaviour a policy can learn. Used by the demo and by the tests (which add faults to it). Deterministic
for a given seed. Contents (every trajectory: 640x480 JPEGs per camera, obs_dict.pkl, policy_out.pkl,
agent_data.pkl)::

    <out>/bridge_data_v2/toykitchen1/put_carrot_in_pot/00/2023-07-11_14-06-57/   dict actions, lang + confidence
    <out>/bridge_data_v2/toykitchen1/open_drawer/00/2022-05-02_10-00-00/         two instructions per trajectory
    <out>/rss/toykitchen2/sweep_beans/00/2021-06-15_09-30-00/                    before 2021-07-23: latency
                                                                                 shift; array actions; no lang.txt
Convert it with `--depth 5` (the original's default).

The scenes, drawn from above by every camera (each with its own placement): a wooden table, large
coloured objects near fixed homes (within JITTER), and a dark end effector that starts anywhere above the
table, drawn larger the higher it is and with its fingers apart while the gripper is open. A scripted
proportional controller moves it in straight lines through the task's waypoints (each step covers GAIN of
the remaining way), spending one still step to close or open the gripper. The state (`full_state`: xyz, rpy,
gripper) is exactly what the images show, so the trainer's relabelled actions (state deltas + binarised
gripper) are a function of the scene and of which object the trajectory is about:

- put_carrot_in_pot: a carrot, a corn, an eggplant and a pot. The end effector goes to one of the three
  (TARGET_CYCLE; lang.txt names it), closes, carries it to the pot and opens; in the pot
  little of it shows. The current frame cannot tell which object comes next; a later frame (a goal) can.
- open_drawer: one drawer. Go to its handle, close, pull it towards the robot, open. A single target: the
  current frame says everything.
- sweep_beans: piles of red, white and green beans and a dustpan. The gripper stays closed (it holds a
  brush), goes to one pile and pushes it into the dustpan, where it disappears, then lifts. No lang.txt,
  as the scripted data of that era. Which pile: as for put_carrot_in_pot.

Roll, pitch and yaw are the same in every frame of every trajectory (WRIST_RPY), so their deltas are 0 and
nothing outside the scene tells trajectories apart. A policy without goals can at best head for the average
of the candidate objects; one given a goal image can head for the right one.
"""

from __future__ import annotations

import functools
import json
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import DataToolsError

WIDTH, HEIGHT = 640, 480
GAIN, SNAP = 0.4, 0.02
"""Each step the end effector covers GAIN of the way to its waypoint, or all of it within SNAP metres."""
GRASP_Z, CARRY_Z = 0.05, 0.1
WORKSPACE = ((0.15, 0.38), (-0.2, 0.2))
"""x (away from the robot) and y (to its left) ranges where the end effector starts, metres."""


@dataclass(frozen=True)
class SampleTask:
    rel: str
    dated: str
    targets: tuple[tuple[str, tuple[int, int, int], tuple[float, float]], ...]
    """The objects the end effector may go to: (name, RGB colour, home (x, y) in metres); one per trajectory."""
    instructions: tuple[str, ...]
    """lang.txt lines, "{target}" replaced by the target's name; empty: no lang.txt (unlabeled)."""
    dict_actions: bool


TASKS = (
    SampleTask("bridge_data_v2/toykitchen1/put_carrot_in_pot/00", "2023-07-11_14-06-57",
               (("carrot", (240, 120, 30), (0.38, 0.15)), ("corn", (245, 215, 60), (0.38, -0.14)),
                ("eggplant", (110, 40, 140), (0.16, 0.18))),
               ("put the {target} in the pot",), True),
    SampleTask("bridge_data_v2/toykitchen1/open_drawer/00", "2022-05-02_10-00-00",
               (("drawer", (235, 235, 240), (0.3, 0.0)),), ("open the {target}", "pull the {target} open"), True),
    SampleTask("rss/toykitchen2/sweep_beans/00", "2021-06-15_09-30-00",
               (("red beans", (190, 40, 40), (0.38, -0.18)), ("white beans", (235, 230, 205), (0.22, -0.02)),
                ("green beans", (60, 150, 60), (0.38, 0.12))),
               (), False),
)
WRIST_RPY = (0.0, -0.1, 0.0)
"""The wrist's roll, pitch and yaw: the same in every trajectory, so nothing but the scene tells them apart."""
DEST_HOMES = ((0.15, -0.16), (0.0, 0.0), (0.14, 0.2))
"""Per task: the home of the pot, nothing, the dustpan."""
TARGET_CYCLE = (0, 1, 0, 2)
"""Which object trajectory i is about: TARGET_CYCLE[i % 4]. The first (the carrot) comes twice as often, and
trajectories 0 and 2 of a small tree, which tests/data_tools read for their instruction, are about it."""
JITTER = 0.02
"""Objects lie within this many metres (per axis) of their home; the end effector starts anywhere."""
CAMERA_TOPICS = ["/D435/color/image_raw", "/blue/image_raw", "/wrist/image_raw"]
# Per camera: pixels per metre, the pixel (col, row) of (x, y) = (0.25, 0), and whether y is mirrored.
_CAMERAS = ((1100.0, (320.0, 250.0), False), (900.0, (330.0, 240.0), True), (1300.0, (310.0, 260.0), False))
POT_COLOUR, DUSTPAN_COLOUR = (110, 110, 120), (85, 85, 100)
EFFECTOR_COLOUR, CABINET_COLOUR = (30, 30, 35), (125, 80, 45)
OBJECT_RADIUS, PULL = 0.065, 0.1
"""Metres: the objects' radius; how far the drawer is pulled (towards the robot)."""


@dataclass(frozen=True)
class Scene:
    """One trajectory's world: object positions (x, y) and which object the trajectory is about."""

    objects: np.ndarray  # [n_targets, 2]
    target: int
    dest: np.ndarray  # [2]; where the object goes: the pot, the dustpan (unused by open_drawer)
    start: np.ndarray  # [3] end effector xyz
    rpy: np.ndarray  # [3]


def make_scene(task: SampleTask, itr: int, rng: np.random.Generator) -> Scene:
    """Objects near their homes, the end effector anywhere above the table; the target follows TARGET_CYCLE
    with the trajectory index."""
    homes = np.array([home for _, _, home in task.targets] + [DEST_HOMES[TASKS.index(task)]])
    pts = homes + rng.uniform(-JITTER, JITTER, size=homes.shape)
    start = rng.uniform([WORKSPACE[0][0], WORKSPACE[1][0], 0.15], [WORKSPACE[0][1], WORKSPACE[1][1], 0.2])
    target = TARGET_CYCLE[itr % len(TARGET_CYCLE)] % len(task.targets)
    return Scene(pts[:-1], target, pts[-1], start, np.array(WRIST_RPY))


def waypoints(task_index: int, scene: Scene) -> list[tuple[np.ndarray, float | None]]:
    """(xyz to reach, gripper command once there: 1 open, 0 closed, None no change) for each task."""
    obj = np.array([*scene.objects[scene.target], GRASP_Z])
    if task_index == 0:  # pick, carry to the pot, release
        return [(obj, 0.0), (np.array([*scene.dest, CARRY_Z]), 1.0)]
    if task_index == 1:  # grasp the handle, pull towards the robot, release
        return [(obj, 0.0), (obj - np.array([PULL, 0.0, 0.0]), 1.0)]
    dest = np.array([*scene.dest, GRASP_Z])  # push the beans into the dustpan, lift the brush
    return [(obj, None), (dest, None), (dest + np.array([0.0, 0.0, CARRY_Z - GRASP_Z]), None)]


def simulate(task_index: int, scene: Scene, n_frames: int) -> tuple[np.ndarray, np.ndarray]:
    """The scripted controller: full_state [n_frames, 7] and commanded actions [n_frames - 1, 7]."""
    pos, grip = scene.start.copy(), 0.0 if task_index == 2 else 1.0
    plan = waypoints(task_index, scene)
    states = [np.array([*pos, *scene.rpy, grip])]
    actions = []
    for _ in range(n_frames - 1):
        command = grip
        while plan and np.allclose(pos, plan[0][0]) and plan[0][1] is None:
            plan.pop(0)  # reached, no gripper change: go on to the next waypoint in the same step
        if plan and np.allclose(pos, plan[0][0]):
            command = plan.pop(0)[1] or 0.0  # one still step to close or open the gripper
            move = np.zeros(3)
        elif plan:
            gap = plan[0][0] - pos
            move = gap if np.linalg.norm(gap) <= SNAP else GAIN * gap
        else:
            move = np.zeros(3)
        pos, grip = pos + move, command
        actions.append(np.array([*move, 0.0, 0.0, 0.0, command]))
        states.append(np.array([*pos, *scene.rpy, grip]))
    return np.array(states), np.array(actions).reshape(-1, 7)


def object_tracks(task_index: int, scene: Scene, states: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where the target object is in each frame [n_frames, 2] (it moves with the end effector while held, or,
    for the beans, while the brush is down on them) and its drawn radius [n_frames]: once in the pot only a
    little of it shows, once in the dustpan nothing."""
    obj = scene.objects[scene.target].copy()
    track, radius = [], []
    held = done = False
    for state in states:
        at = np.allclose(state[:2], obj) or held
        was_held = held
        held = (state[6] < 0.5 and at) if task_index < 2 else (at and state[2] <= GRASP_Z + 1e-9)
        if held:
            obj = state[:2].copy()
        done = done or (task_index == 0 and was_held and not held) or (
            task_index == 2 and held and np.allclose(obj, scene.dest))
        track.append(obj.copy())
        radius.append(OBJECT_RADIUS if not done else 0.02 if task_index == 0 else 0.0)
    return np.array(track), np.array(radius)


@functools.lru_cache(maxsize=len(_CAMERAS))
def _table(camera: int) -> np.ndarray:
    """The camera's empty table: a wood gradient with grain and fixed sensor noise (so JPEGs are not
    trivially small), int16 [H, W, 3]."""
    ys, xs = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float32)
    img = np.empty((HEIGHT, WIDTH, 3), dtype=np.float32)
    img[..., 0] = 160 + 50 * xs / WIDTH + 8 * np.sin(ys / 9.0 + camera)
    img[..., 1] = 115 + 35 * ys / HEIGHT
    img[..., 2] = 75 + 15 * camera
    img += np.random.default_rng(camera).normal(0, 2, size=(HEIGHT, WIDTH, 1))
    return img.astype(np.int16)


class Camera:
    """A fixed camera looking down at the table: metres on the table -> pixels, and painting there."""

    def __init__(self, index: int) -> None:
        self.scale, (self.col0, self.row0), mirrored = _CAMERAS[index % len(_CAMERAS)]
        self.sign = 1.0 if mirrored else -1.0
        self.table = _table(index)

    def px(self, xy: np.ndarray) -> tuple[float, float]:
        """(col, row) of a table point (x, y) in metres."""
        return self.col0 + self.sign * self.scale * float(xy[1]), self.row0 - self.scale * (float(xy[0]) - 0.25)

    def disc(self, img: np.ndarray, xy: np.ndarray, radius: float, colour: tuple[int, ...]) -> None:
        self._paint(img, xy, radius, radius, colour, round_=True)

    def box(self, img: np.ndarray, xy: np.ndarray, half_x: float, half_y: float, colour: tuple[int, ...]) -> None:
        self._paint(img, xy, half_x, half_y, colour, round_=False)

    def _paint(self, img: np.ndarray, xy: np.ndarray, half_x: float, half_y: float, colour: tuple[int, ...],
               round_: bool) -> None:
        col, row = self.px(xy)
        hr, hc = half_x * self.scale, half_y * self.scale  # x runs along rows, y along columns
        r0, r1 = max(int(row - hr), 0), min(int(row + hr) + 1, HEIGHT)
        c0, c1 = max(int(col - hc), 0), min(int(col + hc) + 1, WIDTH)
        if r0 >= r1 or c0 >= c1:
            return
        if round_:
            rr, cc = np.mgrid[r0:r1, c0:c1]
            mask = ((rr - row) / hr) ** 2 + ((cc - col) / hc) ** 2 <= 1.0
            img[r0:r1, c0:c1][mask] = colour
        else:
            img[r0:r1, c0:c1] = colour


def effector_half(z: float) -> float:
    """Half the drawn end effector's size, metres: higher is larger, as seen from above."""
    return 0.03 + 0.2 * float(z)


def render_frames(task_index: int, scene: Scene, states: np.ndarray, camera: int) -> list[np.ndarray]:
    """The trajectory's RGB frames (uint8 [480, 640, 3]) from one camera."""
    task, cam = TASKS[task_index], Camera(camera)
    base = cam.table.copy()
    for i, (_, colour, _) in enumerate(task.targets):
        if i != scene.target:
            cam.disc(base, scene.objects[i], OBJECT_RADIUS, colour)
    if task_index == 0:
        cam.disc(base, scene.dest, 0.08, POT_COLOUR)
        cam.disc(base, scene.dest, 0.06, (70, 70, 78))
    if task_index == 2:
        cam.box(base, scene.dest, 0.05, 0.07, DUSTPAN_COLOUR)
    handle0 = scene.objects[scene.target]
    if task_index == 1:  # the cabinet, beyond the drawer front
        cam.box(base, handle0 + np.array([0.05, 0.0]), 0.04, 0.08, CABINET_COLOUR)
    np.clip(base, 0, 255, out=base)
    base = base.astype(np.uint8)
    colour = task.targets[scene.target][1]
    frames = []
    for state, obj, radius in zip(states, *object_tracks(task_index, scene, states), strict=True):
        img = base.copy()
        if task_index == 1:  # the open part of the drawer, its front and its handle
            opening = (handle0[0] - obj[0]) / 2 + 0.02
            cam.box(img, (obj + handle0) / 2 + np.array([0.02, 0.0]), opening, 0.07, (60, 40, 25))
            cam.box(img, obj + np.array([0.01, 0.0]), 0.012, 0.075, (190, 140, 90))
            cam.box(img, obj, 0.015, 0.05, colour)
        elif radius > 0:
            cam.disc(img, obj, radius, colour)
        half = effector_half(state[2])
        gap = 0.8 * half * state[6]  # the fingers open wide
        cam.box(img, state[:2] + np.array([0.0, half / 2 + gap]), half, half / 3, EFFECTOR_COLOUR)
        cam.box(img, state[:2] - np.array([0.0, half / 2 + gap]), half, half / 3, EFFECTOR_COLOUR)
        cam.box(img, state[:2] + np.array([0.6 * half, 0.0]), half / 3, half / 2 + gap, EFFECTOR_COLOUR)
        frames.append(img)
    return frames


def _obs_dict(full_state: np.ndarray, rng: np.random.Generator) -> dict[str, object]:
    """Observation pickle with the real keys and dtypes: arrays stacked [T_obs, ...], Python lists otherwise."""
    n_obs = len(full_state)
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


def write_trajectory(traj_dir: Path, task_index: int, itr: int, n_frames: int, traj_seed: int,
                     n_cameras: int) -> None:
    from PIL import Image

    task = TASKS[task_index]
    rng = np.random.default_rng(traj_seed)
    scene = make_scene(task, itr, rng)
    states, actions = simulate(task_index, scene, n_frames)
    actions[:, :6] += rng.normal(0, 1e-4, size=(len(actions), 6))  # commanded, not reached: a little off
    for cam in range(n_cameras):
        cam_dir = traj_dir / f"images{cam}"
        cam_dir.mkdir(parents=True)
        for t, frame in enumerate(render_frames(task_index, scene, states, cam)):
            Image.fromarray(frame).save(cam_dir / f"im_{t}.jpg", quality=95)  # cv2's default quality
    (traj_dir / "depth_images0").mkdir()  # depth cameras exist in real data; converters ignore them
    _write_pickle(traj_dir / "obs_dict.pkl", _obs_dict(states, rng))
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
        name = task.targets[scene.target][0]
        lines = [*(s.format(target=name) for s in task.instructions), f"confidence: {0.8 + 0.01 * (itr % 10):.2f}"]
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
            write_trajectory(traj, task_index, itr, n_frames, seed * 1000 + task_index * 100 + itr, n_cameras)
    return out
