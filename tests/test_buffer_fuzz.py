"""Fuzz test of ``Buffer.load``: damaged and crafted files load correctly or raise a clean
exception -- never crash, hang or allocate absurd memory.

For each buffer kind a small real buffer is saved, then mutated:

* ``cut`` / ``cut+sum``: truncation at every offset (the second with the checksum
  recomputed, so the parser meets a short but "undamaged" file);
* ``flip``: 1-4 random bit flips (must be caught by the checksum);
* ``flip+sum``: 1-4 random bit flips with the checksum recomputed (exercises the parser);
* ``field+sum``: one header, spec or state field (capacity, sizes, counts, dims, dtype,
  positions, priorities, ...) set to a crafted value: huge, negative, zero, off by one,
  overflowing;
* ``splice+sum``: bytes inserted or deleted.

The cases run in batches in fresh interpreters (fresh_interpreter.py) under a 4 GiB
address-space limit and a timeout, so a crash, hang or runaway allocation is reported as a
failure with its case number. A file that loads is then used (sampled, saved, reloaded): it
must keep working and survive a save/load round trip unchanged.

Outcomes that fail the test: a crash (signal), a hang, an exception other than
BufferFileError / MemoryError (BufferMemoryError, or an allocation refused under the limit) at load, a damaged file (no checksum fix) that loads, a
loaded buffer that crashes or whose save/load round trip changes it, resident memory above
1 GiB.

Size: ``GENMARL_FUZZ_CASES`` random cases (default 10000) on top of the truncation sweeps,
seed ``GENMARL_FUZZ_SEED`` (default 0). A long run:
``GENMARL_FUZZ_CASES=20000 python -m pytest tests/test_buffer_fuzz.py -s`` prints the figures.
"""

from __future__ import annotations

import json
import os
import random
import struct
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

from buffer_file_format import spec_offsets, state_offsets, with_checksum
from fresh_interpreter import describe, run_python

KINDS = ("replay", "prioritized", "episode", "rollout")
LIMIT_BYTES = 4 << 30
MAX_RSS_BYTES = 1 << 30
BATCH = 1500
TIMEOUT_S = 120

INTS = [0, 1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 255, 256, 4096, 2**31 - 1, 2**31, 2**32 - 1, 2**32, 2**32 + 1,
        2**40, 2**46, 2**48, 2**53, 2**56, 2**62, 2**63 - 1, -1, -2, -8, -(2**31), -(2**62), -(2**63)]
FLOATS = [0.0, -0.0, 1.0, -1.0, 0.5, 1e-308, 5e-324, 1e308, float("inf"), float("-inf"), float("nan")]


# ---------------------------------------------------------------------------- the original files


def make_buffer(kind: str):
    """A small buffer of each kind with every dtype and several shapes."""
    import numpy as np

    from genmarl.buffers import EpisodeBuffer, PrioritizedReplayBuffer, ReplayBuffer, RolloutBuffer

    spec = {"obs": ((2, 3), np.float32), "action": ((2,), np.int64), "reward": ((), np.float32),
            "value": ((), np.float32), "terminated": ((), np.bool_), "truncated": ((), np.bool_),
            "code": ((3,), np.uint8), "half": ((), np.float16), "count": ((), np.int32)}

    def items(n, start=0):
        i = np.arange(start, start + n)
        return {"obs": np.repeat(i.astype(np.float32), 6).reshape(n, 2, 3), "action": np.stack([i, -i], 1),
                "reward": i.astype(np.float32), "value": (i * 0.5).astype(np.float32),
                "terminated": i % 3 == 2, "truncated": np.zeros(n, bool),
                "code": np.stack([i, i + 1, i + 2], 1).astype(np.uint8), "half": i.astype(np.float16),
                "count": i.astype(np.int32)}

    if kind == "replay":
        b = ReplayBuffer(8, spec, seed=3, num_envs=2)
        b.add(items(6))
        b.sample(2)
    elif kind == "prioritized":
        b = PrioritizedReplayBuffer(8, spec, seed=3)
        b.add(items(5), np.array([1.0, 0.0, 2.5, 0.25, 4.0]))
        b.sample(2)
    elif kind == "episode":
        b = EpisodeBuffer(12, spec, seed=3, num_envs=3)
        for t in range(5):
            b.add_step(items(3, 3 * t))
        b.add_step(items(1, 99), np.array([1]))
        b.end_episode(np.array([2]))
    else:
        b = RolloutBuffer(3, 2, spec)
        for t in range(3):
            b.add(items(2, 2 * t))
        b.compute_gae(np.zeros(2, np.float32))
    return b


def field_offsets(raw: bytes, kind: str) -> list[tuple[str, int, str]]:
    """Every structured field of a file: header, spec, state (and prioritized settings)."""
    out = [("version", 8, "<I"), ("kind", 12, "<I")]
    out += [(name, at, fmt) for name, (at, fmt) in spec_offsets(raw).items()]
    state = state_offsets(raw, kind)
    out += [(name, at, fmt) for name, (at, fmt) in state.items()]
    if kind == "prioritized":
        size = struct.unpack_from("<q", raw, state["size"][0])[0]
        settings = len(raw) - 8 - 8 * size - 32
        out += [(name, settings + 8 * k, "<d") for k, name in enumerate(("alpha", "beta", "eps", "max_priority"))]
        out += [(f"leaf{k}", settings + 32 + 8 * k, "<d") for k in range(size)]
    return out


# ---------------------------------------------------------------------------- cases


def case(raw: bytes, kind: str, seed: int, index: int) -> tuple[str, bytes]:
    """The mutation number ``index`` (deterministic in seed, kind and index): (label, file bytes)."""
    body = raw[:-8]
    n = len(raw)
    sweep = 2 * n
    if index < sweep:  # truncation sweeps: every offset, without and with a checksum
        cut = index % n
        return (f"cut@{cut}", raw[:cut]) if index < n else (f"cut+sum@{cut}", with_checksum(body[:cut]))
    rng = random.Random(f"{seed}/{kind}/{index}")
    what = rng.choice(("flip", "flip+sum", "field+sum", "field+sum", "field+sum", "splice+sum"))
    if what in ("flip", "flip+sum"):
        m = bytearray(raw if what == "flip" else body)
        bits = [rng.randrange(8 * len(m)) for _ in range(rng.randint(1, 4))]
        for b in bits:
            m[b // 8] ^= 1 << (b % 8)
        label = f"{what}@{','.join(map(str, bits))}"
        return label, bytes(m) if what == "flip" else with_checksum(bytes(m))
    if what == "splice+sum":
        at = rng.randrange(len(body) + 1)
        if rng.random() < 0.5:
            k = rng.randint(1, 16)
            return f"splice+sum@{at}-{k}", with_checksum(body[:at] + body[at + k :])
        extra = bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
        return f"splice+sum@{at}+{extra.hex()}", with_checksum(body[:at] + extra + body[at:])
    name, at, fmt = rng.choice(field_offsets(raw, kind))
    m = bytearray(body)
    old = struct.unpack_from(fmt, m, at)[0]
    if fmt == "<d":
        value = rng.choice(FLOATS + [old * 2, -old])
        struct.pack_into(fmt, m, at, value)
    else:
        bits = 8 * struct.calcsize(fmt)
        value = rng.choice(INTS + [old + 1, old - 1, old * 2, old + 2**32, rng.getrandbits(bits)])
        struct.pack_into(fmt.replace("q", "Q").replace("i", "I"), m, at, value & ((1 << bits) - 1))
    return f"field+sum:{name}={value!r}", with_checksum(bytes(m))


# ---------------------------------------------------------------------------- one batch (in a child)


def exercise(b) -> None:
    """Uses a loaded buffer the way training would; only clean errors are allowed."""
    import numpy as np

    from genmarl import InvalidArgument

    cls = type(b).__name__
    try:
        len(b), b.spec, b.nbytes, repr(b)
        if cls == "ReplayBuffer":
            b.sample(4)
            b.sample(4, n_step=3, gamma=0.9)
        elif cls == "PrioritizedReplayBuffer":
            s = b.sample(4)
            b.update_priorities(s["indices"], np.ones(4))
        elif cls == "EpisodeBuffer":
            b.sample_sequences(3, 2, mode="pad")
            b.sample_sequences(3, 2, mode="stitch")
        else:
            for k in b.keys():
                b[k]
            list(b.minibatches(2))
    except (InvalidArgument, ValueError, KeyError) as e:
        if "UTF-8" in str(e) or isinstance(e, UnicodeError):
            raise


def peak_rss_bytes() -> int:
    """This process's own peak resident memory. On Linux, VmHWM of /proc/self/status: the
    ``ru_maxrss`` of a child started by fork + exec starts at the parent's resident memory at the
    fork (the forked copy of its address space is counted before exec replaces it), so a pytest
    worker that grew past the limit running other tests made every case look over it."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # bytes on macOS, KiB elsewhere


def run_batch(kind: str, seed: int, start: int, stop: int, workdir: str) -> dict:
    """Runs cases [start, stop) of one kind; prints '@i' to stderr before each case so that a
    crash or hang can be traced to it."""

    from genmarl.buffers import BufferFileError

    original = os.path.join(workdir, f"{kind}.orig")
    make_buffer(kind).save(original)
    raw = open(original, "rb").read()
    cls = type(make_buffer(kind))
    path = os.path.join(workdir, f"{kind}.{start}.case")
    again = os.path.join(workdir, f"{kind}.{start}.again")
    counts = {"cases": 0, "loaded": 0, "rejected": 0, "memory_refused": 0, "identical": 0}
    problems = []
    for i in range(start, stop):
        sys.stderr.write(f"@{i}\n")
        sys.stderr.flush()
        label, data = case(raw, kind, seed, i)
        counts["cases"] += 1
        with open(path, "wb") as f:
            f.write(data)
        try:
            b = cls.load(path)
        except MemoryError:  # BufferMemoryError (the check), or an allocation under RLIMIT_AS
            counts["memory_refused"] += 1
            continue
        except BufferFileError:
            counts["rejected"] += 1
            continue
        except BaseException as e:  # noqa: BLE001 - any other exception is a finding
            problems.append(f"{kind} #{i} {label}: load raised {type(e).__name__}: {e}")
            continue
        counts["loaded"] += 1
        if data == raw:
            counts["identical"] += 1
        elif "+sum" not in label:
            problems.append(f"{kind} #{i} {label}: a damaged file loaded (the checksum missed it)")
        try:
            exercise(b)
            b.save(again)
            del b  # a crafted capacity may reserve most of the address-space limit
            first = open(again, "rb").read()
            cls.load(again).save(again)
            if open(again, "rb").read() != first:
                problems.append(f"{kind} #{i} {label}: a save/load round trip changed the loaded buffer")
        except MemoryError:  # a second buffer of a crafted capacity did not fit under RLIMIT_AS: clean
            counts["memory_refused"] += 1
        except BaseException as e:  # noqa: BLE001
            problems.append(f"{kind} #{i} {label}: the loaded buffer failed: {type(e).__name__}: {e}")
        rss = peak_rss_bytes()
        if rss > MAX_RSS_BYTES:
            problems.append(f"{kind} #{i} {label}: resident memory reached {rss} bytes")
            break
    return {"counts": counts, "problems": problems}


CHILD = """
import json, sys
sys.path.insert(0, {tests!r})
import test_buffer_fuzz as fuzz
print(json.dumps(fuzz.run_batch({kind!r}, {seed}, {start}, {stop}, {workdir!r})))
"""


# ---------------------------------------------------------------------------- the test


def run_fuzz(cases_per_kind: int, seed: int, workers: int = 2) -> dict:
    """Runs the sweeps plus ``cases_per_kind`` random cases per kind in batches, ``workers``
    interpreters at a time; returns the totals and every problem found."""
    tests = os.path.dirname(os.path.abspath(__file__))
    with tempfile.TemporaryDirectory() as workdir:
        sizes = {}
        for kind in KINDS:
            path = os.path.join(workdir, kind)
            make_buffer(kind).save(path)
            sizes[kind] = 2 * os.path.getsize(path) + cases_per_kind
        jobs = [(kind, s, min(s + BATCH, sizes[kind])) for kind in KINDS for s in range(0, sizes[kind], BATCH)]

        def run(job):
            kind, start, stop = job
            code = CHILD.format(tests=tests, kind=kind, seed=seed, start=start, stop=stop, workdir=workdir)
            try:
                proc = run_python(code, timeout=TIMEOUT_S, limit_bytes=LIMIT_BYTES)
            except Exception as e:  # subprocess.TimeoutExpired
                err = e.stderr.decode() if isinstance(getattr(e, "stderr", None), bytes) else (e.stderr or "")
                last = [ln for ln in err.splitlines() if ln.startswith("@")][-1:]
                return {"hang": f"{kind} cases {start}..{stop}: no result in {TIMEOUT_S} s (last started {last})"}
            if proc.returncode != 0:
                last = [ln for ln in proc.stderr.splitlines() if ln.startswith("@")][-1:]
                return {"crash": f"{kind} cases {start}..{stop}, last started {last}: {describe(proc)[-1500:]}"}
            return json.loads(proc.stdout.strip().splitlines()[-1])

        t0 = time.perf_counter()
        with ThreadPoolExecutor(workers) as pool:
            results = list(pool.map(run, jobs))
        elapsed = time.perf_counter() - t0
    totals = {"cases": 0, "loaded": 0, "rejected": 0, "memory_refused": 0, "identical": 0}
    report = {"crashes": [], "hangs": [], "problems": []}
    for r in results:
        if "hang" in r:
            report["hangs"].append(r["hang"])
        elif "crash" in r:
            report["crashes"].append(r["crash"])
        else:
            for k, v in r["counts"].items():
                totals[k] += v
            report["problems"] += r["problems"]
    return {**totals, **report, "seconds": round(elapsed, 1)}


def test_load_survives_damaged_and_crafted_files():
    cases = int(os.environ.get("GENMARL_FUZZ_CASES", "10000"))
    seed = int(os.environ.get("GENMARL_FUZZ_SEED", "0"))
    result = run_fuzz(max(1, cases // len(KINDS)), seed)
    summary = {k: v if not isinstance(v, list) else len(v) for k, v in result.items()}
    print("\nbuffer load fuzz:", json.dumps(summary))
    assert result["crashes"] == [], result["crashes"][:3]
    assert result["hangs"] == [], result["hangs"][:3]
    assert result["problems"] == [], result["problems"][:10]
    assert result["loaded"] > 0 and result["rejected"] > 0
