"""Flax modules of the original agents (jaxrl_m/vision/resnet_v1.py and jaxrl_m/networks/ in
https://github.com/rail-berkeley/bridge_data_v2/blob/main): the ResNet-v1 "bridge" encoder, a tiny encoder for
tests and the CPU demo, the (goal-conditioned) encoding wrapper with early goal concatenation, MLP heads,
the Gaussian policy and the diffusion score network.

Module and parameter names follow jaxrl_m where it matters for reading its checkpoints (conv_init,
norm_init, conv_proj, norm_proj, FourierFeatures kernel).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any, assert_never

import flax.linen as nn
import jax
import jax.numpy as jnp

from .settings import EncoderName

Array = jax.Array
Obs = dict[str, Array]


def _import_distrax() -> ModuleType:
    """distrax, importable whether or not TensorFlow is loaded already.

    distrax imports TFP's JAX substrate; TFP's top-level __init__ sees TensorFlow in sys.modules and then
    force-loads its TF modules, which need `tf_keras` (ModuleNotFoundError without it). The JAX substrate
    never uses them, so TensorFlow is hidden from that one check while distrax is imported.
    """
    tf = sys.modules.pop("tensorflow", None)
    try:
        import distrax
    finally:
        if tf is not None:
            sys.modules["tensorflow"] = tf
    return distrax


distrax = _import_distrax()


def flatten_proprio(proprio: Array) -> Array:
    """(B, P), (B, 1, P) or (B, T, P) -> (B, T * P), so it concatenates with a (B, F) encoding (the fork's fix
    for "Cannot concatenate arrays with different numbers of dimensions: got (B, F), (B, 1, P)")."""
    return proprio.reshape(proprio.shape[0], -1)


class AddSpatialCoordinates(nn.Module):
    """Two channels holding the pixel's (y, x) position in [-1, 1]."""

    @nn.compact
    def __call__(self, x: Array) -> Array:
        h, w = x.shape[-3:-1]
        grid = jnp.stack(jnp.meshgrid(jnp.linspace(-1, 1, h), jnp.linspace(-1, 1, w), indexing="ij"), -1)  # [H, W, 2]
        return jnp.concatenate([x, jnp.broadcast_to(grid, (*x.shape[:-1], 2)).astype(x.dtype)], -1)


def _conv(features: int, kernel: int, strides: int = 1, name: str | None = None) -> nn.Conv:
    return nn.Conv(features, (kernel, kernel), (strides, strides), use_bias=False,
                   kernel_init=nn.initializers.kaiming_normal(), name=name)


def _norm(name: str | None = None) -> nn.GroupNorm:
    return nn.GroupNorm(num_groups=4, epsilon=1e-5, name=name)


class ResNetBlock(nn.Module):
    filters: int
    strides: int = 1
    act: Callable[[Array], Array] = nn.swish

    @nn.compact
    def __call__(self, x: Array) -> Array:
        residual = x
        y = self.act(_norm()(_conv(self.filters, 3, self.strides)(x)))
        y = _norm()(_conv(self.filters, 3)(y))
        if residual.shape != y.shape:
            residual = _norm("norm_proj")(_conv(self.filters, 1, self.strides, "conv_proj")(residual))
        return self.act(residual + y)


class FilmConditioning(nn.Module):
    """FiLM (Perez et al. 2018) as the original's jaxrl_m/vision/film_conditioning_layer.py:
    x * (1 + Dense_0(c)) + Dense_1(c), both Dense zero-initialised (identity at init), broadcast over H and W.
    x: [N, H, W, C] feature map; c: [N, E] conditioning (a language embedding)."""

    @nn.compact
    def __call__(self, x: Array, cond: Array) -> Array:
        zeros = nn.initializers.zeros
        scale = nn.Dense(x.shape[-1], kernel_init=zeros, bias_init=zeros)(cond)[..., None, None, :]  # [N, 1, 1, C]
        shift = nn.Dense(x.shape[-1], kernel_init=zeros, bias_init=zeros)(cond)[..., None, None, :]
        return x * (1 + scale) + shift


def _film(x: Array, cond: Array | None, use_film: bool) -> Array:
    if not use_film:
        return x
    if cond is None:
        raise ValueError("a FiLM encoder needs a conditioning vector (the language embedding); use it with lc_bc")
    return FilmConditioning()(x, cond)


class ResNetEncoder(nn.Module):
    """ResNet-v1 with GroupNorm(4) and swish; (3, 4, 6, 3) stages = resnetv1-34-bridge. uint8 images in,
    [N, 8 * num_filters] average-pooled features out.

    use_film (resnetv1-34-bridge-film): a FilmConditioning on ``cond`` after every ResNetBlock, as the
    original's ResNetEncoder(use_film=True). Its parameters then map one to one onto the original's
    ``encoder`` tree: conv_init, norm_init, ResNetBlock_<k>/{Conv_0, Conv_1, GroupNorm_<j> (the original's
    MyGroupNorm_<j>), conv_proj, norm_proj} and FilmConditioning_<k>/{Dense_0 (scale), Dense_1 (shift)},
    k = 0..15 in block order."""

    stage_sizes: Sequence[int] = (3, 4, 6, 3)
    num_filters: int = 64
    add_spatial_coordinates: bool = True
    use_film: bool = False

    @nn.compact
    def __call__(self, image: Array, cond: Array | None = None) -> Array:
        x = image.astype(jnp.float32) / 127.5 - 1.0  # [N, S, S, C]
        if self.add_spatial_coordinates:
            x = AddSpatialCoordinates()(x)  # [N, S, S, C + 2]
        x = nn.Conv(self.num_filters, (7, 7), (2, 2), padding=[(3, 3), (3, 3)], use_bias=False,
                    kernel_init=nn.initializers.kaiming_normal(), name="conv_init")(x)
        x = nn.swish(_norm("norm_init")(x))
        x = nn.max_pool(x, (3, 3), (2, 2), padding="SAME")  # [N, S/4, S/4, 64]
        for i, size in enumerate(self.stage_sizes):
            for j in range(size):
                x = ResNetBlock(self.num_filters * 2**i, strides=2 if i > 0 and j == 0 else 1)(x)
                x = _film(x, cond, self.use_film)
        return jnp.mean(x, axis=(-3, -2))  # [N, 512] for the bridge encoder


class TinyEncoder(nn.Module):
    """Three strided convs: seconds per hundred steps on a laptop CPU, for tests and the demo. use_film
    (tiny-film): a FilmConditioning on ``cond`` after each conv block, as the FiLM ResNet."""

    features: Sequence[int] = (16, 32, 64)
    add_spatial_coordinates: bool = True
    use_film: bool = False

    @nn.compact
    def __call__(self, image: Array, cond: Array | None = None) -> Array:
        x = image.astype(jnp.float32) / 127.5 - 1.0  # [N, S, S, C]
        if self.add_spatial_coordinates:
            x = AddSpatialCoordinates()(x)
        for f in self.features:
            x = nn.swish(_norm()(_conv(f, 3, 2)(x)))  # halves S each time
            x = _film(x, cond, self.use_film)
        return jnp.mean(x, axis=(-3, -2))  # [N, features[-1]]


def make_encoder(name: str | EncoderName) -> nn.Module:
    encoder = EncoderName(name)  # ValueError for an unknown name; settings.py validates it first
    match encoder:
        case EncoderName.RESNET_V1_34_BRIDGE:
            return ResNetEncoder()
        case EncoderName.RESNET_V1_18_BRIDGE:
            return ResNetEncoder(stage_sizes=(2, 2, 2, 2))
        case EncoderName.TINY:
            return TinyEncoder()
        case EncoderName.RESNET_V1_34_BRIDGE_FILM:
            return ResNetEncoder(use_film=True)
        case EncoderName.TINY_FILM:
            return TinyEncoder(use_film=True)
        case _:
            assert_never(encoder)


class Encoding(nn.Module):
    """Observation (+ goal, concatenated on channels before the encoder: "early goal concat") -> features.

    A history axis [B, h, S, S, 3] is folded into the batch (goal repeated per frame) and the features
    re-flattened to [B, h * F]; proprio, when used, is flattened and appended.
    """

    encoder: nn.Module
    goal_conditioned: bool
    use_proprio: bool = False

    @nn.compact
    def __call__(self, obs: Obs, goals: Obs | None = None) -> Array:
        image = obs["image"]  # [B, S, S, 3] or [B, h, S, S, 3]
        batch = image.shape[0]
        frames = image.shape[1] if image.ndim == 5 else 1
        image = image.reshape(batch * frames, *image.shape[-3:])  # [B * h, S, S, 3]
        if self.goal_conditioned:
            assert goals is not None, "goal-conditioned encoding needs goals"
            goal = jnp.repeat(goals["image"], frames, axis=0)  # [B * h, S, S, 3]
            image = jnp.concatenate([image, goal], axis=-1)  # [B * h, S, S, 6]
        features = self.encoder(image).reshape(batch, -1)  # [B, h * F]
        if self.use_proprio:
            features = jnp.concatenate([features, flatten_proprio(obs["proprio"])], axis=-1)  # [B, h * F + T * P]
        return features


class LCEncoding(nn.Module):
    """Observation + language -> features, as the original's LCEncodingWrapper (jaxrl_m/common/encoding.py):
    the image goes through a FiLM encoder conditioned on ``goals["language"]`` [B, E] (an instruction
    embedding); a history axis is folded into the batch with the embedding repeated per frame; proprio, when
    used, is appended. In a GaussianPolicy its parameters sit under ``encoding/encoder`` (the original's
    ``actor/encoder/encoder``)."""

    encoder: nn.Module
    use_proprio: bool = False

    @nn.compact
    def __call__(self, obs: Obs, goals: Obs | None = None) -> Array:
        assert goals is not None and "language" in goals, "language-conditioned encoding needs goals['language']"
        image = obs["image"]  # [B, S, S, 3] or [B, h, S, S, 3]
        batch = image.shape[0]
        frames = image.shape[1] if image.ndim == 5 else 1
        image = image.reshape(batch * frames, *image.shape[-3:])  # [B * h, S, S, 3]
        language = jnp.repeat(goals["language"].astype(jnp.float32), frames, axis=0)  # [B * h, E]
        features = self.encoder(image, language).reshape(batch, -1)  # [B, h * F]
        if self.use_proprio:
            features = jnp.concatenate([features, flatten_proprio(obs["proprio"])], axis=-1)
        return features


class MLP(nn.Module):
    hidden_dims: Sequence[int]
    dropout: float = 0.0
    activate_final: bool = True
    layer_norm: bool = False

    @nn.compact
    def __call__(self, x: Array, train: bool = False) -> Array:
        for i, size in enumerate(self.hidden_dims):
            x = nn.Dense(size, kernel_init=nn.initializers.xavier_uniform())(x)
            if i + 1 < len(self.hidden_dims) or self.activate_final:
                if self.dropout > 0:
                    x = nn.Dropout(self.dropout)(x, deterministic=not train)
                if self.layer_norm:
                    x = nn.LayerNorm()(x)
                x = nn.swish(x)
        return x


class GaussianPolicy(nn.Module):
    """means = Dense(MLP(encoding)); a fixed std of 1 (the configs' fixed_std), so -log p is MSE + constant."""

    encoding: Encoding | LCEncoding
    hidden_dims: Sequence[int]
    action_dim: int
    dropout: float = 0.1
    fixed_std: float = 1.0

    @nn.compact
    def __call__(self, obs: Obs, goals: Obs | None = None, train: bool = False) -> Any:  # distrax.Distribution
        x = MLP(self.hidden_dims, self.dropout, activate_final=True)(self.encoding(obs, goals), train)
        means = nn.Dense(self.action_dim, kernel_init=nn.initializers.xavier_uniform())(x)  # [B, A]
        return distrax.MultivariateNormalDiag(means, jnp.full_like(means, self.fixed_std))


class FourierFeatures(nn.Module):
    output_size: int = 32

    @nn.compact
    def __call__(self, t: Array) -> Array:
        kernel = self.param("kernel", nn.initializers.normal(0.2), (self.output_size // 2, t.shape[-1]))
        f = 2 * jnp.pi * t @ kernel.T  # [B, output_size / 2]
        return jnp.concatenate([jnp.cos(f), jnp.sin(f)], axis=-1)  # [B, output_size]


class MLPResNetBlock(nn.Module):
    features: int
    dropout: float

    @nn.compact
    def __call__(self, x: Array, train: bool = False) -> Array:
        residual = x
        if self.dropout > 0:
            x = nn.Dropout(self.dropout)(x, deterministic=not train)
        x = nn.LayerNorm()(x)
        x = nn.Dense(self.features)(nn.swish(nn.Dense(self.features * 4)(x)))  # [B, 4F] -> [B, F]
        if residual.shape != x.shape:
            residual = nn.Dense(self.features)(residual)
        return residual + x


class MLPResNet(nn.Module):
    num_blocks: int
    out_dim: int
    hidden_dim: int = 256
    dropout: float = 0.1

    @nn.compact
    def __call__(self, x: Array, train: bool = False) -> Array:
        x = nn.Dense(self.hidden_dim)(x)
        for _ in range(self.num_blocks):
            x = MLPResNetBlock(self.hidden_dim, self.dropout)(x, train)
        return nn.Dense(self.out_dim)(nn.swish(x))


class ScoreActor(nn.Module):
    """The DDPM noise predictor: eps_hat(obs, goal, noisy actions, t) (the original's ScoreActor,
    https://github.com/rail-berkeley/bridge_data_v2/blob/main/jaxrl_m/networks/diffusion_nets.py)."""

    encoding: Encoding
    action_size: int
    """act_pred_horizon * action_dim"""
    time_dim: int = 32
    num_blocks: int = 3
    dropout: float = 0.1

    @nn.compact
    def __call__(self, obs: Obs, goals: Obs | None, noisy: Array, t: Array, train: bool = False) -> Array:
        cond = FourierFeatures(self.time_dim)(t.astype(jnp.float32))  # [B, 32]
        cond = MLP((2 * self.time_dim, self.time_dim), activate_final=False)(cond, train)  # [B, 32]
        x = jnp.concatenate([cond, self.encoding(obs, goals), noisy], axis=-1)  # [B, 32 + F + k * 7]
        return MLPResNet(self.num_blocks, self.action_size, dropout=self.dropout)(x, train)  # [B, k * 7]


def count_params(params: Any) -> int:
    return sum(x.size for x in jax.tree.leaves(params))
