"""Hypothesis property tests of genmarl.buffers against pure-Python models.

* ReplayBuffer: a ring of item dicts keeping the newest ``capacity`` items; every sampled
  item equals the model's item at its slot, bitwise, for every field.
* PrioritizedReplayBuffer: the same, plus priorities ``(p + eps)**alpha`` (running max for
  new items) and weights ``(p_i / p_min)**-beta``.
* EpisodeBuffer: per-env step lists with episode numbers; windows in 'pad' and 'stitch' mode.
* RolloutBuffer: GAE against a numpy reference; minibatches cover every row exactly once.
* save/load of every kind round-trips bitwise, RNG state included.
"""

from __future__ import annotations

import os
import tempfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from genmarl.buffers import EpisodeBuffer, PrioritizedReplayBuffer, ReplayBuffer, RolloutBuffer

SETTINGS = settings(
    max_examples=60,
    deadline=None,
    database=None,  # no .hypothesis/ folder in the work tree
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

DTYPES = ["float32", "float16", "int64", "int32", "uint8", "bool"]

# Field names never collide with role names (reward/done/terminated/...): "f_" prefix.
names_st = st.lists(
    st.text(alphabet="abcxyz_/0123", min_size=1, max_size=6).map(lambda s: "f_" + s),
    min_size=1,
    max_size=5,
    unique=True,
)
shape_st = st.lists(st.integers(1, 4), min_size=0, max_size=3).map(tuple)


@st.composite
def specs(draw, min_fields=1):
    names = draw(names_st)
    return {n: (draw(shape_st), np.dtype(draw(st.sampled_from(DTYPES)))) for n in names}


# ---------------------------------------------------------------------------- helpers


def rand_field(rng: np.random.Generator, shape, dtype, lead) -> np.ndarray:
    """Random items [*lead, *shape]: arbitrary bit patterns (NaNs, infs included) except bool."""
    dt = np.dtype(dtype)
    full = (*lead, *shape)
    if dt == np.bool_:
        return rng.integers(0, 2, size=full).astype(np.bool_)
    n = int(np.prod(full, dtype=np.int64)) * dt.itemsize
    return rng.integers(0, 256, size=n, dtype=np.uint8).view(dt).reshape(full).copy()


def relayout(rng: np.random.Generator, a: np.ndarray) -> np.ndarray:
    """The same values in a random memory layout: C order, Fortran order or strided."""
    k = rng.integers(3)
    if k == 1 and a.ndim >= 2:
        return np.asfortranarray(a)
    if k == 2:
        big = np.empty((a.shape[0] * 2, *a.shape[1:]), a.dtype)
        big[::2] = a
        return big[::2]
    return a


def rand_batch(rng, spec, n, layouts=True):
    out = {name: rand_field(rng, shape, dt, (n,)) for name, (shape, dt) in spec.items()}
    if layouts:
        out = {k: relayout(rng, v) for k, v in out.items()}
    return out


def same_bytes(a: np.ndarray, b: np.ndarray) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def scribble(arrays) -> None:
    """Overwrites every element of the given arrays (to prove nothing aliases them)."""
    for a in arrays:
        if a.dtype == np.bool_:
            np.logical_not(a, out=a)
        else:
            a[...] = np.frombuffer(b"\xa5" * a.nbytes, a.dtype).reshape(a.shape)


def check_batch_dict(out, spec, lead, extra):
    assert set(out) == set(spec) | set(extra), (sorted(out), sorted(spec), extra)
    for name, (shape, dt) in spec.items():
        assert out[name].dtype == dt, (name, out[name].dtype, dt)
        assert out[name].shape == (*lead, *shape), (name, out[name].shape)
        assert out[name].flags.c_contiguous and out[name].flags.writeable and out[name].flags.owndata


def assert_batches_equal(a, b):
    assert set(a) == set(b)
    for k in a:
        assert same_bytes(a[k], b[k]), k


def save_load(buf, cls):
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "buf.gmb")
        buf.save(path)
        assert sorted(os.listdir(d)) == ["buf.gmb"]  # no temp file left behind
        return cls.load(path)


# ---------------------------------------------------------------------------- ReplayBuffer


class RingModel:
    """The newest `capacity` items; item number i lives in slot i % capacity."""

    def __init__(self, capacity):
        self.capacity = capacity
        self.total = 0  # items ever added
        self.items: list[dict[str, np.ndarray]] = []

    def add(self, batch, n):
        for k in range(n):
            self.items.append({f: np.array(v[k], copy=True) for f, v in batch.items()})
        del self.items[: max(0, len(self.items) - self.capacity)]
        self.total += n

    def __len__(self):
        return len(self.items)

    def at_slot(self, slot):
        # items[-1] is number total-1; the newest item with number % capacity == slot.
        total = self.total
        newest_num = total - 1 - ((total - 1 - slot) % self.capacity)
        idx = len(self.items) - (total - newest_num)
        assert 0 <= idx < len(self.items)
        return self.items[idx]


replay_ops = st.lists(
    st.one_of(
        st.tuples(st.just("add"), st.integers(1, 12)),
        st.tuples(st.just("sample"), st.integers(1, 6)),
        st.tuples(st.just("reload"), st.just(0)),
    ),
    min_size=1,
    max_size=10,
)


@SETTINGS
@given(spec=specs(), capacity=st.integers(1, 9), ops=replay_ops, seed=st.integers(0, 2**63), data_seed=st.integers(0, 2**32 - 1))
def test_replay_buffer_matches_ring_model(spec, capacity, ops, seed, data_seed):
    rng = np.random.default_rng(data_seed)
    buf = ReplayBuffer(capacity, spec, seed=seed)
    assert buf.spec == spec and buf.capacity == capacity and len(buf) == 0
    model = RingModel(capacity)
    prev = None
    for op, n in ops:
        if op == "add":
            n = min(n, capacity)
            batch = rand_batch(rng, spec, n)
            buf.add(batch)
            model.add(batch, n)
            scribble(batch.values())  # the buffer copied the batch
        elif op == "reload":
            twin = save_load(buf, ReplayBuffer)
            assert twin.spec == buf.spec and len(twin) == len(buf) and twin.capacity == capacity
            if len(buf):
                assert_batches_equal(twin.sample(5, return_indices=True), buf.sample(5, return_indices=True))
            extra = rand_batch(rng, spec, min(2, capacity), layouts=False)
            twin.add(extra)
            buf.add(extra)
            model.add(extra, len(next(iter(extra.values()))))
            assert_batches_equal(twin.sample(7, return_indices=True), buf.sample(7, return_indices=True))
        elif len(model) == 0:
            with pytest.raises(ValueError, match="empty"):
                buf.sample(n, return_indices=True)
        else:
            out = buf.sample(n, return_indices=True)
            check_batch_dict(out, spec, (n,), {"indices"})
            idx = out["indices"]
            assert idx.dtype == np.int64 and idx.shape == (n,)
            assert ((idx >= 0) & (idx < len(model))).all()
            for k, slot in enumerate(idx):
                item = model.at_slot(int(slot))
                for f in spec:
                    assert same_bytes(out[f][k], item[f]), (f, k, int(slot))
            plain = buf.sample(n)
            check_batch_dict(plain, spec, (n,), set())
            for f in spec:
                assert not np.shares_memory(plain[f], out[f])
                if prev is not None and prev[f].shape == out[f].shape:
                    assert not np.shares_memory(prev[f], out[f])
            scribble([out[f] for f in spec])  # caller owns the arrays; later samples unaffected
            prev = out
        assert len(buf) == len(model)


# ---------------------------------------------------------------------------- PrioritizedReplayBuffer


per_ops = st.lists(
    st.one_of(
        st.tuples(st.just("add"), st.integers(1, 10), st.booleans()),
        st.tuples(st.just("update"), st.integers(1, 6), st.booleans()),
        st.tuples(st.just("sample"), st.integers(1, 6), st.booleans()),
        st.tuples(st.just("reload"), st.just(0), st.just(False)),
    ),
    min_size=1,
    max_size=14,
)


def rand_priorities(rng, n):
    p = rng.uniform(0.0, 5.0, size=n)
    p[rng.random(n) < 0.2] = 0.0
    return p


@SETTINGS
@given(
    spec=specs(),
    capacity=st.integers(1, 9),
    alpha=st.sampled_from([0.0, 0.5, 0.6, 1.0, 1.7]),
    beta=st.sampled_from([0.0, 0.4, 1.0, 1.3]),
    eps=st.sampled_from([0.0, 1e-6, 0.1]),
    ops=per_ops,
    seed=st.integers(0, 2**63),
    data_seed=st.integers(0, 2**32 - 1),
)
def test_prioritized_buffer_matches_model(spec, capacity, alpha, beta, eps, ops, seed, data_seed):
    rng = np.random.default_rng(data_seed)
    buf = PrioritizedReplayBuffer(capacity, spec, alpha=alpha, beta=beta, eps=eps, seed=seed)
    model = RingModel(capacity)
    leaves = np.zeros(capacity)  # (p + eps)**alpha per slot
    max_p = 1.0
    pos = 0
    for op, n, flag in ops:
        if op == "add":
            n = min(n, capacity)
            batch = rand_batch(rng, spec, n)
            if flag:
                pr = rand_priorities(rng, n)
                buf.add(batch, pr)
                for k in range(n):
                    max_p = max(max_p, pr[k] + eps)
                    leaves[(pos + k) % capacity] = (pr[k] + eps) ** alpha
            else:
                buf.add(batch)
                for k in range(n):
                    leaves[(pos + k) % capacity] = max_p**alpha
            pos = (pos + n) % capacity
            model.add(batch, n)
            scribble(batch.values())
        elif op == "update":
            if len(model) == 0:
                continue
            idx = rng.integers(0, len(model), size=n)  # duplicates allowed: the last one wins
            pr = rand_priorities(rng, n)
            buf.update_priorities(idx if flag else idx.tolist(), pr)
            for i, p in zip(idx, pr, strict=True):
                max_p = max(max_p, p + eps)
                leaves[i] = (p + eps) ** alpha
        elif op == "reload":
            twin = save_load(buf, PrioritizedReplayBuffer)
            assert (twin.alpha, twin.beta, twin.max_priority, len(twin)) == (buf.alpha, buf.beta, buf.max_priority, len(buf))
            if len(buf):
                all_idx = np.arange(len(buf))
                assert same_bytes(twin.priorities(all_idx), buf.priorities(all_idx))
                if leaves[: len(buf)].sum() > 0:
                    assert_batches_equal(twin.sample(6), buf.sample(6))
        else:
            size = len(model)
            if size == 0:
                with pytest.raises(ValueError, match="empty"):
                    buf.sample(n)
                continue
            if not (leaves[:size] > 0).any():
                with pytest.raises(ValueError, match="priority is zero"):
                    buf.sample(n)
                continue
            b = None if not flag else float(rng.choice([0.0, 0.5, 1.0, 2.0]))
            out = buf.sample(n, beta=b)
            check_batch_dict(out, spec, (n,), {"indices", "weights"})
            idx, w = out["indices"], out["weights"]
            assert idx.dtype == np.int64 and w.dtype == np.float32 and idx.shape == w.shape == (n,)
            assert ((idx >= 0) & (idx < size)).all()
            for k, slot in enumerate(idx):
                item = model.at_slot(int(slot))
                for f in spec:
                    assert same_bytes(out[f][k], item[f]), (f, k, int(slot))
            all_p = buf.priorities(np.arange(size))
            np.testing.assert_allclose(all_p, leaves[:size], rtol=1e-12, atol=0)
            p = buf.priorities(idx)
            assert (p > 0).all(), "a zero-priority item was sampled"
            p_min = all_p[all_p > 0].min()
            eff_beta = beta if b is None else b
            np.testing.assert_allclose(w, (p / p_min) ** -eff_beta, rtol=2e-6)
            assert ((w > 0) & (w <= 1)).all()
            scribble([out[f] for f in spec])
        assert len(buf) == len(model)
        assert buf.max_priority == pytest.approx(max_p, rel=1e-12)
        if len(model):
            np.testing.assert_allclose(buf.priorities(np.arange(len(model))), leaves[: len(model)], rtol=1e-12, atol=0)


# ---------------------------------------------------------------------------- EpisodeBuffer


@st.composite
def episode_specs(draw):
    spec = draw(specs())
    flags = draw(st.lists(st.sampled_from(["done", "g/terminated", "truncated"]), min_size=1, max_size=3, unique=True))
    for f in flags:
        spec[f] = (draw(st.sampled_from([(), (1,), (3,)])), np.dtype(draw(st.sampled_from(["bool", "uint8", "float32"]))))
    return spec, flags


def flag_values(rng, shape, dtype, n, p_done):
    """[n, *shape] flags; roughly p_done of the items have some element set."""
    dt = np.dtype(dtype)
    set_ = rng.random((n, *shape)) < (p_done if not shape else p_done / max(1, shape[0]))
    if dt == np.float32:
        # -0.0 counts as not set; any other value (NaN included) as set
        v = np.where(set_, rng.choice(np.array([1.0, -2.5, np.nan], np.float32), size=set_.shape), np.float32(-0.0))
        return v.astype(np.float32)
    return set_.astype(dt)


episode_ops = st.lists(
    st.one_of(
        st.tuples(st.just("step"), st.booleans(), st.integers(0, 2**16)),
        st.tuples(st.just("step"), st.booleans(), st.integers(0, 2**16)),
        st.tuples(st.just("end"), st.booleans(), st.integers(0, 2**16)),
        st.tuples(st.just("sample"), st.booleans(), st.integers(0, 2**16)),
        st.tuples(st.just("reload"), st.booleans(), st.integers(0, 2**16)),
    ),
    min_size=1,
    max_size=25,
)


class EnvModel:
    def __init__(self, T):
        self.T = T
        self.steps: list[dict] = []  # {"data", "ep", "first"}, oldest first
        self.episode = 0
        self.in_episode = False

    def add(self, data, ended):
        self.steps.append({"data": data, "ep": self.episode, "first": not self.in_episode})
        self.in_episode = True
        if ended:
            self.close()
        if len(self.steps) > self.T:
            self.steps.pop(0)

    def close(self):
        if self.in_episode:
            self.in_episode = False
            self.episode += 1


def check_windows(out, spec, envs, L, mode):
    B = out["mask"].shape[0]
    assert out["mask"].shape == out["is_first"].shape == (B, L)
    assert out["mask"].dtype == out["is_first"].dtype == np.bool_
    assert out["env_ids"].shape == out["starts"].shape == (B,)
    for b in range(B):
        e, j = int(out["env_ids"][b]), int(out["starts"][b])
        assert 0 <= e < len(envs)
        steps = envs[e].steps
        if mode == "pad":
            assert 0 <= j < len(steps)
            valid = min(L, len(steps) - j)
            for t in range(1, valid):
                if steps[j + t]["ep"] != steps[j]["ep"]:
                    valid = t
                    break
        else:
            assert 0 <= j <= len(steps) - L
            valid = L
        np.testing.assert_array_equal(out["mask"][b], np.arange(L) < valid)
        want_first = [t < valid and steps[j + t]["first"] for t in range(L)]
        np.testing.assert_array_equal(out["is_first"][b], want_first)
        for t in range(1, valid):  # within stored steps, a new episode number <=> is_first
            assert out["is_first"][b, t] == (steps[j + t]["ep"] != steps[j + t - 1]["ep"])
        for f in spec:
            for t in range(valid):
                assert same_bytes(out[f][b, t], steps[j + t]["data"][f]), (f, b, t)
            assert not any(out[f][b, valid:].tobytes()), f"padding of {f} is not zeros"


@SETTINGS
@given(
    spec_flags=episode_specs(),
    num_envs=st.integers(1, 4),
    steps_per_env=st.integers(1, 6),
    extra=st.integers(0, 3),
    ops=episode_ops,
    p_done=st.sampled_from([0.0, 0.2, 0.5]),
    seed=st.integers(0, 2**63),
    data_seed=st.integers(0, 2**32 - 1),
)
def test_episode_buffer_matches_model(spec_flags, num_envs, steps_per_env, extra, ops, p_done, seed, data_seed):
    spec, flags = spec_flags
    rng = np.random.default_rng(data_seed)
    capacity_steps = steps_per_env * num_envs + min(extra, num_envs - 1)
    buf = EpisodeBuffer(capacity_steps, spec, seed=seed, num_envs=num_envs)
    assert buf.steps_per_env == steps_per_env and buf.capacity == steps_per_env * num_envs
    envs = [EnvModel(steps_per_env) for _ in range(num_envs)]
    for op, flag, arg in ops:
        if op == "step":
            if flag:
                ids = rng.permutation(num_envs)[: rng.integers(1, num_envs + 1)]
            else:
                ids = np.arange(num_envs)
            n = len(ids)
            step = rand_batch(rng, {k: v for k, v in spec.items() if k not in flags}, n)
            for f in flags:
                step[f] = flag_values(rng, spec[f][0], spec[f][1], n, p_done)
            buf.add_step(step, ids if flag else None)
            for k, e in enumerate(ids):
                data = {f: np.array(step[f][k], copy=True) for f in spec}
                ended = any(bool(np.any(step[f][k] != 0)) for f in flags)  # NaN is set, -0.0 is not
                envs[int(e)].add(data, ended)
            scribble(step.values())
        elif op == "end":
            ids = rng.permutation(num_envs)[: rng.integers(1, num_envs + 1)]
            buf.end_episode(ids if flag else ids.tolist())
            for e in ids:
                envs[int(e)].close()
        elif op == "reload":
            twin = save_load(buf, EpisodeBuffer)
            assert (len(twin), twin.num_episodes, twin.num_envs, twin.steps_per_env) == (
                len(buf), buf.num_episodes, buf.num_envs, buf.steps_per_env)
            if len(buf):
                assert_batches_equal(twin.sample_sequences(4, 1 + arg % steps_per_env, mode="pad"),
                                     buf.sample_sequences(4, 1 + arg % steps_per_env, mode="pad"))
            step = rand_batch(rng, spec, num_envs, layouts=False)
            twin.add_step(step)
            buf.add_step(step)
            for k in range(num_envs):
                ended = any(bool(np.any(step[f][k] != 0)) for f in flags)
                envs[k].add({f: np.array(step[f][k], copy=True) for f in spec}, ended)
            assert_batches_equal(twin.sample_sequences(5, 1, mode="pad"), buf.sample_sequences(5, 1, mode="pad"))
            L = 1 + arg % steps_per_env
            if any(len(e.steps) >= L for e in envs):
                assert_batches_equal(twin.sample_sequences(5, L, mode="stitch"), buf.sample_sequences(5, L, mode="stitch"))
        else:
            mode = "stitch" if flag else "pad"
            L = 1 + arg % steps_per_env
            B = 1 + (arg >> 8) % 4
            ok = any(len(e.steps) >= (L if mode == "stitch" else 1) for e in envs)
            if not ok:
                with pytest.raises(ValueError, match="empty" if mode == "pad" else "consecutive steps"):
                    buf.sample_sequences(B, L, mode=mode)
                continue
            out = buf.sample_sequences(B, L, mode=mode)
            check_batch_dict(out, spec, (B, L), {"mask", "is_first", "env_ids", "starts"})
            check_windows(out, spec, envs, L, mode)
            scribble([out[f] for f in spec])
        assert len(buf) == sum(len(e.steps) for e in envs)
        assert buf.num_episodes == sum(e.episode for e in envs)


# ---------------------------------------------------------------------------- RolloutBuffer


@st.composite
def rollout_setups(draw):
    T = draw(st.integers(1, 5))
    E = draw(st.integers(1, 4))
    prefixes = draw(st.sampled_from([[""], ["g/"], ["a/", "b/"], ["", "g/"]]))
    spec = {"id": ((), np.dtype(np.int64))}
    extra = draw(specs())
    spec.update(extra)
    info = {}
    for p in prefixes:
        rshape = draw(st.sampled_from([(), (1,), (2,), (3,)]))
        fshape = draw(st.sampled_from([()] + ([(1,), rshape] if rshape else [])))
        fdt = np.dtype(draw(st.sampled_from(["bool", "uint8", "float32"])))
        spec[p + "reward"] = (rshape, np.dtype(np.float32))
        spec[p + "value"] = (rshape, np.dtype(np.float32))
        spec[p + "terminated"] = (fshape, fdt)
        spec[p + "truncated"] = (fshape, fdt)
        p_trunc = draw(st.sampled_from([0.0, 0.3]))
        with_final = p_trunc > 0 or draw(st.booleans())
        if with_final:
            spec[p + "final_value"] = (rshape, np.dtype(np.float32))
        info[p] = (rshape, fshape, fdt, draw(st.sampled_from([0.0, 0.3])), p_trunc, with_final)
    return T, E, prefixes, spec, info


def gae_reference(rew, val, term, trunc, fin, last, gamma, lam):
    """rew/val/fin: [T, E, R] float32; term/trunc: [T, E, R] bool; last: [E, R]."""
    T = rew.shape[0]
    gam = np.float32(gamma)
    gl = np.float32(gamma * lam)
    adv = np.zeros_like(rew)
    gae = np.zeros(rew.shape[1:], np.float32)
    for t in range(T - 1, -1, -1):
        nxt = last if t == T - 1 else val[t + 1]
        if fin is not None:
            nxt = np.where(trunc[t], fin[t], nxt)
        nxt = np.where(term[t], np.float32(0), nxt).astype(np.float32)
        delta = (rew[t] + gam * nxt - val[t]).astype(np.float32)
        done = term[t] | trunc[t]
        gae = (delta + np.where(done, np.float32(0), gl * gae)).astype(np.float32)
        adv[t] = gae
    return adv, (adv + val).astype(np.float32)


@SETTINGS
@given(
    setup=rollout_setups(),
    gamma=st.sampled_from([0.0, 0.5, 0.9, 0.99, 1.0]),
    lam=st.sampled_from([0.0, 0.8, 0.95, 1.0]),
    rounds=st.integers(1, 2),
    data_seed=st.integers(0, 2**32 - 1),
    mb_seed=st.integers(0, 2**32 - 1),
    k_frac=st.floats(0, 1),
)
def test_rollout_gae_and_minibatches(setup, gamma, lam, rounds, data_seed, mb_seed, k_frac):
    T, E, prefixes, spec, info = setup
    rng = np.random.default_rng(data_seed)
    buf = RolloutBuffer(T, E, spec)
    assert buf.gae_prefixes == prefixes
    for _ in range(rounds):
        buf.reset()
        assert buf.step == 0 and not buf.full and len(buf) == 0
        steps = []
        for t in range(T):
            step = {}
            for name, (shape, dt) in spec.items():
                if name == "id":
                    step[name] = np.arange(E, dtype=np.int64) + t * E
                elif dt == np.float32 and any(name == p + r for p in prefixes for r in ("reward", "value", "final_value")):
                    step[name] = rng.uniform(-1, 1, size=(E, *shape)).astype(np.float32)
                elif any(name in (p + "terminated", p + "truncated") for p in prefixes):
                    p = name.rsplit("terminated", 1)[0] if name.endswith("terminated") else name.rsplit("truncated", 1)[0]
                    _, fshape, fdt, p_term, p_trunc, _ = info[p]
                    prob = p_term if name.endswith("terminated") else p_trunc
                    step[name] = (rng.random((E, *fshape)) < prob).astype(fdt)
                else:
                    step[name] = rand_field(rng, shape, dt, (E,))
            steps.append({k: v.copy() for k, v in step.items()})
            buf.add({k: relayout(rng, v) for k, v in step.items()})
            scribble(step.values())
        assert buf.full and buf.step == T and len(buf) == T * E
        stacked = {k: np.stack([s[k] for s in steps]) for k in spec}
        for k in spec:
            assert same_bytes(buf[k], stacked[k]), k
        lasts = {p: rng.uniform(-1, 1, size=(E, *info[p][0])).astype(np.float32) for p in prefixes}
        if len(prefixes) == 1:
            buf.compute_gae(lasts[prefixes[0]], gamma=gamma, gae_lambda=lam)
        else:
            buf.compute_gae({p.rstrip("/"): v for p, v in lasts.items()}, gamma=gamma, gae_lambda=lam)
        expected = {}
        for p in prefixes:
            rshape, fshape, _, _, _, with_final = info[p]
            R = int(np.prod(rshape, dtype=np.int64))
            flat = lambda a: a.reshape(T, E, -1)  # noqa: E731
            rew, val = flat(stacked[p + "reward"]), flat(stacked[p + "value"])
            fin = flat(stacked[p + "final_value"]) if with_final else None

            def flags(name):
                f = flat(stacked[name]) != 0
                return np.broadcast_to(f, (T, E, R)) if f.shape[-1] == 1 else f

            adv, ret = gae_reference(rew, val, flags(p + "terminated"), flags(p + "truncated"), fin,
                                     lasts[p].reshape(E, -1), gamma, lam)
            expected[p + "advantage"] = adv.reshape(T, E, *rshape)
            expected[p + "return"] = ret.reshape(T, E, *rshape)
            for k in ("advantage", "return"):
                got = buf[p + k]
                assert got.dtype == np.float32 and got.shape == (T, E, *rshape)
                np.testing.assert_allclose(got, expected[p + k], rtol=1e-5, atol=1e-5, err_msg=p + k)
        want_keys = set(spec) | set(expected)
        assert set(buf.keys()) == want_keys

        # flat minibatches: every row exactly once, data matching the row
        k = 1 + int(k_frac * (T * E - 1))
        seen = []
        sizes = []
        for mb in buf.minibatches(k, rng=mb_seed):
            assert set(mb) == want_keys
            rows = mb["id"]
            sizes.append(len(rows))
            seen.extend(rows.tolist())
            t_idx, e_idx = rows // E, rows % E
            for name in want_keys:
                ref = stacked[name] if name in stacked else expected[name]
                assert same_bytes(mb[name], ref[t_idx, e_idx]), name
        assert sorted(seen) == list(range(T * E))
        assert len(sizes) == k and max(sizes) - min(sizes) <= 1
        # same rng -> same minibatches
        a = list(buf.minibatches(k, rng=mb_seed))
        b = list(buf.minibatches(k, rng=np.random.default_rng(mb_seed)))
        for x, y in zip(a, b, strict=True):
            assert_batches_equal(x, y)

        # by_env: envs partitioned, each minibatch keeps time order
        kb = 1 + int(k_frac * (E - 1))
        env_seen = []
        for mb in buf.minibatches(kb, rng=mb_seed, by_env=True):
            ids = mb["id"]
            assert ids.ndim == 2 and ids.shape[0] == T
            envs = ids[0] % E
            env_seen.extend(envs.tolist())
            np.testing.assert_array_equal(ids, np.arange(T)[:, None] * E + envs[None, :])
            for name in want_keys:
                ref = stacked[name] if name in stacked else expected[name]
                assert same_bytes(mb[name], ref[:, envs]), name
        assert sorted(env_seen) == list(range(E))

        # save/load: everything bitwise, GAE results included
        twin = save_load(buf, RolloutBuffer)
        assert (twin.num_steps, twin.num_envs, twin.step, twin.full, twin.gae_prefixes) == (T, E, T, True, prefixes)
        assert twin.spec == buf.spec and set(twin.keys()) == want_keys
        for name in want_keys:
            assert same_bytes(twin[name], buf[name]), name
        for x, y in zip(twin.minibatches(k, rng=mb_seed), buf.minibatches(k, rng=mb_seed), strict=True):
            assert_batches_equal(x, y)


@SETTINGS
@given(setup=rollout_setups(), data_seed=st.integers(0, 2**32 - 1), filled=st.floats(0, 1))
def test_rollout_save_load_partial(setup, data_seed, filled):
    """A partly filled rollout (no GAE yet) round-trips, and both copies continue the same way."""
    T, E, prefixes, spec, info = setup
    rng = np.random.default_rng(data_seed)
    buf = RolloutBuffer(T, E, spec)
    n = int(filled * T)
    for _ in range(n):
        step = {}
        for name, (shape, dt) in spec.items():
            step[name] = rand_field(rng, shape, dt, (E,))
            if name.endswith(("terminated", "truncated")):
                step[name] = np.zeros_like(step[name])
        buf.add(step)
    twin = save_load(buf, RolloutBuffer)
    assert (twin.step, twin.full) == (buf.step, buf.full) == (n, n == T)
    for name in spec:
        assert same_bytes(twin[name], buf[name])
    with pytest.raises(ValueError, match="compute_gae"):
        twin[prefixes[0] + "advantage"]
