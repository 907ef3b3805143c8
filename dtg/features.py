"""Derived window features: motion computed from each vehicle's GPS track.

Absolute lat/lon scaled across a fleet hide a 1–5 km position jump, and no signal column carries the
heading; these features make both visible to a window model. They are computed from the usable lake rows
before segmentation, in float64, over runs of consecutive seconds of one vehicle: the first row of a
run (so of every segment) is 0, and a value never depends on a row across a gap or of another vehicle;
seconds the segmenter fills into a short gap get interpolated values like any signal. A (0, 0)
"no fix" row has no position: steps from or to it are 0.

- `gps_step`: metres moved since the previous second (haversine between consecutive fixes).
- `heading_rate`: change of the GPS course (`dtg.events.gps_heading`) per second in degrees, signed,
  wrapped to (-180, 180]; 0 unless the vehicle moved at least `events._MIN_MOVE_M` in each of the
  steps the two headings are taken from, so that a value depends only on rows i-3 .. i+1 (never on a
  course held from far back) and scoring with a bounded lake context gives the training values.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from dtg.events import _MIN_MOVE_M, _bearing, _wrap, gps_heading

DERIVED: dict[str, tuple[str, ...]] = {"gps_step": ("lat", "lon"), "heading_rate": ("lat", "lon")}
"""Derived feature name -> the canonical columns it is computed from."""


def source_columns(features: Sequence[str]) -> tuple[str, ...]:
    """The canonical columns the features are read from: the plain ones in order, then the sources of
    derived ones not already listed."""
    out = [f for f in features if f not in DERIVED]
    for f in features:
        out += [c for c in DERIVED.get(f, ()) if c not in out]
    return tuple(out)


def derive(lat: np.ndarray, lon: np.ndarray, ts: np.ndarray, vstart: np.ndarray,
           features: Sequence[str]) -> dict[str, np.ndarray]:
    """The derived features among `features`, as float32 columns, from rows sorted by (vehicle, ts):
    `ts` epoch ms, `vstart` the first row of each vehicle. Computed in float64 from the lake's values
    (a float32 lat is only good to ~0.4 m); a step across a missing second is 0."""
    wanted = [f for f in features if f in DERIVED]
    if not wanted:
        return {}
    lat, lon, ts = (np.asarray(a, dtype=np.float64) for a in (lat, lon, ts))
    n = lat.shape[0]
    step_ok = np.zeros(n, dtype=bool)  # row i follows row i-1 of the same vehicle by one second
    step_ok[1:] = np.diff(ts) == 1000
    step_ok[np.asarray(vstart, dtype=np.int64)] = False
    fix = np.isfinite(lat) & np.isfinite(lon) & ~((lat == 0) & (lon == 0))
    dist = np.zeros(n)
    if n > 1:
        dist[1:] = _bearing(lat[:-1], lon[:-1], lat[1:], lon[1:])[1]
    good = step_ok & fix & np.roll(fix, 1)
    out = {"gps_step": np.where(good, dist, 0.0)}
    if "heading_rate" in wanted:
        # heading i is the mean of bearings i-1, i, i+1; the rate at i needs headings i-1 and i
        moved = good & (dist >= _MIN_MOVE_M)
        heading = gps_heading(lat, lon, step_ok, np.cumsum(~step_ok))
        rate = np.zeros(n)
        if n > 3:
            known = moved[:-3] & moved[1:-2] & moved[2:-1] & moved[3:]
            with np.errstate(invalid="ignore"):
                rate[2:-1] = np.where(known, _wrap(heading[2:-1] - heading[1:-2]), 0.0)
        out["heading_rate"] = rate
    return {f: out[f].astype(np.float32) for f in wanted}
