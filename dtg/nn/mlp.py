"""A multilayer perceptron from layer sizes: Linear → activation → dropout per hidden layer.

Used by the MLP autoencoder and by model heads: `MLP([20*4, 64, 8, 64, 20*4], activation="elu")`.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import torch
from torch import nn

from dtg.errors import DtgError
from dtg.nn import activations


class MLP(nn.Sequential):
    """Linear layers between consecutive `sizes`; `activation` (and `dropout`) after every hidden layer.

    `out_activation` (a name, or None for a linear output) follows the last layer. Each layer gets its own
    activation module, so a trainable activation (softexponential) learns one α per layer.
    `activation_kw` passes hyper-parameters to the hidden activations (e.g. {"alpha": 0.1}).
    """

    def __init__(
        self,
        sizes: Sequence[int],
        activation: str = "relu",
        dropout: float = 0.0,
        out_activation: str | None = None,
        activation_kw: Mapping[str, Any] | None = None,
    ) -> None:
        sizes = list(sizes)
        if len(sizes) < 2:
            raise DtgError(f"an MLP needs at least an input and an output size, got {sizes}", field="sizes")
        if any(not isinstance(n, int) or isinstance(n, bool) or n < 1 for n in sizes):
            raise DtgError(f"layer sizes must be positive integers, got {sizes}", field="sizes")
        if not 0.0 <= float(dropout) < 1.0:
            raise DtgError(f"dropout must be in [0, 1), got {dropout}", field="dropout")
        activations.get(activation, **dict(activation_kw or {}))  # validate the name before building
        layers: list[nn.Module] = []
        for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            layers.append(nn.Linear(n_in, n_out))
            if i < len(sizes) - 2:
                layers.append(activations.get(activation, **dict(activation_kw or {})))
                if dropout > 0:
                    layers.append(nn.Dropout(float(dropout)))
        if out_activation is not None:
            layers.append(activations.get(out_activation))
        super().__init__(*layers)
        self.sizes = tuple(sizes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x)
