"""Export trained agents as AOTInductor packages that run without Python (``genmarl export``).

    genmarl export runs/mappo_simple_spread_seed0 --out exported/
    policy = genmarl.export.load("exported/")
    actions = policy.act(obs)            # obs: env.reset_grouped()[0], any batch size

An export directory holds

* ``policy.pt2``: the acting step: grouped observations (+ recurrent state) -> actions, logits and
  the next recurrent state (:mod:`genmarl.export.graphs`). Random draws are inputs (uniforms,
  or normals for continuous actions), so the package is a pure function; ``deterministic`` picks
  the greedy action (the mean for continuous actions).
* ``world_model.pt2`` (generative agent only): models ``filter``, ``actor``, ``step``, ``value``
  and ``behaviour`` -- what imagined rollouts and planning need.
* ``export.json``: env name and arguments, groups, every graph's input and output names, shapes
  and dtypes, the agent's planning settings, genmarl and torch versions.

Every ``.pt2`` also carries the same facts as flat ``genmarl.*`` metadata strings, which is what
the C++ library ``genmarl::torch`` reads (``cpp/include/genmarl/torch/``). Packages load in C++
with ``torch::inductor::AOTIModelPackageLoader`` and in Python with :func:`load`.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np

FORMAT = 1
POLICY_FILE = "policy.pt2"
WORLD_MODEL_FILE = "world_model.pt2"
INFO_FILE = "export.json"
DEVICES = ("cpu", "cuda")

__all__ = ["ExportError", "ExportedPolicy", "ExportedWorldModel", "export", "load", "read_info"]


class ExportError(ValueError):
    """An export directory that cannot be used (missing, damaged, another format), or a bad input."""


# ---- writing ---------------------------------------------------------------------------------


def _env_params(kwargs: dict[str, Any]) -> str:
    """``k=v;k=v`` with numbers only (bools 0/1, None -1), what genmarl's C++ Params hold."""
    items = []
    for k, v in sorted(kwargs.items()):
        num = -1 if v is None else (int(v) if isinstance(v, bool) else v)
        if not isinstance(num, (int, float)):
            raise ExportError(f"env argument {k}={v!r} is not a number; C++ envs take numbers only")
        items.append(f"{k}={float(num)!r}")
    return ";".join(items)


def _metadata(info: dict[str, Any], kind: str, inputs: list[Any], outputs: list[Any], noise: dict[str, str] | None = None) -> dict[str, str]:
    md = {
        "genmarl.format": str(FORMAT),
        "genmarl.kind": kind,
        "genmarl.algo": info["algo"],
        "genmarl.env": info["env"],
        "genmarl.env_params": _env_params(info["env_kwargs"]),
        "genmarl.device": info["device"],
        "genmarl.groups": ",".join(g["name"] for g in info["groups"]),
        "genmarl.inputs": ";".join(s.to_metadata() for s in inputs),
        "genmarl.outputs": ";".join(s.to_metadata() for s in outputs),
        "genmarl.genmarl_version": info["genmarl_version"],
        "genmarl.torch_version": info["torch_version"],
    }
    for g in info["groups"]:
        a = g["action"]
        md[f"genmarl.group.{g['name']}"] = f"{g['num_agents']},{g['obs_dim']},{a['type']},{a['n']},{a['low']!r},{a['high']!r}"
    if noise:
        md["genmarl.noise"] = ";".join(f"{k}={v}" for k, v in noise.items())
    wm = info.get("world_model")
    if wm:
        for key in ("num_agents", "num_actions", "deter_size", "stoch_size", "classes"):
            md[f"genmarl.wm.{key}"] = str(wm[key])
        md["genmarl.wm.valid_actions"] = ",".join(str(n) for n in wm["valid_actions"])
        for key in ("gamma", "lambda", "horizon", "plan", "plan_horizon", "plan_unimix", "plan_latents", "reward_from"):
            md[f"genmarl.plan.{key}"] = str(info["planning"][key])
    return md


def _compile(
    module: Any, example: tuple[Any, ...], dynamic: tuple[Any, ...], metadata: dict[str, str], name: str, device: str,
    inductor_options: dict[str, Any] | None = None,
) -> list[str]:
    """torch.export + AOTInductor compile of ``module``; returns the generated files for package_aoti."""
    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch's own deprecation notices from inside export/inductor
        ep = torch.export.export(module, example, dynamic_shapes=dynamic, strict=False)
        options = {
            # never reuse a cached compile: a cache entry of the same architecture may carry other weights
            "force_disable_caches": True,
            "aot_inductor.package": True,
            "aot_inductor.metadata": metadata,
            "aot_inductor.model_name_for_generated_files": name,
            **(inductor_options or {}),
        }
        return torch._inductor.aot_compile(ep.module(), example, options=options)


def _package(path: Path, models: dict[str, list[str]]) -> None:
    from torch._inductor.package import package_aoti

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        package_aoti(str(path), models)


def _group_infos(algo: Any) -> list[dict[str, Any]]:
    out = []
    for g in algo.groups:
        space = algo.env.group_action_space(g.name)
        if g.continuous:
            action = {"type": "continuous", "n": g.act_n, "low": float(np.min(space.low)), "high": float(np.max(space.high))}
        else:
            action = {"type": "discrete", "n": g.act_n, "low": 0.0, "high": float(g.act_n - 1)}
        out.append({"name": g.name, "num_agents": g.num_agents, "obs_dim": g.obs_dim, "action": action})
    return out


def export(
    run_dir: str | os.PathLike, out: str | os.PathLike, *, device: str = "cpu", overwrite: bool = False,
    autotune: bool = False, inductor_options: dict[str, Any] | None = None,
) -> Path:
    """Exports the trained run in ``run_dir`` (MAPPO, IPPO or genrl) to the directory ``out``.

    ``device``: ``"cpu"`` or ``"cuda"`` (the packages run on that device only; a CUDA export needs
    a CUDA device and a CUDA build of torch here). Writes into a temporary sibling directory and
    renames it into place, so ``out`` is never left half-written. ``autotune``: let inductor
    benchmark its own C++ GEMM kernels against ATen's for the policy graph (``max_autotune``): the
    export takes minutes instead of seconds, and acting at small batches gets about 2x faster (an
    engine acting every frame); the world-model graphs are left alone (at planning batch sizes
    they are GEMM-bound and autotuning measured no gain). ``inductor_options``: extra
    ``torch._inductor`` options for every compile (advanced). Returns ``out``.
    """
    import torch

    import genmarl
    from genmarl.algos.config import GenRLConfig
    from genmarl.export.graphs import WORLD_GRAPHS, GenRLPolicyGraph, PPOPolicyGraph, WorldObsRewardGraph
    from genmarl.training.runner import load_trained

    if device not in DEVICES:
        raise ExportError(f"device must be one of {DEVICES}, got {device!r}")
    if device == "cuda" and not torch.cuda.is_available():
        raise ExportError("--device cuda needs a CUDA device and a CUDA build of torch on the exporting machine; this one has none")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ExportError(f"{out} exists and is not a directory; expected a directory to export into")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise ExportError(f"{out} is not empty; pass overwrite=True (--overwrite) to replace it")
    if not out.parent.is_dir():
        raise ExportError(f"the parent directory of {out} does not exist")
    algo, cfg = load_trained(run_dir, num_envs=1, device=device)
    genrl = isinstance(cfg, GenRLConfig)
    info: dict[str, Any] = {
        "format": FORMAT,
        "genmarl_version": genmarl.__version__,
        "torch_version": torch.__version__,
        "algo": cfg.algo,
        "env": cfg.env,
        "env_kwargs": dict(cfg.env_kwargs),
        "device": device,
        "run_dir": str(Path(run_dir).resolve()),
        "groups": _group_infos(algo),
        "recurrent": bool(genrl or cfg.use_gru),
        "files": {"policy": POLICY_FILE},
    }
    if genrl:
        wm = algo.wm
        info["files"]["world_model"] = WORLD_MODEL_FILE
        info["world_model"] = {
            "num_agents": wm.num_agents, "num_actions": wm.num_actions, "deter_size": wm.deter_size,
            "stoch_size": wm.stoch_size, "classes": wm.classes,
            "valid_actions": [int(n) for n in wm.action_mask.sum(-1).tolist()],
        }  # fmt: skip
        info["planning"] = {
            "gamma": cfg.gamma, "lambda": cfg.gae_lambda, "horizon": cfg.horizon, "plan": cfg.plan,
            "plan_horizon": cfg.plan_horizon, "plan_unimix": cfg.plan_unimix, "plan_latents": cfg.plan_latents,
            # "obs": imagined steps are scored by the obs_reward graph (the reward network on predicted
            # observations), not by the step graph's reward (the world model's own head)
            "reward_from": cfg.reward_from,
        }  # fmt: skip
    dev = torch.device(device)
    B = 3  # example batch (not 1: torch.export would specialise the batch axis to 1)
    batch = torch.export.Dim("batch", min=1, max=1 << 24)
    graph = GenRLPolicyGraph(algo) if genrl else PPOPolicyGraph(algo)
    graph.eval()
    ins, outs = graph.input_specs(), graph.output_specs()
    info["policy"] = {"inputs": [s.to_json() for s in ins], "outputs": [s.to_json() for s in outs], "noise": graph.noise_kinds()}
    example, dynamic = _example(ins, B, dev, batch)
    policy_options = dict(inductor_options or {})
    if autotune:
        policy_options.update({"max_autotune": True, "max_autotune_gemm_backends": "CPP,ATEN"})
    info["autotune"] = bool(autotune)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        files = _compile(graph, example, dynamic, _metadata(info, "policy", ins, outs, info["policy"]["noise"]), "policy", device, policy_options)
        _package(tmp / POLICY_FILE, {"model": files})
        if genrl:
            models, specs = {}, {}
            graphs = dict(WORLD_GRAPHS)
            if cfg.reward_from == "obs":
                graphs["obs_reward"] = WorldObsRewardGraph
            for name, cls in graphs.items():
                g = cls(algo).eval()
                w_ins, w_outs = g.specs()
                specs[name] = {"inputs": [s.to_json() for s in w_ins], "outputs": [s.to_json() for s in w_outs]}
                ex, dyn = _example(w_ins, B, dev, batch)
                models[name] = _compile(g, ex, dyn, _metadata(info, f"world_model.{name}", w_ins, w_outs), name, device, inductor_options)
            info["world_model"]["models"] = specs
            _package(tmp / WORLD_MODEL_FILE, models)
        (tmp / INFO_FILE).write_text(json.dumps(info, indent=2) + "\n")
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def _example(specs: list[Any], B: int, dev: Any, batch: Any) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
    """Example inputs and dynamic shapes for graphs whose forward takes (obs list, state list,
    reset, noise list, deterministic[, mask list]) -- the policy graphs -- or plain tensors in spec order."""
    import torch

    def tensor(s: Any) -> Any:
        shape = tuple(B if d == -1 else d for d in s.shape)
        if s.dtype == "bool":  # (masks all True: an all-False example row would be a degenerate trace input)
            return (torch.ones if s.name.startswith("mask/") else torch.zeros)(shape, dtype=torch.bool, device=dev)
        if s.dtype == "int64":
            return torch.zeros(shape, dtype=torch.int64, device=dev)
        return torch.rand(shape, device=dev)

    def dyn(s: Any) -> Any:
        return {0: batch} if s.shape and s.shape[0] == -1 else None

    names = [s.name for s in specs]
    if "deterministic" in names:  # a policy graph
        parts: dict[str, list[Any]] = {"obs": [], "state": [], "noise": [], "mask": []}
        dparts: dict[str, list[Any]] = {"obs": [], "state": [], "noise": [], "mask": []}
        reset = det = None
        for s in specs:
            prefix = s.name.split("/")[0]
            if prefix in parts:
                parts[prefix].append(tensor(s))
                dparts[prefix].append(dyn(s))
            elif s.name == "reset":
                reset = tensor(s)
            elif s.name == "deterministic":
                det = tensor(s)
        args = (parts["obs"], parts["state"], reset, parts["noise"], det)
        dims = (dparts["obs"], dparts["state"], {0: batch}, dparts["noise"], None)
        if parts["mask"]:  # masks: a sixth argument, only for envs that report valid actions
            return (*args, parts["mask"]), (*dims, dparts["mask"])
        return args, dims
    obs = [tensor(s) for s in specs if s.name.startswith("obs/")]
    rest = [s for s in specs if not s.name.startswith("obs/")]
    if obs:  # the filter: (obs list, h, reset)
        return (obs, *[tensor(s) for s in rest]), ([{0: batch}] * len(obs), *[dyn(s) for s in rest])
    return tuple(tensor(s) for s in specs), tuple(dyn(s) for s in specs)


# ---- reading ---------------------------------------------------------------------------------


def read_info(path: str | os.PathLike) -> dict[str, Any]:
    """The ``export.json`` of an export directory; :class:`ExportError` when it is missing,
    damaged, or of another format."""
    d = Path(path)
    if not d.is_dir():
        raise ExportError(f"{d} is not a directory; expected an export directory written by genmarl export")
    f = d / INFO_FILE
    try:
        info = json.loads(f.read_text())
    except FileNotFoundError:
        raise ExportError(f"{d} holds no {INFO_FILE}; expected an export directory written by genmarl export") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ExportError(f"{f} is damaged ({exc}); expected the JSON genmarl export wrote") from None
    keys = ("format", "algo", "env", "env_kwargs", "groups", "files", "policy", "device")
    if not isinstance(info, dict) or any(k not in info for k in keys):
        raise ExportError(f"{f} lacks genmarl export fields (expected {', '.join(keys)})")
    if info["format"] != FORMAT:
        raise ExportError(f"{f} is export format {info['format']!r}; this genmarl reads format {FORMAT}")
    return info


def _load_package(path: Path, name: str = "model") -> Any:
    if not path.is_file():
        raise ExportError(f"{path} is missing; expected the package genmarl export wrote")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from torch._inductor.package import load_package

            return load_package(str(path), name)
    except Exception as exc:  # noqa: BLE001 - torch raises RuntimeError (zip, .so, metadata) for damaged packages
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ExportError(f"{path} cannot be loaded ({first[:300]}); expected an AOTInductor package written by genmarl export") from None


class ExportedPolicy:
    """A policy exported by :func:`export`, run from Python through AOTInductor.

    ``act(obs, deterministic=False, reset=None, action_mask=None)`` takes grouped observations
    ``{g: [B, n, d]}`` (any batch ``B``; the recurrent state, where the policy has one, is kept per
    env and restarts where ``reset`` [B] is true, on the first call and when ``B`` changes) and
    returns ``{g: actions}`` as the trained learner's ``act`` does. ``action_mask`` (the env's
    ``infos["action_mask"]``, ``{g: [B, n, act_n] bool}``): for policies trained on an env that
    reports valid actions, only valid actions are chosen; a group left out counts every action as
    valid. ``seed`` keys the draws.
    """

    def __init__(self, path: str | os.PathLike, seed: int = 0) -> None:
        import torch

        self.path = Path(path)
        self.info = read_info(self.path)
        if self.info["device"] == "cuda" and not torch.cuda.is_available():
            raise ExportError(f"{self.path} was exported for cuda; this machine has no CUDA device")
        self.device = torch.device(self.info["device"])
        self.groups = [g["name"] for g in self.info["groups"]]
        self._group = {g["name"]: g for g in self.info["groups"]}
        self.inputs = self.info["policy"]["inputs"]
        self.outputs = self.info["policy"]["outputs"]
        self.noise = self.info["policy"]["noise"]
        self.mask_groups = [s["name"].split("/", 1)[1] for s in self.inputs if s["name"].startswith("mask/")]
        self.model = _load_package(self.path / self.info["files"]["policy"])
        self.rng = np.random.default_rng(seed)
        self.state: list[Any] = []
        self._batch = -1

    def check_obs(self, obs: Any) -> int:
        """The batch size of grouped observations; ExportError naming what was expected."""
        if not hasattr(obs, "keys") or set(obs.keys()) != set(self.groups):
            got = sorted(obs.keys()) if hasattr(obs, "keys") else type(obs).__name__
            raise ExportError(f"obs must map the agent groups {self.groups} to arrays, got {got}")
        batch = None
        for g in self.groups:
            a = obs[g]
            n, d = self._group[g]["num_agents"], self._group[g]["obs_dim"]
            shape, dtype = tuple(np.shape(a)), getattr(a, "dtype", None)
            ok_dtype = dtype is not None and (np.issubdtype(np.dtype(str(dtype).replace("torch.", "")), np.floating))
            if len(shape) != 3 or shape[1:] != (n, d) or shape[0] < 1 or not ok_dtype:
                raise ExportError(f"obs[{g!r}] must be a float array of shape (batch, {n}, {d}), got {dtype} {shape}")
            if batch is not None and shape[0] != batch:
                raise ExportError(f"obs groups have different batch sizes ({batch} and {shape[0]} for {g!r})")
            batch = shape[0]
        return int(batch)

    def reset_state(self, batch: int) -> None:
        import torch

        self._batch = batch
        self.state = [torch.zeros([batch, *s["shape"][1:]], device=self.device) for s in self.inputs if s["name"].startswith("state/")]
        self._fresh = np.ones(batch, bool)

    def check_mask(self, action_mask: Any, B: int) -> list[Any]:
        """The mask inputs (numpy bool [B, n, act_n] per masked group; all True where a group is
        left out); ExportError naming what was expected."""
        if action_mask is None:
            action_mask = {}
        if not hasattr(action_mask, "keys"):
            raise ExportError(f"action_mask must map agent groups to bool arrays (infos['action_mask']), got {type(action_mask).__name__}")
        unknown = sorted(set(action_mask) - set(self.groups))
        if unknown:
            raise ExportError(f"action_mask has unknown groups {unknown}; the groups are {self.groups}")
        out = []
        for g in self.mask_groups:
            shape = (B, self._group[g]["num_agents"], self._group[g]["action"]["n"])
            if g not in action_mask:
                out.append(np.ones(shape, bool))
                continue
            m = np.asarray(action_mask[g])
            if m.shape != shape or m.dtype != np.bool_:
                raise ExportError(f"action_mask[{g!r}] must be a bool array of shape {shape}, got {m.dtype} {m.shape}")
            out.append(m)
        return out

    def act(
        self, obs: dict[str, Any], deterministic: bool = False, reset: Any = None, action_mask: Any = None, *, return_logits: bool = False
    ) -> Any:
        import torch

        B = self.check_obs(obs)
        masks = self.check_mask(action_mask, B)
        if B != self._batch:
            self.reset_state(B)
        r = self._fresh.copy()
        if reset is not None:
            reset = np.asarray(reset, bool)
            if reset.shape != (B,):
                raise ExportError(f"reset must be a bool array of shape ({B},), got {reset.shape}")
            r |= reset
        dev = self.device
        obs_t = [torch.as_tensor(np.asarray(obs[g], np.float32), device=dev) for g in self.groups]
        noise = []
        for s in self.inputs:
            if s["name"].startswith("noise/"):
                shape = [B, *s["shape"][1:]]
                x = self.rng.random(shape, np.float32) if self.noise[s["name"]] == "uniform" else self.rng.standard_normal(shape, np.float32)
                noise.append(torch.as_tensor(x, device=dev))
        det = torch.tensor(bool(deterministic), device=dev)
        with torch.no_grad():
            args = (obs_t, self.state, torch.as_tensor(r, device=dev), noise, det)
            if self.mask_groups:
                args += ([torch.as_tensor(m, device=dev) for m in masks],)
            outs = self.model(*args)
        outs = list(_flatten(outs))
        named = {s["name"]: t for s, t in zip(self.outputs, outs, strict=True)}
        self.state = [named[s["name"]] for s in self.inputs if s["name"].startswith("state/")]
        self._fresh = np.zeros(B, bool)
        actions = {g: named[f"action/{g}"].cpu().numpy() for g in self.groups}
        if return_logits:
            return actions, {g: named[f"logits/{g}"].cpu().numpy() for g in self.groups}
        return actions


class ExportedWorldModel:
    """The world-model package of a genrl export: ``model(name)(*inputs)`` runs ``filter``,
    ``actor``, ``step``, ``value``, ``behaviour`` or, for an agent with ``reward_from="obs"``,
    ``obs_reward`` (see :mod:`genmarl.export.graphs`)."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.info = read_info(self.path)
        if "world_model" not in self.info["files"]:
            raise ExportError(f"{self.path} is a {self.info['algo']} export; only genrl exports have a world model")
        self._file = self.path / self.info["files"]["world_model"]
        self._models: dict[str, Any] = {}
        self.names = tuple(self.info["world_model"].get("models", {}))

    def model(self, name: str) -> Any:
        if name not in self.names:
            raise ExportError(f"this world model has models {self.names}, not {name!r}")
        if name not in self._models:
            self._models[name] = _load_package(self._file, name)
        return self._models[name]


def _flatten(x: Any) -> Any:
    if isinstance(x, (list, tuple)):
        for v in x:
            yield from _flatten(v)
    else:
        yield x


def load(path: str | os.PathLike, seed: int = 0) -> ExportedPolicy:
    """The :class:`ExportedPolicy` of an export directory."""
    return ExportedPolicy(path, seed=seed)
