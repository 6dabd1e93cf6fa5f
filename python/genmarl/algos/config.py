"""Typed run configurations, torch-free: :class:`PPOConfig` (MAPPO / IPPO) and
:class:`GenRLConfig` (the generative agent, ``algo="genrl"``).

Every field has a type; :func:`load_config` picks the class from ``algo``, merges a TOML file and
``key=value`` overrides and rejects unknown keys, wrong types and impossible sizes with messages
naming the key.
"""

from __future__ import annotations

import dataclasses
import enum
import math
import re
try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: the same parser from PyPI (a dependency there)
    import tomli as tomllib  # type: ignore[no-redef]
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PPO_ALGOS = ("mappo", "ippo")
ALGOS = (*PPO_ALGOS, "genrl")


# World-model choices (defined here, torch-free, for GenRLConfig's checks; WorldModel uses the same).
# What the observation decoder predicts: the observation itself, or its change from the previous
# step's observation ("delta"; from zeros at an episode's first step). "both": predictions come from
# the delta head, and a second head also reconstructs the observation itself, so the latent state
# keeps the absolute quantities (positions) that rewards depend on.
OBS_TARGETS = ("absolute", "delta", "both")
# What the decoder reads: the full feature [h, z], or only the deterministic state h ("deter": the
# observation at t is then predicted from the history before it, the one-step prediction task).
DECODER_INPUTS = ("feat", "deter")
# Where imagination's rewards come from: the world model's reward head on its recurrent state, or
# a reward network on the observations the world model predicts (genmarl.generative.reward_model),
# reading the agent's own next observation ("own") or every agent's ("joint").
REWARD_SOURCES = ("latent", "obs")
REWARD_INPUTS = ("own", "joint")


@dataclass
class RunConfigBase:
    """What every learner's config shares: the env, data collection, discounting, evaluation,
    checkpoints and logging (PPOConfig and GenRLConfig extend it; their defaults may differ)."""

    # what to train
    algo: str = "mappo"
    env: str = "simple_spread"
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    device: str = "auto"  # "auto" (CUDA when present), "cpu", "cuda", "cuda:1", ...
    # data collection
    total_steps: int = 2_000_000  # env steps (each of num_envs envs stepping once = num_envs steps)
    num_envs: int = 128
    num_steps: int = 25  # env steps per env between updates
    num_threads: int = 0  # env threads; 0 = genmarl's default for num_envs
    torch_threads: int = 1  # torch intra-op threads for the run (small MLPs are fastest on 1); 0 = torch's default
    workers: int = 0  # rollout workers on Ray actors (genmarl.distributed); 0 = in this process
    ray_address: str = ""  # the Ray cluster of the workers (HOST:PORT); "" = a local one
    # learning
    gamma: float = 0.99
    gae_lambda: float = 0.95
    critic_lr: float = 7e-4
    entropy_coef: float = 0.01
    max_grad_norm: float = 10.0  # 0 = no clipping
    # runs
    eval_every: int = 200_000  # env steps between evaluations; 0 = only at the end
    eval_episodes: int = 100
    checkpoint_every: int = 500_000  # env steps between checkpoints; 0 = only at the end
    tensorboard: bool = True
    track: bool = False  # log to Weights & Biases (needs wandb: pip install 'genmarl[track]')
    wandb_project: str = "genmarl"  # the W&B project of tracked runs
    wandb_mode: str = "auto"  # online, offline, or auto: $WANDB_MODE, else online with an API key, else offline
    progress: bool = True

    def _validate_common(self) -> None:
        """The shared keys' types and values (TypeError / ValueError naming the key)."""
        _check_fields(self)
        _check_ranges(
            self,
            at_least_one=("total_steps", "num_envs", "num_steps", "eval_episodes"),
            non_negative=("num_threads", "torch_threads", "eval_every", "checkpoint_every", "seed"),
            unit_interval=("gamma", "gae_lambda"),
            positive=("critic_lr",),
            finite_non_negative=("entropy_coef", "max_grad_norm"),
        )
        _check_device(self.device)
        if self.wandb_mode not in WANDB_MODES:
            raise ValueError(f"wandb_mode must be one of {WANDB_MODES}, got {self.wandb_mode!r}")
        if self.workers < 0:
            raise ValueError(f"workers must be >= 0 (0: rollouts in this process), got {self.workers}")
        if self.workers > 0:
            if self.num_envs < self.workers:
                raise ValueError(f"num_envs ({self.num_envs}) must be at least workers ({self.workers})")

    @property
    def batch_steps(self) -> int:
        """Env steps collected between updates (num_steps * num_envs)."""
        return self.num_steps * self.num_envs

    @property
    def num_updates(self) -> int:
        """Collect/update iterations of a run."""
        return self.total_steps // self.batch_steps

    @property
    def eval_seed(self) -> int:
        """The seed of the run's evaluations (training's and, by default, ``genmarl eval``'s)."""
        return self.seed + 1_000_003

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class PPOConfig(RunConfigBase):
    """MAPPO / IPPO settings. Defaults follow the MAPPO paper's MPE settings (Yu et al. 2021)."""

    # what to train
    algo: str = "mappo"  # "mappo": centralised critic on the global state; "ippo": per-agent critic
    # optimisation
    lr: float = 7e-4
    lr_decay: bool = False  # linear decay to 0 over total_steps (off, as in the MAPPO code)
    update_epochs: int = 10
    num_minibatches: int = 1
    clip_coef: float = 0.2
    clip_value_loss: bool = True
    value_clip_coef: float = 0.2
    huber_delta: float = 10.0  # Huber value loss; 0 = squared error
    value_coef: float = 1.0
    value_norm: bool = True  # running normalisation of value targets (MAPPO's ValueNorm)
    adv_norm: bool = True
    # networks
    hidden_size: int = 64
    num_layers: int = 2
    use_gru: bool = False  # recurrent actor (minibatches keep whole env trajectories)
    layer_norm_input: bool = True
    agent_id: bool = True  # append the agent's one-hot index within its group (parameter sharing)

    def validate(self) -> PPOConfig:
        """Checks types and values; returns self. Raises TypeError / ValueError naming the key."""
        self._validate_common()
        if self.algo not in PPO_ALGOS:
            raise ValueError(f"algo must be one of {PPO_ALGOS} for PPOConfig ('genrl' uses GenRLConfig), got {self.algo!r}")
        _check_ranges(
            self,
            at_least_one=("update_epochs", "num_minibatches", "hidden_size", "num_layers"),
            non_negative=(),
            unit_interval=(),
            positive=("lr",),
            finite_non_negative=("clip_coef", "value_clip_coef", "huber_delta", "value_coef"),
        )
        batch = self.num_steps * self.num_envs
        if self.use_gru and self.num_minibatches > self.num_envs:
            raise ValueError(
                f"num_minibatches ({self.num_minibatches}) > num_envs ({self.num_envs}): with use_gru, "
                "minibatches split the envs (each keeps its whole trajectory)"
            )
        if self.num_minibatches > batch:
            raise ValueError(f"num_minibatches ({self.num_minibatches}) > num_steps * num_envs ({batch})")
        if self.total_steps < batch:
            raise ValueError(
                f"total_steps ({self.total_steps}) is less than one rollout (num_steps * num_envs = {batch})"
            )
        return self

    @property
    def batch_size(self) -> int:
        """Env steps per update (num_steps * num_envs)."""
        return self.num_steps * self.num_envs


@dataclass
class GenRLConfig(RunConfigBase):
    """The generative agent (``algo="genrl"``): a multi-agent world model trained on replayed
    sequences, an actor-critic trained on imagined trajectories, optional planning at act time.
    Defaults are sized for a 2-core CPU (see docs/generative.md)."""

    # what to train
    algo: str = "genrl"
    # data collection
    total_steps: int = 400_000  # env steps
    num_envs: int = 16
    prefill_steps: int = 5_000  # env steps of uniformly random actions before training starts
    buffer_capacity: int = 400_000  # env steps kept for replay
    replay_ratio: float = 0.02  # gradient updates (world model + actor-critic) per env step
    # world model
    batch_size: int = 16  # replayed sequences per update
    seq_len: int = 16
    deter_size: int = 128  # recurrent (deterministic) state per agent
    stoch_size: int = 16  # categorical latents per agent ...
    classes: int = 16  # ... of this many classes each
    hidden_size: int = 128
    attention_heads: int = 4
    agent_mixing: bool = True  # agents' transitions attend to each other's latents and actions; False = each agent's state reads only its own observations and actions (decentralised execution, as MAPPO's actors)
    mlp_layers: int = 1  # hidden layers of the encoder, decoder, prior, posterior and reward networks
    unimix: float = 0.01  # uniform mixture in every categorical (latents and actions)
    free_nats: float = 1.0
    kl_dyn: float = 0.5
    kl_rep: float = 0.1
    behaviour_coef: float = 1.0
    model_lr: float = 1e-3
    obs_target: str = "both"  # decoder target: "absolute" observation, "delta" from the previous step, or "both"
    obs_symlog: bool = False  # decode observations in symlog space
    decoder_input: str = "feat"  # the decoder reads [h, z] ("feat") or only h ("deter")
    overshoot: int = 8  # steps of open-loop prediction loss from each window's first step (0 = none)
    overshoot_coef: float = 1.0
    overshoot_reward_coef: float = 1.0  # weight of the reward head's loss along the same open-loop rollouts (0 = none)
    # the rewards imagination and planning score with: a reward network on the predicted next observations
    # ("obs"), trained on real pairs from the replay, or the world model's reward head on its state ("latent")
    reward_from: str = "obs"
    reward_inputs: str = "joint"  # "obs" rewards read the agent's own next observation ("own") or everyone's ("joint")
    reward_hidden_size: int = 256
    reward_layers: int = 2
    reward_updates: int = 8  # supervised updates of the "obs" reward network per gradient update
    reward_batch_size: int = 256  # env steps per reward-network update
    reward_lr: float = 1e-3
    # actor-critic in imagination
    horizon: int = 15
    imagine_starts: int = 128  # replayed states each imagined rollout starts from; 0 = all batch_size * seq_len (64: cheaper, worse at 400k)
    ac_hidden_size: int = 64  # actor and critic MLP width
    actor_lr: float = 3e-4
    critic_lr: float = 3e-4
    entropy_coef: float = 0.1  # with dynamics backpropagation lower values let the entropy collapse (docs/generative.md)
    entropy_target: float = 0.0  # adapt each agent's entropy coefficient (from entropy_coef) to hold its entropy at this fraction of log(its actions); 0 = fixed
    entropy_target_lr: float = 1e-3  # Adam learning rate of the log entropy coefficients (entropy_target > 0)
    actor_dynamics: float = 1.0  # weight of returns differentiated through the model vs REINFORCE (1 - this); 0 = REINFORCE (DreamerV3's for discrete actions)
    critic_ema: float = 0.02  # target critic: Polyak rate per update
    return_norm_decay: float = 0.99  # EMA of the 5-95th percentile range of imagined returns
    max_grad_norm: float = 100.0
    # distilling planning into the policy (expert iteration): each update plans from distill_starts replayed
    # states with the world model and adds distill_coef x the policy's cross-entropy on the chosen first actions
    distill_coef: float = 0.0
    distill_starts: int = 32
    distill_k: int = 16  # candidate joint action sequences per state
    distill_horizon: int = 5  # steps each candidate is rolled (then bootstrapped by the critic)
    sampler: str = "auto"  # categorical sampling in imagination: "auto", "torch" or "genmarl" (C++)
    overlap_updates: str = "auto"  # actor-critic on a second thread while the world model trains on the next batch: "auto" (CPU, 2+ cores, genmarl sampler), "on", "off"
    # planning at act time
    plan: int = 0  # K candidate joint action sequences per env; 0 = act on the policy alone
    plan_horizon: int = 0  # 0 = horizon
    plan_model: str = "world"  # roll the candidates through the "world" model or the true "simulator" (oracle)
    plan_unimix: float = 0.5  # candidates' actions drawn from (1 - u) * policy + u * uniform
    plan_latents: str = "sample"  # world-model planning: draw the prior's latents ("sample") or take its mode ("mode")
    # runs
    eval_every: int = 25_000
    checkpoint_every: int = 100_000

    def validate(self) -> GenRLConfig:
        """Checks types and values; returns self. Raises TypeError / ValueError naming the key."""
        self._validate_common()
        if self.algo != "genrl":
            raise ValueError(f"algo must be 'genrl' for GenRLConfig (MAPPO/IPPO use PPOConfig), got {self.algo!r}")
        _check_ranges(
            self,
            at_least_one=("buffer_capacity", "batch_size", "seq_len", "deter_size", "stoch_size", "classes", "hidden_size",
                          "ac_hidden_size", "mlp_layers", "attention_heads", "horizon", "reward_hidden_size", "reward_layers",
                          "reward_batch_size", "distill_starts", "distill_k", "distill_horizon"),
            non_negative=("prefill_steps", "imagine_starts", "plan", "plan_horizon", "overshoot", "reward_updates"),
            unit_interval=("critic_ema", "return_norm_decay", "actor_dynamics"),
            positive=("model_lr", "actor_lr", "reward_lr", "entropy_target_lr"),
            finite_non_negative=("replay_ratio", "free_nats", "kl_dyn", "kl_rep", "behaviour_coef", "overshoot_coef",
                                 "overshoot_reward_coef", "distill_coef"),
        )  # fmt: skip
        if not 0.0 <= self.unimix < 1.0:
            raise ValueError(f"unimix must be in [0, 1), got {self.unimix}")
        if self.hidden_size % self.attention_heads:
            raise ValueError(f"hidden_size ({self.hidden_size}) must be a multiple of attention_heads ({self.attention_heads})")
        if self.obs_target not in OBS_TARGETS:
            raise ValueError(f"obs_target must be 'absolute', 'delta' or 'both', got {self.obs_target!r}")
        if self.reward_from not in REWARD_SOURCES:
            raise ValueError(f"reward_from must be 'latent' or 'obs', got {self.reward_from!r}")
        if self.reward_inputs not in REWARD_INPUTS:
            raise ValueError(f"reward_inputs must be 'own' or 'joint', got {self.reward_inputs!r}")
        if self.plan_latents not in ("sample", "mode"):
            raise ValueError(f"plan_latents must be 'sample' or 'mode', got {self.plan_latents!r}")
        if not 0.0 <= self.entropy_target < 1.0:
            raise ValueError(
                f"entropy_target must be in [0, 1) (a fraction of each agent's maximum entropy; 0 = fixed entropy_coef), "
                f"got {self.entropy_target}"
            )
        if self.entropy_target > 0 and not self.entropy_coef > 0:
            raise ValueError(f"entropy_target needs entropy_coef > 0 (the coefficient it starts from), got {self.entropy_coef}")
        if not 0.0 <= self.plan_unimix <= 1.0:
            raise ValueError(f"plan_unimix must be in [0, 1], got {self.plan_unimix}")
        if self.decoder_input not in DECODER_INPUTS:
            raise ValueError(f"decoder_input must be 'feat' or 'deter', got {self.decoder_input!r}")
        if self.plan_model not in ("world", "simulator"):
            raise ValueError(f"plan_model must be 'world' or 'simulator', got {self.plan_model!r}")
        if self.sampler not in ("auto", "torch", "genmarl"):
            raise ValueError(f"sampler must be 'auto', 'torch' or 'genmarl', got {self.sampler!r}")
        if self.overlap_updates not in ("auto", "on", "off"):
            raise ValueError(f"overlap_updates must be 'auto', 'on' or 'off', got {self.overlap_updates!r}")
        if self.buffer_capacity < self.num_envs * (self.seq_len + 1):
            raise ValueError(
                f"buffer_capacity ({self.buffer_capacity}) must hold seq_len + 1 = {self.seq_len + 1} steps of each of "
                f"num_envs={self.num_envs} envs"
            )
        if self.total_steps < self.batch_steps:
            raise ValueError(f"total_steps ({self.total_steps}) is less than one collection (num_steps * num_envs = {self.batch_steps})")
        return self


RunConfig = PPOConfig | GenRLConfig


def config_class(algo: str) -> type[PPOConfig] | type[GenRLConfig]:
    """The configuration class of an algorithm name."""
    if algo == "genrl":
        return GenRLConfig
    if algo in PPO_ALGOS:
        return PPOConfig
    raise ValueError(f"algo must be one of {ALGOS}, got {algo!r}")


def config_from_dict(values: dict[str, Any]) -> RunConfig:
    """A validated config from a saved ``to_dict()`` (the class is chosen by ``algo``)."""
    return config_class(str(values.get("algo", "mappo")))(**values).validate()


def _check_fields(cfg: Any) -> None:
    hints = typing.get_type_hints(type(cfg))
    for f in dataclasses.fields(cfg):
        _check_type(f.name, getattr(cfg, f.name), hints[f.name])


def _check_ranges(
    cfg: Any,
    *,
    at_least_one: tuple[str, ...],
    non_negative: tuple[str, ...],
    unit_interval: tuple[str, ...],
    positive: tuple[str, ...],
    finite_non_negative: tuple[str, ...],
) -> None:
    """Raises a ValueError naming the first field outside its range."""
    for name in at_least_one:
        if getattr(cfg, name) < 1:
            raise ValueError(f"{name} must be >= 1, got {getattr(cfg, name)}")
    for name in non_negative:
        if getattr(cfg, name) < 0:
            raise ValueError(f"{name} must be >= 0, got {getattr(cfg, name)}")
    for name in unit_interval:
        if not 0.0 <= getattr(cfg, name) <= 1.0:
            raise ValueError(f"{name} must be in [0, 1], got {getattr(cfg, name)}")
    for name in positive:
        if not (math.isfinite(getattr(cfg, name)) and getattr(cfg, name) > 0):
            raise ValueError(f"{name} must be a positive number, got {getattr(cfg, name)}")
    for name in finite_non_negative:
        if not (math.isfinite(getattr(cfg, name)) and getattr(cfg, name) >= 0):
            raise ValueError(f"{name} must be a finite number >= 0, got {getattr(cfg, name)}")


_DEVICE = re.compile(r"auto|cpu|mps|cuda(:[0-9]+)?")


def device_available(device: str) -> bool:
    """Whether torch can use ``device`` here ("auto" and "cpu" always; True without torch, where
    nothing can be checked). Imports torch only for "cuda[:N]" and "mps"."""
    if device in ("auto", "cpu") or not _DEVICE.fullmatch(device):
        return True
    try:
        import torch
    except ImportError:
        return True
    if device == "mps":
        return bool(torch.backends.mps.is_available())
    index = int(device.partition(":")[2] or 0)
    return bool(torch.cuda.is_available()) and index < torch.cuda.device_count()


def _check_device(device: str) -> None:
    """The device string's form, then (torch imported only then) that a cuda / mps device exists."""
    if not _DEVICE.fullmatch(device):
        raise ValueError(f"device must be 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps', got {device!r}")
    if device_available(device):
        return
    import torch

    if device == "mps":
        raise ValueError("device 'mps' is not available (torch.backends.mps.is_available() is False); use device=cpu or auto")
    if not torch.cuda.is_available():
        why = "this torch build has no CUDA support" if torch.version.cuda is None else "no CUDA GPU is visible"
        raise ValueError(f"device {device!r} is not available ({why}); use device=cpu or auto")
    raise ValueError(f"device {device!r} is not available (torch sees {torch.cuda.device_count()} CUDA device(s)); use cuda:0 .. cuda:{torch.cuda.device_count() - 1}")


def _check_type(name: str, value: Any, hint: Any) -> None:
    origin = typing.get_origin(hint)
    if origin is dict:
        if not isinstance(value, dict):
            raise TypeError(f"{name} must be a table/dict, got {type(value).__name__}")
        return
    if hint is bool:
        ok = isinstance(value, bool)
    elif hint is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif hint is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
    else:
        ok = isinstance(value, hint)
    if not ok:
        raise TypeError(f"{name} must be {hint.__name__}, got {type(value).__name__} {value!r}")


def _parse_value(name: str, text: str, hint: Any) -> Any:
    """A command-line value for field `name` ("2e6" is a valid int, "true"/"false" bools)."""
    if hint is bool:
        low = text.lower()
        if low in ("true", "1", "yes", "on"):
            return True
        if low in ("false", "0", "no", "off"):
            return False
        raise TypeError(f"{name} must be a bool (true/false), got {text!r}")
    if hint is int:
        try:
            return int(text)
        except ValueError:
            pass
        try:
            f = float(text)
        except ValueError:
            raise TypeError(f"{name} must be an int, got {text!r}") from None
        if not f.is_integer():
            raise TypeError(f"{name} must be an int, got {text!r}")
        return int(f)
    if hint is float:
        try:
            return float(text)
        except ValueError:
            raise TypeError(f"{name} must be a number, got {text!r}") from None
    return text


def _env_kwarg(text: str) -> Any:
    for conv in (int, float):
        try:
            return conv(text)
        except ValueError:
            pass
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    if text.lower() == "none":
        return None
    return text


# What each config key means, for keys whose definition line carries no comment (the others are
# read from their comment): ``genmarl train --list-keys`` prints them with types and defaults.
_COMMON_DOCS = {
    "algo": "the learner: mappo or ippo (PPOConfig), genrl (GenRLConfig)",
    "env": "environment name or registered id (genmarl envs lists them)",
    "env_kwargs": "the env's arguments, a table ([env_kwargs] N = 4; None values: env_kwargs_none = [names])",
    "seed": "run seed: envs, networks and evaluations derive their seeds from it",
    "device": "torch device: auto, cpu, cuda or cuda:N",
    "num_envs": "envs stepped together per collection",
    "num_threads": "C++ env threads; 0 = automatic",
    "torch_threads": "torch CPU threads",
    "gamma": "discount factor",
    "gae_lambda": "lambda of GAE (PPO) or of the lambda-returns (genrl)",
    "critic_lr": "critic learning rate (Adam)",
    "entropy_coef": "weight of the policy's entropy bonus",
    "max_grad_norm": "gradient-norm clip; 0 = none",
    "eval_every": "env steps between evaluations; 0 = only at the end",
    "eval_episodes": "episodes per evaluation (deterministic actions, seed + 1,000,003)",
    "checkpoint_every": "env steps between checkpoints; 0 = only at the end",
    "tensorboard": "write TensorBoard event files into the run (needs tensorboard)",
    "progress": "print a progress line while training",
}
_PPO_DOCS = {
    "lr": "actor learning rate (Adam)",
    "update_epochs": "PPO epochs over each rollout",
    "num_minibatches": "minibatches per epoch",
    "clip_coef": "PPO clip range of the probability ratio",
    "clip_value_loss": "clip the value loss around the rollout's values",
    "value_clip_coef": "clip range of the value loss",
    "value_coef": "weight of the value loss",
    "adv_norm": "normalise advantages per minibatch",
    "hidden_size": "width of the actor and critic MLPs",
    "num_layers": "hidden layers of the actor and critic MLPs",
    "layer_norm_input": "LayerNorm on the observation input",
}
_GENRL_DOCS = {
    "seq_len": "steps per replayed sequence",
    "hidden_size": "width of the world model's MLPs and attention",
    "attention_heads": "attention heads of the agents' interaction in the world model",
    "free_nats": "KL free nats",
    "kl_dyn": "KL weight on the prior (dynamics) side",
    "kl_rep": "KL weight on the posterior (representation) side",
    "behaviour_coef": "weight of the behaviour-prediction loss (other agents' actions)",
    "model_lr": "world-model learning rate (Adam)",
    "overshoot_coef": "weight of the open-loop observation loss",
    "horizon": "imagination horizon in steps",
    "actor_lr": "actor learning rate (Adam)",
    "reward_from": "imagination's and planning's rewards: the world model's head ('latent') or a network on predicted observations ('obs')",
    "reward_hidden_size": "width of the 'obs' reward network",
    "reward_layers": "hidden layers of the 'obs' reward network",
    "reward_lr": "'obs' reward network learning rate (Adam)",
    "distill_coef": "weight of the policy's cross-entropy on the first actions planning chooses from replayed states (0 = none)",
    "distill_starts": "replayed states planned from per update (distill_coef > 0)",
}


def config_keys(cls: type) -> list[tuple[str, str, Any, str]]:
    """Every key of a config class: (name, type, default, meaning)."""
    import inspect

    source = [ln for k in cls.__mro__ if k is not object for ln in inspect.getsource(k).splitlines()]
    docs = {**_COMMON_DOCS, **(_GENRL_DOCS if cls is GenRLConfig else _PPO_DOCS)}
    hints = typing.get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        meaning = docs.get(f.name, "")
        if not meaning:
            line = next((ln for ln in source if re.match(rf"\s+{f.name}\s*:", ln)), "")
            meaning = line.split("#", 1)[1].strip() if "#" in line else ""
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        tp = getattr(hints[f.name], "__name__", str(hints[f.name]))
        out.append((f.name, tp, default, meaning))
    return out


WANDB_MODES = ("auto", "online", "offline")

#: TOML has no null: env arguments set to None (e.g. rware's ``max_inactivity_steps``) are listed
#: under this key of a config file, and :func:`load_config` restores them.
ENV_KWARGS_NONE = "env_kwargs_none"


def config_to_toml(cfg: RunConfig) -> str:
    """The config as TOML (written with ``tomli_w``), such that ``load_config(toml_path=...)`` of
    it gives back an equal config: env arguments that are None are listed in
    :data:`ENV_KWARGS_NONE`, tuples become arrays, enum members their values."""
    try:
        import tomli_w
    except ImportError:
        raise ImportError("writing config files needs tomli-w: pip install 'genmarl[train]'") from None
    data = cfg.to_dict()
    kwargs = data.pop("env_kwargs")
    none = sorted(k for k, v in kwargs.items() if v is None)
    if none:
        data[ENV_KWARGS_NONE] = none

    def plain(v: Any) -> Any:
        if isinstance(v, enum.Enum):
            return plain(v.value)
        if isinstance(v, (tuple, list)):
            return [plain(x) for x in v]
        return v.item() if hasattr(v, "item") and not isinstance(v, (str, bytes)) else v

    data["env_kwargs"] = {k: plain(v) for k, v in kwargs.items() if v is not None}
    return tomli_w.dumps(data)


def _read_toml(path: Path) -> dict[str, Any]:
    """A --config file's keys, with errors that name the file and what was expected."""
    if path.is_dir():
        raise ValueError(f"--config {path} is a directory; expected a TOML file of config keys")
    if not path.is_file():
        raise FileNotFoundError(f"--config {path} does not exist; expected a TOML file of config keys")
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"--config {path} is not valid TOML ({exc})") from None


def load_config(
    base: dict[str, Any] | None = None, toml_path: str | Path | None = None, overrides: list[str] | None = None
) -> RunConfig:
    """Defaults <- TOML file <- ``base`` (e.g. CLI flags) <- ``key=value`` overrides.

    The class follows the last ``algo`` given (``"genrl"``: :class:`GenRLConfig`, else
    :class:`PPOConfig`). ``env_kwargs.N=3`` sets one env argument. Unknown keys raise a KeyError
    naming the accepted ones.
    """
    data: dict[str, Any] = {}
    if toml_path is not None:
        data = _read_toml(Path(toml_path))
    algo = str(data.get("algo", "mappo"))
    algo = str((base or {}).get("algo", algo))
    for item in overrides or []:
        if item.split("=", 1)[0].strip() == "algo" and "=" in item:
            algo = item.split("=", 1)[1].strip()
    cls = config_class(algo)
    hints = typing.get_type_hints(cls)
    fields = [f.name for f in dataclasses.fields(cls)]
    values: dict[str, Any] = {}

    def put(key: str, value: Any, source: str) -> None:
        if key.startswith("env_kwargs."):
            values.setdefault("env_kwargs", {})[key.split(".", 1)[1]] = value
            return
        if key not in hints:
            raise KeyError(f"unknown config key {key!r} ({source}); accepted keys: {', '.join(fields)}")
        if key == "env_kwargs":
            if not isinstance(value, dict):
                raise TypeError(
                    f"env_kwargs ({source}) must be a table of env arguments (e.g. [env_kwargs] N = 4), "
                    f"got {type(value).__name__} {value!r}"
                )
            values.setdefault("env_kwargs", {}).update(value)
        else:
            values[key] = value

    none = data.pop(ENV_KWARGS_NONE, [])
    if not isinstance(none, list) or not all(isinstance(k, str) for k in none):
        raise TypeError(f"{ENV_KWARGS_NONE} (in {toml_path}) must be a list of env argument names, got {none!r}")
    for k, v in data.items():
        put(k, v, f"in {toml_path}")
    for k in none:
        put(f"env_kwargs.{k}", None, f"in {toml_path}")
    for k, v in (base or {}).items():
        put(k, v, "argument")
    for item in overrides or []:
        if "=" not in item:
            raise ValueError(f"override {item!r} must look like key=value")
        k, text = item.split("=", 1)
        k = k.strip()
        if k.startswith("env_kwargs."):
            put(k, _env_kwarg(text), "override")
        elif k not in hints:
            raise KeyError(f"unknown config key {k!r} (override); accepted keys: {', '.join(fields)}")
        else:
            put(k, _parse_value(k, text.strip(), hints[k]), "override")
    return cls(**values).validate()
