"""A trained bdv2 run as a policy for a robot or a simulator:

    policy = load_policy("runs/gc_bc_kitchen")        # a run directory, a step directory or an imported checkpoint
    action = policy.act({"image": rgb_uint8, "proprio": state}, goal={"image": goal_rgb})   # float32 [7]
    policy.reset()                                     # a new episode: forget the observation history

    policy = load_policy(run, execute="receding:2")     # one action [7] per call from the predicted chunk

Actions come back in the robot's units (un-normalised with the run's statistics), shaped [7] for one
observation, [B, 7] for a batch, or [k, 7] / [B, k, 7] when the run predicts action chunks
(act_pred_horizon). ``policy.action_contract`` says what they mean (bdv2.data_tools.contract: frame, units,
latency, gripper range and polarity), from the run's metadata; `contract.check_actions` checks actions against it.
With ``execute`` (execute.py: "all", "receding:n", "ensemble:w"), ``act`` returns one action per control step
([7] or [B, 7]) and runs the network only when the strategy needs a new chunk (``replanned`` says whether it
did); pass every step's observation all the same, so the history stays current.
With an observation history (obs_horizon h), pass one frame per call and the policy keeps
the last h (the first frame repeated until there are h, as the original's eval.py), or pass [B, h, H, W, 3].

The forward pass is one jitted function per input shape. The Gaussian agents return the mean with
``deterministic=True`` and a sample otherwise; gc_ddpm_bc runs the reverse diffusion from ``seed`` with the
EMA parameters, drawing its noise in the same order and with the same generator as the original's
sample_actions (https://github.com/rail-berkeley/bridge_data_v2/blob/main/jaxrl_m/agents/continuous/gc_ddpm_bc.py),
so a seed gives the original's actions too.
"""

from __future__ import annotations

import copy
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from bdv2.paths import AnyPath

from . import ckpt_tree
from .ckpt_tree import CheckpointError
from .execute import Executor, parse_execute
from .settings import Algo

Array = np.ndarray
DDPM_CLIP = 2.0


def _stats(meta: Mapping[str, Any], key: str) -> tuple[Array, Array]:
    mean = np.asarray(meta[key]["mean"], np.float32)
    std = np.asarray(meta[key]["std"], np.float32)
    return mean, np.where(std < 1e-8, 1.0, std).astype(np.float32)  # as model.Metadata.load


def _ddpm_sampler(model: Any, steps: int, action_size: int) -> Callable[..., jax.Array]:
    from .agents import cosine_beta_schedule

    betas = cosine_beta_schedule(steps)
    alphas = 1 - betas
    alpha_hats = jnp.cumprod(alphas)

    def sample(params: Any, obs: Any, goals: Any, key: jax.Array) -> jax.Array:
        shape = (obs["image"].shape[0], action_size)
        first, rng = jax.random.split(key)

        def step(carry: tuple[jax.Array, jax.Array], t: jax.Array) -> tuple[tuple[jax.Array, jax.Array], None]:
            x, rng = carry
            eps = model.apply({"params": params}, obs, goals, x, jnp.full((shape[0], 1), t), train=False)
            x = (x - (1 - alphas[t]) / jnp.sqrt(1 - alpha_hats[t]) * eps) / jnp.sqrt(alphas[t])
            rng, noise_key = jax.random.split(rng)
            x = x + (t > 0) * jnp.sqrt(betas[t]) * jax.random.normal(noise_key, shape)
            return (jnp.clip(x, -DDPM_CLIP, DDPM_CLIP), rng), None

        (x, _), _ = jax.lax.scan(step, (jax.random.normal(first, shape), rng), jnp.arange(steps - 1, -1, -1))
        return x

    return sample


class Policy:
    """See the module docstring; build it with `load_policy`."""

    def __init__(self, run: Any, params: Any, metadata: Mapping[str, Any], execute: str | None = None) -> None:
        from .agents import make_agent

        self.run = run
        self.algo = run.algo
        s = run.settings
        self.obs_horizon: int | None = s.obs_horizon
        self.act_pred_horizon: int | None = s.act_pred_horizon
        self.use_proprio: bool = s.use_proprio
        self.metadata = dict(metadata)
        self.action_mean, self.action_std = _stats(metadata, "action")
        from bdv2.data_tools import contract

        self.action_contract: contract.ActionContract | None = contract.from_statistics(metadata)
        """What the actions act() returns mean; None when the metadata says nothing of it."""
        self.proprio_mean, self.proprio_std = _stats(metadata, "proprio")
        self.params = jax.device_put(params)
        model = make_agent(run).model
        self._history: deque[tuple[Array, Array | None]] = deque(maxlen=self.obs_horizon or 1)
        size = (self.act_pred_horizon or 1) * 7
        self.execute = execute
        self._executor: Executor | None = parse_execute(execute, self.act_pred_horizon or 1) if execute else None
        self.replanned = False
        """Whether the last ``act`` ran the network (always, without ``execute``)."""
        if self.algo is Algo.GC_DDPM_BC:
            sampler = _ddpm_sampler(model, s.diffusion_steps, size)
            self._forward = jax.jit(lambda p, o, g, k, det: sampler(p, o, g, k), static_argnums=4)
        else:
            def gaussian(p: Any, o: Any, g: Any, k: jax.Array, det: bool) -> jax.Array:
                dist: Any = model.apply({"params": p}, o, g, train=False)  # a distrax distribution
                return dist.mode() if det else dist.sample(seed=k)

            self._forward = jax.jit(gaussian, static_argnums=4)

    def reset(self) -> None:
        """Forget the observation history and the chunk being executed (call at the start of an episode)."""
        self._history.clear()
        if self._executor is not None:
            self._executor.reset()

    def episode(self) -> Policy:
        """A policy sharing these parameters and compiled functions with an episode state of its own (a fresh
        history and chunk): one per robot when several are served at once."""
        other = copy.copy(self)
        other._history = deque(maxlen=self._history.maxlen)
        other._executor = copy.deepcopy(self._executor)
        if other._executor is not None:
            other._executor.reset()
        other.replanned = False
        return other

    def act(self, observation: Mapping[str, Any], goal: Mapping[str, Any] | None = None,
            language: Any = None, *, seed: int = 0, deterministic: bool = True) -> Array:
        """Actions in the robot's units for one observation ([7] or [k, 7]) or a batch ([B, 7] or [B, k, 7]);
        with ``execute``, this step's action ([7] or [B, 7])."""
        image, proprio, batched = self._observation(observation)
        ex = self._executor
        if ex is not None and not ex.needs_plan():
            self.replanned = False
            return ex.next()
        actions = self._predict(image, proprio, batched, goal, language, seed, deterministic)
        self.replanned = True
        if ex is None:
            return actions
        ex.push(actions if self.act_pred_horizon is not None else actions[..., None, :])
        return ex.next()

    def _predict(self, image: Array, proprio: Array | None, batched: bool, goal: Mapping[str, Any] | None,
                 language: Any, seed: int, deterministic: bool) -> Array:
        obs: dict[str, Any] = {"image": image}
        if self.use_proprio:
            obs["proprio"] = proprio
        goals = self._goals(goal, language, image.shape[0])
        with jax.threefry_partitionable(False):  # the original's (jax 0.4) random bits, for DDPM sampling parity
            out = self._forward(self.params, obs, goals, jax.random.PRNGKey(seed), deterministic)
        actions = np.asarray(out, np.float32).reshape(image.shape[0], -1, 7) * self.action_std + self.action_mean
        if self.act_pred_horizon is None:
            actions = actions[:, 0]
        return actions if batched else actions[0]

    def _observation(self, observation: Mapping[str, Any]) -> tuple[Array, Array | None, bool]:
        if "image" not in observation:
            raise ValueError("observation needs 'image': uint8 [H, W, 3] or [B, H, W, 3]")
        image = np.asarray(observation["image"])
        if image.dtype != np.uint8 or image.shape[-1] != 3 or image.ndim not in (3, 4, 5):
            raise ValueError(f"observation['image'] must be uint8 [H, W, 3], [B, H, W, 3] (or [B, h, H, W, 3] "
                             f"with a history); got {image.dtype} {image.shape}")
        proprio = None
        if self.use_proprio:
            if observation.get("proprio") is None:
                raise ValueError("this run uses proprio (use_proprio: true): pass observation['proprio'] [7]")
            proprio = (np.asarray(observation["proprio"], np.float32) - self.proprio_mean) / self.proprio_std
        batched = image.ndim >= 4
        h = self.obs_horizon
        if image.ndim == 5:
            if h is None or image.shape[1] != h:
                raise ValueError(f"observation['image'] {image.shape}: this run takes a history of {h} frames")
            return image, None if proprio is None else proprio.reshape(image.shape[0], -1), True
        image = image if batched else image[None]
        proprio = None if proprio is None else proprio.reshape(image.shape[0], -1)
        if h is None:
            return image, proprio, batched
        if self._history and self._history[-1][0].shape != image.shape:
            self._history.clear()  # a new batch size or image size: a new episode
        if not self._history:
            self._history.extend([(image, proprio)] * h)
        else:
            self._history.append((image, proprio))
        frames = np.stack([f for f, _ in self._history], axis=1)  # [B, h, H, W, 3]
        props = None if proprio is None else np.stack(
            [p for _, p in self._history if p is not None], axis=1).reshape(len(image), -1)
        return frames, props, batched

    def _goals(self, goal: Mapping[str, Any] | None, language: Any, batch: int) -> dict[str, Any] | None:
        if self.algo is Algo.BC:
            return None
        if self.algo is Algo.LC_BC:
            return {"language": self._language(language, batch)}
        if goal is None or "image" not in goal:
            raise ValueError(f"{self.algo} is goal-conditioned: pass goal={{'image': uint8 [H, W, 3]}}")
        image = np.asarray(goal["image"])
        image = image if image.ndim == 4 else image[None]
        return {"image": np.broadcast_to(image, (batch, *image.shape[1:])) if len(image) == 1 else image}

    def _language(self, language: Any, batch: int) -> Array:
        if language is None:
            raise ValueError("lc_bc needs language=: an instruction embedding [E] / [B, E], or the instruction text "
                             "when the run has a text_encoder")
        if isinstance(language, str) or (isinstance(language, Sequence) and language
                                         and isinstance(language[0], str)):
            name = self.run.settings.text_encoder
            if not name:
                raise ValueError("this run has no text_encoder: pass the instruction's embedding, not its text")
            from .language import text_encoder

            texts = [language] if isinstance(language, str) else list(language)
            emb = text_encoder(name).encode(texts)
        else:
            emb = np.asarray(language, np.float32)
        emb = emb if emb.ndim == 2 else emb[None]
        return np.broadcast_to(emb, (batch, emb.shape[-1])) if len(emb) == 1 else emb


def load_params(run: Any, step_dir: AnyPath) -> Any:
    """The parameters a run acts with (its target params, as its evaluation uses), checked against its network."""
    from .checkpoint_io import abstract_params

    raw = ckpt_tree.restore_raw(step_dir)
    params = raw.get("target_params", raw.get("params"))
    if not isinstance(params, dict):
        raise CheckpointError(f"{step_dir}: no parameters inside")
    diff = ckpt_tree.first_difference(abstract_params(run), params)
    if diff is not None:
        raise CheckpointError(f"{step_dir}: the checkpoint does not fit the run's network ({diff})")
    return params


def load_policy(path: str | AnyPath, execute: str | None = None) -> Policy:
    """The policy of a run directory (its latest checkpoint), one of its step directories, or a directory
    written by `bdv2 checkpoint import`. ``execute``: how to execute action chunks (see the module docstring).

    Raises:
        CheckpointError: not such a directory, no checkpoint yet, or parameters that do not fit the config.
        ExecuteError: an ``execute`` that does not parse or does not fit the run's act_pred_horizon.
    """
    from .model import Run

    run_dir, step_dir = ckpt_tree.locate(path)
    snapshot = ckpt_tree.read_snapshot(run_dir)
    run = Run.from_dict(snapshot)
    if execute:
        parse_execute(execute, run.settings.act_pred_horizon or 1)  # a bad strategy fails before the restore
    return Policy(run, load_params(run, step_dir), snapshot["metadata"], execute)
