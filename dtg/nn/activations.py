"""Activation functions by name: PyTorch's modules where they exist, SoftExponential and Swish otherwise.

`get("elu", alpha=0.5)` returns a fresh `nn.Module`; each call builds a new one, so trainable
parameters (SoftExponential's α, a trainable Swish β) are never shared between layers by accident.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import torch
from torch import nn

from dtg.nn.registry import accepted_kwargs, check_kwargs, lookup

# SoftExponential keeps αx within [-_Z_MAX, _Z_MAX] (α > 0) so exp never overflows, even in float16/32.
_Z_MAX = 50.0
# ... and 1 - α(x + α) >= _DELTA (α < 0): the log's argument stays positive (the function's domain edge).
_DELTA = 1e-6
# ... and -α(x + α) <= _W_MAX so very large x cannot overflow α(x + α) in float32.
_W_MAX = 1e30
# A scalar |α| below this is treated as 0 (f = x + α): there f - x is below α(1 + x²/2), negligible.
_ALPHA_ZERO = 1e-19

# Taylor coefficients (lowest order first) of h(z) = expm1(z)/z, h', q(w) = -log1p(-w)/w and q'.
_H = [1 / math.factorial(n + 1) for n in range(7)]
_DH = [n / math.factorial(n + 1) for n in range(1, 8)]
_Q = [1 / (n + 1) for n in range(7)]
_DQ = [n / (n + 1) for n in range(1, 8)]


def _series_cutoff(dtype: torch.dtype) -> float:
    """|z| below which the 7-term series replaces the direct formula.

    The direct derivatives cancel (relative error ~ eps/|z|, at most eps**0.8 above the cutoff: 3e-13
    in float64, 3e-6 in float32); below it the series' truncation error (~ z⁷/8!) is far smaller still.
    """
    return torch.finfo(dtype).eps ** 0.2


def _poly(coeffs: list[float], z: torch.Tensor) -> torch.Tensor:
    out = torch.full_like(z, coeffs[-1])
    for c in reversed(coeffs[:-1]):
        out = out * z + c
    return out


def _patch_small(values: torch.Tensor, z: torch.Tensor, coeffs: list[float]) -> None:
    """In place: where |z| is below the series cutoff, replace `values` by the series `coeffs` at z."""
    small = z.abs() < _series_cutoff(z.dtype)
    if small.any():
        values[small] = _poly(coeffs, z[small])


class _Expm1OverX(torch.autograd.Function):
    """h(z) = expm1(z) / z with h(0) = 1; h'(z) = (z e^z - expm1(z)) / z², both stable near 0."""

    @staticmethod
    def forward(ctx: Any, z: torch.Tensor) -> torch.Tensor:
        small = z.abs() < _series_cutoff(z.dtype)
        zs = torch.where(small, torch.ones_like(z), z)
        ctx.save_for_backward(z)
        return torch.where(small, _poly(_H, z), torch.expm1(zs) / zs)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        (z,) = ctx.saved_tensors
        small = z.abs() < _series_cutoff(z.dtype)
        zs = torch.where(small, torch.ones_like(z), z)
        direct = (zs * torch.exp(zs) - torch.expm1(zs)) / (zs * zs)
        return grad * torch.where(small, _poly(_DH, z), direct)


class _Log1pOverX(torch.autograd.Function):
    """q(w) = -log1p(-w) / w for w < 1 with q(0) = 1; q'(w) = (w + (1-w) log1p(-w)) / (w² (1-w))."""

    @staticmethod
    def forward(ctx: Any, w: torch.Tensor) -> torch.Tensor:
        small = w.abs() < _series_cutoff(w.dtype)
        ws = torch.where(small, torch.full_like(w, 0.5), w)
        ctx.save_for_backward(w)
        return torch.where(small, _poly(_Q, w), -torch.log1p(-ws) / ws)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        (w,) = ctx.saved_tensors
        small = w.abs() < _series_cutoff(w.dtype)
        ws = torch.where(small, torch.full_like(w, 0.5), w)
        direct = ((ws + (1 - ws) * torch.log1p(-ws)) / ws) / (ws * (1 - ws))
        return grad * torch.where(small, _poly(_DQ, w), direct)


def soft_exponential(x: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """Godfrey & Gashler's soft exponential f(α, x), continuous and differentiable across α = 0.

        α < 0: -ln(1 - α(x + α)) / α      α = 0: x      α > 0: (exp(αx) - 1) / α + α

    A scalar α (the module's case) takes a fused path that evaluates only its own branch with
    hand-written first derivatives (about 4x faster; no double backward); a tensor α (one per element
    or channel) broadcasts through `soft_exponential_elementwise`. Both agree to rounding and pass
    gradcheck.
    """
    if x.dtype in (torch.float16, torch.bfloat16):
        # exp overflows float16 at 11: compute in float32, saturate to the input type's finite range.
        big = torch.finfo(x.dtype).max
        return soft_exponential(x.float(), alpha.float()).clamp(-big, big).to(x.dtype)
    if alpha.dim() == 0:
        return _SoftExponentialScalar.apply(x, alpha)
    return soft_exponential_elementwise(x, alpha)


class _SoftExponentialScalar(torch.autograd.Function):
    """f(α, x) for one scalar α: only α's branch is computed; ∂f/∂x and ∂f/∂α written out.

    α > 0 (z = αx, held at |z| = _Z_MAX):  f = expm1(z)/α + α,  ∂f/∂x = e^z,  ∂f/∂α = 1 + x² h'(z)
    α < 0 (s = x + α, w = αs, held at the domain edge):  f = -log1p(-w)/α,  ∂f/∂x = 1/(1-w),
        ∂f/∂α = 1/(1-w) + s² q'(w)
    |α| below ~1e-19 (and α = 0): f = x + α, ∂f/∂x = 1, ∂f/∂α = 1 + x²/2 (the common limit of both sides).
    Held values: ∂f/∂x = 0 and ∂f/∂α = 1 - expm1(±Z)/α² (α > 0) or -f/α (α < 0).
    """

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
        a = float(alpha)
        ctx.a = a
        ctx.save_for_backward(x)
        if abs(a) < _ALPHA_ZERO:
            return x + a
        if a > 0:
            return torch.expm1((x * a).clamp(-_Z_MAX, _Z_MAX)) / a + a
        w = (x + a) * a
        f = -torch.log1p(-w.clamp(-_W_MAX, 1 - _DELTA)) / a
        return torch.where(w > 1 - _DELTA, -math.log(_DELTA) / a, f)  # exact edge value, even in float32

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        (x,) = ctx.saved_tensors
        a = ctx.a
        if abs(a) < _ALPHA_ZERO:
            return grad, (grad * (1 + x * x / 2)).sum().reshape(())
        if a > 0:
            z = x * a
            inside = z.abs() <= _Z_MAX
            zc = z.clamp(-_Z_MAX, _Z_MAX)
            ez, em1 = torch.exp(zc), torch.expm1(zc)
            g = (zc * ez - em1) / (zc * zc)  # h'(z); cancels (or is 0/0) near z = 0, patched below
            _patch_small(g, zc, _DH)
            d_alpha = torch.where(inside, 1 + x * x * g, 1 - em1 / (a * a))
            d_x = torch.where(inside, ez, torch.zeros_like(ez))
        else:
            s = x + a
            w = s * a
            inside = (w <= 1 - _DELTA) & (w >= -_W_MAX)
            wc = w.clamp(-_W_MAX, 1 - _DELTA)
            inv = 1 / (1 - wc)
            l1p = torch.where(w > 1 - _DELTA, math.log(_DELTA), torch.log1p(-wc))
            k = ((wc + (1 - wc) * l1p) / wc) * (inv / wc)  # q'(w); cancels (or is 0/0) near w = 0, patched
            _patch_small(k, wc, _DQ)
            d_alpha = torch.where(inside, inv + s * s * k, l1p / (a * a))
            d_x = torch.where(inside, inv, torch.zeros_like(inv))
        return grad * d_x, (grad * d_alpha).sum().reshape(())


def soft_exponential_elementwise(x: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """Soft exponential with α broadcast against x (e.g. one α per channel), by autograd through h and q.

        α < 0: -ln(1 - α(x + α)) / α      α = 0: x      α > 0: (exp(αx) - 1) / α + α

    Written as α > 0: x·h(αx) + α with h(z) = expm1(z)/z, and α < 0: (x + α)·q(α(x + α)) with
    q(w) = -log1p(-w)/w, so α → 0 is the removable singularity h(0) = q(0) = 1 (no 0/0, no NaN).
    Outside the domain (α < 0 and 1 - α(x + α) < 1e-6) the value is held at the domain edge, and for
    α > 0 beyond |αx| = 50, so output and gradients are finite for every finite input; there the
    gradient in x is 0 and the one in α is that of the held value.
    """
    alpha = alpha.to(x.dtype)
    pos = alpha >= 0
    one = torch.ones_like(alpha)
    # α >= 0 (α = 0 gives exactly x). Where |αx| > _Z_MAX the value is held at the clamp: expm1(±Z)/α + α.
    a_pos = torch.where(pos, alpha, torch.zeros_like(alpha))
    z = a_pos * x
    inside = z.abs() <= _Z_MAX
    x_in = torch.where(inside, x, torch.zeros_like(x))
    # (the divisor is 1 wherever the held value is not used: no 0·inf = NaN in the gradient of torch.where)
    held = torch.expm1(torch.sign(z) * _Z_MAX) / torch.where(inside | (a_pos <= 0), torch.ones_like(z), a_pos)
    f_pos = torch.where(inside, x_in * _Expm1OverX.apply(a_pos * x_in), held) + a_pos
    # α < 0, with s = x + α and w = αs: inside the domain 1 - w >= _DELTA (and -w <= _W_MAX) the
    # formula; beyond it the value at the edge, -ln(1 - w_edge)/α, constant in x.
    a_neg = torch.where(pos, -one, alpha)
    s = x + a_neg
    w = a_neg * s
    inside = (w <= 1 - _DELTA) & (w >= -_W_MAX)
    s_in = torch.where(inside, s, torch.zeros_like(s))
    edge = torch.where(w > 0, torch.full_like(w, -math.log(_DELTA)), torch.full_like(w, -math.log1p(_W_MAX)))
    f_neg = torch.where(inside, s_in * _Log1pOverX.apply(a_neg * s_in),
                        edge / torch.where(inside, -torch.ones_like(w), a_neg))
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
