"""LSTM window classifier: which dangerous-driving event (or "normal") a window holds.

The supervised counterpart of the autoencoder: windows labelled from `dtg events` (see
`dtg.labels`) are classified by an LSTM whose last state feeds an MLP head giving one logit per
class; training minimises softmax cross-entropy (`dtg.nn.losses`), decisions are the argmax.

    x (B, T, F) ─LSTM─▶ h_T (B, H) ─MLP head (H → H → C)─▶ logits (B, C)
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from dtg.labels import CLASS_TARGET, CLASSES
from dtg.models.base import WindowModel, check_dropout, check_positive
from dtg.nn.mlp import MLP


@dataclass
class LSTMClassifierConfig:
    hidden: int = 32                         # LSTM hidden units
    layers: int = 1                          # stacked LSTM layers
    dropout: float = 0.0                     # between stacked LSTM layers and inside the head
    activation: str = "relu"                 # hidden activation of the head (a name from dtg.nn.activations)
    class_names: tuple[str, ...] = CLASSES   # class index -> name; "normal" first


class LSTMClassifier(WindowModel):
    name = "lstm-classifier"
    target = CLASS_TARGET
    Config = LSTMClassifierConfig

    def __init__(self, n_features: int, size: int, config: LSTMClassifierConfig) -> None:
        super().__init__(n_features, size, config)
        check_positive(config, "hidden", "layers")
        check_dropout(config)
        config.class_names = tuple(config.class_names)
        between = config.dropout if config.layers > 1 else 0.0
        self.lstm = nn.LSTM(n_features, config.hidden, config.layers, batch_first=True, dropout=between)
        self.head = MLP([config.hidden, config.hidden, len(config.class_names)], activation=config.activation,
                        dropout=config.dropout, out_activation=None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.lstm(x)                # (B, T, H)
        return self.head(out[:, -1])         # (B, C) logits from the last step's state

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Class index per window: the argmax of the logits."""
        from dtg.nn.losses import argmax

        return argmax(self(x))


MODEL = LSTMClassifier
