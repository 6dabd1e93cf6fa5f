"""Config files: written with a TOML library and read back into an equal config, for every
scenario's full set of arguments (None, tuples and enums included) and both config classes."""

from __future__ import annotations

import enum
import sys

import pytest

import genmarl
from genmarl.algos.config import ENV_KWARGS_NONE, GenRLConfig, PPOConfig, config_to_toml, load_config

pytest.importorskip("tomli_w")
if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib


def _norm(d):
    """Tuples and enum members as a TOML file holds them (arrays, values)."""
    if isinstance(d, dict):
        return {k: _norm(v) for k, v in d.items()}
    if isinstance(d, (tuple, list)):
        return [_norm(x) for x in d]
    return d.value if isinstance(d, enum.Enum) else d


@pytest.mark.parametrize("cls", [PPOConfig, GenRLConfig])
@pytest.mark.parametrize("env", genmarl.list_envs())
def test_every_scenarios_arguments_round_trip(env, cls, tmp_path):
    kwargs = genmarl.make(env).resolved_params()  # every argument of the scenario, defaults included
    cfg = cls(env=env, env_kwargs=kwargs, seed=3).validate()
    path = tmp_path / "config.toml"
    path.write_text(config_to_toml(cfg))
    back = load_config(toml_path=path)
    assert type(back) is cls
    assert _norm(back.to_dict()) == _norm(cfg.to_dict())
    genmarl.make(back.env, **back.env_kwargs)  # and the env it names is made from it


def test_none_arguments_are_listed_and_restored(tmp_path):
    cfg = PPOConfig(env="rware-tiny-2ag-v2", env_kwargs={"max_inactivity_steps": None, "max_steps": 50}).validate()
    text = config_to_toml(cfg)
    data = tomllib.loads(text)
    assert data[ENV_KWARGS_NONE] == ["max_inactivity_steps"] and data["env_kwargs"] == {"max_steps": 50}
    path = tmp_path / "c.toml"
    path.write_text(text)
    assert load_config(toml_path=path).env_kwargs == {"max_inactivity_steps": None, "max_steps": 50}
    path.write_text(f'{ENV_KWARGS_NONE} = "max_steps"\n')
    with pytest.raises(TypeError, match="list of env argument names"):
        load_config(toml_path=path)
    # an override spells None the same way
    assert load_config(overrides=["env=rware-tiny-2ag-v2", "env_kwargs.max_inactivity_steps=None"]).env_kwargs == {
        "max_inactivity_steps": None
    }


def test_a_runs_config_toml_reproduces_the_run_config(tmp_path):
    pytest.importorskip("torch")
    cfg = PPOConfig(env="rware-tiny-2ag-v2", env_kwargs={"max_inactivity_steps": None, "max_steps": 20}, total_steps=800,
                    num_envs=8, num_steps=50, eval_episodes=2, eval_every=0, tensorboard=False, progress=False).validate()
    result = genmarl.train(cfg, out=tmp_path / "run")
    again = load_config(toml_path=result.run_dir / "config.toml")
    assert again.to_dict() == cfg.to_dict()
