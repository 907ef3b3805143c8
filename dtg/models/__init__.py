"""dtg models and their name registry.

`build(name, n_features, size, **config)` makes a model by the name a config or `--model` uses.
Each model module defines one `WindowModel` subclass and exposes it as `MODEL`; registering a new
model is one line in `MODULES` below.
"""

from __future__ import annotations

import importlib
from typing import Any

from dtg.errors import DtgError
from dtg.models.base import TARGETS, WindowModel, window_errors

# Model name -> module in dtg.models defining it (as `MODEL`).
MODULES: dict[str, str] = {
    "lstm-ae": "lstm_ae",
    "lstm-forecaster": "lstm_forecaster",
    "lstm-classifier": "lstm_classifier",
    "mlp-ae": "mlp_ae",
}

DEFAULT_MODEL = "lstm-ae"


def names() -> list[str]:
    """The registered model names."""
    return list(MODULES)


def model_class(name: str) -> type[WindowModel]:
    """The class registered under `name`; an unknown name is a DtgError listing the valid ones."""
    if name not in MODULES:
        raise DtgError(f"unknown model '{name}' (valid: {', '.join(MODULES)})", field="model")
    return importlib.import_module(f"dtg.models.{MODULES[name]}").MODEL


def build(name: str, n_features: int, size: int, **config: Any) -> WindowModel:
    """A fresh model `name` for windows of `size` steps × `n_features`; `config` overrides its defaults."""
    return model_class(name).from_options(n_features, size, config)


__all__ = ["DEFAULT_MODEL", "MODULES", "TARGETS", "WindowModel", "build", "model_class", "names", "window_errors"]
