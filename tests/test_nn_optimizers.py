"""Optimizers by name: each torch mapping checked step by step against its published update rule.

The references below are independent numpy transcriptions of the papers' rules (as collected in
Ruder 2016, "An overview of gradient descent optimization algorithms"), written in torch's
parameterisation where the two differ; each difference is stated next to its reference and in
docs/nn-core.md.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from dtg.errors import DtgError
from dtg.nn import optimizers

torch.set_num_threads(1)

# A small nonlinear problem: J(θ) = ½ θᵀAθ + bᵀθ + 0.3 Σ sin(2θ), so the gradient depends on where it is
# taken (which is what separates Nesterov's look-ahead from plain momentum).
A = np.array([[3.0, 0.5, 0.0], [0.5, 1.0, 0.2], [0.0, 0.2, 0.5]])
B = np.array([0.3, -0.2, 0.1])
THETA0 = np.array([1.0, -2.0, 0.5])
STEPS = 25


def loss_torch(theta: torch.Tensor) -> torch.Tensor:
    a, b = torch.tensor(A), torch.tensor(B)
    return 0.5 * theta @ a @ theta + b @ theta + 0.3 * torch.sin(2 * theta).sum()


def grad_np(theta: np.ndarray) -> np.ndarray:
    return A @ theta + B + 0.6 * np.cos(2 * theta)


# --- references: each returns the parameter after every step ---------------------------------------

def ref_sgd(lr):
    th, out = THETA0.copy(), []
    for _ in range(STEPS):
        th = th - lr * grad_np(th)
        out.append(th)
    return out


def ref_momentum(lr, momentum):
    # Qian 1999 / Ruder eq. (2): v_t = γ v_{t-1} + η g_t ; θ_t = θ_{t-1} - v_t.
    # torch keeps b_t = γ b_{t-1} + g_t and steps η b_t: the same with v = η b for a fixed η.
    th, v, out = THETA0.copy(), np.zeros(3), []
    for _ in range(STEPS):
        v = momentum * v + lr * grad_np(th)
        th = th - v
        out.append(th)
    return out


def ref_nag(lr, momentum):
    # Nesterov / Ruder eq. (3): v_t = γ v_{t-1} + η ∇J(θ_{t-1} - γ v_{t-1}) ; θ_t = θ_{t-1} - v_t.
    # torch's parameter is the look-ahead point φ_t = θ_t - γ v_t (Bengio et al. 2013's reformulation:
    # φ_t = φ_{t-1} - η(1+γ) g(φ_{t-1}) - η γ² b_{t-1}), so the reference reports θ_t - γ v_t.
    th, v, out = THETA0.copy(), np.zeros(3), []
    for _ in range(STEPS):
        v = momentum * v + lr * grad_np(th - momentum * v)
        th = th - v
        out.append(th - momentum * v)
    return out


def ref_adagrad(lr, eps):
    # Duchi et al. 2011 / Ruder eq. (7): G_t = G_{t-1} + g_t² ; θ -= η g / √(G_t + ε).
    # torch puts ε outside the root, θ -= η g / (√G_t + ε); the reference follows torch's placement.
    th, G, out = THETA0.copy(), np.zeros(3), []
    for _ in range(STEPS):
        g = grad_np(th)
        G = G + g * g
        th = th - lr * g / (np.sqrt(G) + eps)
        out.append(th)
    return out


def ref_adadelta(lr, rho, eps):
    # Zeiler 2012, Algorithm 1 (Ruder eq. 14): E[g²] = ρE + (1-ρ)g² ; Δθ = -RMS[Δθ]_{t-1}/RMS[g]_t · g with
    # RMS[y] = √(E[y²] + ε) ; E[Δθ²] = ρE + (1-ρ)Δθ² ; θ += Δθ. torch scales Δθ by lr (Zeiler's rule is lr = 1).
    th, Eg, Ed, out = THETA0.copy(), np.zeros(3), np.zeros(3), []
    for _ in range(STEPS):
        g = grad_np(th)
        Eg = rho * Eg + (1 - rho) * g * g
        delta = -np.sqrt(Ed + eps) / np.sqrt(Eg + eps) * g
        Ed = rho * Ed + (1 - rho) * delta * delta
        th = th + lr * delta
        out.append(th)
    return out


def ref_rmsprop(lr, alpha, eps):
    # Hinton, lecture 6e (Ruder eq. 15): E[g²] = γE + (1-γ)g² ; θ -= η g / √(E + ε).
    # torch: γ is `alpha` and ε sits outside the root, θ -= η g / (√E + ε); the reference follows torch.
    th, E, out = THETA0.copy(), np.zeros(3), []
    for _ in range(STEPS):
        g = grad_np(th)
        E = alpha * E + (1 - alpha) * g * g
        th = th - lr * g / (np.sqrt(E) + eps)
        out.append(th)
    return out


def ref_adam(lr, betas, eps):
    # Kingma & Ba 2015, Algorithm 1: m, v moments, bias-corrected m̂ = m/(1-β1^t), v̂ = v/(1-β2^t);
    # θ -= η m̂ / (√v̂ + ε). torch implements exactly this.
    b1, b2 = betas
    th, m, v, out = THETA0.copy(), np.zeros(3), np.zeros(3), []
    for t in range(1, STEPS + 1):
        g = grad_np(th)
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        th = th - lr * (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps)
        out.append(th)
    return out


def ref_adamax(lr, betas, eps):
    # Kingma & Ba 2015, Algorithm 2: u_t = max(β2 u_{t-1}, |g_t|) ; θ -= (η/(1-β1^t)) m_t / u_t.
    # torch adds ε to |g_t| inside the max (guarding u = 0); with ε = 0 the two are identical.
    b1, b2 = betas
    th, m, u, out = THETA0.copy(), np.zeros(3), np.zeros(3), []
    for t in range(1, STEPS + 1):
        g = grad_np(th)
        m = b1 * m + (1 - b1) * g
        u = np.maximum(b2 * u, np.abs(g) + eps)
        th = th - lr / (1 - b1**t) * m / u
        out.append(th)
    return out


def ref_nadam(lr, betas, eps, momentum_decay):
    # Dozat 2016, Algorithm 2 with the momentum schedule μ_t = β1(1 - ½·0.96^(tψ)) (ψ = momentum_decay):
    # ĝ = g/(1 - Π_{i≤t} μ_i) ; m_t = β1 m + (1-β1) g ; m̂ = m_t/(1 - Π_{i≤t+1} μ_i) ; n̂ = n_t/(1-β2^t);
    # θ -= η ((1-μ_t) ĝ + μ_{t+1} m̂) / (√n̂ + ε). Ruder's eq. (21) is the simplified constant-μ form
    # (and divides m by 1-β1^t); torch implements Dozat's scheduled rule, as does this reference.
    b1, b2 = betas
    mu = lambda t: b1 * (1 - 0.5 * 0.96 ** (t * momentum_decay))  # noqa: E731
    th, m, n, prod, out = THETA0.copy(), np.zeros(3), np.zeros(3), 1.0, []
    for t in range(1, STEPS + 1):
        g = grad_np(th)
        prod *= mu(t)
        m = b1 * m + (1 - b1) * g
        n = b2 * n + (1 - b2) * g * g
        g_hat = g / (1 - prod)
        m_hat = m / (1 - prod * mu(t + 1))
        m_bar = (1 - mu(t)) * g_hat + mu(t + 1) * m_hat
        th = th - lr * m_bar / (np.sqrt(n / (1 - b2**t)) + eps)
        out.append(th)
    return out


REFERENCES = {
    "sgd": lambda hp: ref_sgd(hp["lr"]),
    "momentum": lambda hp: ref_momentum(hp["lr"], hp["momentum"]),
    "nag": lambda hp: ref_nag(hp["lr"], hp["momentum"]),
    "adagrad": lambda hp: ref_adagrad(hp["lr"], hp["eps"]),
    "adadelta": lambda hp: ref_adadelta(hp["lr"], hp["rho"], hp["eps"]),
    "rmsprop": lambda hp: ref_rmsprop(hp["lr"], hp["alpha"], hp["eps"]),
    "adam": lambda hp: ref_adam(hp["lr"], hp["betas"], hp["eps"]),
    "adamax": lambda hp: ref_adamax(hp["lr"], hp["betas"], hp["eps"]),
    "nadam": lambda hp: ref_nadam(hp["lr"], hp["betas"], hp["eps"], hp["momentum_decay"]),
}

# Non-default settings, so the test also shows overrides reach the update rule.
OVERRIDES = {
    "sgd": {"lr": 0.05},
    "momentum": {"lr": 0.03, "momentum": 0.7},
    "nag": {"lr": 0.03, "momentum": 0.7},
    "adagrad": {"lr": 0.3, "eps": 1e-6},
    "adadelta": {"lr": 0.5, "rho": 0.8, "eps": 1e-4},
    "rmsprop": {"lr": 0.02, "alpha": 0.8, "eps": 1e-6},
    "adam": {"lr": 0.05, "betas": (0.8, 0.99), "eps": 1e-6},
    "adamax": {"lr": 0.05, "betas": (0.8, 0.99), "eps": 1e-6},
    "nadam": {"lr": 0.05, "betas": (0.8, 0.99), "eps": 1e-6, "momentum_decay": 0.01},
}


def run_torch(name: str, **hp) -> list[np.ndarray]:
    """The iterates of the optimizer `optimizers.build(name)` makes."""
    return _iterates(lambda params: optimizers.build(name, params, **hp))


def _iterates(make_optimizer) -> list[np.ndarray]:
    # torch keeps scalar optimizer state (NAdam's Π μ_i) in the default dtype, created on the first step:
    # float64 here, so the comparison is about the rule, not float32 rounding of that state.
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        theta = torch.tensor(THETA0, requires_grad=True)
        opt = make_optimizer([theta])
        out = []
        for _ in range(STEPS):
            opt.zero_grad()
            loss_torch(theta).backward()
            opt.step()
            out.append(theta.detach().numpy().copy())
    finally:
        torch.set_default_dtype(previous)
    return out


def test_every_issue_name_is_registered_in_order():
    assert list(optimizers.OPTIMIZERS) == ["sgd", "momentum", "nag", "adagrad", "adadelta", "rmsprop",
                                           "adam", "adamax", "nadam"]
    assert set(REFERENCES) == set(optimizers.OPTIMIZERS)


def run_torch_foreach(name: str) -> list[np.ndarray]:
    """As run_torch, through torch's multi-tensor (foreach) implementation — CUDA's default path."""
    _, spec, kwargs = optimizers.resolve(name)
    return _iterates(lambda params: spec.cls(params, foreach=True, **kwargs))


@pytest.mark.parametrize("name", list(REFERENCES))
@pytest.mark.parametrize("runner", [run_torch, run_torch_foreach], ids=["single-tensor", "foreach"])
def test_default_hyper_parameters_follow_the_published_update_rule_step_by_step(name, runner):
    expected = REFERENCES[name](optimizers.DEFAULTS[name])
    got = runner(name)
    for step, (g, e) in enumerate(zip(got, expected), start=1):
        np.testing.assert_allclose(g, e, rtol=1e-10, atol=1e-12, err_msg=f"{name} step {step}")
    assert not np.allclose(got[-1], THETA0)  # it moved


@pytest.mark.parametrize("name", list(REFERENCES))
def test_overridden_hyper_parameters_follow_the_published_update_rule_step_by_step(name):
    hp = OVERRIDES[name]
    expected = REFERENCES[name]({**optimizers.DEFAULTS[name], **hp})
    got = run_torch(name, **hp)
    for step, (g, e) in enumerate(zip(got, expected), start=1):
        np.testing.assert_allclose(g, e, rtol=1e-10, atol=1e-12, err_msg=f"{name} step {step}")


def test_nesterov_differs_from_plain_momentum_on_a_nonlinear_problem():
    # Guards the NAG reference itself: if it degenerated into plain momentum this would fail.
    a, b = ref_nag(0.01, 0.9), ref_momentum(0.01, 0.9)
    assert np.abs(a[-1] - b[-1]).max() > 1e-3


def test_documented_defaults():
    d = optimizers.DEFAULTS
    assert d["adam"] == {"lr": 0.001, "betas": (0.9, 0.999), "eps": 1e-8}
    assert d["momentum"]["momentum"] == 0.9 and d["momentum"]["nesterov"] is False
    assert d["nag"]["momentum"] == 0.9 and d["nag"]["nesterov"] is True
    assert d["rmsprop"]["alpha"] == 0.9 and d["rmsprop"]["lr"] == 0.001
    assert d["adadelta"] == {"lr": 1.0, "rho": 0.9, "eps": 1e-6}
    assert d["adamax"]["lr"] == 0.002 and d["nadam"]["lr"] == 0.002


@pytest.mark.parametrize("name,cls", [("sgd", torch.optim.SGD), ("nag", torch.optim.SGD),
                                      ("adagrad", torch.optim.Adagrad), ("adadelta", torch.optim.Adadelta),
                                      ("rmsprop", torch.optim.RMSprop), ("adam", torch.optim.Adam),
                                      ("adamax", torch.optim.Adamax), ("nadam", torch.optim.NAdam)])
def test_build_returns_the_documented_torch_class(name, cls):
    assert type(optimizers.build(name, [torch.zeros(1, requires_grad=True)])) is cls


def test_lr_none_means_the_default_and_a_given_lr_overrides_it():
    p = [torch.zeros(1, requires_grad=True)]
    assert optimizers.build("adam", p).param_groups[0]["lr"] == 0.001
    assert optimizers.build("adam", p, lr=0.3).param_groups[0]["lr"] == 0.3


def test_beta1_beta2_and_lists_from_config_files_are_accepted():
    p = [torch.zeros(1, requires_grad=True)]
    assert optimizers.build("adam", p, beta2=0.99).param_groups[0]["betas"] == (0.9, 0.99)
    assert optimizers.build("nadam", p, beta1=0.8).param_groups[0]["betas"] == (0.8, 0.999)
    assert optimizers.build("adamax", p, betas=[0.5, 0.6]).param_groups[0]["betas"] == (0.5, 0.6)


def test_name_fixed_settings_cannot_be_overridden():
    with pytest.raises(DtgError) as err:
        optimizers.build("nag", [torch.zeros(1, requires_grad=True)], nesterov=False)
    assert err.value.field == "nesterov"


def test_unknown_optimizer_is_a_dtg_error_listing_every_valid_name():
    with pytest.raises(DtgError) as err:
        optimizers.build("adamw", [torch.zeros(1, requires_grad=True)])
    msg = str(err.value)
    assert err.value.field == "optimizer" and "unknown optimizer 'adamw' (valid: sgd, momentum, nag" in msg
    assert all(name in msg for name in optimizers.OPTIMIZERS)


@pytest.mark.parametrize("name,bad", [("sgd", "betas"), ("adam", "momentum"), ("rmsprop", "rho"),
                                      ("adagrad", "beta1")])
def test_unknown_hyper_parameter_is_a_dtg_error_naming_it(name, bad):
    with pytest.raises(DtgError) as err:
        optimizers.build(name, [torch.zeros(1, requires_grad=True)], **{bad: 0.5})
    assert err.value.field == bad and f"'{bad}'" in str(err.value) and f"'{name}'" in str(err.value)


def test_a_value_torch_rejects_is_a_dtg_error():
    with pytest.raises(DtgError, match="Invalid learning rate"):
        optimizers.build("sgd", [torch.zeros(1, requires_grad=True)], lr=-1.0)


@settings(deadline=None, max_examples=25)
@given(name=st.sampled_from(list(REFERENCES)), spell=st.sampled_from([str.upper, str.title, lambda n: f" {n} "]))
def test_names_are_case_and_space_insensitive(name, spell):
    opt = optimizers.build(spell(name), [torch.zeros(1, requires_grad=True)])
    assert type(opt) is optimizers.OPTIMIZERS[name].cls
