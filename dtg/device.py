"""`--device auto|cpu|cuda`: CUDA when present, else the CPU."""

from __future__ import annotations

from dtg.errors import DtgError


def resolve_device(name: str = "auto"):
    """Return the torch.device for `name`; `auto` picks CUDA when available."""
    import torch

    name = (name or "auto").lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise DtgError("--device cuda was asked for but no CUDA device is available (use --device auto or cpu)",
                           field="device")
        return torch.device(name)
    if name == "cpu":
        return torch.device("cpu")
    raise DtgError(f"unknown device '{name}' (valid: auto, cpu, cuda)", field="device")
