"""What every dtg model shares: the `WindowModel` interface, config checking, and `window_errors`.

A model maps a scaled window batch `x` (B, size, F) to `y_hat` shaped like its target:
`target = "reconstruct"` (the window itself) or `"next"` (the window one second later).
`window_errors` is the single definition of a window's error, used by validation, thresholds and
scoring alike, so a model's threshold and its scores are always on the same scale.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, ClassVar

import torch
from torch import nn

from dtg.errors import DtgError

# Window targets: a window reconstructs itself, or forecasts the window one second later.
TARGETS = ("reconstruct", "next")


def window_errors(y_hat: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-window errors in scaled space: (score (B,), per_feature (B, F)).

    per_feature = mean squared error over the window's time steps, one value per feature;
    score = the mean of per_feature over features. Works on torch tensors and numpy arrays.
    """
    per_feature = ((y_hat - y) ** 2).mean(axis=1)
    return per_feature.mean(axis=1), per_feature


def objective(loss: str, target: str) -> tuple[Callable, Callable]:
    """`(loss_fn, output_fn)` for training with config loss `loss` on a model's `target`.

    `loss_fn(model_output, y)` is what training minimises; `output_fn(model_output)` gives the
    prediction in the target's (scaled) space, which `window_errors` compares with `y`.
    For the window targets, `cross-entropy` (and `bce`) is the autoencoder convention: binary
    cross-entropy of each scaled value in [0, 1], so the model outputs logits and predicts their
    sigmoid; `mse` compares the raw output. Other targets (a classifier's) use the loss as named.
    """
    from dtg.nn import losses
    from dtg.nn.registry import lookup

    name = lookup("loss", losses.LOSSES, loss)[0]
    if target in TARGETS and name in ("cross-entropy", "bce"):
        return losses.get("bce"), torch.sigmoid
    return losses.get(name), _identity


def _identity(x: torch.Tensor) -> torch.Tensor:
    return x


def make_config(config_cls: type, model_name: str, options: dict[str, Any]) -> Any:
    """Build `config_cls(**options)`, turning an unknown or ill-typed option into a DtgError naming it."""
    valid = [f.name for f in dataclasses.fields(config_cls)]
    for key in options:
        if key not in valid:
            raise DtgError(f"model '{model_name}' has no option '{key}' (valid: {', '.join(valid)})", field=key)
    return config_cls(**options)


def check_positive(config: Any, *names: str) -> None:
    """Raise a DtgError naming the first of `names` that is not a positive integer."""
    for name in names:
        value = getattr(config, name)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise DtgError(f"must be a positive integer, got {value!r}", field=name)


def check_dropout(config: Any) -> None:
    """Raise a DtgError unless 0 <= dropout < 1."""
    if not isinstance(config.dropout, (int, float)) or not 0.0 <= float(config.dropout) < 1.0:
        raise DtgError(f"must be in [0, 1), got {config.dropout!r}", field="dropout")


class WindowModel(nn.Module):
    """Base of all dtg models: `name`, `target`, `config` and the input shape, kept for the model card."""

    name: ClassVar[str]
    target: ClassVar[str]
    Config: ClassVar[type]

    def __init__(self, n_features: int, size: int, config: Any) -> None:
        super().__init__()
        if n_features < 1 or size < 1:
            raise DtgError(f"a model needs at least one feature and one time step, got F={n_features}, size={size}")
        self.n_features = n_features
        self.size = size
        self.config = config

    @classmethod
    def from_options(cls, n_features: int, size: int, options: dict[str, Any]) -> "WindowModel":
        """The model with `options` (plain data, e.g. from a TOML file or a model card) over its defaults."""
        return cls(n_features, size, make_config(cls.Config, cls.name, options))

    def config_dict(self) -> dict[str, Any]:
        """The model's config as plain data (what the model card stores and `build` accepts back)."""
        return dataclasses.asdict(self.config)
