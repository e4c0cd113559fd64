"""Runs under the ORIGINAL BridgeData V2 venv (jax 0.4.13, flax 0.7.0; see tests/original_code.py), never under
bdv2's: it builds an agent of https://github.com/rail-berkeley/bridge_data_v2 from a config JSON the way its
experiments/eval.py does, and either

  save     perturbs the freshly initialised parameters (so that no parameter keeps its init value and params
           differ from target_params), saves the agent with flax.training.checkpoints.save_checkpoint (legacy
           msgpack or orbax) as experiments/train.py does, and writes the agent's outputs on the given inputs;
  restore  restores a checkpoint onto the agent built from the config (eval.py's load_checkpoint) and writes
           the agent's outputs on the given inputs.

Outputs (npz): "actions" = sample_actions(argmax=True) * std + mean for the Gaussian agents; for gc_ddpm_bc
"eps" = the score network (target params) on the given noisy actions and times.

    python original_ckpt_script.py JOBS.json     (one process for several agents: the JAX start-up is paid once)

a job being {"mode": "save", "config", "inputs", "out", "ckpt_dir", "format": "msgpack"|"orbax"} or
{"mode": "restore", "config", "inputs", "out", "ckpt"}.
"""

import argparse
import json

import flax
import jax
import numpy as np
from flax.training import checkpoints
from jaxrl_m.agents import agents
from jaxrl_m.vision import encoders


def build(config, inputs):
    encoder_def = encoders[config["encoder"]](**config["encoder_kwargs"])
    observations = {"image": inputs["image"][:1]}
    if config["agent_kwargs"].get("use_proprio"):
        observations["proprio"] = inputs["proprio"][:1]
    horizon = config["dataset_kwargs"].get("act_pred_horizon")
    actions = np.zeros((1, horizon, 7) if horizon is not None else (1, 7), np.float32)
    goals = {"language": inputs["language"][:1]} if config["agent"] == "lc_bc" else {"image": inputs["goal"][:1]}
    kwargs = dict(rng=jax.random.PRNGKey(0), observations=observations, actions=actions, encoder_def=encoder_def,
                  **config["agent_kwargs"])
    if config["agent"] != "bc":
        kwargs["goals"] = goals
    return agents[config["agent"]].create(**kwargs)


def perturb(agent, seed):
    rng = np.random.default_rng(seed)

    def noisy(x):
        return x + rng.normal(0, 0.05, x.shape).astype(x.dtype)

    state = agent.state
    state = state.replace(params=jax.tree_util.tree_map(noisy, state.params),
                          target_params=jax.tree_util.tree_map(noisy, state.params),
                          step=1234)
    return agent.replace(state=state)


def outputs(agent, config, inputs):
    obs = {"image": inputs["image"]}
    if config["agent_kwargs"].get("use_proprio"):
        obs["proprio"] = inputs["proprio"]
    meta = config["bridgedata_config"]["action_proprio_metadata"]["action"]
    mean, std = np.asarray(meta["mean"]), np.asarray(meta["std"])
    if config["agent"] == "gc_ddpm_bc":
        goals = {"image": inputs["goal"]}
        eps = agent.state.apply_fn({"params": agent.state.target_params}, (obs, goals), inputs["noisy"],
                                   inputs["time"], name="actor")
        sampled = agent.sample_actions(obs, goals, seed=jax.random.PRNGKey(0), argmax=True)
        return {"eps": np.asarray(eps), "actions": np.asarray(sampled) * std + mean}
    if config["agent"] == "bc":
        actions = agent.sample_actions(obs, seed=jax.random.PRNGKey(0), argmax=True)
    else:
        goals = {"language": inputs["language"]} if config["agent"] == "lc_bc" else {"image": inputs["goal"]}
        actions = agent.sample_actions(obs, goals, seed=jax.random.PRNGKey(0), argmax=True)
    return {"actions": np.asarray(actions) * std + mean}


def run(job):
    with open(job["config"]) as f:
        config = json.load(f)
    inputs = dict(np.load(job["inputs"]))
    agent = build(config, inputs)
    if job["mode"] == "save":
        agent = perturb(agent, 1)
        flax.config.update("flax_use_orbax_checkpointing", job["format"] == "orbax")
        print(checkpoints.save_checkpoint(job["ckpt_dir"], agent, step=job.get("step", 1234), keep=int(1e6)))
    else:
        agent = checkpoints.restore_checkpoint(job["ckpt"], agent)
    np.savez(job["out"], **outputs(agent, config, inputs))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("jobs", help="a JSON list of {mode, config, inputs, out, ckpt_dir, format} or {mode, config, "
                   "inputs, out, ckpt}")
    with open(p.parse_args().jobs) as f:
        jobs = json.load(f)
    for job in jobs:
        run(job)


if __name__ == "__main__":
    main()
