"""Replay-buffer throughput: genmarl side by side with cpprb, TorchRL, flashbax and a numpy ring.

    python benchmarks/buffer_throughput.py [--quick] [--only insert,sample,per,seq,memory,limits]

Every library stores the same MPE simple_spread transition (3 agents): obs (3,18) float32,
action (3,) int64, reward (3,) float32, done (3,) bool, next_obs (3,18) float32 = 471 bytes.
Everything runs single-threaded (torch.set_num_threads(1), XLA's eigen/intra-op threads off,
OMP/MKL/OpenBLAS at 1 thread). Each figure is the median over repeats of the time per call,
after a warm-up (which also compiles the jitted flashbax functions).

Rows:
  a. insert B transitions into a 1M ring that was prefilled once (so every insert overwrites)
  b. uniform sample of B transitions from the full 1M buffer
  c. prioritized cycle on a full 1M buffer: insert(256) + sample(256) + update_priorities(256)
  d. 64 parallel envs, 1M steps (25-step episodes, no next_obs: 255 bytes a step):
     add one step of all 64 envs, and sample 64 windows of 64 consecutive steps of one env
  e. memory of the 1M buffers: bytes reported by the library / summed array bytes, and the
     process RSS growth while building + filling it (approximate: allocator caching)
  f. machine limits with plain numpy into preallocated arrays: memcpy of the insert payload,
     np.take of B random rows, np.take of 64x64 contiguous windows

Columns: numpy (dict-of-arrays ring / vectorised numpy sum-tree, no library), genmarl,
cpprb, torchrl, flashbax (item buffers: independent transitions, like every other column),
fbx-flat (flashbax flat buffers, which sample (first, second) pairs: 2 rows per transition).
Missing libraries are skipped with a note. Benchmarks print figures; they are not timed tests.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import logging
import os
import sys
import time
import warnings
from typing import Any, Callable

# Single thread for every library: must be set before numpy / torch / jax are imported.
for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
os.environ["XLA_FLAGS"] = (
    os.environ.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
).strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import numpy as np  # noqa: E402
from timing import time_per_call  # noqa: E402

NUM_AGENTS = 3
SPEC: dict[str, tuple[tuple[int, ...], Any]] = {
    "obs": ((NUM_AGENTS, 18), np.float32),
    "action": ((NUM_AGENTS,), np.int64),
    "reward": ((NUM_AGENTS,), np.float32),
    "done": ((NUM_AGENTS,), np.bool_),
    "next_obs": ((NUM_AGENTS, 18), np.float32),
}
SEQ_SPEC = {k: v for k, v in SPEC.items() if k != "next_obs"}
BYTES_PER_TRANSITION = sum(int(np.prod(s)) * np.dtype(d).itemsize for s, d in SPEC.values())  # 471
BYTES_PER_STEP = sum(int(np.prod(s)) * np.dtype(d).itemsize for s, d in SEQ_SPEC.values())  # 255

INSERT_BS = (1, 32, 256, 1024)
SAMPLE_BS = (32, 256, 1024)
PER_B = 256
NUM_ENVS = 64
EPISODE_LEN = 25
SEQ_N, SEQ_L = 64, 64
PREFILL_CHUNK = 10_000
SEQ_CHUNK = 625  # steps per env per prefill chunk: a multiple of EPISODE_LEN
ALPHA, BETA, EPS = 0.6, 0.4, 1e-6


# ----------------------------------------------------------------------------- helpers


def release_memory() -> None:
    """gc, then hand glibc's free heap pages back to the OS so RSS deltas mean something."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def make_transitions(n: int, rng: np.random.Generator, spec=SPEC) -> dict[str, np.ndarray]:
    out = {}
    for k, (shape, dtype) in spec.items():
        if dtype == np.bool_:
            out[k] = rng.random((n, *shape)) < 0.04
        elif np.issubdtype(dtype, np.integer):
            out[k] = rng.integers(0, 5, (n, *shape), dtype=dtype)
        else:
            out[k] = rng.standard_normal((n, *shape)).astype(dtype)
    return out


def make_seq_chunk(rng: np.random.Generator) -> dict[str, np.ndarray]:
    """[NUM_ENVS, SEQ_CHUNK, ...] steps; env e's episodes end where (t + e) % 25 == 24."""
    chunk = make_transitions(NUM_ENVS * SEQ_CHUNK, rng, SEQ_SPEC)
    chunk = {k: v.reshape(NUM_ENVS, SEQ_CHUNK, *v.shape[1:]) for k, v in chunk.items()}
    t = np.arange(SEQ_CHUNK)[None, :] + np.arange(NUM_ENVS)[:, None]
    chunk["done"][:] = ((t % EPISODE_LEN) == EPISODE_LEN - 1)[..., None]
    return chunk


def step_pool(chunk: dict[str, np.ndarray]) -> list[dict[str, np.ndarray]]:
    """One [NUM_ENVS, ...] step dict per episode phase, cut from a seq chunk."""
    return [{k: np.ascontiguousarray(v[:, t]) for k, v in chunk.items()} for t in range(EPISODE_LEN)]


def cycle(items: list) -> Callable[[], Any]:
    """Returns a function yielding items round-robin (cheap, no itertools overhead in closures)."""
    state = [0]

    def nxt():
        i = state[0]
        state[0] = i + 1 if i + 1 < len(items) else 0
        return items[i]

    return nxt


def fmt_rate(x: float | None) -> str:
    if x is None:
        return "-"
    for div, suf in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if x >= div:
            return f"{x / div:.3g}{suf}"
    return f"{x:.3g}"


def fmt_mb(x: float | None) -> str:
    return "-" if x is None else f"{x / 1e6:.0f} MB"


# ----------------------------------------------------------------------------- numpy baseline


class NumpyRing:
    """The no-library baseline: a dict of arrays, slice writes, rng.integers + take."""

    def __init__(self, capacity: int, spec=SPEC, seed: int = 0):
        self.capacity = capacity
        self.data = {k: np.zeros((capacity, *s), d) for k, (s, d) in spec.items()}
        self.ptr = 0
        self.size = 0
        self.rng = np.random.default_rng(seed)

    def add(self, batch: dict[str, np.ndarray]) -> np.ndarray | None:
        n = len(batch["obs"])
        p, cap = self.ptr, self.capacity
        if p + n <= cap:
            for k, v in batch.items():
                self.data[k][p : p + n] = v
        else:
            first = cap - p
            for k, v in batch.items():
                self.data[k][p:] = v[:first]
                self.data[k][: n - first] = v[first:]
        self.ptr = (p + n) % cap
        self.size = min(self.size + n, cap)

    def sample(self, n: int) -> dict[str, np.ndarray]:
        idx = self.rng.integers(0, self.size, n)
        return {k: v.take(idx, axis=0) for k, v in self.data.items()}

    @property
    def nbytes(self) -> int:
        return sum(v.nbytes for v in self.data.values())


class NumpyPER(NumpyRing):
    """Proportional PER with vectorised numpy sum/min trees (one numpy op per tree level)."""

    def __init__(self, capacity: int, spec=SPEC, seed: int = 0):
        super().__init__(capacity, spec, seed)
        self.leaves = 1 << (capacity - 1).bit_length()
        self.depth = self.leaves.bit_length() - 1
        self.sum = np.zeros(2 * self.leaves, np.float64)
        self.min = np.full(2 * self.leaves, np.inf, np.float64)
        self.max_prio = 1.0

    def _set(self, idx: np.ndarray, prio_alpha: np.ndarray) -> None:
        node = idx + self.leaves
        self.sum[node] = prio_alpha
        self.min[node] = prio_alpha
        for _ in range(self.depth):
            node = np.unique(node >> 1)
            left = node << 1
            self.sum[node] = self.sum[left] + self.sum[left + 1]
            self.min[node] = np.minimum(self.min[left], self.min[left + 1])

    def add(self, batch: dict[str, np.ndarray]) -> None:
        n = len(batch["obs"])
        idx = (self.ptr + np.arange(n)) % self.capacity
        super().add(batch)
        self._set(idx, np.full(n, self.max_prio**ALPHA))

    def sample(self, n: int) -> dict[str, np.ndarray]:
        total = self.sum[1]
        u = (np.arange(n) + self.rng.random(n)) * (total / n)  # stratified
        node = np.ones(n, np.int64)
        for _ in range(self.depth):
            left = node << 1  # go left unless u exceeds the left subtree's mass
            lv = self.sum[left]
            right = u > lv
            u = np.where(right, u - lv, u)
            node = left + right
        idx = np.minimum(node - self.leaves, self.size - 1)
        p = self.sum[idx + self.leaves] / total
        w = (self.size * p) ** -BETA / (self.size * self.min[1] / total) ** -BETA
        out = {k: v.take(idx, axis=0) for k, v in self.data.items()}
        out["indices"] = idx
        out["weights"] = w.astype(np.float32)
        return out

    def update_priorities(self, idx: np.ndarray, prios: np.ndarray) -> None:
        prios = np.asarray(prios, np.float64) + EPS
        self.max_prio = max(self.max_prio, float(prios.max()))
        self._set(idx, prios**ALPHA)

    @property
    def nbytes(self) -> int:
        return super().nbytes + self.sum.nbytes + self.min.nbytes


class NumpyEpisodeRing:
    """Env-major [num_envs, steps_per_env, ...] rings; windows never cross the write head."""

    def __init__(self, capacity_steps: int, num_envs: int, spec=SEQ_SPEC, seed: int = 0):
        self.E, self.T = num_envs, capacity_steps // num_envs
        self.data = {k: np.zeros((self.E, self.T, *s), d) for k, (s, d) in spec.items()}
        self.t = 0
        self.filled = 0
        self.rng = np.random.default_rng(seed)

    def add_chunk(self, chunk: dict[str, np.ndarray]) -> None:
        n = next(iter(chunk.values())).shape[1]
        idx = (self.t + np.arange(n)) % self.T
        for k, v in chunk.items():
            self.data[k][:, idx] = v
        self.t = (self.t + n) % self.T
        self.filled = min(self.filled + n, self.T)

    def add_step(self, step: dict[str, np.ndarray]) -> None:
        for k, v in step.items():
            self.data[k][:, self.t] = v
        self.t = (self.t + 1) % self.T
        self.filled = min(self.filled + 1, self.T)

    def sample_sequences(self, n: int, length: int) -> dict[str, np.ndarray]:
        env = self.rng.integers(0, self.E, n)
        oldest = self.t if self.filled == self.T else 0
        start = (oldest + self.rng.integers(0, self.filled - length + 1, n)) % self.T
        tidx = (start[:, None] + np.arange(length)) % self.T
        return {k: v[env[:, None], tidx] for k, v in self.data.items()}

    @property
    def nbytes(self) -> int:
        return sum(v.nbytes for v in self.data.values())


# ----------------------------------------------------------------------------- libraries
#
# One adapter per library; one method per measurement. build_* return a filled buffer;
# insert / sample / per_cycle / seq_add / seq_sample return the callable that is timed.


class Lib:
    name = "?"
    notes: list[str]

    def __init__(self):
        self.notes = []


class NumpyLib(Lib):
    name = "numpy"

    def build_uniform(self, cap, chunk):
        rb = NumpyRing(cap)
        for _ in range(-(-cap // PREFILL_CHUNK)):
            rb.add(chunk)
        return rb

    def insert(self, rb, batch):
        return lambda: rb.add(batch)

    def sample(self, rb, n):
        return lambda: rb.sample(n)

    def nbytes(self, rb):
        return rb.nbytes

    def build_per(self, cap, chunk):
        rb = NumpyPER(cap)
        for _ in range(-(-cap // PREFILL_CHUNK)):
            rb.add(chunk)
        return rb

    def per_cycle(self, rb, batch, prios):
        def run():
            rb.add(batch)
            b = rb.sample(PER_B)
            rb.update_priorities(b["indices"], prios)

        return run

    def build_seq(self, cap_steps, chunk, pool):
        eb = NumpyEpisodeRing(cap_steps, NUM_ENVS)
        for _ in range(-(-eb.T // SEQ_CHUNK)):
            eb.add_chunk(chunk)
        return eb

    def seq_add(self, eb, pool):
        nxt = cycle(pool)
        return lambda: eb.add_step(nxt())

    def seq_sample(self, eb):
        return lambda: eb.sample_sequences(SEQ_N, SEQ_L)


class GenmarlLib(Lib):
    name = "genmarl"

    def __init__(self):
        super().__init__()
        from genmarl.buffers import EpisodeBuffer, PrioritizedReplayBuffer, ReplayBuffer

        self.RB, self.PER, self.EB = ReplayBuffer, PrioritizedReplayBuffer, EpisodeBuffer

    def build_uniform(self, cap, chunk):
        rb = self.RB(cap, SPEC, seed=0)
        for _ in range(-(-cap // PREFILL_CHUNK)):
            rb.add(chunk)
        return rb

    def insert(self, rb, batch):
        return lambda: rb.add(batch)

    def sample(self, rb, n):
        return lambda: rb.sample(n)

    def nbytes(self, rb):
        return int(rb.nbytes)

    def build_per(self, cap, chunk):
        per = self.PER(cap, SPEC, alpha=ALPHA, beta=BETA, eps=EPS, seed=0)
        for _ in range(-(-cap // PREFILL_CHUNK)):
            per.add(chunk)
        return per

    def per_cycle(self, per, batch, prios):
        def run():
            per.add(batch)
            b = per.sample(PER_B)
            per.update_priorities(b["indices"], prios)

        return run

    def build_seq(self, cap_steps, chunk, pool):
        eb = self.EB(cap_steps, SEQ_SPEC, num_envs=NUM_ENVS, seed=0)
        for t in range(-(-cap_steps // NUM_ENVS // SEQ_CHUNK) * SEQ_CHUNK):
            eb.add_step(pool[t % EPISODE_LEN])
        return eb

    def seq_add(self, eb, pool):
        nxt = cycle(pool)
        return lambda: eb.add_step(nxt())

    def seq_sample(self, eb, mode: str = "stitch"):
        try:
            eb.sample_sequences(SEQ_N, SEQ_L, mode=mode)
        except TypeError:  # an API without modes: windows as the buffer defines them
            self.notes.append("genmarl: sample_sequences has no mode=; default windows used")
            return lambda: eb.sample_sequences(SEQ_N, SEQ_L)
        return lambda: eb.sample_sequences(SEQ_N, SEQ_L, mode=mode)


class CpprbLib(Lib):
    name = "cpprb"

    def __init__(self):
        super().__init__()
        import cpprb

        self.cpprb = cpprb
        self.env_dict = {k: {"shape": s, "dtype": d} for k, (s, d) in SPEC.items()}

    def build_uniform(self, cap, chunk):
        rb = self.cpprb.ReplayBuffer(cap, env_dict=self.env_dict)
        for _ in range(-(-cap // PREFILL_CHUNK)):
            rb.add(**chunk)
        return rb

    def insert(self, rb, batch):
        return lambda: rb.add(**batch)

    def sample(self, rb, n):
        return lambda: rb.sample(n)

    def nbytes(self, rb):
        return None  # storage lives in C++; only the RSS growth is measurable

    def build_per(self, cap, chunk):
        rb = self.cpprb.PrioritizedReplayBuffer(cap, env_dict=self.env_dict, alpha=ALPHA, eps=EPS)
        for _ in range(-(-cap // PREFILL_CHUNK)):
            rb.add(**chunk)
        return rb

    def per_cycle(self, rb, batch, prios):
        def run():
            rb.add(**batch)
            b = rb.sample(PER_B, beta=BETA)
            rb.update_priorities(b["indexes"], prios)

        return run


class TorchRLLib(Lib):
    name = "torchrl"

    def __init__(self):
        super().__init__()
        import tensordict
        import torch
        import torchrl
        from torchrl.data import (
            LazyTensorStorage,
            PrioritizedReplayBuffer,
            ReplayBuffer,
            SliceSampler,
        )

        logging.getLogger("torchrl").setLevel(logging.WARNING)
        torch.set_num_threads(1)
        self.torch, self.TensorDict = torch, tensordict.TensorDict
        self.RB, self.PER, self.Storage, self.Slice = ReplayBuffer, PrioritizedReplayBuffer, LazyTensorStorage, SliceSampler
        self.version = torchrl.__version__

    def td(self, batch: dict[str, np.ndarray], batch_dims: int = 1):
        shape = next(iter(batch.values())).shape[:batch_dims]
        return self.TensorDict({k: self.torch.from_numpy(np.ascontiguousarray(v)) for k, v in batch.items()}, batch_size=shape)

    def build_uniform(self, cap, chunk):
        rb = self.RB(storage=self.Storage(cap))
        td = self.td(chunk)
        for _ in range(-(-cap // PREFILL_CHUNK)):
            rb.extend(td)
        return rb

    def insert(self, rb, batch):
        td = self.td(batch)
        return lambda: rb.extend(td)

    def sample(self, rb, n):
        return lambda: rb.sample(n)

    def nbytes(self, rb):
        st = rb.storage._storage
        return sum(t.nbytes for t in st.values(include_nested=True, leaves_only=True))

    def build_per(self, cap, chunk):
        try:
            rb = self.PER(alpha=ALPHA, beta=BETA, eps=EPS, storage=self.Storage(cap))
        except RuntimeError as e:  # SumSegmentTreeFp32 is not available
            raise RuntimeError(f"{e} (torchrl._torchrl failed to load: wheel built for another torch ABI?)") from e
        td = self.td(chunk)
        for _ in range(-(-cap // PREFILL_CHUNK)):
            rb.extend(td)
        return rb

    def per_cycle(self, rb, batch, prios):
        td = self.td(batch)
        p = self.torch.from_numpy(prios)

        def run():
            rb.extend(td)
            _, info = rb.sample(PER_B, return_info=True)
            rb.update_priority(info["index"], p)

        return run

    def _seq_td(self, chunk):
        td = self.td(chunk, batch_dims=2)  # [num_envs, T]: collector layout
        # SliceSampler needs a trajectory signal; a never-set end flag makes each env's stream
        # one trajectory, so 64-step windows may cross 25-step episodes (like flashbax).
        td["stream_end"] = self.torch.zeros(td.batch_size, dtype=self.torch.bool)
        return td

    def build_seq(self, cap_steps, chunk, pool, cache_values: bool = False):
        sampler = self.Slice(slice_len=SEQ_L, end_key="stream_end", strict_length=True, cache_values=cache_values)
        rb = self.RB(storage=self.Storage(cap_steps, ndim=2), sampler=sampler, batch_size=SEQ_N * SEQ_L)
        td = self._seq_td(chunk)
        for _ in range(-(-cap_steps // NUM_ENVS // SEQ_CHUNK)):
            rb.extend(td)
        return rb

    def seq_add(self, rb, pool):
        steps = [self._seq_td({k: v[:, None] for k, v in s.items()}) for s in pool]
        nxt = cycle(steps)
        return lambda: rb.extend(nxt())

    def seq_sample(self, rb):
        return lambda: rb.sample()  # [SEQ_N * SEQ_L] flat; .view(SEQ_N, SEQ_L) to split


class FlashbaxLib(Lib):
    """flashbax item buffers (independent transitions); states threaded through jitted,
    state-donating functions."""

    name = "flashbax"

    def __init__(self):
        super().__init__()
        import jax

        jax.config.update("jax_enable_x64", True)  # keep action int64: same 471-byte layout
        import flashbax
        import jax.numpy as jnp

        warnings.filterwarnings("ignore", module="flashbax")
        self.jax, self.jnp, self.fbx = jax, jnp, flashbax
        self.example = {k: jnp.zeros(s, d) for k, (s, d) in SPEC.items()}

    def ready(self, x):
        return self.jax.block_until_ready(x)

    def dev(self, batch):
        return {k: self.jnp.asarray(v) for k, v in batch.items()}

    def _item(self, cap, n):
        return self.fbx.make_item_buffer(max_length=cap, min_length=1, sample_batch_size=n, add_sequences=True)

    def build_uniform(self, cap, chunk):
        buf = self._item(cap, SAMPLE_BS[0])
        add = self.jax.jit(buf.add, donate_argnums=0)
        state = buf.init(self.example)
        c = self.dev(chunk)
        for _ in range(-(-cap // PREFILL_CHUNK)):
            state = add(state, c)
        return {"cap": cap, "state": self.ready(state), "add": add}

    def insert(self, h, batch):
        b, add = self.dev(batch), h["add"]

        def run():
            h["state"] = add(h["state"], b)
            self.ready(h["state"])

        return run

    def sample(self, h, n):
        return self._sampler(self._item(h["cap"], n), h)

    def _sampler(self, buf, h):
        """A call that draws one jitted sample from buffer ``buf``'s state ``h["state"]``."""
        jax = self.jax

        @jax.jit
        def sample(state, key):
            key, sub = jax.random.split(key)
            return key, buf.sample(state, sub).experience

        key = [jax.random.PRNGKey(0)]

        def run():
            key[0], out = sample(h["state"], key[0])
            self.ready(out)

        return run

    def nbytes(self, h):
        return sum(x.nbytes for x in self.jax.tree_util.tree_leaves(h["state"]))

    def _per_buffer(self, cap):
        return self.fbx.make_prioritised_item_buffer(
            max_length=cap, min_length=1, sample_batch_size=PER_B, add_sequences=True, priority_exponent=ALPHA, device="cpu"
        )

    def build_per(self, cap, chunk):
        buf = self._per_buffer(cap)
        return self._build_per(buf, cap, chunk, lambda c: c)

    def _build_per(self, buf, cap, chunk, shape_fn):
        jax, jnp = self.jax, self.jnp
        add = jax.jit(buf.add, donate_argnums=0)
        set_p = jax.jit(buf.set_priorities, donate_argnums=0)

        @jax.jit
        def sample(state, key):
            key, sub = jax.random.split(key)
            s = buf.sample(state, sub)
            w = (cap * s.probabilities) ** -BETA  # the buffer is full
            return key, s.indices, w / w.max(), s.experience  # flashbax has no min tree: batch-max normalised

        state = buf.init(self.example)
        c = self.dev(shape_fn(chunk))
        rows = c["obs"].size // (SPEC["obs"][0][0] * SPEC["obs"][0][1])
        for _ in range(-(-cap // rows)):
            state = add(state, c)
        return {"cap": cap, "state": self.ready(state), "add": add, "set": set_p, "sample": sample}

    def per_cycle(self, h, batch, prios):
        b, p = self.dev(batch), self.jnp.asarray(prios)
        key = [self.jax.random.PRNGKey(0)]

        def run():
            h["state"] = h["add"](h["state"], b)
            key[0], idx, w, exp = h["sample"](h["state"], key[0])
            h["state"] = h["set"](h["state"], idx, p)
            self.ready((h["state"], w, exp))

        return run

    def build_seq(self, cap_steps, chunk, pool):
        jax = self.jax
        buf = self.fbx.make_trajectory_buffer(
            add_batch_size=NUM_ENVS,
            sample_batch_size=SEQ_N,
            sample_sequence_length=SEQ_L,
            period=1,
            min_length_time_axis=SEQ_L,
            max_length_time_axis=cap_steps // NUM_ENVS,
        )
        add = jax.jit(buf.add, donate_argnums=0)

        @jax.jit
        def sample(state, key):
            key, sub = jax.random.split(key)
            return key, buf.sample(state, sub).experience

        state = buf.init({k: v for k, v in self.example.items() if k in SEQ_SPEC})
        c = self.dev(chunk)
        for _ in range(-(-cap_steps // NUM_ENVS // SEQ_CHUNK)):
            state = add(state, c)
        return {"state": self.ready(state), "add": add, "sample": sample}

    def seq_add(self, h, pool):
        steps = [self.dev({k: v[:, None] for k, v in s.items()}) for s in pool]  # [64, 1, ...]
        nxt, add = cycle(steps), h["add"]

        def run():
            h["state"] = add(h["state"], nxt())
            self.ready(h["state"])

        return run

    def seq_sample(self, h):
        key, sample = [self.jax.random.PRNGKey(0)], h["sample"]

        def run():
            key[0], out = sample(h["state"], key[0])
            self.ready(out)

        return run


class FlashbaxFlatLib(FlashbaxLib):
    """flashbax flat buffers holding the same 471-byte dicts. add_batch_size is fixed per
    buffer (one buffer per insert size) and sample returns (first, second) pairs of
    consecutive rows, so it gathers 2 x 471 bytes per transition."""

    name = "fbx-flat"
    ADD_B = 256  # the buffer used for sampling / PER

    def _flat(self, cap, add_b, sample_b):
        return self.fbx.make_flat_buffer(
            max_length=cap, min_length=add_b, sample_batch_size=sample_b, add_sequences=True, add_batch_size=add_b
        )

    def _flat_state(self, cap, add_b, chunk):
        buf = self._flat(cap, add_b, SAMPLE_BS[0])
        add = self.jax.jit(buf.add, donate_argnums=0)
        t = max(1, PREFILL_CHUNK // add_b)
        c = self.dev({k: v[: add_b * t].reshape(add_b, t, *v.shape[1:]) for k, v in chunk.items()})
        state = buf.init(self.example)
        for _ in range(-(-cap // (add_b * t))):
            state = add(state, c)
        return {"cap": cap, "state": self.ready(state), "add": add, "add_b": add_b}

    def build_uniform(self, cap, chunk):
        self._chunk = chunk
        return self._flat_state(cap, self.ADD_B, chunk)

    def insert(self, h, batch):
        n = len(batch["obs"])
        if n != h["add_b"]:  # a flat buffer takes one add size: build one for this size
            h = self._flat_state(h["cap"], n, self._chunk)
        b = self.dev({k: v[:, None] for k, v in batch.items()})  # [B, 1, ...]
        add = h["add"]

        def run():
            h["state"] = add(h["state"], b)
            self.ready(h["state"])

        return run

    def sample(self, h, n):
        return self._sampler(self._flat(h["cap"], h["add_b"], n), h)

    def build_per(self, cap, chunk):
        buf = self.fbx.make_prioritised_flat_buffer(
            max_length=cap,
            min_length=self.ADD_B,
            sample_batch_size=PER_B,
            add_sequences=True,
            add_batch_size=self.ADD_B,
            priority_exponent=ALPHA,
            device="cpu",
        )
        t = PREFILL_CHUNK // self.ADD_B
        return self._build_per(
            buf, cap, chunk, lambda c: {k: v[: self.ADD_B * t].reshape(self.ADD_B, t, *v.shape[1:]) for k, v in c.items()}
        )

    def per_cycle(self, h, batch, prios):
        return super().per_cycle(h, {k: v[:, None] for k, v in batch.items()}, prios)

    build_seq = None  # the trajectory buffer is the flashbax column's


LIBS: list[type[Lib]] = [NumpyLib, GenmarlLib, CpprbLib, TorchRLLib, FlashbaxLib, FlashbaxFlatLib]


# ----------------------------------------------------------------------------- sections


class Results:
    def __init__(self, columns: list[str]):
        self.columns = columns
        self.rows: dict[str, dict[str, Any]] = {}
        self.units: dict[str, str] = {}
        self.notes: list[str] = []

    def put(self, row: str, unit: str, col: str, value) -> None:
        self.rows.setdefault(row, {})[col] = value
        self.units[row] = unit

    def get(self, row: str, col: str):
        return self.rows.get(row, {}).get(col)


def measure(res: Results, row: str, unit: str, lib: str, make_fn: Callable[[], Callable], per_call: float, cfg) -> None:
    """Times make_fn()'s callable; stores per_call / seconds (items per second)."""
    try:
        fn = make_fn()
        sec = time_per_call(fn, cfg.repeats, cfg.min_time)
        res.put(row, unit, lib, per_call / sec)
        print(f"  {lib:>9} {row:<34} {fmt_rate(per_call / sec):>8} {unit}", flush=True)
    except Exception as e:  # one library's failure must not stop the table
        res.notes.append(f"{lib}: {row}: {type(e).__name__}: {str(e).splitlines()[0][:160]}")
        print(f"  {lib:>9} {row:<34} failed: {type(e).__name__}: {str(e)[:160]}", flush=True)


def build(res: Results, lib: Lib, what: str, builder: Callable[[], Any], mem_row: str):
    release_memory()
    before = rss_bytes()
    t0 = time.perf_counter()
    try:
        buf = builder()
    except Exception as e:
        res.notes.append(f"{lib.name}: {what} unavailable: {type(e).__name__}: {str(e).splitlines()[0][:200]}")
        print(f"  {lib.name:>9} {what} unavailable: {type(e).__name__}: {str(e)[:200]}", flush=True)
        return None
    release_memory()
    res.put(f"e. RSS growth, {mem_row}", "MB", lib.name, rss_bytes() - before)
    print(f"  {lib.name:>9} built+filled {what} in {time.perf_counter() - t0:.1f}s", flush=True)
    return buf


def run_uniform(res: Results, lib: Lib, cfg, data) -> None:
    if not hasattr(lib, "build_uniform"):
        return
    rb = build(res, lib, "uniform buffer", lambda: lib.build_uniform(cfg.capacity, data["chunk"]), "uniform")
    if rb is None:
        return
    nb = lib.nbytes(rb)
    if nb is not None:
        res.put("e. storage bytes, uniform", "MB", lib.name, nb)
    if "insert" in cfg.only:
        for b in INSERT_BS:
            measure(res, f"a. insert B={b}", "trans/s", lib.name, lambda: lib.insert(rb, data["batch"][b]), b, cfg)
    if "sample" in cfg.only:
        for b in SAMPLE_BS:
            measure(res, f"b. sample B={b}", "trans/s", lib.name, lambda: lib.sample(rb, b), b, cfg)
    del rb


def run_per(res: Results, lib: Lib, cfg, data) -> None:
    if getattr(lib, "build_per", None) is None:
        return
    per = build(res, lib, "PER buffer", lambda: lib.build_per(cfg.capacity, data["chunk"]), "PER")
    if per is None:
        return
    nb = lib.nbytes(per)
    if nb is not None:
        res.put("e. storage bytes, PER", "MB", lib.name, nb)
    if "per" in cfg.only:
        measure(
            res, f"c. PER cycle {PER_B}", "cycles/s", lib.name, lambda: lib.per_cycle(per, data["batch"][PER_B], data["prios"]), 1, cfg
        )
    del per


def run_seq(res: Results, lib: Lib, cfg, data) -> None:
    if getattr(lib, "build_seq", None) is None:
        return
    eb = build(res, lib, "sequence buffer", lambda: lib.build_seq(cfg.capacity, data["seq_chunk"], data["pool"]), "seq")
    if eb is None:
        return
    nb = lib.nbytes(eb)
    if nb is not None:
        res.put("e. storage bytes, seq", "MB", lib.name, nb)
    if "seq" in cfg.only:
        measure(res, "d. seq sample 64x64", "seqs/s", lib.name, lambda: lib.seq_sample(eb), SEQ_N, cfg)
        if isinstance(lib, GenmarlLib):
            measure(res, "d. seq sample 64x64 mode=pad", "seqs/s", lib.name, lambda: lib.seq_sample(eb, "pad"), SEQ_N, cfg)
        measure(res, "d. seq add_step (64 envs)", "env-steps/s", lib.name, lambda: lib.seq_add(eb, data["pool"]), NUM_ENVS, cfg)
    del eb
    if isinstance(lib, TorchRLLib) and "seq" in cfg.only:  # the static-data variant
        gc.collect()
        eb = lib.build_seq(cfg.capacity, data["seq_chunk"], data["pool"], cache_values=True)
        measure(res, "d. seq sample, cache_values=True", "seqs/s", lib.name, lambda: lib.seq_sample(eb), SEQ_N, cfg)
        del eb


def run_limits(res: Results, cfg, data) -> None:
    cap = cfg.capacity
    rng = np.random.default_rng(1)
    dst = {k: np.ones((cap, *s), d) for k, (s, d) in SPEC.items()}  # pages touched

    def memcpy(b):
        src, cur = data["batch"][b], [0]

        def run():
            c = cur[0] if cur[0] + b <= cap else 0
            for k, v in src.items():
                dst[k][c : c + b] = v
            cur[0] = c + b

        return run

    def gather(b):
        pool = cycle([rng.integers(0, cap, b) for _ in range(16)])
        out = {k: np.empty((b, *v.shape[1:]), v.dtype) for k, v in dst.items()}

        def run():
            idx = pool()
            for k, v in dst.items():
                np.take(v, idx, axis=0, out=out[k])

        return run

    for b in INSERT_BS:
        measure(res, f"a. insert B={b}", "trans/s", "limit", lambda: memcpy(b), b, cfg)
    for b in SAMPLE_BS:
        measure(res, f"b. sample B={b}", "trans/s", "limit", lambda: gather(b), b, cfg)
    del dst

    t_env = cap // NUM_ENVS
    flat = {k: np.ones((NUM_ENVS * t_env, *s), d) for k, (s, d) in SEQ_SPEC.items()}  # env-major rows

    def windows():
        def one():
            env = rng.integers(0, NUM_ENVS, SEQ_N)
            start = rng.integers(0, t_env - SEQ_L + 1, SEQ_N)
            return ((env * t_env + start)[:, None] + np.arange(SEQ_L)).reshape(-1)

        pool = cycle([one() for _ in range(16)])
        out = {k: np.empty((SEQ_N * SEQ_L, *v.shape[1:]), v.dtype) for k, v in flat.items()}

        def run():
            idx = pool()
            for k, v in flat.items():
                np.take(v, idx, axis=0, out=out[k])

        return run

    measure(res, "d. seq sample 64x64", "seqs/s", "limit", windows, SEQ_N, cfg)
    del flat


# ----------------------------------------------------------------------------- report


def print_report(res: Results, libs: list[Lib], cfg) -> None:
    cols = [c for c in res.columns if any(c in r for r in res.rows.values())]
    first_seen = {r: i for i, r in enumerate(res.rows)}
    order = sorted(res.rows, key=lambda r: (r[:2], first_seen[r]))
    w0 = max(len(r) for r in order) + 2
    print()
    print(
        f"Replay buffers, {BYTES_PER_TRANSITION} B/transition ({BYTES_PER_STEP} B/step in the seq buffers), "
        f"capacity {cfg.capacity:,}, single thread, median of {cfg.repeats}"
    )
    print(f"{'':{w0}}{'unit':>12}" + "".join(f"{c:>11}" for c in cols))
    for row in order:
        cells = []
        for c in cols:
            v = res.get(row, c)
            cells.append(fmt_mb(v) if row.startswith("e.") and v is not None else fmt_rate(v))
        print(f"{row:<{w0}}{res.units[row]:>12}" + "".join(f"{x:>11}" for x in cells))
    print(f"{'raw payload':<{w0}}{'MB':>12}{fmt_mb(cfg.capacity * BYTES_PER_TRANSITION):>11}"
          f"   (seq: {fmt_mb(cfg.capacity * BYTES_PER_STEP)})")

    peers = [c for c in cols if c not in ("genmarl", "limit")]
    if "genmarl" in cols:
        print("\nRatios: genmarl / peer (throughput rows: >1 means genmarl faster; memory: <1 means smaller)")
        print(f"{'':{w0}}" + "".join(f"{c:>11}" for c in peers + ["of limit"]))
        for row in order:
            g = res.get(row, "genmarl")
            if g is None:
                continue
            cells = []
            for c in peers + ["limit"]:
                v = res.get(row, c)
                cells.append("-" if not v else f"{g / v:.2f}x" if c != "limit" else f"{100 * g / v:.0f}%")
            print(f"{row:<{w0}}" + "".join(f"{x:>11}" for x in cells))
    else:
        print("\n(genmarl.buffers not importable: no genmarl column or ratios)")

    notes = list(res.notes)
    for lib in libs:
        notes += lib.notes
    notes += [
        "cpprb: no sequence sampling (skipped in d.); its storage is C++-side (RSS growth only).",
        "numpy: PER is a vectorised numpy sum/min tree; seq windows never cross the write head.",
        "torchrl: seq = LazyTensorStorage(ndim=2) [T, 64 envs] + SliceSampler(slice_len=64, end_key="
        "'stream_end' never set): windows of one env's stream, crossing 25-step episodes; "
        "uniform/PER samples are TensorDicts.",
        "flashbax: item buffers (make_item_buffer / make_prioritised_item_buffer, add_sequences=True), "
        "trajectory buffer for seq; jax_enable_x64 on (int64 action); jitted, state donated, "
        "block_until_ready. PER weights are normalised by the batch max (no min tree).",
        "fbx-flat: make_flat_buffer / make_prioritised_flat_buffer, add_batch_size=B per insert size; "
        "samples are (first, second) pairs = 2 rows gathered per transition.",
        "limit: numpy into preallocated arrays: slice copies for insert, np.take(out=) of random rows "
        "for sample, np.take(out=) of 64 contiguous 64-row windows (env-major) for seq; for small B "
        "these are numpy per-call-overhead bounds, not hardware bounds. genmarl above 100% "
        "of it is possible.",
        "e.: 'storage bytes' = library-reported / summed arrays; 'RSS growth' = process RSS after "
        "building + filling minus before (approximate; allocator caches).",
    ]
    print("\nNotes:")
    for n in notes:
        print(f"  - {n}")


def main(argv: list[str] | None = None) -> int:
    sections = ("insert", "sample", "per", "seq", "memory", "limits")
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="small capacity and few repeats: a smoke run (< 60 s)")
    ap.add_argument("--only", default=",".join(sections), help=f"comma-separated subset of {','.join(sections)}")
    ap.add_argument("--capacity", type=int, default=None, help="buffer capacity (default 1,000,000; --quick 100,000)")
    ap.add_argument("--repeats", type=int, default=None, help="timed repeats per figure (default 7; --quick 3)")
    cfg = ap.parse_args(argv)
    cfg.only = {s.strip() for s in cfg.only.split(",") if s.strip()}
    if cfg.only - set(sections):
        ap.error(f"unknown --only sections: {sorted(cfg.only - set(sections))}")
    cfg.capacity = cfg.capacity or (100_000 if cfg.quick else 1_000_000)
    cfg.repeats = cfg.repeats or (3 if cfg.quick else 7)
    cfg.min_time = 0.02 if cfg.quick else 0.1

    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        pass

    rng = np.random.default_rng(0)
    chunk = make_transitions(PREFILL_CHUNK, rng)
    seq_chunk = make_seq_chunk(rng)
    data = {
        "chunk": chunk,
        "batch": {b: {k: np.ascontiguousarray(v[:b]) for k, v in make_transitions(max(INSERT_BS), rng).items()} for b in INSERT_BS},
        "prios": (rng.random(PER_B) * 2).astype(np.float32),
        "seq_chunk": seq_chunk,
        "pool": step_pool(seq_chunk),
    }

    res = Results([cls.name for cls in LIBS] + ["limit"])
    libs: list[Lib] = []
    for cls in LIBS:
        try:
            libs.append(cls())
        except ImportError as e:
            res.notes.append(f"{cls.name}: skipped (not importable: {e})")
            print(f"{cls.name}: skipped (not importable: {e})", flush=True)
    print(
        f"capacity {cfg.capacity:,}; sections {sorted(cfg.only)}; libraries {[lib.name for lib in libs]}; "
        f"python {sys.version.split()[0]}, numpy {np.__version__}",
        flush=True,
    )

    t_start = time.perf_counter()
    for lib in libs:
        print(f"[{lib.name}]", flush=True)
        if cfg.only & {"insert", "sample", "memory"}:
            run_uniform(res, lib, cfg, data)
        if cfg.only & {"per", "memory"}:
            run_per(res, lib, cfg, data)
        if cfg.only & {"seq", "memory"}:
            run_seq(res, lib, cfg, data)
        gc.collect()
    if "limits" in cfg.only:
        print("[limits]", flush=True)
        run_limits(res, cfg, data)
    if "memory" not in cfg.only:
        res.rows = {r: v for r, v in res.rows.items() if not r.startswith("e.")}
    print(f"(total {time.perf_counter() - t_start:.0f} s)")
    print_report(res, libs, cfg)
    return 0


if __name__ == "__main__":
    sys.exit(main())
