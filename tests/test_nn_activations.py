"""Activations by name: torch's modules, and the two written here (SoftExponential, Swish)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from torch import nn

from dtg.errors import DtgError
from dtg.nn import activations
from dtg.nn.activations import SoftExponential, Swish, soft_exponential, soft_exponential_elementwise

torch.set_num_threads(1)
D = torch.float64
# The two implementations: the fused scalar-α path (what the module uses) and the broadcasting one.
IMPLS = pytest.mark.parametrize("impl", [soft_exponential, soft_exponential_elementwise],
                                ids=["scalar", "elementwise"])


def _naive_soft_exponential(alpha: float, x: np.ndarray) -> np.ndarray:
    """The published piecewise formula, evaluated directly in float64 (valid away from α = 0)."""
    if alpha < 0:
        return -np.log(1 - alpha * (x + alpha)) / alpha
    if alpha == 0:
        return x.copy()
    return (np.exp(alpha * x) - 1) / alpha + alpha


def test_every_name_builds_a_module_of_the_documented_torch_class():
    expected = {"sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "relu": nn.ReLU, "leaky_relu": nn.LeakyReLU,
                "elu": nn.ELU, "softexponential": SoftExponential, "swish": Swish}
    assert list(activations.ACTIVATIONS) == list(expected)
    for name, cls in expected.items():
        assert type(activations.get(name)) is cls


def test_get_returns_a_fresh_module_each_call_so_layers_do_not_share_alpha():
    a, b = activations.get("softexponential"), activations.get("softexponential")
    assert a is not b and a.alpha is not b.alpha


def test_names_are_matched_case_and_dash_insensitively():
    assert type(activations.get("Leaky-ReLU")) is nn.LeakyReLU


def test_unknown_activation_is_a_dtg_error_listing_valid_names():
    with pytest.raises(DtgError) as err:
        activations.get("gelu")
    assert err.value.field == "activation"
    assert "unknown activation 'gelu'" in str(err.value)
    for name in activations.ACTIVATIONS:
        assert name in str(err.value)


def test_hyper_parameters_pass_through_and_unknown_ones_are_named():
    assert activations.get("elu", alpha=0.5).alpha == 0.5
    assert activations.get("leaky_relu", negative_slope=0.2).negative_slope == 0.2
    assert activations.get("softexponential", alpha=0.3).alpha.item() == pytest.approx(0.3)
    with pytest.raises(DtgError) as err:
        activations.get("relu", alpha=1.0)
    assert err.value.field == "alpha" and "'alpha'" in str(err.value)


@IMPLS
@pytest.mark.parametrize("alpha", [-1.5, -0.7, -0.05, 0.05, 0.7, 1.5])
def test_soft_exponential_matches_the_published_piecewise_formula(impl, alpha):
    low = -0.6 if alpha > 0 else max(-0.6, 1 / alpha - alpha + 0.05)  # α < 0: domain is x > 1/α - α
    x = np.linspace(low, 3.0, 41)
    got = impl(torch.tensor(x, dtype=D), torch.tensor(alpha, dtype=D)).numpy()
    np.testing.assert_allclose(got, _naive_soft_exponential(alpha, x), rtol=1e-12, atol=1e-12)


@IMPLS
def test_soft_exponential_is_the_identity_at_alpha_zero_exp_at_one_and_log_at_minus_one(impl):
    x = torch.linspace(0.1, 4.0, 30, dtype=D)
    f = lambda a: impl(x, torch.tensor(a, dtype=D))  # noqa: E731
    torch.testing.assert_close(f(0.0), x, rtol=0, atol=0)
    torch.testing.assert_close(f(1.0), torch.exp(x))
    torch.testing.assert_close(f(-1.0), torch.log(x))


@settings(deadline=None, max_examples=60)
@given(alpha=st.floats(-2.0, 2.0), x=st.floats(-0.4, 3.0))
def test_soft_exponential_with_minus_alpha_inverts_it(alpha, x):
    # Godfrey & Gashler: f(-α, f(α, x)) = x — the α and -α units are inverse functions.
    assume(alpha >= 0 or x > 1 / alpha - alpha + 0.05)  # α < 0 is defined for x > 1/α - α
    a = torch.tensor(alpha, dtype=D)
    y = soft_exponential(torch.tensor(x, dtype=D), a)
    assert soft_exponential(y, -a).item() == pytest.approx(x, abs=1e-9)


@settings(deadline=None, max_examples=60)
@given(x=st.floats(-20.0, 20.0), tiny=st.floats(1e-300, 1e-3))
def test_soft_exponential_is_continuous_across_alpha_zero(x, tiny):
    xt = torch.tensor(x, dtype=D)
    left = soft_exponential(xt, torch.tensor(-tiny, dtype=D)).item()
    right = soft_exponential(xt, torch.tensor(tiny, dtype=D)).item()
    # |f(±α, x) - x| is about α(1 + x²/2): both sides approach x.
    bound = 2 * tiny * (1 + x * x) + 1e-12 * (1 + abs(x))
    assert abs(left - x) <= bound and abs(right - x) <= bound


@IMPLS
@pytest.mark.parametrize("alpha", [-1.2, -0.3, -2e-3, -1e-9, 0.0, 1e-9, 2e-3, 0.3, 1.2])
def test_soft_exponential_gradients_pass_gradcheck_in_double(impl, alpha):
    x = torch.linspace(-0.3, 1.5, 9, dtype=D).requires_grad_(True)
    a = torch.tensor(alpha, dtype=D, requires_grad=True)
    assert torch.autograd.gradcheck(soft_exponential, (x, a), eps=1e-7, atol=1e-6, rtol=1e-5)


@IMPLS
def test_soft_exponential_alpha_gradient_at_zero_is_one_plus_half_x_squared_even_in_float32(impl):
    # d f / d α at α = 0 is 1 + x²/2 from both sides; naive autograd of expm1(αx)/α loses it to cancellation.
    x = torch.linspace(-3, 3, 13)
    for alpha in (0.0, 1e-7, -1e-7):
        a = torch.tensor(alpha, requires_grad=True)
        grads = [torch.autograd.grad(impl(xi, a), a)[0].item() for xi in x]
        np.testing.assert_allclose(grads, 1 + x.numpy() ** 2 / 2, rtol=1e-4)


@IMPLS
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("alpha", [-3.0, -1.0, -1e-6, 0.0, 1e-6, 1.0, 3.0])
def test_soft_exponential_output_and_gradients_stay_finite_at_extreme_inputs(impl, dtype, alpha):
    x = torch.tensor([-1e30, -1e6, -100.0, -1.0, 0.0, 1.0, 100.0, 1e6, 1e30], dtype=dtype, requires_grad=True)
    a = torch.tensor(alpha, dtype=dtype, requires_grad=True)
    y = impl(x, a)
    assert torch.isfinite(y).all()
    gx = torch.autograd.grad(y.sum(), x)[0]
    assert torch.isfinite(gx).all()
    # d f/d α near α = 0 is about x²/2 (true, not an artefact): finite per element while x² is.
    for xi in x[1:-1]:
        (ga,) = torch.autograd.grad(impl(xi, a), a)
        assert torch.isfinite(ga)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_soft_exponential_in_half_precision_is_computed_in_float32_and_saturates(dtype):
    x = torch.tensor([-1e4, -20.0, -1.0, 0.0, 1.0, 20.0, 1e4], dtype=dtype, requires_grad=True)
    a = torch.tensor(0.5, requires_grad=True)
    y = soft_exponential(x, a)
    assert y.dtype == dtype and torch.isfinite(y).all()
    torch.testing.assert_close(y.float(), soft_exponential(x.detach().float(), a.detach()).clamp(
        -torch.finfo(dtype).max, torch.finfo(dtype).max), rtol=1e-2, atol=1e-2)
    gx, ga = torch.autograd.grad(y.float().sum(), (x, a))
    assert torch.isfinite(gx).all() and torch.isfinite(ga)


@IMPLS
def test_soft_exponential_is_monotone_in_x_including_outside_the_log_domain(impl):
    x = torch.linspace(-50, 50, 2001, dtype=D)
    for alpha in (-1.0, -0.2, 0.0, 0.2, 1.0):
        y = impl(x, torch.tensor(alpha, dtype=D))
        assert (torch.diff(y) >= -1e-12).all()  # rounding only: e.g. α = 1, x = -50 is (-1 + 2e-22) + 1


@settings(deadline=None, max_examples=60)
@given(alpha=st.floats(-3.0, 3.0) | st.floats(-1e-6, 1e-6), xs=st.lists(st.floats(-60.0, 60.0), min_size=1, max_size=8))
def test_scalar_and_elementwise_paths_agree_in_value_and_gradient(alpha, xs):
    # Two formulations (hand-written derivatives vs autograd through h and q) of the same function,
    # including held regions (outside the log's domain, |αx| > 50).
    outs = []
    for impl in (soft_exponential, soft_exponential_elementwise):
        x = torch.tensor(xs, dtype=D, requires_grad=True)
        a = torch.tensor(alpha, dtype=D, requires_grad=True)
        y = impl(x, a)
        gx, ga = torch.autograd.grad(y.sum(), (x, a))
        outs.append((y.detach(), gx, ga))
    for got, ref in zip(outs[0], outs[1]):
        torch.testing.assert_close(got, ref, rtol=1e-9, atol=1e-9)


def test_a_per_channel_alpha_broadcasts():
    x = torch.linspace(0.5, 2.0, 6, dtype=D).reshape(2, 3)
    alpha = torch.tensor([-1.0, 0.0, 1.0], dtype=D)
    y = soft_exponential(x, alpha)
    torch.testing.assert_close(y[:, 0], torch.log(x[:, 0]))
    torch.testing.assert_close(y[:, 1], x[:, 1])
    torch.testing.assert_close(y[:, 2], torch.exp(x[:, 2]))


def test_soft_exponential_alpha_is_trainable_unless_frozen():
    act = SoftExponential(alpha=0.1)
    act(torch.linspace(-1, 2, 7)).sum().backward()
    assert act.alpha.grad is not None and act.alpha.grad.item() != 0
    frozen = SoftExponential(alpha=0.1, trainable=False)
    assert not frozen.alpha.requires_grad and list(frozen.parameters())[0].requires_grad is False


@settings(deadline=None, max_examples=40)
@given(beta=st.floats(0.1, 5.0), x=st.floats(-30.0, 30.0))
def test_swish_is_x_times_sigmoid_beta_x(beta, x):
    sw = Swish(beta=beta).double()
    y = sw(torch.tensor(x, dtype=D)).item()
    assert y == pytest.approx(x / (1 + math.exp(-sw.beta.item() * x)), rel=1e-12, abs=1e-300)


def test_swish_with_beta_one_equals_torch_silu():
    x = torch.linspace(-8, 8, 101)
    torch.testing.assert_close(Swish()(x), nn.functional.silu(x))


def test_swish_beta_is_fixed_by_default_and_learns_when_trainable():
    assert not Swish().beta.requires_grad
    sw = Swish(beta=1.3, trainable=True)
    x = torch.linspace(-2, 2, 9, dtype=D).requires_grad_(True)
    beta = torch.tensor(1.3, dtype=D, requires_grad=True)
    # the module's own forward, with β passed in, so gradcheck sees both of its inputs
    assert torch.autograd.gradcheck(lambda x, b: torch.func.functional_call(sw, {"beta": b}, (x,)), (x, beta))
    sw(x.detach().float()).sum().backward()
    assert sw.beta.grad is not None and sw.beta.grad.item() != 0


def test_swish_stays_finite_at_extreme_inputs():
    x = torch.tensor([-1e30, -1e4, 0.0, 1e4, 1e30], requires_grad=True)
    y = Swish(beta=2.0, trainable=True)(x)
    (g,) = torch.autograd.grad(y.sum(), x)
    assert torch.isfinite(y).all() and torch.isfinite(g).all()
