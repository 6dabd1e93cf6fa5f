"""Categorical sampling throughput: genmarl's C++ kernels side by side with torch on the CPU.

    python benchmarks/sampling_throughput.py [--quick] [--repeats N]

Each row draws one sample per distribution, with its log-probability, for logits of shape
[rows, k] (the imagined-rollout sizes of a world model: 512 start states x 3 agents, times 8 or
32 categorical latents):

  (1536, 5)    one action per agent
  (12288, 8)   8 latents of 8 classes per agent
  (49152, 16)  32 latents of 16 classes per agent
  (49152, 5)   = 1536 * 32 actions

once with the plain softmax (unimix 0) and once with 1% uniform mixed in (unimix 0.01, as in
DreamerV3; every column then samples from and scores (1 - u) softmax + u / k).

Columns (times in microseconds per call, median over repeats, torch at 1 thread):
  genmarl      categorical_sample on t.numpy() (zero-copy), outputs wrapped by torch.from_numpy
  +one_hot     the same, also returning the one-hot encoding [rows, k] float32
  2 threads    the same as genmarl with num_threads=2 (genmarl's shared pool)
  Categorical  torch.distributions.Categorical(logits=t): .sample() + .log_prob()
               (probs=(1-u) softmax + u/k with unimix)
  multinomial  torch.multinomial(softmax(t), 1) + log_softmax(t).gather
  gumbel       argmax(t - log(-log(U))) + log_softmax(t).gather (on log p with unimix)
  gumbel+1h    gumbel, plus F.one_hot(...).float()
The ratios are genmarl's time over a torch column's (below 1: genmarl is faster).
Benchmarks print figures; they are not timed tests.
"""

from __future__ import annotations

import argparse
import os
import platform
from typing import Any, Callable

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from genmarl import _core  # noqa: E402
from genmarl.sampling import categorical_sample  # noqa: E402
from timing import time_per_call  # noqa: E402

SHAPES = ((1536, 5), (12288, 8), (49152, 16), (49152, 5))
UNIMIX = (0.0, 0.01)
SEED = 0


def genmarl_fn(t: torch.Tensor, unimix: float, one_hot: bool = False, num_threads: int = 1) -> Callable[[], Any]:
    def run() -> Any:
        out = categorical_sample(t.numpy(), SEED, 1, unimix=unimix, one_hot=one_hot, num_threads=num_threads)
        return tuple(torch.from_numpy(a) for a in out)

    return run


def mixed_log_probs(t: torch.Tensor, unimix: float) -> torch.Tensor:
    """log p with p = (1 - u) softmax(t) + u / k (log_softmax when u = 0)."""
    if unimix == 0.0:
        return torch.log_softmax(t, -1)
    return torch.log((1.0 - unimix) * torch.softmax(t, -1) + unimix / t.shape[-1])


def categorical_fn(t: torch.Tensor, unimix: float) -> Callable[[], Any]:
    def run() -> Any:
        if unimix == 0.0:
            d = torch.distributions.Categorical(logits=t)
        else:
            d = torch.distributions.Categorical(probs=(1.0 - unimix) * torch.softmax(t, -1) + unimix / t.shape[-1])
        s = d.sample()
        return s, d.log_prob(s)

    return run


def multinomial_fn(t: torch.Tensor, unimix: float) -> Callable[[], Any]:
    def run() -> Any:
        logp = mixed_log_probs(t, unimix)
        p = torch.softmax(t, -1) if unimix == 0.0 else logp.exp()
        s = torch.multinomial(p, 1)
        return s.squeeze(-1), logp.gather(-1, s).squeeze(-1)

    return run


def gumbel_fn(t: torch.Tensor, unimix: float, one_hot: bool = False) -> Callable[[], Any]:
    def run() -> Any:
        logp = mixed_log_probs(t, unimix)
        u = torch.rand_like(t)
        s = torch.argmax(logp - torch.log(-torch.log(u)), dim=-1)
        lp = logp.gather(-1, s.unsqueeze(-1)).squeeze(-1)
        if one_hot:
            return s, lp, F.one_hot(s, t.shape[-1]).float()
        return s, lp

    return run


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="few, short repeats: a smoke run")
    ap.add_argument("--repeats", type=int, default=None, help="timed repeats per figure (default 7; --quick 3)")
    args = ap.parse_args(argv)
    repeats = args.repeats or (3 if args.quick else 7)
    min_time = 0.005 if args.quick else 0.03
    torch.set_num_threads(1)

    print(
        f"{cpu_name()}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}; torch {torch.__version__} "
        f"({torch.backends.cpu.get_cpu_capability()}), 1 thread; genmarl kernels: {_core.categorical_isa()}"
    )
    columns = ("genmarl", "+one_hot", "2 threads", "Categorical", "multinomial", "gumbel", "gumbel+1h")
    header = f"{'rows x k':>12} {'unimix':>6} " + " ".join(f"{c:>11}" for c in columns)
    header += f" {'/Categ.':>8} {'/gumbel':>8} {'1h/g+1h':>8} {'2T/1T':>6}"
    print("times in us per call (sample + log_prob), median of", repeats)
    print(header)
    for rows, k in SHAPES:
        t = torch.randn(rows, k, generator=torch.Generator().manual_seed(rows + k))
        for unimix in UNIMIX:
            fns = (
                genmarl_fn(t, unimix),
                genmarl_fn(t, unimix, one_hot=True),
                genmarl_fn(t, unimix, num_threads=2),
                categorical_fn(t, unimix),
                multinomial_fn(t, unimix),
                gumbel_fn(t, unimix),
                gumbel_fn(t, unimix, one_hot=True),
            )
            us = [time_per_call(fn, repeats, min_time, max_calls=1 << 20) * 1e6 for fn in fns]
            g, g1h, g2, cat, _, gum, gum1h = us
            line = f"{f'{rows} x {k}':>12} {unimix:>6} " + " ".join(f"{v:>11.1f}" for v in us)
            line += f" {g / cat:>8.3f} {g / gum:>8.3f} {g1h / gum1h:>8.3f} {g2 / g:>6.2f}"
            print(line, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
