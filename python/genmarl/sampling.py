"""Batched categorical sampling kernels backed by the C++ core
(``cpp/include/genmarl/sampling/categorical.hpp``), for a world model's imagined rollouts
on the CPU path. numpy in, numpy out; no torch needed (``torch.from_numpy`` and
``tensor.numpy()`` cross over without copying).

Every function takes logits of shape ``[..., k]`` (any real array-like; converted to
C-contiguous float32) and treats each of the leading positions as one distribution over
``k`` outcomes::

    p = (1 - unimix) * softmax(logits) + unimix / k,      0 <= unimix < 1

``unimix=0`` is the plain softmax; DreamerV3 mixes in 1% uniform (``unimix=0.01``).
Logits must be finite or ``-inf`` (an outcome that cannot occur), and no row may be
``-inf`` everywhere; anything else raises ``ValueError`` naming the first bad entry.

Draws are reproducible: row ``r`` (in C order over the leading dimensions) uses the
counter-based stream ``CounterRng(seed, stream, 0, counter=r)``, so the same
``(seed, stream)`` gives the same draws for any ``num_threads``; use a new ``stream``
(e.g. the imagination step) for fresh draws under the same seed.

The inputs are copied into owned storage and checked while the GIL is held; the GIL is
released while the kernel runs, so other Python threads keep running.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from genmarl import _core

__all__ = ["categorical_entropy", "categorical_log_prob", "categorical_sample"]


def _logits(logits: Any) -> np.ndarray:
    """``logits`` as a C-contiguous float32 array of shape ``[..., k]``, k >= 1."""
    try:
        arr = np.asarray(logits)
    except (TypeError, ValueError) as exc:  # ragged nested sequences
        raise ValueError(f"logits must be a real-valued array of shape [..., k]: {exc}") from None
    if arr.dtype.kind not in "fiu":
        raise TypeError(
            f"logits must be a real-valued (float or integer) array of shape [..., k], got dtype {arr.dtype}"
        )
    if arr.ndim == 0:
        raise ValueError("logits must have shape [..., k] with at least one dimension, got a scalar")
    if arr.shape[-1] < 1:
        raise ValueError(f"logits must have k >= 1 outcomes in the last dimension, got shape {arr.shape}")
    return np.ascontiguousarray(arr, dtype=np.float32)


def _index(index: Any, shape: tuple[int, ...]) -> np.ndarray:
    """``index`` as a C-contiguous int64 array of shape ``shape``."""
    arr = np.asarray(index)
    if arr.dtype.kind not in "iu":
        raise TypeError(f"index must be an integer array of shape {shape}, got dtype {arr.dtype}")
    if arr.shape != shape:
        raise ValueError(f"index must have the shape of logits without its last dimension, {shape}, got {arr.shape}")
    if arr.dtype.kind == "u" and arr.size and int(arr.max()) > np.iinfo(np.int64).max:
        raise ValueError("index holds values too large for int64")
    return np.asarray(arr, dtype=np.int64, order="C")  # (ascontiguousarray would make a 0-d index 1-d)


def _unimix(unimix: Any) -> float:
    if isinstance(unimix, bool) or not isinstance(unimix, int | float | np.integer | np.floating):
        raise TypeError(f"unimix must be a number in [0, 1), got {type(unimix).__name__}")
    if not 0.0 <= unimix < 1.0:
        raise ValueError(f"unimix must be in [0, 1), got {unimix}")
    return float(unimix)


def _uint64(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise TypeError(f"{name} must be an int in [0, 2**64), got {type(value).__name__}")
    if not 0 <= value < 2**64:
        raise ValueError(f"{name} must be an int in [0, 2**64), got {value}")
    return int(value)


def _num_threads(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise TypeError(f"num_threads must be an int >= 1, got {type(value).__name__}")
    if not 1 <= value <= 256:
        raise ValueError(f"num_threads must be in [1, 256], got {value}")
    return int(value)


def categorical_sample(
    logits: Any,
    seed: int,
    stream: int = 0,
    *,
    unimix: float = 0.0,
    one_hot: bool = False,
    num_threads: int = 1,
) -> tuple[np.ndarray, np.ndarray] | tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Draws one outcome per distribution.

    Args:
        logits: ``[..., k]`` real array-like (converted to float32).
        seed, stream: ints in ``[0, 2**64)``; row ``r`` draws from
            ``CounterRng(seed, stream, 0, counter=r)``.
        unimix: weight of the uniform mixture, in ``[0, 1)``.
        one_hot: also return the draws one-hot encoded.
        num_threads: split the rows over this many threads (a shared pool per count). The
            result does not depend on it.

    Returns:
        ``(index, log_prob)`` with ``index: [...] int64`` in ``[0, k)`` and
        ``log_prob: [...] float32`` = ``log p[index]``; with ``one_hot=True`` also
        ``one_hot: [..., k] float32``. All freshly allocated.

    Raises:
        TypeError: non-numeric logits, non-int seed / stream / num_threads.
        ValueError: a 0-d array, k = 0, NaN or +inf logits, a row of only -inf, unimix
            outside [0, 1), seed or stream outside [0, 2**64).
    """
    x = _logits(logits)
    return _core.categorical_sample(
        x,
        _uint64(seed, "seed"),
        _uint64(stream, "stream"),
        _unimix(unimix),
        bool(one_hot),
        _num_threads(num_threads),
    )


def categorical_log_prob(logits: Any, index: Any, *, unimix: float = 0.0) -> np.ndarray:
    """``log p[..., index]`` of each distribution.

    Args:
        logits: ``[..., k]`` real array-like.
        index: ``[...]`` integers in ``[0, k)``.
        unimix: weight of the uniform mixture, in ``[0, 1)``.

    Returns:
        ``[...] float32``; ``-inf`` where the indexed logit is ``-inf`` and ``unimix=0``.

    Raises:
        TypeError: non-numeric logits or non-integer index.
        ValueError: bad logits (see :func:`categorical_sample`), an index of the wrong
            shape or out of range, unimix outside [0, 1).
    """
    x = _logits(logits)
    return _core.categorical_log_prob(x, _index(index, x.shape[:-1]), _unimix(unimix))


def categorical_entropy(logits: Any, *, unimix: float = 0.0) -> np.ndarray:
    """Entropy ``-sum_i p_i log p_i`` (nats) of each distribution.

    Args:
        logits: ``[..., k]`` real array-like.
        unimix: weight of the uniform mixture, in ``[0, 1)``.

    Returns:
        ``[...] float32`` (outcomes of probability zero contribute nothing).

    Raises:
        TypeError, ValueError: as :func:`categorical_sample` for the logits and unimix.
    """
    return _core.categorical_entropy(_logits(logits), _unimix(unimix))
