"""The four agents as data: a Flax model plus a pure loss and a pure eval function, after the original's
bc.py, gc_bc.py, gc_ddpm_bc.py and lc_bc.py in
https://github.com/rail-berkeley/bridge_data_v2/blob/main/jaxrl_m/agents/continuous/.

    bc          -log pi(a | s)          Gaussian policy, fixed std 1, on Encoding(obs)
    gc_bc       -log pi(a | s, g)       the same on Encoding(obs ++ goal) (early goal concat)
    gc_ddpm_bc  DDPM eps-prediction     ScoreActor, cosine betas, 20 steps, EMA target (rate 0.002) used to sample
    lc_bc       -log pi(a | s, l)       the Gaussian policy on LCEncoding(obs, goals/language): a FiLM encoder
                                        conditioned on the instruction embedding (lc_bc.py, LCEncodingWrapper)

Every function here is pure; the loop (loop.py) owns the optimiser, the state and the jit.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, assert_never, cast

import flax.linen as nn
import jax
import jax.numpy as jnp

from .model import Run
from .networks import Encoding, GaussianPolicy, LCEncoding, ScoreActor, make_encoder
from .settings import Algo, EncoderName

Params = Any
Batch = dict[str, Any]
Metrics = dict[str, jax.Array]
LossFn = Callable[[Params, Batch, jax.Array], tuple[jax.Array, Metrics]]
EvalFn = Callable[[Params, Batch, jax.Array], Metrics]

ACTION_DIM = 7
FILM_ENCODERS = (EncoderName.RESNET_V1_34_BRIDGE_FILM, EncoderName.TINY_FILM)
DDPM_TARGET_UPDATE_RATE = 0.002


@dataclass(frozen=True)
class Agent:
    name: str
    model: nn.Module
    init: Callable[[jax.Array, Batch], Params]
    loss: LossFn
    """(params, batch, rng) -> (loss, metrics); dropout active."""
    evaluate: EvalFn
    """(target params, batch, rng) -> metrics including 'loss'; dropout off."""
    target_update_rate: float
    """Polyak rate of the target params; 1.0 = target is the params (BC agents do not use it)."""


def _goals(batch: Batch, goal_conditioned: bool) -> dict[str, jax.Array] | None:
    return batch["goals"] if goal_conditioned else None


def _flat_actions(batch: Batch) -> jax.Array:
    a = batch["actions"]  # [B, 7] or [B, k, 7]
    return a.reshape(a.shape[0], -1)  # [B, k * 7]


def gaussian_agent(run: Run, goal_conditioned: bool, action_size: int, language: bool = False) -> Agent:
    """bc, gc_bc, or (language=True) lc_bc, whose goals carry "language" [B, E] instead of being encoded as images."""
    s = run.settings
    encoding: Encoding | LCEncoding = (LCEncoding(make_encoder(s.encoder), s.use_proprio) if language
                           else Encoding(make_encoder(s.encoder), goal_conditioned, s.use_proprio))
    model = GaussianPolicy(encoding, tuple(s.hidden_dims), action_size, dropout=s.dropout)

    def init(rng: jax.Array, batch: Batch) -> Params:
        return model.init(rng, batch["observations"], _goals(batch, goal_conditioned))["params"]

    def stats(dist: Any, actions: jax.Array) -> Metrics:
        log_probs = dist.log_prob(actions)  # [B]
        mean = dist.mode()  # [B, A]
        std = dist.stddev()
        return {"loss": -log_probs.mean(), "actor_loss": -log_probs.mean(),
                "mse": ((mean - actions) ** 2).sum(-1).mean(), "log_probs": log_probs.mean(),
                "pi_actions": mean.mean(), "mean_std": std.mean(), "max_std": std.max()}

    def loss(params: Params, batch: Batch, rng: jax.Array) -> tuple[jax.Array, Metrics]:
        dist = model.apply({"params": params}, batch["observations"], _goals(batch, goal_conditioned), train=True,
                           rngs={"dropout": rng})
        m = stats(dist, _flat_actions(batch))
        return m["loss"], m

    def evaluate(params: Params, batch: Batch, rng: jax.Array) -> Metrics:
        dist = model.apply({"params": params}, batch["observations"], _goals(batch, goal_conditioned), train=False)
        return stats(dist, _flat_actions(batch))

    return Agent(run.algo, model, init, loss, evaluate, target_update_rate=1.0)


def cosine_beta_schedule(steps: int, s: float = 0.008) -> jax.Array:
    """Improved-DDPM cosine schedule (Nichol & Dhariwal 2021), betas clipped at 0.999 as jaxrl_m."""
    t = jnp.linspace(0, steps, steps + 1) / steps
    alpha_bar = jnp.cos((t + s) / (1 + s) * jnp.pi * 0.5) ** 2
    alpha_bar = alpha_bar / alpha_bar[0]
    return jnp.clip(1 - alpha_bar[1:] / alpha_bar[:-1], 0, 0.999)  # [steps]


def ddpm_agent(run: Run, action_size: int) -> Agent:
    s = run.settings
    encoding = Encoding(make_encoder(s.encoder), goal_conditioned=True, use_proprio=s.use_proprio)
    model = ScoreActor(encoding, action_size, dropout=s.dropout)
    steps = s.diffusion_steps
    betas = cosine_beta_schedule(steps)  # [N]
    alphas = 1 - betas
    alpha_bar = jnp.cumprod(alphas)

    def init(rng: jax.Array, batch: Batch) -> Params:
        a = _flat_actions(batch)
        t = jnp.zeros((a.shape[0], 1), jnp.int32)
        return model.init(rng, batch["observations"], batch["goals"], a, t)["params"]

    def ddpm_loss(params: Params, batch: Batch, rng: jax.Array, train: bool) -> jax.Array:
        a = _flat_actions(batch)  # [B, k * 7]
        t_rng, noise_rng, drop_rng = jax.random.split(rng, 3)
        t = jax.random.randint(t_rng, (a.shape[0], 1), 0, steps)  # [B, 1]
        noise = jax.random.normal(noise_rng, a.shape)  # [B, k * 7]
        ab = alpha_bar[t]  # [B, 1]
        noisy = jnp.sqrt(ab) * a + jnp.sqrt(1 - ab) * noise
        eps = cast(jax.Array, model.apply({"params": params}, batch["observations"], batch["goals"], noisy, t,
                                          train=train, rngs={"dropout": drop_rng}))
        # Sum over the 7 action dims, mean over the batch and the action horizon (as the original).
        return ((eps - noise) ** 2).reshape(a.shape[0], -1, ACTION_DIM).sum(-1).mean()

    def loss(params: Params, batch: Batch, rng: jax.Array) -> tuple[jax.Array, Metrics]:
        value = ddpm_loss(params, batch, rng, train=True)
        return value, {"loss": value, "ddpm_loss_mean": value}

    def sample(params: Params, batch: Batch, rng: jax.Array) -> jax.Array:
        """Reverse DDPM from N(0, I), clipping to [-2, 2] after every step (as the original)."""
        shape = _flat_actions(batch).shape
        rng, first = jax.random.split(rng)

        def step(x: jax.Array, inp: tuple[jax.Array, jax.Array]) -> tuple[jax.Array, None]:
            t, key = inp
            tt = jnp.full((shape[0], 1), t)
            eps = cast(jax.Array, model.apply({"params": params}, batch["observations"], batch["goals"], x, tt,
                                              train=False))
            x = (x - (1 - alphas[t]) / jnp.sqrt(1 - alpha_bar[t]) * eps) / jnp.sqrt(alphas[t])
            x = x + (t > 0) * jnp.sqrt(betas[t]) * jax.random.normal(key, shape)
            return jnp.clip(x, -2, 2), None

        keys = jax.random.split(rng, steps)
        x, _ = jax.lax.scan(step, jax.random.normal(first, shape), (jnp.arange(steps - 1, -1, -1), keys))
        return x  # [B, k * 7]

    def evaluate(params: Params, batch: Batch, rng: jax.Array) -> Metrics:
        loss_rng, sample_rng = jax.random.split(rng)
        a = _flat_actions(batch)
        actions = sample(params, batch, sample_rng)
        mse = ((actions - a) ** 2).reshape(a.shape[0], -1, ACTION_DIM).sum(-1).mean()
        return {"loss": ddpm_loss(params, batch, loss_rng, train=False), "mse": mse}

    return Agent(run.algo, model, init, loss, evaluate, target_update_rate=DDPM_TARGET_UPDATE_RATE)


def make_agent(run: Run) -> Agent:
    """The agent of ``run.algo``; actions per sample = act_pred_horizon * 7."""
    action_size = (run.settings.act_pred_horizon or 1) * ACTION_DIM
    algo = run.algo
    match algo:
        case Algo.BC:
            return gaussian_agent(run, goal_conditioned=False, action_size=action_size)
        case Algo.GC_BC:
            return gaussian_agent(run, goal_conditioned=True, action_size=action_size)
        case Algo.GC_DDPM_BC:
            return ddpm_agent(run, action_size)
        case Algo.LC_BC:
            if run.settings.encoder not in FILM_ENCODERS:
                raise ValueError(f"{run.config_file}: lc_bc conditions the image encoder on language, and encoder "
                                 f"{run.settings.encoder.value!r} has no FiLM layers; set encoder: "
                                 f"{' or '.join(FILM_ENCODERS)}")
            return gaussian_agent(run, goal_conditioned=True, action_size=action_size, language=True)
        case _:
            assert_never(algo)
