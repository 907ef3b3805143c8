"""Activation functions by name: PyTorch's modules where they exist, SoftExponential and Swish otherwise.

`get("elu", alpha=0.5)` returns a fresh `nn.Module`; each call builds a new one, so trainable
parameters (SoftExponential's α, a trainable Swish β) are never shared between layers by accident.
"""

from __future__ import annotations

from typing import Any, Callable

import torch
from torch import nn

from dtg.nn.registry import accepted_kwargs, check_kwargs, lookup

# |z| below this uses the Taylor series of expm1(z)/z and -log1p(-z)/z (and of their derivatives):
# the direct formulas cancel catastrophically near 0, the 4-term series is exact to ~1e-10 there.
_SERIES = 1e-2
# SoftExponential keeps αx within [-_Z_MAX, _Z_MAX] (α > 0) so exp never overflows, even in float16/32.
_Z_MAX = 50.0
# ... and 1 - α(x + α) >= _DELTA (α < 0): the log's argument stays positive (the function's domain edge).
_DELTA = 1e-6
# ... and -α(x + α) <= _W_MAX so very large x cannot overflow α(x + α) in float32.
_W_MAX = 1e30


class _Expm1OverX(torch.autograd.Function):
    """h(z) = expm1(z) / z with h(0) = 1; h'(z) = (z e^z - expm1(z)) / z², both stable near 0."""

    @staticmethod
    def forward(ctx: Any, z: torch.Tensor) -> torch.Tensor:
        small = z.abs() < _SERIES
        zs = torch.where(small, torch.ones_like(z), z)
        direct = torch.expm1(zs) / zs
        series = 1 + z * (1 / 2 + z * (1 / 6 + z / 24))
        ctx.save_for_backward(z)
        return torch.where(small, series, direct)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        (z,) = ctx.saved_tensors
        small = z.abs() < _SERIES
        zs = torch.where(small, torch.ones_like(z), z)
        direct = (zs * torch.exp(zs) - torch.expm1(zs)) / (zs * zs)
        series = 1 / 2 + z * (1 / 3 + z * (1 / 8 + z / 30))
        return grad * torch.where(small, series, direct)


class _Log1pOverX(torch.autograd.Function):
    """q(w) = -log1p(-w) / w for w < 1 with q(0) = 1; q'(w) = (w + (1-w) log1p(-w)) / (w² (1-w))."""

    @staticmethod
    def forward(ctx: Any, w: torch.Tensor) -> torch.Tensor:
        small = w.abs() < _SERIES
        ws = torch.where(small, torch.full_like(w, 0.5), w)
        direct = -torch.log1p(-ws) / ws
        series = 1 + w * (1 / 2 + w * (1 / 3 + w / 4))
        ctx.save_for_backward(w)
        return torch.where(small, series, direct)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        (w,) = ctx.saved_tensors
        small = w.abs() < _SERIES
        ws = torch.where(small, torch.full_like(w, 0.5), w)
        direct = ((ws + (1 - ws) * torch.log1p(-ws)) / ws) / (ws * (1 - ws))
        series = (1 / 2 + w * (1 / 6 + w * (1 / 12 + w / 20))) / (1 - w)
        return grad * torch.where(small, series, direct)


def soft_exponential(x: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """Godfrey & Gashler's soft exponential f(α, x), elementwise, continuous and differentiable across α = 0.

        α < 0: -ln(1 - α(x + α)) / α      α = 0: x      α > 0: (exp(αx) - 1) / α + α

    Written as α > 0: x·h(αx) + α with h(z) = expm1(z)/z, and α < 0: (x + α)·q(α(x + α)) with
    q(w) = -log1p(-w)/w, so α → 0 is the removable singularity h(0) = q(0) = 1 (no 0/0, no NaN).
    Outside the domain (α < 0 and 1 - α(x + α) <= 0) the input is clamped to the domain edge, and
    αx is clamped to ±50 for α > 0, so the output is finite for every finite input.
    """
    alpha = alpha.to(x.dtype)
    pos = alpha >= 0
    one = torch.ones_like(alpha)
    # α >= 0 branch (α = 0 gives exactly x): clamp x so |αx| <= _Z_MAX.
    a_pos = torch.where(pos, alpha, torch.zeros_like(alpha))
    bound_pos = (_Z_MAX / torch.where(a_pos > 0, a_pos, one)).detach()
    bound_pos = torch.where(a_pos > 0, bound_pos, torch.full_like(bound_pos, float("inf")))
    x_pos = torch.maximum(torch.minimum(x, bound_pos), -bound_pos)
    f_pos = x_pos * _Expm1OverX.apply(a_pos * x_pos) + a_pos
    # α < 0 branch: s = x + α kept where 1 - αs >= _DELTA and -αs <= _W_MAX.
    a_neg = torch.where(pos, -one, alpha)
    s = x + a_neg
    lo = ((1 - _DELTA) / a_neg).detach()
    hi = (-_W_MAX / a_neg).detach()
    s = torch.minimum(torch.maximum(s, lo), hi)
    w = torch.clamp(a_neg * s, max=1 - _DELTA)
    f_neg = s * _Log1pOverX.apply(w)
    return torch.where(pos, f_pos, f_neg)


class SoftExponential(nn.Module):
    """Soft exponential activation (Godfrey & Gashler 2015) with a trainable α.

    α interpolates between logarithmic (α = -1), linear (α = 0) and exponential (α = 1) units.
    `alpha` is the initial value; `trainable=False` freezes it.
    """

    def __init__(self, alpha: float = 0.0, trainable: bool = True) -> None:
        super().__init__()
        self.alpha = nn.Parameter(torch.tensor(float(alpha)), requires_grad=trainable)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return soft_exponential(x, self.alpha)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha.item():.4g}, trainable={self.alpha.requires_grad}"


class Swish(nn.Module):
    """Swish x·σ(βx) (Ramachandran et al. 2017); β = 1 is SiLU. `trainable=True` learns β."""

    def __init__(self, beta: float = 1.0, trainable: bool = False) -> None:
        super().__init__()
        self.beta = nn.Parameter(torch.tensor(float(beta)), requires_grad=trainable)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(self.beta.to(x.dtype) * x)

    def extra_repr(self) -> str:
        return f"beta={self.beta.item():.4g}, trainable={self.beta.requires_grad}"


# name -> constructor. Defaults are the constructors' own (see docs/nn-core.md for the table).
ACTIVATIONS: dict[str, Callable[..., nn.Module]] = {
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
    "relu": nn.ReLU,
    "leaky_relu": nn.LeakyReLU,  # negative_slope=0.01
    "elu": nn.ELU,  # alpha=1.0
    "softexponential": SoftExponential,  # alpha=0.0 (identity at start), trainable=True
    "swish": Swish,  # beta=1.0, trainable=False
}


def get(name: str, **kw: Any) -> nn.Module:
    """A new activation module for config name `name`; `kw` overrides its hyper-parameters (e.g. alpha=0.5).

    Unknown names or hyper-parameters raise DtgError listing the valid ones.
    """
    canonical, ctor = lookup("activation", ACTIVATIONS, name)
    check_kwargs("activation", canonical, kw, accepted_kwargs(ctor, exclude=("inplace",)))
    return ctor(**kw)
