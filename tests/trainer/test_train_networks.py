"""The ResNet-v1-34 "bridge" encoder the original configs train with (the tests elsewhere use the tiny one)."""

from __future__ import annotations

import pytest

jax = pytest.importorskip("jax")


@pytest.mark.parametrize(("channels", "what"), [(3, "bc"), (6, "gc: early goal concatenation")])
def test_bridge_encoder_shapes_and_size(channels: int, what: str) -> None:
    import jax.numpy as jnp

    from bdv2.trainer.networks import count_params, make_encoder

    enc = make_encoder("resnetv1-34-bridge")
    images = jnp.zeros((2, 64, 64, channels), dtype=jnp.uint8)  # [B, S, S, C]
    params = enc.init(jax.random.PRNGKey(0), images)
    out = enc.apply(params, images)  # [B, 512]
    assert out.shape == (2, 512) and bool(jnp.all(jnp.isfinite(out))), what
    # ResNet-34 has about 21.3 M weights in its convolutions and norms (no classifier head here).
    assert 20e6 < count_params(params) < 22.5e6, count_params(params)
