"""Optimizers by name, mapped to torch.optim with documented defaults and overridable hyper-parameters.

Defaults follow the papers (as collected in Ruder 2016, "An overview of gradient descent optimization
algorithms") where they name one, else torch's. `build("adam", model.parameters(), lr=1e-3, betas=(0.9, 0.99))`.
tests/test_nn_optimizers.py checks every entry against an independent numpy implementation of its
published update rule; docs/nn-core.md says where torch's formulation differs and why they agree.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable

import torch

from dtg.errors import DtgError
from dtg.nn.registry import accepted_kwargs, check_kwargs, lookup


# torch.optim arguments that choose an implementation, not the update rule: not config hyper-parameters.
_IMPLEMENTATION_KNOBS = ("foreach", "fused", "differentiable", "capturable")


@dataclass(frozen=True)
class OptimizerSpec:
    """A config name: the torch class, its defaults, and the hyper-parameters fixed by the name."""

    cls: type[torch.optim.Optimizer]
    defaults: dict[str, Any]
    fixed: dict[str, Any] = field(default_factory=dict)

    def valid_kwargs(self) -> list[str]:
        return [k for k in accepted_kwargs(self.cls, exclude=("params", "lr", *_IMPLEMENTATION_KNOBS))
                if k not in self.fixed]


OPTIMIZERS: dict[str, OptimizerSpec] = {
    # θ ← θ − η g
    "sgd": OptimizerSpec(torch.optim.SGD, {"lr": 0.01}),
    # v ← γv + ηg ; θ ← θ − v   (Qian 1999), γ = 0.9
    "momentum": OptimizerSpec(torch.optim.SGD, {"lr": 0.01, "momentum": 0.9}, fixed={"nesterov": False}),
    # v ← γv + η∇J(θ − γv) ; θ ← θ − v   (Nesterov 1983 / Sutskever 2013), γ = 0.9
    "nag": OptimizerSpec(torch.optim.SGD, {"lr": 0.01, "momentum": 0.9}, fixed={"nesterov": True}),
    # G ← G + g² ; θ ← θ − η g / (√G + ε)   (Duchi 2011), η = 0.01
    "adagrad": OptimizerSpec(torch.optim.Adagrad, {"lr": 0.01, "eps": 1e-10}),
    # Zeiler 2012: ρ = 0.9 (Ruder's γ), ε = 1e-6; η = 1 scales the unit-correct step
    "adadelta": OptimizerSpec(torch.optim.Adadelta, {"lr": 1.0, "rho": 0.9, "eps": 1e-6}),
    # Hinton's lecture 6e: γ = 0.9, η = 0.001 (torch's alpha is Ruder's γ)
    "rmsprop": OptimizerSpec(torch.optim.RMSprop, {"lr": 0.001, "alpha": 0.9, "eps": 1e-8}),
    # Kingma & Ba 2015: η = 0.001, β1 = 0.9, β2 = 0.999, ε = 1e-8
    "adam": OptimizerSpec(torch.optim.Adam, {"lr": 0.001, "betas": (0.9, 0.999), "eps": 1e-8}),
    # Kingma & Ba 2015 §7.1: η = 0.002, β1 = 0.9, β2 = 0.999
    "adamax": OptimizerSpec(torch.optim.Adamax, {"lr": 0.002, "betas": (0.9, 0.999), "eps": 1e-8}),
    # Dozat 2016: η = 0.002, β1 = 0.9, β2 = 0.999, momentum schedule ψ = 0.004
    "nadam": OptimizerSpec(torch.optim.NAdam,
                           {"lr": 0.002, "betas": (0.9, 0.999), "eps": 1e-8, "momentum_decay": 4e-3}),
}

# Default hyper-parameters by name (lr included), as a plain dict for docs and model cards.
DEFAULTS: dict[str, dict[str, Any]] = {name: {**spec.defaults, **spec.fixed} for name, spec in OPTIMIZERS.items()}


def resolve(name: str, lr: float | None = None, **hp: Any) -> tuple[str, OptimizerSpec, dict[str, Any]]:
    """The canonical name, its spec and the full keyword set `build` would pass to the torch class.

    `beta1`/`beta2` are accepted as spellings of one element of `betas`; lists (from TOML/JSON)
    become tuples.
    """
    canonical, spec = lookup("optimizer", OPTIMIZERS, name)
    hp = {k: tuple(v) if isinstance(v, list) else v for k, v in hp.items()}
    valid = spec.valid_kwargs()
    if "betas" in valid:
        valid += ["beta1", "beta2"]
    check_kwargs("optimizer", canonical, hp, valid)
    beta_parts = {i: hp.pop(k) for i, k in enumerate(("beta1", "beta2")) if k in hp}
    kwargs = {**spec.defaults, **hp, **spec.fixed}
    if beta_parts:
        betas = list(kwargs["betas"])
        for i, value in beta_parts.items():
            betas[i] = value
        kwargs["betas"] = tuple(betas)
    if lr is not None:
        kwargs["lr"] = lr
    return canonical, spec, kwargs


def build(name: str, params: Iterable[Any], lr: float | None = None, **hp: Any) -> torch.optim.Optimizer:
    """A torch optimizer for config name `name` over `params`; `lr` and `hp` override the defaults.

    Unknown names or hyper-parameters, and values torch rejects (e.g. lr < 0), raise DtgError.
    """
    canonical, spec, kwargs = resolve(name, lr, **hp)
    try:
        return spec.cls(params, **kwargs)
    except (ValueError, TypeError) as exc:
        raise DtgError(f"invalid hyper-parameters for optimizer '{canonical}' {kwargs}: {exc}",
                       field="optimizer") from exc
