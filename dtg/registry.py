"""The model registry: `models/NAME/VERSION/` folders that hold everything needed to score with a model.

A version folder holds `weights.safetensors` (tensors only: loading it runs no code), `card.json`
(model type and config, target, features, window size and stride, scaler, the window set's
fingerprint, metrics, threshold, training config, package versions, created time, and the sha256
of the weights file), `history.csv` and `loss.png`. Versions are `v1`, `v2`, ... in order of
creation; `latest` names the highest. A version folder is built beside its final place and renamed
into it, so a reader never sees half a model, and a published version is never changed.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from dtg.atomic import TMP_PREFIX, _fsync_dir
from dtg.errors import DtgError

WEIGHTS = "weights.safetensors"
CARD = "card.json"
CARD_FORMAT = 1
LATEST = "latest"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_VERSION = re.compile(r"^v([1-9][0-9]*)$")


def check_name(name: str) -> str:
    """`name` if it is a safe model name (letters, digits, `.`, `_`, `-`; no path parts), else a DtgError."""
    if not isinstance(name, str) or not _NAME.match(name) or ".." in name:
        raise DtgError(f"invalid model name {name!r}: use letters, digits, '.', '_' or '-' "
                       "(at most 64, starting with a letter or digit)", field="name")
    return name


def versions(models_dir: str | Path, name: str) -> list[str]:
    """The published versions of `name`, oldest first (`v1`, `v2`, ...)."""
    folder = Path(models_dir) / check_name(name)
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p.name) for p in folder.iterdir() if (m := _VERSION.match(p.name)) and p.is_dir()]
    return [v for _, v in sorted(found)]


def resolve(spec: str | Path, models_dir: str | Path = "models") -> Path:
    """The version folder `spec` names: a folder holding card.json, a model folder (its latest
    version), or `NAME`, `NAME/latest`, `NAME/vN` under `models_dir`. Unknown → DtgError."""
    path = Path(spec)
    if (path / CARD).is_file() or (path / WEIGHTS).is_file():
        return path
    if path.is_dir() and _NAME.match(path.name) and versions(path.parent, path.name):
        return path / versions(path.parent, path.name)[-1]
    parts = str(spec).strip("/").split("/")
    if len(parts) > 2 or not parts[0]:
        raise DtgError(f"no model at {spec} (expected a model folder or NAME[/VERSION] under {models_dir})",
                       field="model")
    name = check_name(parts[0])
    version = parts[1] if len(parts) == 2 else LATEST
    have = versions(models_dir, name)
    if not have:
        raise DtgError(f"no model named '{name}' in {models_dir} (see `dtg models list`)", field="model")
    if version == LATEST:
        return Path(models_dir) / name / have[-1]
    if version not in have:
        raise DtgError(f"model '{name}' has no version '{version}' (have: {', '.join(have)})", field="model")
    return Path(models_dir) / name / version


def sha256(path: str | Path) -> str:
    """Hex sha256 of a file's bytes, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def publish(models_dir: str | Path, name: str, model: Any, card: dict[str, Any],
            extra: dict[str, Callable[[Path], None]] | None = None) -> Path:
    """Write a new version of `name`: the weights, `card` (completed with version, weights hash and
    size) and `extra` files (file name → writer of that path). Returns the version folder."""
    from safetensors.torch import save_file

    folder = Path(models_dir) / check_name(name)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=TMP_PREFIX + "version.", dir=folder))
    try:
        weights = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
        save_file(weights, str(tmp / WEIGHTS), metadata={"format": "pt", "model": card["model"]["type"]})
        for file_name, write in (extra or {}).items():
            write(tmp / file_name)
        card = {**card, "name": name, "card_format": CARD_FORMAT,
                "weights": {"file": WEIGHTS, "sha256": sha256(tmp / WEIGHTS), "bytes": (tmp / WEIGHTS).stat().st_size}}
        while True:  # another run may publish at the same moment: take the next free number
            have = versions(models_dir, name)
            version = f"v{int(have[-1][1:]) + 1 if have else 1}"
            card["version"] = version
            (tmp / CARD).write_text(json.dumps(card, indent=2, sort_keys=True, ensure_ascii=False) + "\n",
                                    encoding="utf-8")
            for item in tmp.iterdir():
                item.chmod(0o644)
            tmp.chmod(0o755)  # mkdtemp makes it private; a model is shared like any other output
            _fsync_dir(tmp)
            try:
                os.rename(tmp, folder / version)
            except OSError:
                if (folder / version).exists():
                    continue
                raise
            _fsync_dir(folder)
            return folder / version
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def read_card(version_dir: str | Path) -> dict[str, Any]:
    """The model card of a version folder; missing or unreadable → DtgError naming the file."""
    path = Path(version_dir) / CARD
    if not path.is_file():
        raise DtgError("not a dtg model: card.json is missing", file=path)
    try:
        card = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DtgError(f"unreadable model card: {exc}", file=path) from None
    for key in ("model", "features", "size", "weights", "scaler"):
        if key not in card:
            raise DtgError("model card is incomplete", file=path, field=key)
    return card


@dataclass
class LoadedModel:
    """A model ready to score: the network (eval mode), its card and its fitted scaler."""

    model: Any
    card: dict[str, Any]
    scaler: Any
    path: Path

    @property
    def target(self) -> str:
        return self.model.target

    @property
    def threshold(self) -> float:
        return float(self.card["threshold"]["value"])

    def predict(self, x: Any) -> Any:
        """Predictions in the scaled space of the target, for scaled windows `x` (B, size, F)."""
        import torch

        from dtg.models.base import objective

        _, output_fn = objective(self.card["training"]["loss"], self.model.target)
        with torch.no_grad():
            return output_fn(self.model(x))

    def errors(self, x: Any, y: Any) -> tuple[Any, Any]:
        """`window_errors` of the model on scaled windows: (score (B,), per_feature (B, F))."""
        from dtg.models import window_errors

        return window_errors(self.predict(x), y)


def load_model(version_dir: str | Path, device: str = "cpu") -> LoadedModel:
    """Load a version folder, refusing weights whose sha256 differs from the card's (tampered or corrupt)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from dtg.device import resolve_device
    from dtg.models import build
    from dtg.scaling import scaler_from_dict

    version_dir = Path(version_dir)
    card = read_card(version_dir)
    weights = version_dir / card["weights"].get("file", WEIGHTS)
    if weights.name != WEIGHTS or not weights.is_file():
        raise DtgError("model weights are missing", file=weights)
    if sha256(weights) != card["weights"].get("sha256"):
        raise DtgError("weights do not match the sha256 in card.json: the file was changed or is corrupt; "
                       "retrain or restore the model", file=weights)
    try:
        state = load_file(str(weights))
    except (SafetensorError, OSError, ValueError) as exc:
        raise DtgError(f"unreadable weights: {exc}", file=weights) from None
    model = build(card["model"]["type"], len(card["features"]), int(card["size"]), **card["model"]["config"])
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise DtgError(f"weights do not fit the model in card.json: {str(exc).splitlines()[0]}", file=weights) from None
    model.to(resolve_device(device)).eval()
    return LoadedModel(model=model, card=card, scaler=scaler_from_dict(card["scaler"]), path=version_dir)


def list_models(models_dir: str | Path = "models") -> list[dict[str, Any]]:
    """One row per published version under `models_dir`: name, version, model, created, metrics, path.

    A version whose card cannot be read is listed with its `error` instead of failing the listing.
    """
    root = Path(models_dir)
    rows: list[dict[str, Any]] = []
    if not root.is_dir():
        return rows
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and _NAME.match(p.name)):
        for version in versions(root, folder.name):
            path = folder / version
            row: dict[str, Any] = {"name": folder.name, "version": version, "path": str(path)}
            try:
                card = read_card(path)
            except DtgError as exc:
                rows.append({**row, "error": str(exc)})
                continue
            metrics = card.get("metrics", {})
            rows.append({**row, "model": card["model"]["type"], "created": card.get("created"),
                         "features": card["features"], "size": card["size"],
                         "epochs_run": metrics.get("epochs_run"), "val_loss": metrics.get("val_loss"),
                         "threshold": card.get("threshold", {}).get("value")})
    return rows
