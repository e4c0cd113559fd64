"""The input pipeline: BridgeData TFRecords (data_tools/schema.py) -> batches of transitions, in tf.data.

`make_train_dataset` reads like the recipe of the original `BridgeDataset`
(https://github.com/rail-berkeley/bridge_data_v2/blob/main/jaxrl_m/data/bridge_dataset.py), one named
function per step (the trajectory- and transition-level ones are in transforms.py):

    files -> (train: shuffle + repeat) -> TFRecord -> enumerate            one element = one trajectory
    -> decode -> relabel actions -> normalise -> goals -> chunk            trajectory-level, [T, ...]
    -> unbatch -> (train: shuffle per source, weighted sampling)           transition-level
    -> batch(drop_remainder) -> prefetch
    train: the images are augmented on the device batch, in the jitted train step (augment.py)

Resuming. Every random draw is stateless. A pipeline started at step n (`train_iterator(run, n)`) seeds its
streams (file order, shuffle buffers, source mixing, goal draws) with `stream_seed(seed, n)` (the seed itself
for n = 0), and the train step keys the augmentation of step n's batch by (seed, n). Hence:
  * a run, fresh or resumed at step n, is deterministic given (seed, n): two resumptions from the same
    checkpoint train on the same batches, augmented alike (tests/trainer/test_resume.py);
  * a resumed run does not see the batches an uninterrupted run sees after step n, but batches of the same
    distribution: the same files, source weights, shuffle-buffer sizes, goal relabeling and augmentation
    ranges; its file order is a new seeded permutation from the resume point on (the interrupted epoch is
    not completed, so around a resume a file may be read once more or once less than the others);
  * resuming costs what a fresh start costs (open the files, fill the shuffle buffers), whatever n: nothing
    is replayed (bench/bench_resume.py).
TensorFlow must not take the GPU from JAX: call `hide_gpus_from_tf()` before anything else touches TF.

A source is converted TFRecords or an RLDS/TFDS dataset directory (the release as downloaded): the latter is
read through data_tools.rlds.episode_dataset, which yields schema.parse_example's keys, and from `decode` on
the two take the same path. With one file per split the two give the same trajectory stream, hence the same
batches (tests/trainer/test_train_rlds.py).

Multi-host (jax.distributed, process_count > 1): each host reads its own disjoint part of every source,
deterministically, and batches B / process_count rows; the loop assembles the global batch of B rows from
the hosts' local ones. Which part (`_shard_plan`):
  * at least process_count TFRecord files: the seeded file stream (the same on every host) is dealt out
    round-robin, so a host opens only its own files (goal seeds then differ from a single host's);
  * fewer files, or an RLDS directory: the trajectory stream is dealt out round-robin after `enumerate`, so
    each trajectory keeps the goal seed it has on a single host. For RLDS this still reads and
    decodes every episode on every host (the adapter gives no earlier hook): fine for the sample, wasteful
    on a pod; convert the release (`bdv2 data rlds-to-tfrecord`) for large multi-host jobs.
Tested (tests/trainer/test_train_multihost.py): the hosts' element sets are disjoint and their union is the
single-host set (both plans), the file stream dealt out, the per-host batch size, and one real two-process
run on this machine.
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, assert_never

import numpy as np

from bdv2.paths import as_path

from . import batching, language
from .errors import DataError
from .language import LanguageOptions
from .model import Metadata, Run
from .settings import GoalRelabeling
from .transforms import add_goals, chunk, decode, from_features, normalise, relabel_actions

if TYPE_CHECKING:
    import tensorflow as tf

Batch = dict[str, Any]
"""Nested dict of numpy arrays: observations/{image, proprio}, next_observations/..., goals/..., actions, ..."""


@dataclass(frozen=True)
class PipelineConfig:
    batch_size: int
    seed: int = 42
    relabel_actions: bool = True
    goal_relabeling: GoalRelabeling = GoalRelabeling.UNIFORM
    reached_proportion: float = 0.0
    goal_relabeling_kwargs: tuple[tuple[str, Any], ...] = ()
    """The strategy's own arguments (geometric's discount, delta_goals' goal_delta), as sorted items."""
    shuffle_buffer_size: int = 25000
    obs_horizon: int | None = None
    act_pred_horizon: int | None = None
    process_index: int = 0
    """This host's index under jax.distributed (jax.process_index()); 0 on a single host."""
    process_count: int = 1
    """Hosts reading the data (jax.process_count()); 1: a single host reads everything."""
    language: LanguageOptions = field(default_factory=LanguageOptions)
    """goals/language for lc_bc (trainer/language.py); off by default."""

    def __post_init__(self) -> None:
        if not 0 <= self.process_index < self.process_count:
            raise ValueError(f"process_index {self.process_index} outside [0, {self.process_count})")

    @classmethod
    def of(cls, run: Run, train: bool, process_index: int = 0, process_count: int = 1) -> PipelineConfig:
        """The pipeline of one host: ``batch_size`` is this host's share of the global batch size.

        Raises:
            ConfigError: the global batch size is not divisible by ``process_count``.
        """
        s = run.settings
        global_batch = s.train_batch_size if train else (s.val_batch_size or s.train_batch_size)
        key = "train_batch_size" if train else "val_batch_size"
        batching.check_divisible({key: global_batch}, process_count, run.config_file, "", unit="host(s)",
                                 context="(jax.process_count())")
        return cls(batch_size=global_batch // process_count,
                   seed=s.seed, relabel_actions=s.relabel_actions, goal_relabeling=s.goal_relabeling,
                   reached_proportion=s.reached_proportion,
                   goal_relabeling_kwargs=tuple(sorted(s.goal_relabeling_kwargs.items())),
                   shuffle_buffer_size=s.shuffle_buffer_size, obs_horizon=s.obs_horizon,
                   act_pred_horizon=s.act_pred_horizon, process_index=process_index, language=LanguageOptions.of(run),
                   process_count=process_count)


def hide_gpus_from_tf() -> None:
    """Keep TensorFlow on the CPU: otherwise it reserves most of the GPU memory and JAX runs out
    (flax examples/imagenet/main.py does the same)."""
    import tensorflow as tf

    tf.config.set_visible_devices([], "GPU")


# -- assembly -------------------------------------------------------------------------------------

class ShardPlan(enum.Enum):
    """How the hosts split a source of TFRecord files."""

    NONE = "none"
    """One host: it reads everything."""
    FILES = "files"
    """Deal out files: each host opens only its own."""
    ELEMENTS = "elements"
    """Deal out trajectories: too few files for every host to get one."""


def _shard_plan(n_files: int, cfg: PipelineConfig) -> ShardPlan:
    if cfg.process_count == 1:
        return ShardPlan.NONE
    return ShardPlan.FILES if n_files >= cfg.process_count else ShardPlan.ELEMENTS


def _trajectory_source(files: Sequence[str], rlds_dirs: Sequence[str], split: str, cfg: PipelineConfig, seed: int,
                       train: bool) -> tuple[tf.data.Dataset, Callable[[Any], dict[str, Any]]]:
    """(enumerated stream of this host's raw trajectories, the function decoding one into a trajectory)."""
    import tensorflow as tf

    if files and rlds_dirs:  # tasks.resolve_task refuses this; a hand-written run.json could still do it
        raise DataError(f"one source mixes TFRecord files ({files[0]}) and RLDS directories ({rlds_dirs[0]}); "
                        "give them separate include globs")
    language.check_sources(files, rlds_dirs, cfg.language)
    if rlds_dirs:
        from bdv2.data_tools import rlds

        ds = None
        for d in rlds_dirs:
            part = rlds.episode_dataset(as_path(d), split, language_embedding=cfg.language.stored)
            ds = part if ds is None else ds.concatenate(part)
        assert ds is not None
        if train:  # no per-file order to reshuffle here; the per-source shuffle buffer mixes trajectories
            ds = ds.repeat()
        ds = ds.enumerate()
        if cfg.process_count > 1:  # after enumerate: each trajectory keeps its single-host seed
            ds = ds.shard(cfg.process_count, cfg.process_index)
        return ds, functools.partial(from_features, load_language=cfg.language.load)
    plan = _shard_plan(len(files), cfg)
    ds = tf.data.TFRecordDataset(file_stream(files, cfg, seed, train), num_parallel_reads=tf.data.AUTOTUNE)
    ds = ds.enumerate()
    match plan:
        case ShardPlan.NONE:
            pass
        case ShardPlan.ELEMENTS:
            ds = ds.shard(cfg.process_count, cfg.process_index)
        case ShardPlan.FILES:
            # Local positions repeat across hosts: spread them so that no two hosts draw the same goal seeds.
            n, k = cfg.process_count, cfg.process_index
            ds = ds.map(lambda i, raw: (i * n + k, raw))
        case _:
            assert_never(plan)
    return ds, functools.partial(decode, load_language=cfg.language.load)


def file_stream(files: Sequence[str], cfg: PipelineConfig, seed: int, train: bool) -> tf.data.Dataset:
    """The TFRecord file names this host reads, in order: train: a new seeded order every epoch, endless.
    With at least process_count files, the stream all hosts compute alike is dealt out round-robin."""
    import tensorflow as tf

    if not files:
        raise DataError("no TFRecord files given")
    ds = tf.data.Dataset.from_tensor_slices(list(files))
    if train:  # a new, seeded file order every epoch
        ds = ds.shuffle(len(files), seed=seed, reshuffle_each_iteration=True).repeat()
    if _shard_plan(len(files), cfg) is ShardPlan.FILES:  # the same seeded order on every host: disjoint shares
        ds = ds.shard(cfg.process_count, cfg.process_index)
    return ds


def _transitions(files: Sequence[str], meta: Metadata, cfg: PipelineConfig, seed: int, train: bool,
                 rlds_dirs: Sequence[str] = ()) -> tf.data.Dataset:
    import tensorflow as tf

    ds, to_trajectory = _trajectory_source(files, rlds_dirs, "train" if train else "val", cfg, seed, train)

    def per_trajectory(i: tf.Tensor, raw: Any) -> dict[str, Any]:
        traj, instruction = language.take_instruction(to_trajectory(raw), tf.stack([tf.cast(seed, tf.int64), i]),
                                                      cfg.language)  # [T, ...]
        if cfg.relabel_actions:
            traj = relabel_actions(traj)
        traj = normalise(traj, meta)
        traj = add_goals(traj, tf.stack([tf.cast(seed, tf.int64), i]), cfg.goal_relabeling, cfg.reached_proportion,
                         dict(cfg.goal_relabeling_kwargs))
        traj = chunk(traj, cfg.obs_horizon, cfg.act_pred_horizon)
        del traj["truncates"]
        return language.attach(traj, instruction, cfg.language)  # goals/language; unlabeled: no step

    return ds.map(per_trajectory, num_parallel_calls=tf.data.AUTOTUNE).unbatch()


SourceSpec = tuple[Sequence[str], float] | tuple[Sequence[str], float, Sequence[str]]
"""(TFRecord files, weight) or (TFRecord files, weight, RLDS dataset dirs): one include glob of a task."""


def stream_seed(seed: int, start_step: int) -> int:
    """The seed of the streams (file order, shuffle buffers, source mixing, goals) of a pipeline started at
    ``start_step``: ``seed`` itself for a fresh run, else a value derived from (seed, start_step)."""
    if start_step == 0:
        return seed
    return int(np.random.SeedSequence([seed, start_step]).generate_state(1)[0] >> 1)  # < 2**31


def make_train_dataset(sources: Sequence[SourceSpec], meta: Metadata, cfg: PipelineConfig,
                       start_step: int = 0) -> tf.data.Dataset:
    """An endless dataset of batches [cfg.batch_size, ...] from weighted sources, deterministic given
    (cfg.seed, start_step): this host's part of the data when cfg.process_count > 1 (module docstring).
    Not augmented: augmentation runs in the train step (augment.py)."""
    import tensorflow as tf

    seed = stream_seed(cfg.seed, start_step)
    datasets = []
    for i, spec in enumerate(sources):
        files, weight = spec[0], spec[1]
        rlds_dirs = spec[2] if len(spec) > 2 else ()
        ds = _transitions(files, meta, cfg, seed + i, train=True, rlds_dirs=rlds_dirs)
        # Each source gets its share of the shuffle buffer, as the original.
        datasets.append(ds.shuffle(max(1, int(cfg.shuffle_buffer_size * weight)), seed=seed + i))
    weights = [spec[1] for spec in sources]
    ds = datasets[0] if len(datasets) == 1 else tf.data.Dataset.sample_from_datasets(
        datasets, weights, seed=seed, stop_on_empty_dataset=True)
    return ds.batch(cfg.batch_size, drop_remainder=True, num_parallel_calls=tf.data.AUTOTUNE).prefetch(
        tf.data.AUTOTUNE)


def make_val_dataset(files: Sequence[str], meta: Metadata, cfg: PipelineConfig,
                     rlds_dirs: Sequence[str] = ()) -> tf.data.Dataset:
    """One pass over the validation files (then RLDS dirs), fixed goals, no augmentation. On one host the last
    batch may be partial; with several hosts every batch is full, since the global batch is assembled from
    equal local parts."""
    import tensorflow as tf

    parts = [_transitions(files, meta, cfg, cfg.seed, train=False)] if files else []
    if rlds_dirs:
        parts.append(_transitions((), meta, cfg, cfg.seed, train=False, rlds_dirs=rlds_dirs))
    if not parts:
        raise DataError("no validation TFRecord files or RLDS directories given")
    ds = parts[0] if len(parts) == 1 else parts[0].concatenate(parts[1])
    return ds.batch(cfg.batch_size, drop_remainder=cfg.process_count > 1).prefetch(tf.data.AUTOTUNE)


def train_iterator(run: Run, start_step: int = 0, process_index: int = 0, process_count: int = 1) -> Iterator[Batch]:
    """Batches for steps start_step, start_step + 1, ...: streams restarted from (seed, start_step), as fast
    as a fresh start (module docstring: what a resumed run shares with an uninterrupted one).

    With process_count > 1, this host's local batches (train_batch_size / process_count rows each).
    """
    meta = Metadata.load(run.task.metadata)
    sources: list[SourceSpec] = [(s.train_files, s.weight, s.rlds_train) for s in run.task.sources]
    cfg = PipelineConfig.of(run, True, process_index, process_count)
    return _naming_data_loss(make_train_dataset(sources, meta, cfg, start_step).as_numpy_iterator(), run, "train")


def first_transitions(run: Run) -> list[tuple[float, dict[str, Any]]]:
    """(weight, one transition as numpy) per source of ``run``'s training data, before any shuffle buffer:
    what one slot of that source's shuffle buffer holds (the memory plan sizes the buffers from it)."""
    meta = Metadata.load(run.task.metadata)
    cfg = PipelineConfig.of(run, True)
    out = []
    for i, s in enumerate(run.task.sources):
        ds = _transitions(s.train_files, meta, cfg, cfg.seed + i, train=True, rlds_dirs=s.rlds_train)
        out.append((s.weight, next(iter(ds.take(1).as_numpy_iterator()))))
    return out


def val_batches(run: Run, devices: int, limit: int | None, process_index: int = 0,
                process_count: int = 1) -> Iterator[Batch]:
    """Validation batches, each trimmed to a multiple of `devices` (this host's devices); a split smaller than
    one batch yields its rows (trimmed) instead of nothing, and an empty split yields nothing. With several
    hosts: this host's local batches, all full (the loop stops at the first host to run out)."""
    files = [f for s in run.task.sources for f in s.val_files]
    rlds_dirs = [d for s in run.task.sources for d in s.rlds_val]
    if not files and not rlds_dirs:
        return
    meta = Metadata.load(run.task.metadata)
    ds = make_val_dataset(files, meta, PipelineConfig.of(run, False, process_index, process_count), rlds_dirs)
    for n, batch in enumerate(_naming_data_loss(ds.as_numpy_iterator(), run, "val")):
        if limit is not None and limit > 0 and n >= limit:
            return
        rows = len(batch["actions"]) // devices * devices
        if rows:
            yield batch if rows == len(batch["actions"]) else _take(batch, rows)


def _naming_data_loss(batches: Iterator[Batch], run: Run, split: str) -> Iterator[Batch]:
    """``batches``, with TensorFlow's DataLossError (which names no file: the pipeline reads many at once)
    turned into a DataError naming the damaged files of ``split``, found by reading them one at a time."""
    import tensorflow as tf

    try:
        yield from batches
    except tf.errors.DataLossError as e:
        from bdv2.data_tools import records, rlds

        files = [f for s in run.task.sources for f in (s.train_files if split == "train" else s.val_files)]
        dirs = [d for s in run.task.sources for d in (s.rlds_train if split == "train" else s.rlds_val)]
        files += [str(f) for d in dirs for f in rlds.open_dir(as_path(d)).shards.get(split, [])]
        raise DataError("data loss: " + records.explain_data_loss(
            files, e, check_hint=f"`bdv2 data inspect {run.settings.data_root}` checks them all")) from None


def _take(batch: Any, rows: int) -> Any:
    if isinstance(batch, dict):
        return {k: _take(v, rows) for k, v in batch.items()}
    return batch[:rows]
