"""MLP autoencoder, the baseline: the flattened window through a bottleneck of the shared MLP.

    x (B, T, F) ─flatten─▶ (B, T·F) ─MLP [T·F, hidden×layers, latent, hidden×layers, T·F]─▶ x̂ (B, T, F)

No notion of time order: what the LSTMs add over it is what their scores gain over this one.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from dtg.models.base import WindowModel, check_dropout, check_positive
from dtg.nn.mlp import MLP


@dataclass
class MLPAEConfig:
    hidden: int = 64          # width of each hidden layer
    layers: int = 1           # hidden layers on each side of the bottleneck
    latent: int = 8           # bottleneck size
    dropout: float = 0.0      # after each hidden activation
    activation: str = "relu"  # hidden activation (a name from dtg.nn.activations)


class MLPAutoencoder(WindowModel):
    name = "mlp-ae"
    target = "reconstruct"
    Config = MLPAEConfig

    def __init__(self, n_features: int, size: int, config: MLPAEConfig) -> None:
        super().__init__(n_features, size, config)
        check_positive(config, "hidden", "layers", "latent")
        check_dropout(config)
        flat = size * n_features
        side = [config.hidden] * config.layers
        self.net = MLP([flat, *side, config.latent, *side, flat], activation=config.activation,
                       dropout=config.dropout, out_activation=None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.flatten(1)).view_as(x)


MODEL = MLPAutoencoder
