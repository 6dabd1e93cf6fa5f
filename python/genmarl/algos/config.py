"""Typed configuration of the PPO family (MAPPO / IPPO); torch-free.

Every field has a type; :func:`load_config` merges a TOML file and ``key=value`` overrides and
rejects unknown keys, wrong types and impossible sizes with messages naming the key.
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ALGOS = ("mappo", "ippo")


@dataclass
class PPOConfig:
    """MAPPO / IPPO settings. Defaults follow the MAPPO paper's MPE settings (Yu et al. 2021)."""

    # what to train
    algo: str = "mappo"  # "mappo": centralised critic on the global state; "ippo": per-agent critic
    env: str = "simple_spread"
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    device: str = "auto"  # "auto" (CUDA when present), "cpu", "cuda", "cuda:1", ...
    # data collection
    total_steps: int = 2_000_000  # env steps (each of num_envs envs stepping once = num_envs steps)
    num_envs: int = 128
    num_steps: int = 25  # rollout length per env per update
    num_threads: int = 0  # env threads; 0 = genmarl's default for num_envs
    torch_threads: int = 1  # torch intra-op threads for the run (small MLPs are fastest on 1); 0 = torch's default
    # optimisation
    lr: float = 7e-4
    critic_lr: float = 7e-4
    lr_decay: bool = False  # linear decay to 0 over total_steps (off, as in the MAPPO code)
    update_epochs: int = 10
    num_minibatches: int = 1
    gamma: float = 0.99
    gae_lambda: float = 0.95
    clip_coef: float = 0.2
    clip_value_loss: bool = True
    value_clip_coef: float = 0.2
    huber_delta: float = 10.0  # Huber value loss; 0 = squared error
    entropy_coef: float = 0.01
    value_coef: float = 1.0
    max_grad_norm: float = 10.0  # 0 = no clipping
    value_norm: bool = True  # running normalisation of value targets (MAPPO's ValueNorm)
    adv_norm: bool = True
    # networks
    hidden_size: int = 64
    num_layers: int = 2
    use_gru: bool = False  # recurrent actor (minibatches keep whole env trajectories)
    layer_norm_input: bool = True
    agent_id: bool = True  # append the agent's one-hot index within its group (parameter sharing)
    # runs
    eval_every: int = 200_000  # env steps between evaluations; 0 = only at the end
    eval_episodes: int = 100
    checkpoint_every: int = 500_000  # env steps between checkpoints; 0 = only at the end
    tensorboard: bool = True
    progress: bool = True

    def validate(self) -> PPOConfig:
        """Checks types and values; returns self. Raises TypeError / ValueError naming the key."""
        hints = typing.get_type_hints(type(self))
        for f in dataclasses.fields(self):
            _check_type(f.name, getattr(self, f.name), hints[f.name])
        if self.algo not in ALGOS:
            raise ValueError(f"algo must be one of {ALGOS}, got {self.algo!r}")
        for name in ("total_steps", "num_envs", "num_steps", "update_epochs", "num_minibatches", "hidden_size", "num_layers", "eval_episodes"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("num_threads", "torch_threads", "eval_every", "checkpoint_every", "seed"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        for name in ("gamma", "gae_lambda"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        for name in ("lr", "critic_lr"):
            if not (math.isfinite(getattr(self, name)) and getattr(self, name) > 0):
                raise ValueError(f"{name} must be a positive number, got {getattr(self, name)}")
        for name in ("clip_coef", "value_clip_coef", "huber_delta", "entropy_coef", "value_coef", "max_grad_norm"):
            if not (math.isfinite(getattr(self, name)) and getattr(self, name) >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {getattr(self, name)}")
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
        if not (self.device == "auto" or self.device == "cpu" or self.device.startswith("cuda") or self.device == "mps"):
            raise ValueError(f"device must be 'auto', 'cpu', 'cuda[:N]' or 'mps', got {self.device!r}")
        return self

    @property
    def batch_size(self) -> int:
        """Env steps per update (num_steps * num_envs)."""
        return self.num_steps * self.num_envs

    @property
    def num_updates(self) -> int:
        return self.total_steps // self.batch_size

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


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
    return text


def load_config(
    base: dict[str, Any] | None = None, toml_path: str | Path | None = None, overrides: list[str] | None = None
) -> PPOConfig:
    """Defaults <- TOML file <- ``base`` (e.g. CLI flags) <- ``key=value`` overrides.

    ``env_kwargs.N=3`` sets one env argument. Unknown keys raise a KeyError naming the accepted ones.
    """
    hints = typing.get_type_hints(PPOConfig)
    fields = [f.name for f in dataclasses.fields(PPOConfig)]
    values: dict[str, Any] = {}

    def put(key: str, value: Any, source: str) -> None:
        if key.startswith("env_kwargs."):
            values.setdefault("env_kwargs", {})[key.split(".", 1)[1]] = value
            return
        if key not in hints:
            raise KeyError(f"unknown config key {key!r} ({source}); accepted keys: {', '.join(fields)}")
        if key == "env_kwargs":
            values.setdefault("env_kwargs", {}).update(value)
        else:
            values[key] = value

    if toml_path is not None:
        with open(toml_path, "rb") as fh:
            data = tomllib.load(fh)
        for k, v in data.items():
            put(k, v, f"in {toml_path}")
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
    return PPOConfig(**values).validate()
