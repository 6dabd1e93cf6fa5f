"""Bad input to genmarl.buffers raises a clear Python exception and leaves the buffer unchanged.

Each case builds two identical buffers (same seed, same contents), makes the bad call on one
of them, checks the exception type and that its message names the problem, then checks that
the buffer that got the bad call still behaves exactly like its twin (size, samples, RNG
state, and what a following good call does).
"""

from __future__ import annotations

import json
import os
import re
import struct

import numpy as np
import pytest

from genmarl.buffers import (
    BufferFileError,
    EpisodeBuffer,
    PrioritizedReplayBuffer,
    ReplayBuffer,
    RolloutBuffer,
)
from fresh_interpreter import run_python

SPEC = {
    "obs": ((3, 2), np.float32),
    "action": ((3,), np.int64),
    "reward": ((), np.float32),
    "done": ((), np.bool_),
}
EPISODE_SPEC = {"obs": ((2,), np.float32), "action": ((), np.int32), "done": ((), np.bool_)}
ROLLOUT_SPEC = {
    "obs": ((2,), np.float32),
    "reward": ((), np.float32),
    "value": ((), np.float32),
    "terminated": ((), np.bool_),
    "truncated": ((), np.bool_),
    "final_value": ((), np.float32),
}


def make_batch(spec, n, seed=0):
    rng = np.random.default_rng(seed)
    out = {}
    for name, (shape, dt) in spec.items():
        dt = np.dtype(dt)
        if dt == np.bool_:
            out[name] = rng.random((n, *shape)) < 0.2
        elif dt.kind == "f":
            out[name] = rng.normal(size=(n, *shape)).astype(dt)
        else:
            out[name] = rng.integers(0, 5, size=(n, *shape)).astype(dt)
    return out


def batch(n, seed=0):
    return make_batch(SPEC, n, seed)


def estep(n, seed=0):
    return make_batch(EPISODE_SPEC, n, seed)


def rstep(n=2, seed=0, truncated=False):
    s = make_batch(ROLLOUT_SPEC, n, seed)
    s["terminated"][:] = False
    s["truncated"][:] = truncated
    return s


# ---------------------------------------------------------------------------- factories


def replay():
    b = ReplayBuffer(8, SPEC, seed=7)
    b.add(batch(5, 1))
    return b


def replay_empty():
    return ReplayBuffer(8, SPEC, seed=7)


def replay_no_reward():
    b = ReplayBuffer(8, {"obs": ((2,), np.float32)}, seed=7)
    b.add({"obs": np.ones((3, 2), np.float32)})
    return b


def replay_two_envs():
    b = ReplayBuffer(8, SPEC, seed=7, num_envs=2)
    b.add(batch(4, 1))
    return b


def per():
    b = PrioritizedReplayBuffer(8, SPEC, alpha=0.7, beta=0.5, eps=1e-3, seed=7)
    b.add(batch(5, 1), np.array([0.5, 2.0, 0.0, 1.0, 3.0]))
    return b


def per_empty():
    return PrioritizedReplayBuffer(8, SPEC, seed=7)


def per_zero():
    b = PrioritizedReplayBuffer(8, SPEC, eps=0.0, seed=7)
    b.add(batch(3, 1), np.zeros(3))
    return b


def episode():
    b = EpisodeBuffer(12, EPISODE_SPEC, seed=7, num_envs=3)  # 4 steps per env
    b.add_step(estep(3, 1))
    b.add_step(estep(2, 2), np.array([2, 0]))
    return b


def episode_empty():
    return EpisodeBuffer(12, EPISODE_SPEC, seed=7, num_envs=3)


def rollout_partial():
    b = RolloutBuffer(3, 2, ROLLOUT_SPEC)
    b.add(rstep(seed=1))
    return b


def rollout_full():
    b = RolloutBuffer(3, 2, ROLLOUT_SPEC)
    for t in range(3):
        b.add(rstep(seed=t, truncated=(t == 1)))
    return b


def rollout_gae():
    b = rollout_full()
    b.compute_gae(np.zeros(2, np.float32))
    return b


def rollout_without(field):
    spec = {k: v for k, v in ROLLOUT_SPEC.items() if k not in (field, "final_value")}

    def make():
        b = RolloutBuffer(2, 2, spec)
        for t in range(2):
            s = rstep(seed=t)
            b.add({k: v for k, v in s.items() if k in spec})
        return b

    make.__name__ = f"rollout_without_{field}"
    return make


def rollout_truncated_no_final():
    spec = {k: v for k, v in ROLLOUT_SPEC.items() if k != "final_value"}
    b = RolloutBuffer(2, 2, spec)
    for t in range(2):
        s = rstep(seed=t, truncated=(t == 0))
        b.add({k: v for k, v in s.items() if k in spec})
    return b


def rollout_nan_final():
    b = RolloutBuffer(2, 2, ROLLOUT_SPEC)
    s = rstep(seed=0, truncated=True)
    s["final_value"][1] = np.nan
    b.add(s)
    b.add(rstep(seed=1))
    return b


def rollout_two_groups():
    spec = {}
    for g in ("a/", "b/"):
        for k, v in ROLLOUT_SPEC.items():
            spec[g + k] = v
    b = RolloutBuffer(1, 2, spec)
    s = {}
    for g in ("a/", "b/"):
        s.update({g + k: v for k, v in rstep().items()})
    b.add(s)
    return b


# ---------------------------------------------------------------------------- twin comparison


def same(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def assert_same_dict(a, b):
    assert set(a) == set(b)
    for k in a:
        assert same(a[k], b[k]), k


def assert_unchanged(buf, twin):
    """`buf` got a bad call, `twin` did not: both must behave identically from here on."""
    assert type(buf) is type(twin)
    assert len(buf) == len(twin)
    if isinstance(buf, PrioritizedReplayBuffer):
        assert (buf.max_priority, buf.beta, buf.alpha) == (twin.max_priority, twin.beta, twin.alpha)
        if len(buf):
            idx = np.arange(len(buf))
            assert same(buf.priorities(idx), twin.priorities(idx))
            if buf.priorities(idx).sum() > 0:
                assert_same_dict(buf.sample(6), twin.sample(6))
        good = make_batch(buf.spec, 3, 99)
        buf.add(good)
        twin.add(good)
        assert_same_dict(buf.sample(7), twin.sample(7))
        idx = np.arange(len(buf))
        assert same(buf.priorities(idx), twin.priorities(idx))
    elif isinstance(buf, ReplayBuffer):
        if len(buf):
            assert_same_dict(buf.sample(6, return_indices=True), twin.sample(6, return_indices=True))
            if "reward" in buf.spec:
                assert_same_dict(buf.sample(4, n_step=2, return_indices=True),
                                 twin.sample(4, n_step=2, return_indices=True))
        good = make_batch(buf.spec, 2 * buf.num_envs, 99)
        buf.add(good)
        twin.add(good)
        assert len(buf) == len(twin)
        assert_same_dict(buf.sample(7, return_indices=True), twin.sample(7, return_indices=True))
    elif isinstance(buf, EpisodeBuffer):
        assert buf.num_episodes == twin.num_episodes
        if len(buf):
            assert_same_dict(buf.sample_sequences(5, 2), twin.sample_sequences(5, 2))
            assert_same_dict(buf.sample_sequences(5, 1, mode="stitch"), twin.sample_sequences(5, 1, mode="stitch"))
        good = estep(3, 99)
        good["done"][:] = [True, False, False]
        buf.add_step(good)
        twin.add_step(good)
        assert (len(buf), buf.num_episodes) == (len(twin), twin.num_episodes)
        assert_same_dict(buf.sample_sequences(6, 3), twin.sample_sequences(6, 3))
    elif isinstance(buf, RolloutBuffer):
        assert (buf.step, buf.full, buf._b.gae_ready) == (twin.step, twin.full, twin._b.gae_ready)
        for k in buf.keys() if buf._b.gae_ready else list(buf.spec):
            assert same(buf[k], twin[k]), k
        if buf.full:
            try:
                lv = {p.rstrip("/"): np.ones(buf.num_envs, np.float32) for p in buf.gae_prefixes}
                twin.compute_gae(lv, gamma=0.9, gae_lambda=0.8)
            except ValueError:
                return  # the twin cannot compute GAE either (the case is about its spec)
            buf.compute_gae(lv, gamma=0.9, gae_lambda=0.8)
            for k in buf.keys():
                assert same(buf[k], twin[k]), k
        elif set(buf.spec) == set(ROLLOUT_SPEC):
            buf.add(rstep(seed=5))
            twin.add(rstep(seed=5))
            assert buf.step == twin.step
            for k in buf.spec:
                assert same(buf[k], twin[k]), k
    else:  # pragma: no cover
        raise AssertionError(type(buf))


def with_(d, **changes):
    out = dict(d)
    for k, v in changes.items():
        if v is None:
            out.pop(k)
        else:
            out[k] = v
    return out


def sample_all(it):
    return list(it)


# (factory, bad call, exception type, regex the message must match)
CASES = [
    # --- ReplayBuffer.add: field names
    (replay, lambda b: b.add(with_(batch(2), obs=None)), KeyError, r"missing fields 'obs'"),
    (replay, lambda b: b.add(with_(batch(2), done=None, reward=None)), KeyError, r"missing fields 'reward', 'done'"),
    (replay, lambda b: b.add(with_(batch(2), foo=np.zeros(2, np.float32))), KeyError, r"unknown fields 'foo'"),
    (replay, lambda b: b.add({**with_(batch(2), obs=None), "obz": batch(2)["obs"]}), KeyError, r"missing fields 'obs'"),
    (replay, lambda b: b.add({}), KeyError, r"missing fields 'obs', 'action', 'reward', 'done'"),
    # --- dtypes
    (replay, lambda b: b.add(with_(batch(2), obs=batch(2)["obs"].astype(np.float64))), TypeError,
     r"field 'obs' has dtype float64; expected float32"),
    (replay, lambda b: b.add(with_(batch(2), action=batch(2)["action"].astype(np.int32))), TypeError,
     r"field 'action' has dtype int32; expected int64"),
    (replay, lambda b: b.add(with_(batch(2), done=np.zeros(2, np.uint8))), TypeError, r"'done' has dtype uint8; expected bool"),
    (replay, lambda b: b.add(with_(batch(2), reward=[1.0, 2.0])), TypeError, r"'reward' has dtype float64; expected float32"),
    (replay, lambda b: b.add(with_(batch(2), reward=np.array(["a", "b"]))), TypeError, r"'reward' has dtype <U1; expected float32"),
    (replay, lambda b: b.add(with_(batch(2), reward=np.array([1.0, None]))), TypeError, r"'reward' has dtype object"),
    # --- shapes
    (replay, lambda b: b.add(with_(batch(2), obs=np.zeros((2, 3, 3), np.float32))), ValueError,
     r"field 'obs' has shape \(2, 3, 3\); expected \(batch, 3, 2\)"),
    (replay, lambda b: b.add(with_(batch(2), obs=np.zeros((2, 6), np.float32))), ValueError, r"field 'obs' has shape \(2, 6\)"),
    (replay, lambda b: b.add(with_(batch(2), reward=np.zeros((2, 1), np.float32))), ValueError,
     r"field 'reward' has shape \(2, 1\); expected \(2,\)"),
    (replay, lambda b: b.add(with_(batch(2), reward=np.float32(1.0))), ValueError, r"field 'reward' has shape \(\)"),
    (replay, lambda b: b.add(with_(batch(2), action=np.zeros((3, 3), np.int64))), ValueError,
     r"field 'action' has shape \(3, 3\); expected \(2, 3\)"),
    (replay, lambda b: b.add(with_(batch(2), done=np.zeros(1, bool))), ValueError, r"field 'done' has shape \(1,\); expected \(2,\)"),
    # --- batch container / size
    (replay, lambda b: b.add([batch(2)["obs"]]), TypeError, r"batch must be a dict of arrays keyed by field name.*got list"),
    (replay, lambda b: b.add(np.zeros((2, 3))), TypeError, r"batch must be a dict.*got ndarray"),
    (replay, lambda b: b.add(None), TypeError, r"batch must be a dict.*got NoneType"),
    (replay, lambda b: b.add(batch(0)), ValueError, r"add needs at least one item, got a batch of 0"),
    (replay, lambda b: b.add(batch(9)), ValueError, r"a batch of 9 items is larger than the capacity 8"),
    (replay_two_envs, lambda b: b.add(batch(3)), ValueError, r"whole steps of num_envs=2"),
    # --- sample
    (replay_empty, lambda b: b.sample(1), ValueError, r"cannot sample from an empty buffer"),
    (replay_empty, lambda b: b.sample(4, n_step=3), ValueError, r"cannot sample from an empty buffer"),
    (replay, lambda b: b.sample(0), ValueError, r"batch_size must be >= 1, got 0"),
    (replay, lambda b: b.sample(-3), ValueError, r"batch_size must be >= 1, got -3"),
    (replay, lambda b: b.sample(2.0), TypeError, r"batch_size must be an int, got float"),
    (replay, lambda b: b.sample("4"), TypeError, r"batch_size must be an int, got str"),
    (replay, lambda b: b.sample(True), TypeError, r"batch_size must be an int, got bool"),
    (replay, lambda b: b.sample(None), TypeError, r"batch_size must be an int, got NoneType"),
    (replay, lambda b: b.sample(2, n_step=0), ValueError, r"n_step must be >= 1, got 0"),
    (replay, lambda b: b.sample(2, n_step=-1), ValueError, r"n_step must be >= 1, got -1"),
    (replay, lambda b: b.sample(2, n_step=2.5), TypeError, r"n_step must be an int"),
    (replay, lambda b: b.sample(2, n_step=2**63), ValueError, r"n_step must be <= "),
    (replay, lambda b: b.sample(2, n_step=3, gamma=1.5), ValueError, r"gamma must be in \[0, 1\], got 1\.5"),
    (replay, lambda b: b.sample(2, n_step=3, gamma=-0.1), ValueError, r"gamma must be in \[0, 1\]"),
    (replay, lambda b: b.sample(2, n_step=3, gamma=float("nan")), ValueError, r"gamma must be in \[0, 1\], got nan"),
    (replay, lambda b: b.sample(2, n_step=3, gamma=float("inf")), ValueError, r"gamma must be in \[0, 1\]"),
    (replay_no_reward, lambda b: b.sample(2, n_step=2), ValueError, r"n-step returns need a 'reward' field"),
    # --- PrioritizedReplayBuffer
    (per, lambda b: b.add(batch(3), np.array([1.0, -1.0, 1.0])), ValueError, r"priorities must be finite and >= 0; got -1.* at position 1"),
    (per, lambda b: b.add(batch(3), np.array([np.nan, 1.0, 1.0])), ValueError, r"priorities must be finite and >= 0; got nan"),
    (per, lambda b: b.add(batch(3), np.array([1.0, 1.0, np.inf])), ValueError, r"priorities must be finite and >= 0; got inf at position 2"),
    (per, lambda b: b.add(batch(3), np.array([1.0, 1.0])), ValueError, r"priorities must have shape \(3,\), got \(2,\)"),
    (per, lambda b: b.add(batch(3), np.ones((1, 3))), ValueError, r"priorities must have shape \(3,\), got \(1, 3\)"),
    (per, lambda b: b.add(batch(3), np.array(["a", "b", "c"])), TypeError, r"priorities must hold numbers"),
    (per, lambda b: b.add(with_(batch(3), obs=None), np.ones(3)), KeyError, r"missing fields 'obs'"),
    (per, lambda b: b.add(batch(9)), ValueError, r"larger than the capacity 8"),
    (per_empty, lambda b: b.sample(2), ValueError, r"cannot sample from an empty buffer"),
    (per_zero, lambda b: b.sample(2), ValueError, r"every stored priority is zero"),
    (per, lambda b: b.sample(0), ValueError, r"batch_size must be >= 1"),
    (per, lambda b: b.sample(1.5), TypeError, r"batch_size must be an int"),
    (per, lambda b: b.sample(2, beta=-0.5), ValueError, r"beta must be a finite number >= 0"),
    (per, lambda b: b.sample(2, beta=float("nan")), ValueError, r"beta must be a finite number >= 0"),
    (per, lambda b: b.sample(2, beta=float("inf")), ValueError, r"beta must be a finite number >= 0, got inf"),
    (per, lambda b: setattr(b, "beta", -1.0), ValueError, r"beta must be a finite number >= 0"),
    (per, lambda b: setattr(b, "beta", float("nan")), ValueError, r"beta must be a finite number >= 0"),
    (per, lambda b: b.update_priorities(np.array([5]), np.array([1.0])), ValueError,
     r"index 5 \(position 0\) is out of range; valid indices are 0\.\.4"),
    (per, lambda b: b.update_priorities(np.array([-1]), np.array([1.0])), ValueError, r"index -1 \(position 0\) is out of range"),
    (per, lambda b: b.update_priorities(np.array([0, 1, 99]), np.array([9.0, 9.0, 9.0])), ValueError,
     r"index 99 \(position 2\) is out of range"),
    (per, lambda b: b.update_priorities(np.array([0, 1]), np.array([1.0])), ValueError, r"priorities must have shape \(2,\), got \(1,\)"),
    (per, lambda b: b.update_priorities(np.array([0]), np.array([1.0, 2.0])), ValueError, r"priorities must have shape \(1,\), got \(2,\)"),
    (per, lambda b: b.update_priorities(np.array([0.0, 1.0]), np.array([1.0, 2.0])), TypeError, r"indices must hold integers, got dtype float64"),
    (per, lambda b: b.update_priorities(np.array([[0, 1]]), np.array([1.0, 2.0])), ValueError, r"indices must be 1-D"),
    (per, lambda b: b.update_priorities(np.array([0, 1]), np.array([9.0, -2.0])), ValueError,
     r"priorities must be finite and >= 0; got -2.* at position 1"),
    (per, lambda b: b.update_priorities(np.array([0, 1]), np.array([9.0, np.nan])), ValueError, r"got nan at position 1"),
    (per, lambda b: b.update_priorities(np.array([0, 1]), np.array([np.inf, 9.0])), ValueError, r"got inf at position 0"),
    (per, lambda b: b.priorities(np.array([5])), ValueError, r"index 5 is out of range"),
    # --- EpisodeBuffer
    (episode, lambda b: b.add_step(estep(1), np.array([3])), ValueError, r"env id 3 is out of range; valid ids are 0\.\.2"),
    (episode, lambda b: b.add_step(estep(1), np.array([-1])), ValueError, r"env id -1 is out of range"),
    (episode, lambda b: b.add_step(estep(2), np.array([1, 1])), ValueError, r"env id 1 is listed twice"),
    (episode, lambda b: b.add_step(estep(1), np.array([0, 1])), ValueError, r"env_ids has 2 entries but the step holds 1 items"),
    (episode, lambda b: b.add_step(estep(2), np.array([0])), ValueError, r"env_ids has 1 entries but the step holds 2 items"),
    (episode, lambda b: b.add_step(estep(1), np.array([1.0])), TypeError, r"env_ids must hold integers"),
    (episode, lambda b: b.add_step(estep(1), np.array([[1]])), ValueError, r"env_ids must be 1-D"),
    (episode, lambda b: b.add_step(estep(2)), ValueError, r"add_step without env_ids needs one item per env \(3\), got 2"),
    (episode, lambda b: b.add_step(estep(4)), ValueError, r"needs one item per env \(3\), got 4"),
    (episode, lambda b: b.add_step(with_(estep(3), obs=None)), KeyError, r"step is missing fields 'obs'"),
    (episode, lambda b: b.add_step(with_(estep(3), action=np.zeros(3, np.int64))), TypeError, r"'action' has dtype int64; expected int32"),
    (episode, lambda b: b.add_step(with_(estep(3), obs=np.zeros((3, 3), np.float32))), ValueError, r"'obs' has shape \(3, 3\)"),
    (episode, lambda b: b.add_step("obs"), TypeError, r"step must be a dict"),
    (episode, lambda b: b.end_episode(np.array([3])), ValueError, r"env id 3 is out of range"),
    (episode, lambda b: b.end_episode(np.array([0, 0])), ValueError, r"env id 0 is listed twice"),
    (episode, lambda b: b.end_episode(np.array([], np.int64)), ValueError, r"at least one env id is needed"),
    (episode, lambda b: b.sample_sequences(2, 5), ValueError, r"length 5 is longer than each env's storage \(4 steps"),
    (episode, lambda b: b.sample_sequences(2, 3, mode="stitch"), ValueError, r"no env holds 3 consecutive steps yet"),
    (episode, lambda b: b.sample_sequences(2, 1, mode="foo"), ValueError, r"mode must be 'pad' or 'stitch', got 'foo'"),
    (episode, lambda b: b.sample_sequences(2, 1, mode="PAD"), ValueError, r"mode must be 'pad' or 'stitch'"),
    (episode, lambda b: b.sample_sequences(0, 1), ValueError, r"batch_size must be >= 1"),
    (episode, lambda b: b.sample_sequences(2, 0), ValueError, r"length must be >= 1, got 0"),
    (episode, lambda b: b.sample_sequences(2, 1.0), TypeError, r"length must be an int"),
    (episode, lambda b: b.sample_sequences("2", 1), TypeError, r"batch_size must be an int"),
    (episode_empty, lambda b: b.sample_sequences(2, 1), ValueError, r"cannot sample from an empty buffer"),
    (episode_empty, lambda b: b.sample_sequences(2, 1, mode="stitch"), ValueError, r"no env holds 1 consecutive steps"),
    # --- RolloutBuffer
    (rollout_full, lambda b: b.add(rstep()), ValueError, r"the rollout is full \(3 steps\); call reset\(\) first"),
    (rollout_partial, lambda b: b.add(rstep(1)), ValueError, r"step holds 1 items; expected one per env \(2\)"),
    (rollout_partial, lambda b: b.add(rstep(3)), ValueError, r"step holds 3 items; expected one per env \(2\)"),
    (rollout_partial, lambda b: b.add(with_(rstep(), value=None)), KeyError, r"step is missing fields 'value'"),
    (rollout_partial, lambda b: b.add(with_(rstep(), value=np.zeros(2, np.float16))), TypeError, r"'value' has dtype float16; expected float32"),
    (rollout_partial, lambda b: b.add(42), TypeError, r"step must be a dict"),
    (rollout_partial, lambda b: b.compute_gae(np.zeros(2, np.float32)), ValueError, r"compute_gae needs a full rollout: 1 of 3 steps"),
    (rollout_full, lambda b: b.compute_gae(np.zeros(3, np.float32)), ValueError, r"last_values for 'reward' has shape \(3,\); expected \(2,\)"),
    (rollout_full, lambda b: b.compute_gae(np.zeros((2, 1), np.float32)), ValueError, r"has shape \(2, 1\); expected \(2,\)"),
    (rollout_full, lambda b: b.compute_gae(np.array([0.0, np.nan])), ValueError, r"last_values for 'reward' holds NaN or inf"),
    (rollout_full, lambda b: b.compute_gae(np.array([np.inf, 0.0])), ValueError, r"holds NaN or inf"),
    (rollout_full, lambda b: b.compute_gae(np.array(["a", "b"])), TypeError, r"last_values must be numbers"),
    (rollout_full, lambda b: b.compute_gae({"agent": np.zeros(2)}), KeyError, r"last_values must be keyed by \[''\], got \['agent'\]"),
    (rollout_full, lambda b: b.compute_gae(np.zeros(2), gamma=1.5), ValueError, r"gamma must be in \[0, 1\]"),
    (rollout_full, lambda b: b.compute_gae(np.zeros(2), gae_lambda=float("nan")), ValueError, r"gae_lambda must be in \[0, 1\]"),
    (rollout_full, lambda b: b.compute_gae(np.zeros(2), gae_lambda=-0.5), ValueError, r"gae_lambda must be in \[0, 1\]"),
    (rollout_two_groups, lambda b: b.compute_gae(np.zeros(2)), TypeError, r"several reward fields: pass last_values as a dict keyed by \['a', 'b'\]"),
    (rollout_two_groups, lambda b: b.compute_gae({"a": np.zeros(2)}), KeyError, r"keyed by \['a', 'b'\], got \['a'\]"),
    (rollout_two_groups, lambda b: b.compute_gae({"a": np.zeros(2), "b": np.zeros(3)}), ValueError, r"last_values for 'b/reward' has shape \(3,\)"),
    (rollout_without("value"), lambda b: b.compute_gae(np.zeros(2)), ValueError, r"compute_gae needs a field 'value' next to 'reward'"),
    (rollout_without("terminated"), lambda b: b.compute_gae(np.zeros(2)), ValueError, r"needs a field 'terminated' next to 'reward'"),
    (rollout_without("truncated"), lambda b: b.compute_gae(np.zeros(2)), ValueError, r"needs a field 'truncated' next to 'reward'"),
    (rollout_truncated_no_final, lambda b: b.compute_gae(np.zeros(2)), ValueError,
     r"step 0, env 0 is truncated: add a 'final_value' field"),
    (rollout_nan_final, lambda b: b.compute_gae(np.zeros(2)), ValueError, r"'final_value' is not finite at step 0, env 1"),
    (rollout_full, lambda b: b["advantage"], ValueError, r"call compute_gae\(\) before reading advantages/returns"),
    (rollout_full, lambda b: b["return"], ValueError, r"call compute_gae\(\) before reading"),
    (rollout_full, lambda b: b["foo"], KeyError, r"no field 'foo'; the rollout has: obs, reward"),
    (rollout_partial, lambda b: sample_all(b.minibatches(1)), ValueError, r"minibatches need a full rollout: 1 of 3 steps"),
    (rollout_full, lambda b: sample_all(b.minibatches(7)), ValueError, r"num_minibatches \(7\) > rows in the rollout \(6\)"),
    (rollout_full, lambda b: sample_all(b.minibatches(3, by_env=True)), ValueError, r"num_minibatches \(3\) > num_envs \(2\)"),
    (rollout_full, lambda b: sample_all(b.minibatches(0)), ValueError, r"num_minibatches must be >= 1"),
    (rollout_full, lambda b: sample_all(b.minibatches(2.0)), TypeError, r"num_minibatches must be an int"),
    (rollout_gae, lambda b: b.compute_gae(np.zeros(3)), ValueError, r"has shape \(3,\); expected \(2,\)"),
    (rollout_gae, lambda b: b.add(rstep()), ValueError, r"the rollout is full"),
    # --- saving to a place that cannot be written
    (replay, lambda b: b.save("/nonexistent-dir/x.gmb"), BufferFileError, r"cannot write '/nonexistent-dir/x.gmb'"),
    (episode, lambda b: b.save(None), TypeError, r"path must be a str or os.PathLike"),
]


def case_id(case):
    factory, _, exc, match = case
    name = exc.__name__ if isinstance(exc, type) else "|".join(e.__name__ for e in exc)
    return f"{factory.__name__}-{name}-{match[:40]}"


@pytest.mark.parametrize("case", CASES, ids=[case_id(c) for c in CASES])
def test_bad_call_raises_and_leaves_buffer_unchanged(case):
    factory, call, exc, match = case
    buf, twin = factory(), factory()
    with pytest.raises(exc, match=match):
        call(buf)
    assert_unchanged(buf, twin)


# ---------------------------------------------------------------------------- dtypes numpy calls equal


@pytest.mark.parametrize(
    ("field", "dtype"),
    [("action", np.dtype(np.longlong)), ("obs", np.dtype(">f4")), ("action", np.dtype(">i8"))],
    ids=["longlong-for-int64", "big-endian-float32", "big-endian-int64"],
)
def test_equivalent_or_byteswapped_dtype_is_accepted_or_clearly_rejected(field, dtype):
    """An array whose dtype *name* is the field's (np.longlong is 'int64' like np.int64; '>f4' is
    'float32') is either stored correctly or rejected with a message that tells the two apart --
    never 'has dtype int64; expected int64'."""
    good = batch(2, 5)
    odd = dict(good)
    odd[field] = good[field].astype(dtype)
    assert np.array_equal(odd[field], good[field])
    buf, twin = replay(), replay()
    try:
        buf.add(odd)
    except TypeError as e:
        msg = str(e)
        m = re.search(r"has dtype (\S+); expected (\S+)", msg)
        assert m is None or m.group(1) != m.group(2), f"self-contradictory message: {msg!r}"
        assert_unchanged(buf, twin)
        return
    twin.add(good)
    assert_same_dict(buf.sample(8, return_indices=True), twin.sample(8, return_indices=True))


# ---------------------------------------------------------------------------- constructors


ALL_KINDS = {
    "replay": lambda spec, seed=0: ReplayBuffer(4, spec, seed=seed),
    "prioritized": lambda spec, seed=0: PrioritizedReplayBuffer(4, spec, seed=seed),
    "episode": lambda spec, seed=0: EpisodeBuffer(4, spec, seed=seed),
    "rollout": lambda spec, seed=0: RolloutBuffer(2, 2, spec),
}

BAD_SPECS = [
    ({}, ValueError, r"spec must have at least one field"),
    ([("obs", (2,), np.float32)], TypeError, r"spec must be a dict mapping field name -> \(shape, dtype\), got list"),
    (None, TypeError, r"spec must be a dict.*got NoneType"),
    ({"obs": ((0,), np.float32)}, ValueError, r"field 'obs': every dimension must be positive, got shape \(0,\)"),
    ({"obs": ((3, -2), np.float32)}, ValueError, r"field 'obs': every dimension must be positive, got shape \(3, -2\)"),
    ({"obs": (0, np.float32)}, ValueError, r"field 'obs': every dimension must be positive"),
    ({"obs": ((2,), np.complex64)}, TypeError, r"field 'obs': dtype complex64 is not supported; use one of float32"),
    ({"obs": ((2,), np.float64)}, TypeError, r"field 'obs': dtype float64 is not supported"),
    ({"obs": ((2,), np.int16)}, TypeError, r"field 'obs': dtype int16 is not supported"),
    ({"obs": ((2,), object)}, TypeError, r"field 'obs': dtype object is not supported"),
    ({"obs": ((2,), "not-a-dtype")}, TypeError, r"field 'obs': 'not-a-dtype' is not a dtype"),
    ({"obs": (2,)}, TypeError, r"field 'obs': expected \(shape, dtype\)"),
    ({"obs": np.float32}, TypeError, r"field 'obs': expected \(shape, dtype\)"),
    ({3: ((2,), np.float32)}, TypeError, r"field names must be strings, got 3"),
    ({"": ((2,), np.float32)}, ValueError, r"field names must be 1\.\.256 characters"),
    ({"obs": (None, np.float32)}, TypeError, r"field 'obs': shape must be a tuple of ints, got None"),
    ({"obs": (((2,) * 9), np.float32)}, ValueError, r"field 'obs': at most 8 dimensions"),
    ({"obs": ((2**20, 2**20), np.float32)}, ValueError, r"field 'obs': one item of shape \(1048576, 1048576\) is larger than 1 GiB"),
    # a shape must hold whole numbers: 2.5 must not silently become 2
    ({"obs": ((2.5,), np.float32)}, (TypeError, ValueError), r"field 'obs'.*shape"),
    ({"obs": (("x",), np.float32)}, (TypeError, ValueError), r"field 'obs'.*shape"),
    ({"obs": ((2**63,), np.uint8)}, (TypeError, ValueError), r"field 'obs'"),
]


@pytest.mark.parametrize("kind", list(ALL_KINDS))
@pytest.mark.parametrize(("spec", "exc", "match"), BAD_SPECS, ids=[repr(s)[:48] for s, _, _ in BAD_SPECS])
def test_bad_spec(kind, spec, exc, match):
    with pytest.raises(exc, match=match):
        ALL_KINDS[kind](spec)


@pytest.mark.parametrize("kind", ["replay", "prioritized", "episode"])
@pytest.mark.parametrize(
    "seed", [-1, 1.5, "3", None, True, np.float64(2.0), 2**64, 2**70], ids=lambda s: f"seed={s!r}"
)
def test_bad_seed(kind, seed):
    with pytest.raises((ValueError, TypeError), match=r"seed must be"):
        ALL_KINDS[kind]({"obs": ((2,), np.float32)}, seed=seed)


GOOD = {"obs": ((2,), np.float32)}


@pytest.mark.parametrize(
    ("make", "exc", "match"),
    [
        (lambda: ReplayBuffer(0, GOOD), ValueError, r"capacity must be >= 1, got 0"),
        (lambda: ReplayBuffer(-4, GOOD), ValueError, r"capacity must be >= 1, got -4"),
        (lambda: ReplayBuffer(4.0, GOOD), TypeError, r"capacity must be an int, got float"),
        (lambda: ReplayBuffer(4, GOOD, num_envs=0), ValueError, r"num_envs must be >= 1"),
        (lambda: ReplayBuffer(5, GOOD, num_envs=2), ValueError, r"capacity \(5\) must be a multiple of num_envs \(2\)"),
        (lambda: PrioritizedReplayBuffer(0, GOOD), ValueError, r"capacity must be >= 1"),
        (lambda: PrioritizedReplayBuffer(4, GOOD, alpha=-0.1), ValueError, r"alpha must be a finite number >= 0"),
        (lambda: PrioritizedReplayBuffer(4, GOOD, alpha=float("nan")), ValueError, r"alpha must be a finite number >= 0, got nan"),
        (lambda: PrioritizedReplayBuffer(4, GOOD, alpha=float("inf")), ValueError, r"alpha must be a finite number >= 0, got inf"),
        (lambda: PrioritizedReplayBuffer(4, GOOD, beta=-1.0), ValueError, r"beta must be a finite number >= 0"),
        (lambda: PrioritizedReplayBuffer(4, GOOD, beta=float("nan")), ValueError, r"beta must be a finite number >= 0"),
        (lambda: PrioritizedReplayBuffer(4, GOOD, eps=-1e-3), ValueError, r"eps must be a finite number >= 0"),
        (lambda: PrioritizedReplayBuffer(4, GOOD, eps=float("inf")), ValueError, r"eps must be a finite number >= 0, got inf"),
        (lambda: PrioritizedReplayBuffer(4, GOOD, eps=float("nan")), ValueError, r"eps must be a finite number >= 0, got nan"),
        (lambda: EpisodeBuffer(0, GOOD), ValueError, r"capacity_steps must be >= 1"),
        (lambda: EpisodeBuffer(2, GOOD, num_envs=3), ValueError, r"capacity_steps \(2\) must be at least num_envs \(3\)"),
        (lambda: EpisodeBuffer(4, GOOD, num_envs=0), ValueError, r"num_envs must be >= 1"),
        (lambda: EpisodeBuffer(4, GOOD, num_envs=1.0), TypeError, r"num_envs must be an int"),
        (lambda: RolloutBuffer(0, 2, GOOD), ValueError, r"num_steps must be >= 1, got 0"),
        (lambda: RolloutBuffer(2, 0, GOOD), ValueError, r"num_envs must be >= 1, got 0"),
        (lambda: RolloutBuffer(2, "2", GOOD), TypeError, r"num_envs must be an int"),
        (lambda: RolloutBuffer(2, 2, {**ROLLOUT_SPEC, "advantage": ((), np.float32)}), ValueError,
         r"field 'advantage' is computed by compute_gae\(\); remove it from the spec"),
        (lambda: RolloutBuffer(2, 2, {**ROLLOUT_SPEC, "g/reward": ((), np.float32), "g/return": ((), np.float32)}), ValueError,
         r"field 'g/return' is computed by compute_gae\(\)"),
    ],
)
def test_bad_constructor_arguments(make, exc, match):
    with pytest.raises(exc, match=match):
        make()


def test_rollout_value_of_wrong_dtype_is_reported_at_compute_gae():
    spec = {**ROLLOUT_SPEC, "value": ((), np.float16)}
    b = RolloutBuffer(1, 2, spec)
    s = rstep()
    s["value"] = s["value"].astype(np.float16)
    b.add(s)
    with pytest.raises(ValueError, match=r"'value' and 'reward' must both be float32 with the same shape"):
        b.compute_gae(np.zeros(2))
    with pytest.raises(ValueError, match=r"call compute_gae\(\) before reading"):
        b["advantage"]


# ---------------------------------------------------------------------------- files


def filled(kind):
    return {
        "replay": replay,
        "prioritized": per,
        "episode": episode,
        "rollout": rollout_gae,
    }[kind]()


CLASSES = {"replay": ReplayBuffer, "prioritized": PrioritizedReplayBuffer, "episode": EpisodeBuffer, "rollout": RolloutBuffer}


def saved(tmp_path, kind):
    path = tmp_path / f"{kind}.gmb"
    filled(kind).save(path)
    return path, path.read_bytes()


@pytest.mark.parametrize("kind", list(CLASSES))
def test_load_missing_file(tmp_path, kind):
    with pytest.raises(FileNotFoundError, match=r"no buffer file at .*nope\.gmb"):
        CLASSES[kind].load(tmp_path / "nope.gmb")
    with pytest.raises(TypeError, match=r"path must be a str or os.PathLike, got int"):
        CLASSES[kind].load(3)


@pytest.mark.parametrize("saved_kind", list(CLASSES))
@pytest.mark.parametrize("load_kind", list(CLASSES))
def test_load_other_kind(tmp_path, saved_kind, load_kind):
    path, _ = saved(tmp_path, saved_kind)
    if saved_kind == load_kind:
        CLASSES[load_kind].load(path)
        return
    with pytest.raises(BufferFileError, match=rf"holds a {CLASSES[saved_kind].__name__}, not a {CLASSES[load_kind].__name__}"):
        CLASSES[load_kind].load(path)


@pytest.mark.parametrize("kind", list(CLASSES))
def test_load_truncated(tmp_path, kind):
    path, raw = saved(tmp_path, kind)
    cuts = sorted({0, 7, 8, 23, 24, 40, len(raw) // 3, len(raw) // 2, len(raw) - 9, len(raw) - 8, len(raw) - 1})
    for cut in cuts:
        path.write_bytes(raw[:cut])
        with pytest.raises(
            BufferFileError, match=r"truncated or corrupted|corrupted \(checksum mismatch|not a genmarl buffer file \(too short"
        ):
            CLASSES[kind].load(path)
    path.write_bytes(raw + b"\0")  # the checksum is read from the wrong place
    with pytest.raises(BufferFileError, match=r"corrupted \(checksum mismatch"):
        CLASSES[kind].load(path)


def flipped(raw, offset, mask=0xFF):
    m = bytearray(raw)
    m[offset] ^= mask
    return bytes(m)


@pytest.mark.parametrize("kind", list(CLASSES))
def test_load_flipped_byte_in_data(tmp_path, kind):
    path, raw = saved(tmp_path, kind)
    # the last data bytes (just before the 8-byte checksum) and one in the middle of the data
    for off in (len(raw) - 9, len(raw) - 20, len(raw) - 40):
        path.write_bytes(flipped(raw, off, 0x01))
        with pytest.raises(BufferFileError, match=r"corrupted \(checksum mismatch\)"):
            CLASSES[kind].load(path)
    path.write_bytes(flipped(raw, len(raw) - 1))  # the checksum itself
    with pytest.raises(BufferFileError, match=r"checksum mismatch"):
        CLASSES[kind].load(path)


@pytest.mark.parametrize("kind", list(CLASSES))
def test_load_flipped_byte_in_header(tmp_path, kind):
    path, raw = saved(tmp_path, kind)
    cases = [
        (0, r"not a genmarl buffer file \(bad magic bytes\)"),
        (8, r"buffer file version 254; this genmarl reads version 1"),
        (12, r"corrupted \(checksum mismatch"),  # kind: the checksum is verified before parsing
        (16, r"corrupted \(checksum mismatch"),  # field count
        (24, r"corrupted \(checksum mismatch"),  # length of the first field name
        (33, r"corrupted"),  # a character of the first field name
    ]
    for off, match in cases:
        path.write_bytes(flipped(raw, off))
        with pytest.raises(BufferFileError, match=match):
            CLASSES[kind].load(path)
    path.write_bytes(raw[:8] + struct.pack("<I", 2) + raw[12:])
    with pytest.raises(BufferFileError, match=r"buffer file version 2; this genmarl reads version 1"):
        CLASSES[kind].load(path)


@pytest.mark.parametrize("kind", list(CLASSES))
def test_load_non_buffer_files(tmp_path, kind):
    text = tmp_path / "notes.txt"
    text.write_text("this is not a buffer file, just some text\n" * 3)
    with pytest.raises(BufferFileError, match=r"not a genmarl buffer file \(bad magic bytes\)"):
        CLASSES[kind].load(text)
    npy = tmp_path / "arr.npy"
    np.save(npy, np.arange(100))
    with pytest.raises(BufferFileError, match=r"not a genmarl buffer file"):
        CLASSES[kind].load(npy)
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    with pytest.raises(BufferFileError, match=r"not a genmarl buffer file \(too short: 0 bytes\)"):
        CLASSES[kind].load(empty)
    with pytest.raises(BufferFileError, match=r"is a directory, not a genmarl buffer file"):
        CLASSES[kind].load(tmp_path)  # a directory


# ---------------------------------------------------------------------------- in a fresh interpreter


BAD_CALLS_SCRIPT = r"""
import json, os, sys, tempfile
import numpy as np
from genmarl.buffers import *

SPEC = {"obs": ((3, 2), np.float32), "action": ((3,), np.int64), "reward": ((), np.float32), "done": ((), np.bool_)}
def batch(n):
    return {"obs": np.ones((n, 3, 2), np.float32), "action": np.zeros((n, 3), np.int64),
            "reward": np.ones(n, np.float32), "done": np.zeros(n, bool)}
ESPEC = {"obs": ((2,), np.float32), "done": ((), np.bool_)}
def est(n):
    return {"obs": np.ones((n, 2), np.float32), "done": np.zeros(n, bool)}
RSPEC = {"obs": ((2,), np.float32), "reward": ((), np.float32), "value": ((), np.float32),
         "terminated": ((), np.bool_), "truncated": ((), np.bool_)}
def rst(trunc=False):
    return {"obs": np.ones((2, 2), np.float32), "reward": np.ones(2, np.float32), "value": np.ones(2, np.float32),
            "terminated": np.zeros(2, bool), "truncated": np.full(2, trunc)}

rb = ReplayBuffer(8, SPEC); rb.add(batch(3))
empty = ReplayBuffer(8, SPEC)
pb = PrioritizedReplayBuffer(8, SPEC); pb.add(batch(3))
eb = EpisodeBuffer(8, ESPEC, num_envs=2); eb.add_step(est(2))
ro = RolloutBuffer(2, 2, RSPEC); ro.add(rst()); ro.add(rst(True))
ro_part = RolloutBuffer(2, 2, RSPEC); ro_part.add(rst())
d = tempfile.mkdtemp()
rb.save(os.path.join(d, "r.gmb"))
raw = open(os.path.join(d, "r.gmb"), "rb").read()
open(os.path.join(d, "cut.gmb"), "wb").write(raw[: len(raw) // 2])
flip = bytearray(raw); flip[-12] ^= 0xFF
open(os.path.join(d, "flip.gmb"), "wb").write(bytes(flip))
open(os.path.join(d, "text.txt"), "w").write("hello " * 20)

CALLS = [
    "rb.add({k: v for k, v in batch(2).items() if k != 'obs'})",
    "rb.add({**batch(2), 'foo': np.zeros(2)})",
    "rb.add({**batch(2), 'obs': np.ones((2, 3, 2))})",
    "rb.add({**batch(2), 'obs': np.ones((2, 3, 3), np.float32)})",
    "rb.add({**batch(2), 'action': np.zeros((5, 3), np.int64)})",
    "rb.add([1, 2, 3])",
    "rb.add(None)",
    "rb.add(batch(0))",
    "rb.add(batch(9))",
    "rb.add({**batch(2), 'obs': object()})",
    "rb.add({**batch(2), 'obs': 'abc'})",
    "empty.sample(1)",
    "rb.sample(0)",
    "rb.sample(-5)",
    "rb.sample(2.5)",
    "rb.sample(2, n_step=0)",
    "rb.sample(2, n_step=3, gamma=float('nan'))",
    "rb.sample(2, n_step=3, gamma=2.0)",
    "pb.add(batch(2), np.array([-1.0, 1.0]))",
    "pb.add(batch(2), np.array([np.nan, 1.0]))",
    "pb.add(batch(2), np.array([1.0]))",
    "pb.update_priorities(np.array([3]), np.array([1.0]))",
    "pb.update_priorities(np.array([-1]), np.array([1.0]))",
    "pb.update_priorities(np.array([-2**62]), np.array([1.0]))",
    "pb.update_priorities(np.array([0, 1]), np.array([1.0]))",
    "pb.update_priorities(np.array([0]), np.array([np.inf]))",
    "pb.update_priorities(object(), np.array([1.0]))",
    "pb.priorities(np.array([2**40]))",
    "PrioritizedReplayBuffer(8, SPEC, alpha=-1)",
    "PrioritizedReplayBuffer(8, SPEC, beta=float('nan'))",
    "PrioritizedReplayBuffer(8, SPEC, eps=-1)",
    "eb.add_step(est(1), np.array([2]))",
    "eb.add_step(est(1), np.array([-1]))",
    "eb.add_step(est(2), np.array([0, 0]))",
    "eb.add_step(est(2), np.array([0]))",
    "eb.add_step(est(3))",
    "eb.add_step(est(1), np.array([2**62]))",
    "eb.end_episode(np.array([5]))",
    "eb.sample_sequences(2, 5)",
    "eb.sample_sequences(2, 2, mode='stitch')",
    "eb.sample_sequences(2, 1, mode='nope')",
    "eb.sample_sequences(2, 0)",
    "ro.add(rst())",
    "ro_part.compute_gae(np.zeros(2))",
    "ro.compute_gae(np.zeros(2))",
    "ro.compute_gae(np.zeros(3))",
    "ro.compute_gae(np.array([np.nan, 0.0]))",
    "ro.compute_gae({'x': np.zeros(2)})",
    "ro['advantage']",
    "ro._b.gather(np.array([99]), False)",
    "ro._b.gather(np.array([-1]), False)",
    "ro._b.field('nope')",
    "RolloutBuffer(2, 2, {'obs': ((2,), np.float32)}).compute_gae(np.zeros(2))",
    "ReplayBuffer(4, {})",
    "ReplayBuffer(4, {'a': ((0,), np.float32)})",
    "ReplayBuffer(4, {'a': ((2,), np.complex64)})",
    "ReplayBuffer(4, {'a': ((2,), np.float64)})",
    "ReplayBuffer(4, 'obs')",
    "ReplayBuffer(4, SPEC, seed=-1)",
    "ReplayBuffer(0, SPEC)",
    "EpisodeBuffer(1, ESPEC, num_envs=2)",
    "ReplayBuffer.load(os.path.join(d, 'missing.gmb'))",
    "EpisodeBuffer.load(os.path.join(d, 'r.gmb'))",
    "ReplayBuffer.load(os.path.join(d, 'cut.gmb'))",
    "ReplayBuffer.load(os.path.join(d, 'flip.gmb'))",
    "ReplayBuffer.load(os.path.join(d, 'text.txt'))",
    "ReplayBuffer.load(d)",
    "rb.save(os.path.join(d, 'no', 'such', 'dir.gmb'))",
]
not_raised = []
for c in CALLS:
    try:
        eval(c)
    except Exception:
        continue
    not_raised.append(c)
# the buffers still work
rb.sample(4); pb.sample(4); eb.sample_sequences(2, 1); list(ro.minibatches(2))
import shutil; shutil.rmtree(d)
print(json.dumps({"calls": len(CALLS), "not_raised": not_raised}))
"""


def test_bad_calls_never_crash_the_interpreter():
    proc = run_python(BAD_CALLS_SCRIPT)
    assert proc.returncode == 0, f"rc={proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr[-3000:]}"
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["calls"] > 60
    assert result["not_raised"] == []


@pytest.mark.parametrize(
    "shape",
    ["(2**62,)", "(2**61,)", "(2**30, 2**32)", "(2**63 - 1,)"],
)
@pytest.mark.parametrize("dtype", ["np.float32", "np.int64", "np.uint8"])
def test_huge_item_shapes_raise_instead_of_crashing(shape, dtype):
    """Item sizes that overflow 64 bits must be rejected, not wrap around (division by zero)."""
    code = f"""
    import numpy as np
    from genmarl.buffers import *
    for make in (lambda s: ReplayBuffer(4, s), lambda s: PrioritizedReplayBuffer(4, s),
                 lambda s: EpisodeBuffer(4, s), lambda s: RolloutBuffer(2, 2, s)):
        try:
            make({{"obs": ({shape}, {dtype})}})
        except (ValueError, TypeError, MemoryError) as e:
            assert "obs" in str(e), str(e)
        else:
            raise SystemExit("accepted a {shape} item")
    print("ok")
    """
    proc = run_python(code, limit_bytes=4 << 30)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", (
        f"rc={proc.returncode} (negative = killed by that signal)\n{proc.stdout}\n{proc.stderr[-2000:]}"
    )


def test_crafted_file_with_overflowing_shape_raises_instead_of_crashing(tmp_path):
    """A file whose spec declares an item size that overflows 64 bits is rejected as corrupt."""
    path = tmp_path / "r.gmb"
    b = ReplayBuffer(4, {"obs": ((3,), np.float32)})
    b.add({"obs": np.ones((2, 3), np.float32)})
    b.save(path)
    raw = path.read_bytes()
    at = raw.index(b"obs") + 3 + 1 + 8  # name, dtype byte, shape length -> first dimension
    assert struct.unpack_from("<q", raw, at)[0] == 3
    crafted = tmp_path / "crafted.gmb"
    crafted.write_bytes(raw[:at] + struct.pack("<q", 2**62) + raw[at + 8 :])
    proc = run_python(
        f"""
        from genmarl.buffers import ReplayBuffer, BufferFileError
        try:
            ReplayBuffer.load({str(crafted)!r})
        except BufferFileError as e:
            print("ok", e)
        """,
        limit_bytes=4 << 30,
    )
    assert proc.returncode == 0 and proc.stdout.startswith("ok"), (
        f"rc={proc.returncode} (negative = killed by that signal)\n{proc.stdout}\n{proc.stderr[-2000:]}"
    )


SWEEP_SCRIPT = r"""
import json, os, sys, tempfile
import numpy as np
from genmarl.buffers import *

d = tempfile.mkdtemp()
spec = {"obs": ((2,), np.float32), "reward": ((), np.float32), "value": ((), np.float32),
        "terminated": ((), np.bool_), "truncated": ((), np.bool_)}
def item(n):
    return {"obs": np.ones((n, 2), np.float32), "reward": np.ones(n, np.float32), "value": np.ones(n, np.float32),
            "terminated": np.zeros(n, bool), "truncated": np.zeros(n, bool)}
r = ReplayBuffer(4, spec); r.add(item(3))
p = PrioritizedReplayBuffer(4, spec); p.add(item(3), np.array([1.0, 2.0, 0.5]))
e = EpisodeBuffer(4, spec, num_envs=2); e.add_step(item(2)); e.add_step(item(1), np.array([1]))
ro = RolloutBuffer(2, 2, spec); ro.add(item(2)); ro.add(item(2)); ro.compute_gae(np.zeros(2))
problems = {}
for kind, buf in [("replay", r), ("prioritized", p), ("episode", e), ("rollout", ro)]:
    path = os.path.join(d, kind)
    buf.save(path)
    raw = open(path, "rb").read()
    cls = type(buf)
    for off in range(len(raw)):
        for mask in (0xFF, 0x01, 0x80, 0x40):
            m = bytearray(raw); m[off] ^= mask
            open(path + ".bad", "wb").write(bytes(m))
            try:
                cls.load(path + ".bad")
                problems.setdefault(kind, []).append(f"byte {off} ^ {mask:#x}: loaded")
            except BufferFileError:
                pass
            except BaseException as exc:
                problems.setdefault(kind, []).append(f"byte {off} ^ {mask:#x}: {type(exc).__name__}: {exc}")
import shutil; shutil.rmtree(d)
print(json.dumps(problems))
"""


def test_every_single_byte_flip_raises_buffer_file_error():
    """Flipping any one byte of a saved file (header, state, data or checksum) must give
    BufferFileError -- not MemoryError, not a crash, not a silently loaded buffer. Runs in a
    fresh interpreter under a 4 GiB address-space limit, since a corrupted size field must
    not make the loader allocate (or touch) huge amounts of memory."""
    proc = run_python(SWEEP_SCRIPT, timeout=300, limit_bytes=4 << 30)
    assert proc.returncode == 0, f"rc={proc.returncode} (negative = killed by that signal)\n{proc.stdout}\n{proc.stderr[-3000:]}"
    problems = json.loads(proc.stdout.strip().splitlines()[-1])
    summary = {k: (len(v), v[:6]) for k, v in problems.items()}
    assert problems == {}, json.dumps(summary, indent=1)
