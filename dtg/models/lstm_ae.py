"""LSTM autoencoder: encode the window to a latent vector, decode it back to the whole window.

    x (B, T, F) ─LSTM─▶ h_T (B, H) ─linear, act─▶ z (B, latent) ─linear─▶ repeated T times
      ─LSTM─▶ (B, T, H) ─linear─▶ x̂ (B, T, F)

A window the model cannot compress and restore well (high reconstruction error) is unusual.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from dtg.models.base import WindowModel, check_dropout, check_positive
from dtg.nn import activations


@dataclass
class LSTMAEConfig:
    hidden: int = 32          # LSTM hidden units (encoder and decoder)
    layers: int = 1           # stacked LSTM layers (encoder and decoder)
    latent: int = 8           # bottleneck size
    dropout: float = 0.0      # between stacked LSTM layers and before each linear map
    activation: str = "tanh"  # on the latent vector (a name from dtg.nn.activations)


class LSTMAutoencoder(WindowModel):
    name = "lstm-ae"
    target = "reconstruct"
    Config = LSTMAEConfig

    def __init__(self, n_features: int, size: int, config: LSTMAEConfig) -> None:
        super().__init__(n_features, size, config)
        check_positive(config, "hidden", "layers", "latent")
        check_dropout(config)
        between = config.dropout if config.layers > 1 else 0.0
        self.encoder = nn.LSTM(n_features, config.hidden, config.layers, batch_first=True, dropout=between)
        self.to_latent = nn.Linear(config.hidden, config.latent)
        self.act = activations.get(config.activation)
        self.from_latent = nn.Linear(config.latent, config.hidden)
        self.decoder = nn.LSTM(config.hidden, config.hidden, config.layers, batch_first=True, dropout=between)
        self.head = nn.Linear(config.hidden, n_features)
        self.drop = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, (h, _) = self.encoder(x)                                   # h: (layers, B, H)
        z = self.act(self.to_latent(self.drop(h[-1])))                # (B, latent)
        seed = self.from_latent(z).unsqueeze(1).expand(-1, x.shape[1], -1)
        out, _ = self.decoder(seed)                                   # (B, T, H)
        return self.head(self.drop(out))                              # (B, T, F)


MODEL = LSTMAutoencoder
