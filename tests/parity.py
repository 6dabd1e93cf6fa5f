"""Side-by-side stepping of genmarl and mpe2 from a synced state."""

from __future__ import annotations

import numpy as np

import genmarl
from genmarl.testing import mpe2_module, sync_from_mpe2

# float32 observations/rewards are computed from float64 states in both libraries;
# states agree to ~1e-12 after a 25-step episode, so float32 outputs agree to a few ulp.
# rtol/atol 1e-5 leaves margin for ulp-level differences of numbers of magnitude <~ 10.
RTOL = 1e-5
ATOL = 1e-5


def run_parity_episode(name: str, seed: int, continuous: bool, kwargs: dict, resync=None, prepare=None) -> int:
    """Steps both libraries with the same random actions for one episode; returns steps compared.

    ``resync(penv, venv)`` (optional) is called after each step, before comparing, for
    scenarios whose steps draw randomness (genmarl's counter RNG cannot reproduce numpy's).
    ``prepare(penv)`` (optional) edits the reset mpe2 env (e.g. to stage rare events) before
    its state is copied into genmarl.
    """
    mod = mpe2_module(name)
    penv = mod.parallel_env(continuous_actions=continuous, **kwargs)
    obs_ref, _ = penv.reset(seed=seed)
    if prepare is not None:
        prepare(penv)
        obs_ref = {a: penv.unwrapped.observe(a) for a in penv.agents}
    venv = genmarl.make(name, num_envs=1, seed=seed, continuous_actions=continuous, **kwargs)
    venv.reset(seed=seed)
    sync_from_mpe2(venv, 0, penv)
    obs_d = venv.observe()
    for a in penv.agents:
        np.testing.assert_allclose(obs_d[a][0], obs_ref[a], rtol=RTOL, atol=ATOL, err_msg=f"{name} reset obs {a}")
    rng = np.random.default_rng(seed + 1000)
    steps = 0
    while penv.agents:
        actions = {}
        for a in penv.agents:
            space = penv.action_space(a)
            if continuous:
                actions[a] = rng.random(space.shape, dtype=np.float32)
            else:
                actions[a] = int(rng.integers(space.n))
        ref = penv.step(actions)
        batched = {a: np.asarray(v)[None] for a, v in actions.items()}
        obs, rew, term, trunc, infos = venv.step(batched)
        steps += 1
        o_ref, r_ref, te_ref, tr_ref, _ = ref
        done = bool(infos[venv.possible_agents[0]].get("_final_obs", np.zeros(1, bool))[0])
        if resync is not None and not done:
            resync(penv, venv)
            obs = venv.observe()
        for a in venv.possible_agents:
            got_obs = infos[a]["final_obs"][0] if done else obs[a][0]
            np.testing.assert_allclose(got_obs, o_ref[a], rtol=RTOL, atol=ATOL, err_msg=f"{name} step {steps} obs {a}")
            np.testing.assert_allclose(rew[a][0], r_ref[a], rtol=RTOL, atol=ATOL, err_msg=f"{name} step {steps} reward {a}")
            assert bool(term[a][0]) == bool(te_ref[a]), f"{name} step {steps} terminated {a}"
            assert bool(trunc[a][0]) == bool(tr_ref[a]), f"{name} step {steps} truncated {a}"
        assert done == (not penv.agents), f"{name} step {steps}: done flags differ"
    penv.close()
    return steps
