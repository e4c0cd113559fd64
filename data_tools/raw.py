"""Reader of the BridgeData V2 raw format: one trajectory directory -> one `Episode` (numpy only, no TF).

Owns the restricted unpickler, the image decoder, the length rule (`align_lengths`) and every quirk of the
original `bridgedata_raw_to_numpy.py` (https://github.com/rail-berkeley/bridge_data_v2) that concerns a single
trajectory. The tree above it (task dirs, dated dirs, splits) belongs to `layout.py`.

A trajectory directory::

    <dated dir YYYY-MM-DD_HH-MM-SS>/raw/traj_group<G>/traj<N>/
        obs_dict.pkl          dict: full_state float64 [T_obs, 7], time_stamp list[float] (T_obs), ...
        policy_out.pkl        list of T_obs - 1 entries: dicts with 'actions' float[7], or plain arrays
        lang.txt              optional; one instruction per line, lines containing "confidence" dropped
        images0/im_0.jpg ...  one dir per RGB camera, 640x480 JPEG; depth_images*/ are ignored
"""

from __future__ import annotations

import io
import pickle
import re
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from pathlib import Path
from typing import Any

import numpy as np

from .errors import BadTrajectory, UnsafePickleError

# "Data collected prior to 7-23 has a delay of 1" (original converter): action k belongs to observation k+1.
LATENCY_CUTOFF = datetime(2021, 7, 23)
DATED_DIR_FORMAT = "%Y-%m-%d_%H-%M-%S"


class ResizeMode(str, Enum):
    """How frames are decoded before the LANCZOS resize."""

    EXACT = "exact"
    """Full-size decode, as the original: pixel-identical output."""
    DRAFT = "draft"
    """libjpeg DCT-domain downscale to the smallest power-of-two size still >= the target, then LANCZOS.
    Visually equivalent (max abs difference of a few grey levels) and 2-4x faster at 128 px."""


# The globals a numpy/builtins pickle needs (protocols 2-5, numpy 1.x and 2.x module names). Nothing else is
# ever resolved, so a pickle cannot reach os.system, subprocess, eval, or any constructor with side effects.
_ALLOWED_GLOBALS = frozenset(
    {
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy._core.numeric", "_frombuffer"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("_codecs", "encode"),  # protocol 2 stores array bytes as latin-1 text
    }
)


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, file: io.BufferedIOBase, path: str) -> None:
        super().__init__(file)
        self._path = path

    def find_class(self, module: str, name: str) -> Any:
        # numpy 1.x pickles say numpy.core; numpy 2 renamed it numpy._core (the old name warns).
        canonical = "numpy._core" + module[len("numpy.core"):] if module.startswith("numpy.core") else module
        if (canonical, name) not in _ALLOWED_GLOBALS:
            raise UnsafePickleError(
                self._path,
                f"refused to load '{module}.{name}': raw-data pickles may hold only numpy arrays, lists, "
                "dicts and scalars (this file may be malicious; do not open it with plain pickle)",
            )
        return super().find_class(canonical, name)


def load_pickle(path: Path) -> Any:
    """Load a raw-data pickle with the restricted unpickler.

    Raises:
        BadTrajectory: the file is missing or not a readable pickle.
        UnsafePickleError: the pickle refers to anything but numpy arrays, lists, dicts and scalars.
    """
    try:
        with path.open("rb") as f:  # a local file or a URL (bdv2.paths)
            return _RestrictedUnpickler(f, str(path)).load()
    except FileNotFoundError:
        raise BadTrajectory(str(path.parent), f"missing {path.name}") from None
    except UnsafePickleError:
        raise
    except Exception as e:
        raise BadTrajectory(str(path.parent), f"unreadable {path.name}: {type(e).__name__}: {e}") from None


def parse_dated_dir(name: str) -> datetime | None:
    """The collection time encoded in a dated dir name, or None if the name is not a date."""
    try:
        return datetime.strptime(name, DATED_DIR_FORMAT)
    except ValueError:
        return None


def needs_latency_shift(dated: datetime) -> bool:
    return dated < LATENCY_CUTOFF


def read_language(traj_dir: Path) -> list[str]:
    """Instructions from lang.txt, the original's rule: every line not containing "confidence", stripped.

    A missing file means unlabeled: [""]. Blank lines are kept as "" (as the original does).
    """
    path = traj_dir / "lang.txt"
    if not path.exists():
        return [""]
    text = path.read_bytes().decode("utf-8", errors="replace")
    return [line.strip() for line in io.StringIO(text, newline=None) if "confidence" not in line]


def camera_dirs(traj_dir: Path) -> list[Path]:
    """RGB camera dirs (name contains 'images', not 'depth'), ordered by the number after 'images'."""
    found = []
    for entry in traj_dir.iterdir():
        match = re.fullmatch(r"images(\d+)", entry.name)
        if entry.is_dir() and match and "depth" not in entry.name:
            found.append((int(match.group(1)), entry))
    return [p for _, p in sorted(found)]


def count_frames(cam_dir: Path) -> int:
    return sum(1 for p in cam_dir.iterdir() if p.name.startswith("im_") and p.name.endswith(".jpg"))


def load_frame(path: Path, im_size: int, mode: ResizeMode) -> np.ndarray:
    """One JPEG -> uint8 [im_size, im_size, 3], squashed (aspect ratio not kept), LANCZOS as the original."""
    from PIL import Image  # Pillow is needed only by the raw readers

    with path.open("rb") as f, Image.open(f) as im:
        if mode is ResizeMode.DRAFT:
            # Draft picks a scale whose result is still >= (im_size, im_size), so LANCZOS only ever shrinks.
            im.draft("RGB", (im_size, im_size))
        rgb = im if im.mode == "RGB" else im.convert("RGB")
        out = rgb.resize((im_size, im_size), Image.Resampling.LANCZOS)
    return np.asarray(out, dtype=np.uint8)


def load_camera(
    traj_dir: Path, cam_dir: Path, frames: range, n_frames: int, im_size: int, mode: ResizeMode
) -> np.ndarray:
    """Decode frames `frames` of one camera -> uint8 [len(frames), S, S, 3]."""
    # The original opens im_0..im_{n-1} of every camera, so a camera short of frames skips the trajectory.
    if not (cam_dir / f"im_{n_frames - 1}.jpg").exists():
        raise BadTrajectory(str(traj_dir), f"{cam_dir.name} has fewer frames than images0 ({n_frames})")
    out = np.empty((len(frames), im_size, im_size, 3), dtype=np.uint8)
    for i, t in enumerate(frames):
        path = cam_dir / f"im_{t}.jpg"
        try:
            out[i] = load_frame(path, im_size, mode)
        except FileNotFoundError:
            raise BadTrajectory(str(traj_dir), f"missing {cam_dir.name}/{path.name}") from None
        except Exception as e:
            raise BadTrajectory(str(traj_dir), f"cannot decode {cam_dir.name}/{path.name}: {e}") from None
    return out


def read_actions(traj_dir: Path) -> list[np.ndarray]:
    """policy_out.pkl -> one action per step. Entries are dicts with 'actions' (teleop) or arrays (older)."""
    entries = load_pickle(traj_dir / "policy_out.pkl")
    if not isinstance(entries, list | tuple) or len(entries) == 0:
        raise BadTrajectory(str(traj_dir), "policy_out.pkl is not a non-empty list")
    if isinstance(entries[0], dict):
        try:
            entries = [e["actions"] for e in entries]
        except (KeyError, TypeError):
            raise BadTrajectory(str(traj_dir), "policy_out.pkl: an entry has no 'actions' key") from None
    return [np.asarray(a) for a in entries]


@dataclass(frozen=True)
class Episode:
    """One trajectory after the original's alignment: T transitions (obs t -> next obs t+1 under action t)."""

    path: str
    images: dict[str, np.ndarray]
    """camera name -> uint8 [T + 1, S, S, 3]: frame t is observation t, frame t + 1 next observation t."""
    state: np.ndarray
    """full_state rows, [T + 1, 7], dtype as pickled (float64)."""
    time_stamp: list[float]
    """T + 1 values."""
    actions: list[np.ndarray]
    """T actions, dtype as pickled."""
    language: list[str]

    @property
    def length(self) -> int:
        return len(self.actions)


@dataclass(frozen=True)
class Alignment:
    """Which observations and actions of a raw trajectory make its T transitions."""

    start: int
    """First observation used: 1 with the pre-2021-07-23 latency shift, else 0."""
    stop: int
    """One past the last observation used."""

    @property
    def length(self) -> int:
        """T, the number of transitions: observations start..stop-1 pair with actions 0..T-1."""
        return self.stop - 1 - self.start


def align_lengths(where: str, frames: dict[str, int], n_states: int, n_stamps: int, n_actions: int,
                  latency_shift: bool) -> Alignment:
    """The length rule of the raw format, the one both `read_trajectory` (the converters) and `data inspect`
    (summary.py) apply, so inspect flags exactly the trajectories the converters skip.

    Args:
        frames: RGB camera dir name -> its im_*.jpg count, in camera order (`camera_dirs`).
        n_states, n_stamps: rows of obs_dict.pkl's full_state and time_stamp.
        n_actions: entries of policy_out.pkl.

    The original zips cameras, states and time stamps: images0's frame count, the states and the time stamps,
    the shortest of them, decide the observations; every other camera must have at least as many frames
    (the original opens im_0..im_<n-1> of every camera; extra frames are ignored). The latency shift drops the
    first observation and the last action. T = observations - 1 must be >= 1 and equal the actions left.

    Raises:
        BadTrajectory: no camera, cameras not starting at images0, a camera short of frames, too few frames,
            or a length mismatch.
    """
    if not frames:
        raise BadTrajectory(where, "no images* directory")
    first = next(iter(frames))
    if first != "images0":
        raise BadTrajectory(where, f"camera dirs start at {first}, not images0")
    n_frames = frames[first]
    for cam, count in frames.items():
        if count < n_frames:
            raise BadTrajectory(where, f"mismatched lengths: {cam} has fewer frames than images0 "
                                       f"({count} < {n_frames})")
    start = 1 if latency_shift else 0
    aligned = Alignment(start, min(n_frames, n_states, n_stamps))
    if aligned.length < 1:
        raise BadTrajectory(where, f"too few frames: {n_frames} images, {n_states} states")
    if aligned.length != n_actions - start:
        raise BadTrajectory(
            where,
            f"length mismatch: {n_frames} frames, {n_states} states, {n_stamps} time stamps give "
            f"{aligned.length} transitions but policy_out.pkl has {n_actions - start} actions"
            + (" (after the pre-2021-07-23 latency shift)" if latency_shift else ""),
        )
    return aligned


def read_obs(traj_dir: Path) -> tuple[np.ndarray, list[float]]:
    """obs_dict.pkl -> (full_state [T_obs, 7] as pickled, time_stamp).

    Raises:
        BadTrajectory: missing or unreadable, or without 'full_state' or 'time_stamp'.
    """
    obs = load_pickle(traj_dir / "obs_dict.pkl")
    if not isinstance(obs, dict) or "full_state" not in obs or "time_stamp" not in obs:
        raise BadTrajectory(str(traj_dir), "obs_dict.pkl has no 'full_state' or 'time_stamp'")
    return np.asarray(obs["full_state"]), [float(t) for t in obs["time_stamp"]]


def frame_counts(cams: list[Path]) -> dict[str, int]:
    """camera dir name -> its frame count, in camera order (the `frames` argument of `align_lengths`)."""
    return {cam.name: count_frames(cam) for cam in cams}


def read_trajectory(
    traj_dir: Path,
    *,
    im_size: int,
    latency_shift: bool,
    cameras: str = "all",
    mode: ResizeMode = ResizeMode.EXACT,
) -> Episode:
    """Read and align one trajectory the way the original converter does (lengths: `align_lengths`).

    Args:
        traj_dir: the traj<N> directory.
        im_size: output side length S (frames are squashed to S x S with LANCZOS).
        latency_shift: drop the first observation and the last action (data before 2021-07-23).
        cameras: "all" (the numpy intermediate keeps every camera) or "first" (TFRecords hold images0 only).
        mode: exact (pixel-identical to the original) or draft decoding.

    Raises:
        BadTrajectory: missing or unreadable files, no images, too few frames, mismatched lengths.
    """
    # Read the cheap pickles and directory listings first, so a bad trajectory costs no JPEG decoding.
    state, time_stamp = read_obs(traj_dir)
    actions = read_actions(traj_dir)
    language = read_language(traj_dir)
    cams = camera_dirs(traj_dir)
    counts = frame_counts(cams)
    aligned = align_lengths(str(traj_dir), counts, len(state), len(time_stamp), len(actions), latency_shift)
    chosen = cams if cameras == "all" else cams[:1]
    # Only the frames that end up in a transition are decoded.
    frames = range(aligned.start, aligned.stop)
    images = {cam.name: load_camera(traj_dir, cam, frames, counts["images0"], im_size, mode) for cam in chosen}
    return Episode(
        path=str(traj_dir),
        images=images,
        state=state[aligned.start:aligned.stop],
        time_stamp=time_stamp[aligned.start:aligned.stop],
        actions=actions[:aligned.length],
        language=language,
    )


def load_npy(path: Path) -> Any:
    """Load an out.npy (a pickled object array) through the restricted unpickler instead of allow_pickle=True.

    Raises:
        UnsafePickleError: the file refers to anything but numpy arrays, lists, dicts and scalars.
        ValueError: not a .npy file.
    """
    from numpy.lib import format as npy_format

    with path.open("rb") as f:
        version = npy_format.read_magic(f)
        read_header = npy_format.read_array_header_1_0 if version == (1, 0) else npy_format.read_array_header_2_0
        shape, _, dtype = read_header(f)
        if dtype.hasobject:
            return _RestrictedUnpickler(f, str(path)).load()
        return np.fromfile(f, dtype=dtype).reshape(shape)
