"""Helpers for the scoring tests (no tests here): synthetic drives, DTG files and a tiny model."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pyarrow as pa

from dtg import schema

FEATURES = ("speed", "rpm", "brake", "lat")
SIZE = 8
T0 = dt.datetime(2024, 5, 13, 8, 0, 0, tzinfo=dt.timezone(dt.timedelta(hours=9)))


def drive_table(vehicle: str = "서울70사1234", n: int = 600, seed: int = 0, start: dt.datetime = T0,
                spikes: tuple[int, ...] = (), source: str = "synthetic") -> pa.Table:
    """A plausible 1 Hz drive (canonical schema); `spikes` are seconds where speed/rpm jump."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    speed = np.clip(45 + 35 * np.sin(t / 40.0) + rng.normal(0, 1.5, n), 0, 120)
    rpm = 800 + speed * 28 + rng.normal(0, 30, n)
    for s in spikes:
        speed[s:s + 3] = np.minimum(speed[s:s + 3] + 90, 250)
        rpm[s:s + 3] = 6500
    brake = (np.diff(speed, prepend=speed[0]) < -1.0).astype(np.int8)
    lat = 37.5 + np.cumsum(speed) / 3600 / 111.0 * 0.7
    lon = 127.0 + np.cumsum(speed) / 3600 / 88.0 * 0.7
    ts_ms = int(start.timestamp() * 1000) + t * 1000
    cols = {
        "vehicle_id": pa.array([vehicle] * n, pa.string()),
        "ts": pa.array(ts_ms, pa.int64()).cast(schema.TS_TYPE),
        "speed": pa.array(speed.astype(np.float32)),
        "rpm": pa.array(rpm.astype(np.float32)),
        "brake": pa.array(brake),
        "lat": pa.array(lat),
        "lon": pa.array(lon),
        "source_file": pa.array([source] * n, pa.string()),
        "source_row": pa.array(t + 2, pa.int64()),
    }
    return schema.conform(pa.table(cols))


def write_dtg(path: Path, table: pa.Table) -> Path:
    """The table as a DTG record file (CP949 text), as a device would write it."""
    from dtg.readers.dtg_text import DtgHeader, to_bytes

    vehicle = table.column("vehicle_id")[0].as_py()
    header = DtgHeader(model="TESTDTG", vin="KMHXX00XXXX000000", vehicle_type="31", registration=vehicle,
                       operator="1234567890", driver_code="D0001")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(to_bytes(table, header))
    return path


def publish_model(models_dir: Path, table: pa.Table, name: str = "tiny", threshold: float | None = None,
                  kind: str = "mlp-ae", seed: int = 0, features: tuple[str, ...] = FEATURES) -> Path:
    """A small untrained model with a card, published through the registry (deterministic weights)."""
    import torch

    from dtg.models import build
    from dtg.registry import publish
    from dtg.windowset import build_window_set
    from dtg.splits import SplitSpec

    torch.manual_seed(seed)
    config = {"hidden": 16, "latent": 4} if kind == "mlp-ae" else {}
    model = build(kind, len(features), SIZE, **config)
    ws = build_window_set(table, size=SIZE, features=features, split=SplitSpec((0.8, 0.2), "time", 0))
    if threshold is None:
        from dtg.scoring import Scorer, window_errors_batched
        from dtg.models.base import objective

        sc = Scorer(model=model.eval(), output_fn=objective("mse", model.target)[1], features=features, size=SIZE,
                    max_gap=1, target=model.target, scaler=ws.scaler, threshold=None, model_id="x",
                    card={}, model_dir=models_dir)
        scores, _ = window_errors_batched(sc, ws.scaled, np.asarray(ws.starts))
        threshold = float(np.percentile(scores, 99))
    card = {
        "model": {"type": kind, "config": model.config_dict()},
        "target": model.target,
        "features": list(features),
        "size": SIZE,
        "stride": 1,
        "max_gap": 1,
        "scaler": ws.scaler.to_dict(),
        "threshold": {"value": threshold, "method": "percentile", "percentile": 99.0},
        "training": {"loss": "mse"},
    }
    return publish(models_dir, name, model, card)
