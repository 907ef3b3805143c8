"""Benchmark the NN core: costs relative to baselines measured in the same run.

1. Activations written here (SoftExponential, Swish) vs torch's built-ins (ELU, SiLU), forward+backward
   on an LSTM-sized activation tensor — what choosing them costs per training step; and the fused
   scalar-α SoftExponential vs its broadcasting (both-branch, autograd) formulation.
2. One optimizer step of every registered name vs plain SGD on an MLP autoencoder's parameters.
3. The optimizer study (`dtg lab optimizers`, all functions, without plotting): wall time and steps/s.

Usage: .venv/bin/python benchmarks/nn_core.py [--repeats 5] [--threads 1]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import nn


def best_time(fn, repeats: int, inner: int) -> float:
    """Median over `repeats` of the mean seconds per call over `inner` calls (after one warm-up)."""
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(inner):
            fn()
        times.append((time.perf_counter() - t0) / inner)
    return statistics.median(times)


def bench_activations(repeats: int) -> list[tuple[str, float, str, float]]:
    from dtg.nn import activations

    x = torch.randn(256, 20, 64, generator=torch.Generator().manual_seed(0), requires_grad=True)

    def fwd_bwd(module: nn.Module):
        def run():
            module.zero_grad(set_to_none=True)
            x.grad = None
            module(x).sum().backward()
        return run

    class Elementwise(nn.Module):
        """The broadcasting (both-branch) path, to show what the fused scalar path saves."""

        def __init__(self, alpha: float) -> None:
            super().__init__()
            self.alpha = nn.Parameter(torch.tensor(alpha))

        def forward(self, v: torch.Tensor) -> torch.Tensor:
            return activations.soft_exponential_elementwise(v, self.alpha)

    fused = activations.get("softexponential", alpha=0.3)
    pairs = [("softexponential (α=0.3)", fused, "elu", nn.ELU()),
             ("softexponential (α=0.3)", fused, "elementwise", Elementwise(0.3)),
             ("softexponential (α=-0.3)", activations.get("softexponential", alpha=-0.3), "elu", nn.ELU()),
             ("swish (β trainable)", activations.get("swish", trainable=True), "silu", nn.SiLU())]
    out = []
    for name, module, base_name, base in pairs:
        t_base = best_time(fwd_bwd(base), repeats, 20)
        t = best_time(fwd_bwd(module), repeats, 20)
        out.append((name, t, base_name, t_base))
    return out


def bench_optimizers(repeats: int) -> list[tuple[str, float]]:
    from dtg.nn import MLP, optimizers

    torch.manual_seed(0)
    model = MLP([80, 256, 64, 256, 80], activation="elu")
    for p in model.parameters():
        p.grad = torch.randn_like(p) * 1e-3
    out = []
    for name in optimizers.OPTIMIZERS:
        opt = optimizers.build(name, model.parameters())
        out.append((name, best_time(opt.step, repeats, 50)))
    return out


def bench_study() -> tuple[float, int]:
    from dtg.lab import study

    t0 = time.perf_counter()
    runs = study.run_study(study.resolve_functions("all"))
    elapsed = time.perf_counter() - t0
    return elapsed, sum(len(r.path) - 1 for r in runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} thread(s)")

    print("\nactivation forward+backward on (256, 20, 64) float32:")
    print(f"{'activation':26s} {'ms':>8s} {'baseline':>12s} {'ms':>8s} {'ratio':>6s}")
    for name, t, base_name, t_base in bench_activations(args.repeats):
        print(f"{name:26s} {t * 1e3:8.3f} {base_name:>12s} {t_base * 1e3:8.3f} {t / t_base:6.2f}")

    print("\noptimizer step on MLP [80, 256, 64, 256, 80] (58k parameters):")
    steps = bench_optimizers(args.repeats)
    sgd = dict(steps)["sgd"]
    print(f"{'optimizer':10s} {'µs/step':>9s} {'ratio to sgd':>13s}")
    for name, t in steps:
        print(f"{name:10s} {t * 1e6:9.1f} {t / sgd:13.2f}")

    elapsed, n = bench_study()
    print(f"\noptimizer study (3 functions x 9 optimizers, 500 steps, no plots): {elapsed:.2f} s, "
          f"{n} steps, {n / elapsed:,.0f} steps/s")


if __name__ == "__main__":
    main()
