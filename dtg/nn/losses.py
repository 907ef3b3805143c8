"""Loss functions by name, each `loss(pred, target) -> scalar tensor` (mean over the batch).

- `mse`: mean squared error over every element.
- `cross-entropy`: softmax over the last axis of `pred` (logits, not probabilities); `target` is either
  class indices (integer, shape `pred.shape[:-1]`) or one-hot / class probabilities (shape of `pred`).
- `bce`: binary cross-entropy on LOGITS (sigmoid applied inside, the numerically stable form); `target`
  holds 0/1 (or probabilities) shaped like `pred`. Do not put a sigmoid on the model's output for it.

`argmax(logits)` is the decision helper for classifiers: the predicted class index per row.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

from dtg.nn.registry import lookup

Loss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def mse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error, averaged over every element."""
    return F.mse_loss(pred, target.to(pred.dtype))


def cross_entropy(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Softmax cross-entropy of logits `pred` (..., C) against class indices (...) or one-hot/probabilities (..., C)."""
    n_classes = pred.shape[-1]
    logits = pred.reshape(-1, n_classes)
    if target.shape == pred.shape:  # one-hot or class probabilities (integer one-hot too)
        return F.cross_entropy(logits, target.reshape(-1, n_classes).to(pred.dtype))
    if target.shape != pred.shape[:-1]:
        raise ValueError(f"cross-entropy: target shape {tuple(target.shape)} is neither the class-index shape "
                         f"{tuple(pred.shape[:-1])} nor the logits shape {tuple(pred.shape)}")
    return F.cross_entropy(logits, target.reshape(-1).long())


def bce(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy of logits `pred` against 0/1 (or probability) targets of the same shape."""
    return F.binary_cross_entropy_with_logits(pred, target.to(pred.dtype))


LOSSES: dict[str, Loss] = {
    "mse": mse,
    "cross-entropy": cross_entropy,
    "bce": bce,
}


def get(name: str) -> Loss:
    """The loss function for config name `name` (`cross_entropy` is accepted for `cross-entropy`)."""
    return lookup("loss", LOSSES, name)[1]


def argmax(logits: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """Predicted class per row: the index of the largest logit (softmax is monotone, so logits suffice)."""
    return torch.argmax(logits, dim=dim)
