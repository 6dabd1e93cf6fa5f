"""Run files on disk: atomic writes, and checkpoints that load without running code.

Contracts (tests/test_run_files.py):

* **Untrusted files never run code.** Checkpoints are read with ``torch.load(weights_only=True)``
  only, so a ``model.pt`` / ``latest.pt`` holding a pickle payload is refused, not executed. What
  genmarl saves is therefore plain data: tensors, dicts, lists, tuples, str, bytes, int, float,
  bool and None (:func:`check_plain` enforces it at save time). Numpy arrays cross as tensors
  (:func:`to_tensor` / :func:`to_numpy`, bit-exact for every dtype).
* **A write is all or nothing.** :func:`write_bytes` / :func:`save` write a unique temporary file
  in the target's directory, flush and fsync it, ``os.replace`` it over the target and fsync the
  directory: a reader (or a run resumed after ``kill -9`` or a power cut) sees the old file or the
  new one, never a torn one. Leftover temporary files are named ``.NAME.*.tmp`` and never read.
* **Damaged files fail with a sentence.** :func:`load` raises :class:`CheckpointError` (a
  ``ValueError``) saying which file is wrong and what was expected, for empty, truncated,
  random-bytes and code-carrying files alike.
"""

from __future__ import annotations

import collections
import io
import os
import re
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np

PLAIN_SCALARS = (str, bytes, int, float, bool, type(None))


class CheckpointError(ValueError):
    """A run file that cannot be used: empty, damaged, not genmarl's, or not plain data."""


def to_tensor(array: np.ndarray) -> Any:
    """A CPU tensor with ``array``'s dtype, shape and bytes (a copy)."""
    import torch

    return torch.from_numpy(np.array(array, copy=True, order="C"))


def to_numpy(value: Any) -> np.ndarray:
    """The numpy array of a saved :func:`to_tensor` (or of an array / list, as given)."""
    import torch

    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy().copy()
    return np.asarray(value)


def check_plain(obj: Any, where: str = "checkpoint") -> None:
    """Raises TypeError naming the first value that ``torch.load(weights_only=True)`` would refuse
    (or that would need an allow-list): only tensors, dict/list/tuple and plain scalars pass."""
    import torch

    stack = [(obj, where)]
    while stack:
        value, path = stack.pop()
        if isinstance(value, torch.Tensor) or type(value) in PLAIN_SCALARS:
            continue
        if type(value) in (dict, collections.OrderedDict):  # module state dicts are OrderedDicts
            for k, v in value.items():
                if type(k) not in PLAIN_SCALARS:
                    raise TypeError(f"{path}: key {k!r} of type {type(k).__name__} is not plain data")
                stack.append((v, f"{path}[{k!r}]"))
        elif type(value) in (list, tuple):
            stack.extend((v, f"{path}[{i}]") for i, v in enumerate(value))
        else:
            raise TypeError(
                f"{path} is a {type(value).__module__}.{type(value).__qualname__}; checkpoints hold only tensors, "
                "dicts, lists and str/bytes/int/float/bool/None (convert numpy arrays with to_tensor)"
            )


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # e.g. a platform without directory handles
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


_UMASK: int | None = None


def _file_mode() -> int:
    """The mode ``open(path, "w")`` would give a new file (mkstemp's files are 0600)."""
    global _UMASK
    if _UMASK is None:
        _UMASK = os.umask(0o022)
        os.umask(_UMASK)
    return 0o666 & ~_UMASK


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Replaces ``path`` by ``data`` atomically and durably (temp file, fsync, rename, fsync dir)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, _file_mode())
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    _fsync_dir(path.parent)


def write_text(path: str | os.PathLike, text: str) -> None:
    """:func:`write_bytes` of UTF-8 text."""
    write_bytes(path, text.encode("utf-8"))


def dump(obj: Any) -> bytes:
    """The bytes ``torch.save`` writes for ``obj`` after :func:`check_plain`."""
    import torch

    check_plain(obj)
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def save(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save(obj, path)``, atomically (see :func:`write_bytes`); ``obj`` must be plain data."""
    write_bytes(path, dump(obj))


def is_temporary(path: Path) -> bool:
    """Whether ``path`` is a leftover temporary file of :func:`write_bytes` (or of genmarl <= 0.1)."""
    return (path.name.startswith(".") and path.name.endswith(".tmp")) or path.name.endswith(".pt.tmp")


def load(path: str | os.PathLike, map_location: Any = "cpu", what: str = "a checkpoint written by genmarl") -> dict[str, Any]:
    """``torch.load(path, weights_only=True)``: tensors and plain data only, never code.

    Raises :class:`CheckpointError` naming ``path``, the problem and ``what`` was expected when the
    file is missing, empty, truncated, not a torch file, holds other objects, or is not a dict.
    """
    import pickle

    import torch

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path} is missing or not a file; expected {what}")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path} is empty (an interrupted write?); expected {what}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch warns about pickle protocols of foreign files
            state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises UnpicklingError, EOFError, OSError, RuntimeError, ... on bad files
        text = str(exc)
        refused = re.search(r"GLOBAL ([\w.]+)", text)
        if isinstance(exc, pickle.UnpicklingError) and refused:
            raise CheckpointError(
                f"{path} holds objects other than tensors and plain data (it names {refused.group(1)}); refused, "
                f"since loading it could run code. Expected {what}"
            ) from None
        reason = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
        if "Unsupported" in reason or "weights_only" in text:
            reason = "not a plain-data torch file"
        raise CheckpointError(f"{path} is damaged, truncated or not a torch checkpoint ({reason[:200]}); expected {what}") from None
    if not isinstance(state, dict):
        raise CheckpointError(f"{path} holds a {type(state).__name__}, not a dict; expected {what}")
    return state


def require(state: dict[str, Any], keys: tuple[str, ...], path: str | os.PathLike, what: str) -> None:
    """Raises :class:`CheckpointError` when ``state`` lacks any of ``keys``."""
    missing = [k for k in keys if k not in state]
    if missing:
        raise CheckpointError(f"{path} lacks {', '.join(map(repr, missing))}; expected {what}")
