"""The learner layer: MAPPO/IPPO and the generative agent implement one protocol, and the runner,
evaluation and the CLI know learners only through it (no isinstance/hasattr on learner or config
types, no private attributes)."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")

import genmarl  # noqa: E402
from genmarl.algos.config import GenRLConfig, PPOConfig  # noqa: E402
from genmarl.algos.learner import Learner, learner_class, make_learner  # noqa: E402

ROOT = Path(__file__).resolve().parents[1] / "python" / "genmarl"


@pytest.mark.parametrize(
    "config",
    [PPOConfig(algo="mappo", num_envs=4), PPOConfig(algo="ippo", num_envs=4), GenRLConfig(num_envs=4, prefill_steps=100)],
    ids=["mappo", "ippo", "genrl"],
)
def test_learners_implement_the_protocol(config):
    env = genmarl.make(config.env, num_envs=4, seed=0)
    algo = make_learner(env, config.validate())
    assert isinstance(algo, Learner) and type(algo) is learner_class(config.algo)
    algo.reset(seed=0)
    algo.collect()
    assert isinstance(algo.update(), dict)
    training, at_end = type(algo).csv_columns(config)
    assert all(isinstance(c, str) for c in training + at_end)
    assert algo.evaluation_diagnostics() == {} or config.algo == "genrl"
    assert algo.planning_env_steps == 0
    # evaluation copy: same networks, another env, its own fresh policy state; the original is untouched
    other_env = genmarl.make(config.env, num_envs=3, seed=1)
    obs, _ = other_env.reset_grouped(seed=1)
    before = {k: v.clone() for k, v in algo._hidden.items()} if isinstance(algo._hidden, dict) else None  # noqa: SLF001
    ev = algo.for_env(other_env)
    assert ev.env is other_env and ev.num_envs == 3 and algo.num_envs == 4 and algo.env is env
    acts = ev.act(obs, deterministic=True, reset=np.ones(3, bool))
    assert {g: a.shape[0] for g, a in acts.items()} == {g: 3 for g in other_env.groups}
    if before is not None:
        for k, v in algo._hidden.items():  # noqa: SLF001
            assert (v == before[k]).all()


def test_unknown_algo_is_named():
    with pytest.raises(ValueError, match=r"unknown algo 'sac'; known: \['genrl', 'ippo', 'mappo'\]"):
        learner_class("sac")


def _violations(path: Path) -> list[str]:
    """isinstance/hasattr on learner or config types, and private learner attributes, in a module."""
    bad = []
    types = {"MAPPO", "GenerativeAgent", "GroupedLearner", "PPOConfig", "GenRLConfig"}
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("isinstance", "hasattr"):
            names = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)} | {
                n.value for n in ast.walk(node) if isinstance(n, ast.Constant) and isinstance(n.value, str)
            }
            if node.func.id == "isinstance" and names & types:
                bad.append(f"{path.name}:{node.lineno} isinstance on a learner/config type")
            if node.func.id == "hasattr" and names & {"algo", "runner", "learner"}:
                bad.append(f"{path.name}:{node.lineno} hasattr on a learner")
        if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
            base = node.value
            if isinstance(base, ast.Name) and base.id in ("algo", "runner", "learner", "ev"):
                bad.append(f"{path.name}:{node.lineno} private attribute {base.id}.{node.attr}")
    return bad


def test_runner_evaluation_and_cli_use_only_the_protocol():
    files = [ROOT / "training" / "runner.py", ROOT / "training" / "evaluate.py", ROOT / "cli.py"]
    assert [v for f in files for v in _violations(f)] == []
