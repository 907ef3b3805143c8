"""LSTM forecaster (as in NASA's telemanom): predict the next window, score by forecast error.

The target is the window one second later (seconds i+1 .. i+T). A causal LSTM reads the window and
at each step t predicts the following second, so step t sees only x_0..x_t:

    x (B, T, F) ─LSTM─▶ (B, T, H) ─MLP head (H → H → F)─▶ ŷ (B, T, F),  ŷ_t ≈ x_{t+1}

The last step forecasts the one second the window has not seen; the earlier steps are the same
one-step forecasts with shorter history, which makes the error less noisy than one step alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from dtg.models.base import WindowModel, check_dropout, check_positive
from dtg.nn.mlp import MLP


@dataclass
class LSTMForecasterConfig:
    hidden: int = 32          # LSTM hidden units
    layers: int = 2           # stacked LSTM layers
    dropout: float = 0.0      # between stacked LSTM layers and inside the head
    activation: str = "relu"  # hidden activation of the head (a name from dtg.nn.activations)


class LSTMForecaster(WindowModel):
    name = "lstm-forecaster"
    target = "next"
    Config = LSTMForecasterConfig

    def __init__(self, n_features: int, size: int, config: LSTMForecasterConfig) -> None:
        super().__init__(n_features, size, config)
        check_positive(config, "hidden", "layers")
        check_dropout(config)
        between = config.dropout if config.layers > 1 else 0.0
        self.lstm = nn.LSTM(n_features, config.hidden, config.layers, batch_first=True, dropout=between)
        self.head = MLP([config.hidden, config.hidden, n_features], activation=config.activation,
                        dropout=config.dropout, out_activation=None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.lstm(x)          # (B, T, H), causal: step t has seen x_0..x_t
        return self.head(out)          # (B, T, F): step t forecasts x_{t+1}


MODEL = LSTMForecaster
