"""The buffer file format (cpp/include/genmarl/buffer/serialize.hpp), read from the test
side: the checksum, so that tests can change a file's content and still get it past the
checksum into the parser, and the offsets of the header and state fields.

Layout (little-endian): magic "GMRLBUF\\0", version u32, kind u32, field count u64, per field
(name: u64 length + bytes, dtype u8, shape: u64 count + i64 dims), then the buffer's state
(see ``STATE``), its rows, and a u64 checksum of everything before it.
"""

from __future__ import annotations

import struct

MASK = (1 << 64) - 1
CHUNK = 1 << 16
KIND = {"replay": 1, "prioritized": 2, "episode": 3, "rollout": 4}

# Fixed state fields right after the spec: (name, struct format).
STATE = {
    "replay": [("capacity", "<q"), ("num_envs", "<q"), ("seed", "<Q"), ("counter", "<Q"), ("pos", "<q"), ("size", "<q")],
    "prioritized": [("capacity", "<q"), ("num_envs", "<q"), ("seed", "<Q"), ("counter", "<Q"), ("pos", "<q"), ("size", "<q")],
    "episode": [("steps_per_env", "<q"), ("num_envs", "<q"), ("seed", "<Q"), ("counter", "<Q"), ("env_count", "<Q")],
    "rollout": [("num_steps", "<q"), ("num_envs", "<q"), ("step", "<q"), ("gae_ready", "<B")],
}
# Episode files then hold env_count records of (pos i64, count i64, episode i64, in_episode u8, 7 pad bytes).
ENV_STATE = [("pos", "<q"), ("count", "<q"), ("episode", "<q"), ("in_episode", "<B")]
ENV_STATE_BYTES = 32


def mix64(z: int) -> int:
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    return z ^ (z >> 31)


def hash_block(data: bytes, seed: int) -> int:
    h = [seed ^ 0x243F6A8885A308D3, seed ^ 0x13198A2E03707344, seed ^ 0xA4093822299F31D0, seed ^ 0x082EFA98EC4E6C89]
    mul = 0x9FB21C651E98DF25
    n = len(data)
    whole = n - n % 32
    words = struct.unpack_from(f"<{whole // 8}Q", data)
    for i in range(0, len(words), 4):
        for lane in range(4):
            x = ((h[lane] ^ words[i + lane]) * mul) & MASK
            h[lane] = x ^ (x >> 29)
    tail = n
    shift = 0
    for b in data[whole:]:
        tail = ((tail ^ (b << shift)) * mul) & MASK
        shift = (shift + 8) & 63
    return mix64(mix64(h[0] ^ mix64(h[1])) ^ mix64(h[2] ^ mix64(h[3] ^ mix64(tail))))


def checksum(body: bytes) -> int:
    """The checksum the writer appends to ``body`` (64 KiB chunks, chained)."""
    h = 0x6A09E667F3BCC908
    whole = len(body) - len(body) % CHUNK
    for i in range(0, whole, CHUNK):
        h = hash_block(body[i : i + CHUNK], h)
    return hash_block(body[whole:], h ^ 0x5851F42D4C957F2D)


def with_checksum(body: bytes) -> bytes:
    """``body`` plus its checksum: a file the reader accepts as undamaged."""
    return body + struct.pack("<Q", checksum(body))


def spec_end(raw: bytes) -> int:
    """Offset just past the spec (where the state starts) of a well-formed file."""
    (n,) = struct.unpack_from("<Q", raw, 16)
    at = 24
    for _ in range(n):
        (length,) = struct.unpack_from("<Q", raw, at)
        at += 8 + length + 1
        (dims,) = struct.unpack_from("<Q", raw, at)
        at += 8 + 8 * dims
    return at


def state_offsets(raw: bytes, kind: str) -> dict[str, tuple[int, str]]:
    """name -> (offset, struct format) of the fixed state fields (and, for episode files,
    ``env{k}.pos`` etc. of every env record)."""
    at = spec_end(raw)
    out = {}
    for name, fmt in STATE[kind]:
        out[name] = (at, fmt)
        at += struct.calcsize(fmt)
    if kind == "episode":
        (envs,) = struct.unpack_from("<Q", raw, out["env_count"][0])
        for k in range(envs):
            sub = at
            for name, fmt in ENV_STATE:
                out[f"env{k}.{name}"] = (sub, fmt)
                sub += struct.calcsize(fmt)
            at += ENV_STATE_BYTES
    return out


def spec_offsets(raw: bytes) -> dict[str, tuple[int, str]]:
    """name -> (offset, struct format) of every length, dtype and dimension in the spec."""
    out = {"field_count": (16, "<Q")}
    (n,) = struct.unpack_from("<Q", raw, 16)
    at = 24
    for i in range(n):
        out[f"f{i}.name_length"] = (at, "<Q")
        (length,) = struct.unpack_from("<Q", raw, at)
        at += 8 + length
        out[f"f{i}.dtype"] = (at, "<B")
        at += 1
        out[f"f{i}.dims"] = (at, "<Q")
        (dims,) = struct.unpack_from("<Q", raw, at)
        at += 8
        for d in range(dims):
            out[f"f{i}.dim{d}"] = (at, "<q")
            at += 8
    return out
