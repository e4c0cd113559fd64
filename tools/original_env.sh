#!/usr/bin/env bash
# Builds <checkout>/.venv for the original BridgeData V2 code (https://github.com/rail-berkeley/bridge_data_v2),
# so that tests can run its JAX parts (agents, encoders, flax checkpoints) beside bdv2. The pins are the
# measured "user's pins, repaired" stack: the original's jax/flax/optax/chex/distrax with the TF, TFP,
# ml-dtypes and NumPy releases that install and import with them on Python 3.11.
#
#   git clone https://github.com/rail-berkeley/bridge_data_v2 ../bridge_data_v2
#   tools/original_env.sh ../bridge_data_v2
set -euo pipefail
root="${1:?usage: tools/original_env.sh PATH_TO_bridge_data_v2_CHECKOUT}"
[ -d "$root/jaxrl_m" ] || { echo "$root: not a bridge_data_v2 checkout (no jaxrl_m/)" >&2; exit 2; }
python3.11 -m venv "$root/.venv"
"$root/.venv/bin/pip" install -q \
  "jax[cpu]==0.4.13" jaxlib==0.4.13 flax==0.7.0 optax==0.1.5 chex==0.1.6 distrax==0.1.2 \
  tensorflow-probability==0.22.1 tensorflow-cpu==2.15.1 ml-dtypes==0.3.2 numpy==1.26.4 scipy==1.11.4 \
  orbax-checkpoint==0.4.1 ml_collections absl-py einops
echo "built $root/.venv; point BDV2_ORIGINAL at $root"
