"""Derive tests/data/train_fixture.csv: two real 1 Hz drives as canonical DTG rows, for training tests.

Source: carOBD (github.com/eron93br/carOBD, obdiidata/drive1 and drive2; Toyota Etios 2014 logged
through OBD-II at 1 Hz; see /work/shared/realdata/SOURCES.md). Speed and RPM are the logged values.
The logs have no brake signal or GPS, so, as SOURCES.md suggests: brake = 1 while the car slows by
at least 1 km/h in a second with the pedal released (PEDAL_D at its resting minimum), and latitude
is synthesised by integrating speed along a route heading north from 37.50 N, 127.00 E (Seoul).
Timestamps: consecutive seconds from 08:00 KST on two days. Run from the repo root:

    .venv/bin/python tests/data/make_train_fixture.py /work/shared/realdata/carobd
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROWS = 900  # seconds per drive kept: 15 minutes each, enough for train/val/test windows of 20 s
DRIVES = {"서울70사1001": ("drive1.csv.gz", "2024-03-04"), "서울70사1002": ("drive2.csv.gz", "2024-03-05")}


def derive(path: Path, vehicle: str, day: str) -> pd.DataFrame:
    raw = pd.read_csv(path, index_col=False).rename(columns=lambda c: c.replace(" ()", "").strip())
    raw = raw.iloc[:ROWS]
    speed = raw["VEHICLE_SPEED"].to_numpy(dtype=float)
    pedal = raw["PEDAL_D"].to_numpy(dtype=float)
    slowing = np.r_[0.0, np.diff(speed)] <= -1.0
    brake = (slowing & (pedal <= np.min(pedal))).astype(int)
    lat = 37.5 + np.cumsum(speed / 3600.0) / 111.0
    ts = pd.date_range(f"{day} 08:00:00", periods=len(raw), freq="s", tz="Asia/Seoul")
    return pd.DataFrame({"vehicle_id": vehicle, "ts": ts.strftime("%Y-%m-%dT%H:%M:%S%z"),
                         "speed": speed.round(1), "rpm": raw["ENGINE_RPM"].round(0), "brake": brake,
                         "lat": lat.round(6), "lon": 127.0})


def main(src: str) -> None:
    frames = [derive(Path(src) / name, vehicle, day) for vehicle, (name, day) in DRIVES.items()]
    out = Path(__file__).with_name("train_fixture.csv")
    pd.concat(frames).to_csv(out, index=False)
    print(f"wrote {out} ({sum(len(f) for f in frames)} rows)")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "/work/shared/realdata/carobd")
