"""Users' own environments: registered by name, then made by ``genmarl.make``, trained and
evaluated by ``genmarl train/eval`` and the CLI like the built-in ones.

Two kinds:

* **Python** — ``genmarl.register(name, factory)``: ``factory(num_envs=, num_threads=, seed=,
  **kwargs)`` returns an object with genmarl's grouped env interface (:data:`REQUIRED`, plus
  optionally :data:`OPTIONAL`). Python stepping is slower than the C++ core (see
  docs/environments.md); it is for prototypes and environments that exist only in Python.
* **C++** — a scenario compiled against the installed wheel into its own extension module
  (``genmarl_add_env_module`` in CMake, see ``examples/custom_env``) and loaded with
  ``genmarl.register_module("my_envs")``: its scenarios join the C++ registry and are stepped by
  the same ``VectorEnv`` machinery as the built-in ones, at the same speed.

``genmarl.make("my_pkg.envs:grid")`` imports ``my_pkg.envs`` first (whose import registers its
environments), so a fresh process — e.g. ``genmarl train --env my_pkg.envs:grid`` — finds them.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from typing import Any

#: what train/eval/the CLI call on an env
REQUIRED = ("groups", "num_envs", "group_observation_space", "group_action_space", "reset_grouped", "step_grouped", "sample_actions")
#: used when present: checkpoints with env state and resume (get_state, set_state, observe_grouped),
#: evaluation GIFs (render), per-episode metrics (metric_names), masks (has_action_masks,
#: action_mask_groups, action_masks)
OPTIONAL = ("get_state", "set_state", "observe_grouped", "render", "metric_names", "has_action_masks", "action_mask_groups",
            "action_masks", "close")

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")
_PYTHON_ENVS: dict[str, tuple[Callable[..., Any], str]] = {}
_MODULE_OF: dict[str, str] = {}  # scenario name -> path of the C++ env module that registered it


def register(name: str, factory: Callable[..., Any], *, family: str = "python", overwrite: bool = False) -> None:
    """Registers a Python environment factory under ``name``.

    ``factory(num_envs=..., num_threads=..., seed=..., **kwargs)`` must return an object with
    :data:`REQUIRED` (``genmarl.make`` checks, naming what is missing). A name taken by a
    built-in or registered environment raises ``ValueError`` unless ``overwrite`` (which never
    replaces a built-in C++ environment).
    """
    from genmarl import _core

    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(f"an env name must match {_NAME.pattern}, got {name!r}")
    if not callable(factory):
        raise TypeError(f"factory must be callable, got {type(factory).__name__}")
    if name in _core.list_envs():
        raise ValueError(f"{name!r} is a C++ environment's name; choose another name")
    if name in _PYTHON_ENVS and not overwrite:
        raise ValueError(f"{name!r} is already registered (pass overwrite=True to replace it)")
    _PYTHON_ENVS[name] = (factory, family)


def register_module(module: str) -> list[str]:
    """Loads a shared library of C++ scenarios built with ``genmarl_add_env_module`` (CMake,
    ``find_package(genmarl)`` from ``genmarl.get_cmake_dir()``) and registers them; returns their
    names. ``module`` is a path to the ``.so`` or a module name found on ``sys.path``
    (``"my_envs"`` -> ``my_envs.so``). Loading a library again returns its names; a library built
    against another genmarl or C++ ABI, or a name that is taken, raises ``ValueError``."""
    import importlib.util
    import os

    from genmarl import _core

    if not isinstance(module, (str, os.PathLike)):
        raise TypeError(f"module must be a module name or a path, got {type(module).__name__}")
    path = os.fspath(module)
    if os.path.sep not in path and not path.endswith(".so"):
        spec = importlib.util.find_spec(path)
        if spec is None or not spec.origin or not spec.origin.endswith(".so"):
            raise ValueError(f"no shared library named {path!r} on sys.path (expected {path}.so built with genmarl_add_env_module)")
        path = spec.origin
    if not os.path.isfile(path):
        raise ValueError(f"env module {path!r} does not exist")
    path = os.path.abspath(path)
    names = list(_core.load_env_module(path))
    for n in names:
        _MODULE_OF[n] = path
    return names


def module_of(scenario: str) -> str | None:
    """Path of the C++ env module that registered ``scenario`` (None for built-in envs)."""
    return _MODULE_OF.get(scenario)


def ensure_module(path: str) -> None:
    """Loads the C++ env module at ``path`` unless it is loaded (unpickling in a fresh process)."""
    if path not in _MODULE_OF.values():
        register_module(path)


def registration(name: str) -> dict[str, Any] | None:
    """What another process needs to make env ``name`` when it was registered at run time in this
    one (a Python factory -- pickled by the caller, e.g. Ray's cloudpickle -- or the path of a C++
    env module); None for built-in envs and ``"module:env"`` names (which import themselves).
    :func:`restore_registration` replays it."""
    if name in _PYTHON_ENVS:
        factory, family = _PYTHON_ENVS[name]
        return {"name": name, "factory": factory, "family": family}
    if name in _MODULE_OF:
        return {"name": name, "module": _MODULE_OF[name]}
    return None


def restore_registration(reg: dict[str, Any] | None) -> None:
    """Registers in this process what :func:`registration` returned elsewhere (None: nothing)."""
    if reg is None:
        return
    if "module" in reg:
        ensure_module(reg["module"])
    else:
        register(reg["name"], reg["factory"], family=reg["family"], overwrite=True)


def unregister(name: str) -> None:
    """Removes a Python environment registered with :func:`register` (KeyError if unknown)."""
    if name not in _PYTHON_ENVS:
        raise KeyError(f"no Python environment {name!r}; registered: {sorted(_PYTHON_ENVS)}")
    del _PYTHON_ENVS[name]


def python_envs() -> dict[str, str]:
    """Registered Python environments: ``{name: family}``."""
    return {n: f for n, (_, f) in _PYTHON_ENVS.items()}


def split_module(name: str) -> str:
    """``"pkg.mod:env"`` -> imports ``pkg.mod`` (a Python module that registers its envs, or a
    C++ env module, loaded with :func:`register_module`) and returns ``"env"``."""
    if ":" not in name:
        return name
    module, _, env = name.partition(":")
    if not module or not env:
        raise ValueError(f"expected 'module:env', got {name!r}")
    import importlib.util

    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        spec = None
    if spec is not None and spec.origin and spec.origin.endswith(".so"):
        try:
            register_module(spec.origin)
            return env
        except ValueError as exc:
            if "is not a genmarl env module" not in str(exc):
                raise
    try:
        importlib.import_module(module)
    except ImportError as exc:
        raise ValueError(f"could not import {module!r} for environment {name!r}: {exc}") from exc
    return env


def make_python_env(name: str, num_envs: int, num_threads: int | None, seed: int, render_mode: str | None, kwargs: dict) -> Any:
    """Builds a registered Python environment and checks its interface."""
    factory, family = _PYTHON_ENVS[name]
    if render_mode is not None:
        kwargs = {**kwargs, "render_mode": render_mode}
    env = factory(num_envs=num_envs, num_threads=num_threads, seed=seed, **kwargs)
    missing = [m for m in REQUIRED if not hasattr(env, m)]
    if missing:
        raise TypeError(
            f"the factory of {name!r} returned a {type(env).__name__} without {missing}; a genmarl env needs "
            f"{list(REQUIRED)} (see genmarl.envs.registry)"
        )
    if int(env.num_envs) != int(num_envs):
        raise ValueError(f"the factory of {name!r} made {env.num_envs} envs, {num_envs} were asked for")
    for attr, value in (("name", name), ("family", family), ("scenario", name)):
        if not hasattr(env, attr):
            try:
                setattr(env, attr, value)
            except AttributeError:
                pass
    return env
