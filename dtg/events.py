"""Rule-based dangerous-driving events (위험운전행동) from the per-second record.

The 11 KOTSA behaviours — speeding, long speeding, sudden acceleration, start, deceleration and stop,
sudden left and right turn, U-turn, overtaking and lane change — detected with numpy over the whole
canonical table at once: per-row thresholds come from the vehicle type of each row's vehicle, and a
step between two rows counts only when they are one second apart in the same vehicle, so no event
spans a gap. The numeric criteria live in a versioned data table (`dtg/data/event_criteria.toml`);
docs/events.md says where each number comes from.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, fields, replace
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from dtg.errors import DtgError
from dtg.schema import TS_TYPE

EVENT_TYPES: tuple[str, ...] = (
    "speeding", "long_speeding", "sudden_acceleration", "sudden_start", "sudden_deceleration",
    "sudden_stop", "sudden_left_turn", "sudden_right_turn", "sudden_uturn", "sudden_overtaking",
    "sudden_lane_change",
)
UNITS: dict[str, str] = {
    "speeding": "km/h", "long_speeding": "km/h", "sudden_acceleration": "km/h/s", "sudden_start": "km/h/s",
    "sudden_deceleration": "km/h/s", "sudden_stop": "km/h/s", "sudden_left_turn": "deg",
    "sudden_right_turn": "deg", "sudden_uturn": "deg", "sudden_overtaking": "deg/s",
    "sudden_lane_change": "deg/s",
}
"""Unit of each event type's peak value: speed, speed change per second, heading change, heading rate."""

VEHICLE_TYPES: tuple[str, ...] = ("truck", "bus", "taxi")

EVENTS_SCHEMA = pa.schema([
    ("vehicle_id", pa.string()), ("vehicle_type", pa.string()), ("type", pa.string()),
    ("start", TS_TYPE), ("end", TS_TYPE), ("peak_value", pa.float64()), ("unit", pa.string()),
])

_STEP_MS = (900, 1100)
"""A step between consecutive rows counts as one second when its length lies in this range (ms)."""
_MIN_MOVE_M = 1.0
"""GPS fixes closer than this give no bearing (the heading is held)."""
_EPS = 1e-4
"""Tolerance for float32 speeds compared against thresholds."""


@dataclass(frozen=True)
class Criteria:
    """The numeric criteria for one vehicle type (units: km/h, km/h per second, degrees, seconds)."""

    speed_limit: float
    speeding_margin: float
    long_speeding_s: int
    accel_min_speed: float
    accel_band_edges: tuple[float, float]
    accel: tuple[float, float, float]
    start_max_speed: float
    start: float
    decel_min_end_speed: float
    decel_band_edges: tuple[float, float]
    decel: tuple[float, float, float]
    stop_max_end_speed: float
    stop: float
    turn_window_s: int
    turn_min_deg: float
    turn_max_deg: float
    turn_min_speed: float
    uturn_window_s: int
    uturn_min_deg: float
    uturn_max_deg: float
    uturn_min_speed: float
    lane_min_speed: float
    lane_window_s: int
    lane_max_cum_deg: float
    lane_max_dv: float
    lane_rate: float
    overtake_min_accel: float
    max_heading_rate: float


_FIELDS = {f.name: f for f in fields(Criteria)}
_TUPLE_LEN = {"accel_band_edges": 2, "decel_band_edges": 2, "accel": 3, "decel": 3}


@dataclass(frozen=True)
class CriteriaSet:
    """One version of the criteria table: per vehicle type criteria and the header-code mapping."""

    version: str
    description: str
    by_type: dict[str, Criteria]
    vehicle_codes: dict[int, str]
    fallback: str
    source: str

    def with_speed_limit(self, limit: float | None) -> "CriteriaSet":
        """A copy with every vehicle type's speed limit set to `limit` (None: unchanged)."""
        if limit is None:
            return self
        if not (limit > 0 and math.isfinite(limit)):
            raise DtgError(f"speed limit must be a positive number of km/h, got {limit}", field="speed_limit")
        return replace(self, by_type={k: replace(c, speed_limit=float(limit)) for k, c in self.by_type.items()})


def _criteria_from(raw: dict[str, Any], where: str) -> Criteria:
    unknown = sorted(set(raw) - set(_FIELDS))
    if unknown:
        raise DtgError(f"unknown criterion '{unknown[0]}' (valid: {', '.join(_FIELDS)})", file=where,
                       field=unknown[0])
    values: dict[str, Any] = {}
    for name, f in _FIELDS.items():
        if name not in raw:
            raise DtgError("missing criterion", file=where, field=name)
        value = raw[name]
        try:
            if name in _TUPLE_LEN:
                if not isinstance(value, list) or len(value) != _TUPLE_LEN[name]:
                    raise ValueError(f"expected a list of {_TUPLE_LEN[name]} numbers")
                values[name] = tuple(float(v) for v in value)
            elif f.type == "int":
                if isinstance(value, bool) or int(value) != value or int(value) < 1:
                    raise ValueError("expected a positive whole number")
                values[name] = int(value)
            else:
                if isinstance(value, bool):
                    raise ValueError("expected a number")
                values[name] = float(value)
        except (TypeError, ValueError) as exc:
            raise DtgError(f"bad value {value!r}: {exc}", file=where, field=name) from None
    crit = Criteria(**values)
    if list(crit.accel_band_edges) != sorted(crit.accel_band_edges) or \
            list(crit.decel_band_edges) != sorted(crit.decel_band_edges):
        raise DtgError("band edges must be increasing", file=where, field="accel_band_edges")
    return crit


def load_criteria(path: str | Path | None = None, version: str | None = None) -> CriteriaSet:
    """Read a criteria table (the bundled one unless `path`) and pick `version` (else its default)."""
    if path is None:
        text = resources.files("dtg").joinpath("data", "event_criteria.toml").read_text(encoding="utf-8")
        where = "dtg/data/event_criteria.toml"
    else:
        where = str(path)
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise DtgError(f"cannot read criteria file: {exc.strerror}", file=where) from None
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise DtgError(f"not valid TOML: {exc}", file=where) from None
    version = version or doc.get("default")
    tables = sorted(k for k, v in doc.items() if isinstance(v, dict) and k != "vehicle_codes")
    if not version or version not in tables:
        raise DtgError(f"criteria version '{version}' not in the file (versions: {', '.join(tables)})",
                       file=where, field="version")
    table = doc[version]
    common = table.get("common", {})
    by_type = {}
    for vtype in VEHICLE_TYPES:
        if vtype not in table:
            raise DtgError(f"no criteria for vehicle type '{vtype}'", file=where, field=f"{version}.{vtype}")
        by_type[vtype] = _criteria_from({**common, **table[vtype]}, f"{where} [{version}.{vtype}]")
    codes_raw = doc.get("vehicle_codes", {})
    codes: dict[int, str] = {}
    for vtype in VEHICLE_TYPES:
        for code in codes_raw.get(vtype, []):
            codes[int(code)] = vtype
    fallback = codes_raw.get("fallback", "truck")
    if fallback not in VEHICLE_TYPES:
        raise DtgError(f"fallback vehicle type must be one of {', '.join(VEHICLE_TYPES)}", file=where,
                       field="vehicle_codes.fallback")
    return CriteriaSet(version=version, description=str(table.get("description", "")), by_type=by_type,
                       vehicle_codes=codes, fallback=fallback, source=where)


def resolve_vehicle_types(table: pa.Table, vehicle_type: str, criteria: CriteriaSet) -> dict[str, tuple[str, str]]:
    """Per vehicle: (criteria vehicle type, where it came from: "option", "code NN" or "fallback").

    `vehicle_type` truck/bus/taxi applies to all; "auto" reads each vehicle's DTG header code.
    """
    vehicles = pc.unique(table.column("vehicle_id")).to_pylist()
    if vehicle_type in VEHICLE_TYPES:
        return {v: (vehicle_type, "option") for v in vehicles}
    if vehicle_type != "auto":
        raise DtgError(f"unknown vehicle type '{vehicle_type}' (valid: {', '.join(VEHICLE_TYPES)}, auto)",
                       field="vehicle_type")
    out = {v: (criteria.fallback, "fallback") for v in vehicles}
    if "vehicle_type" not in table.column_names:
        return out
    pairs = table.select(["vehicle_id", "vehicle_type"]).filter(pc.is_valid(table.column("vehicle_type")))
    first = pairs.group_by("vehicle_id", use_threads=False).aggregate([("vehicle_type", "first")])
    for vid, code in zip(first.column("vehicle_id").to_pylist(), first.column("vehicle_type_first").to_pylist()):
        try:
            number = int(str(code).strip())
        except ValueError:
            continue
        if number in criteria.vehicle_codes:
            out[vid] = (criteria.vehicle_codes[number], f"code {number}")
    return out


@dataclass
class EventResult:
    """Event intervals (EVENTS_SCHEMA) and the per-vehicle summary table."""

    events: pa.Table
    summary: pa.Table
    criteria_version: str

    def counts(self) -> dict[str, int]:
        """Number of events per type (every type listed, zeros included)."""
        types = self.events.column("type").to_pylist()
        return {t: types.count(t) for t in EVENT_TYPES}


# ---------------------------------------------------------------- array helpers


def _col(table: pa.Table, name: str, dtype: Any = np.float64) -> np.ndarray:
    if name not in table.column_names:
        return np.full(table.num_rows, np.nan, dtype=dtype)
    return table.column(name).to_numpy(zero_copy_only=False).astype(dtype, copy=False)


def _window_reduce(x: np.ndarray, w: int, how: str) -> np.ndarray:
    """Reduce rows i-w..i (w+1 values) into position i; positions < w get NaN."""
    out = np.full(len(x), np.nan)
    if len(x) > w:
        view = np.lib.stride_tricks.sliding_window_view(x, w + 1)
        out[w:] = view.min(axis=1) if how == "min" else view.max(axis=1)
    return out


def _step_runs(flag: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(first, last) index of each run of consecutive True values."""
    f = np.concatenate(([False], flag, [False])).astype(np.int8)
    d = np.diff(f)
    return np.flatnonzero(d == 1), np.flatnonzero(d == -1) - 1


def _run_max(x: np.ndarray, first: np.ndarray, last: np.ndarray) -> np.ndarray:
    """Max of x over each disjoint, sorted run [first, last]."""
    if len(first) == 0:
        return np.zeros(0)
    padded = np.append(x, np.nan)
    return np.maximum.reduceat(padded, np.ravel(np.column_stack([first, last + 1])))[::2]


def _merge(starts: np.ndarray, ends: np.ndarray, peaks: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Merge row-index intervals that overlap or share a row; peak = max over the merged ones."""
    if len(starts) == 0:
        return starts, ends, peaks
    order = np.argsort(starts, kind="stable")
    s, e, p = starts[order], ends[order], peaks[order]
    run_end = np.maximum.accumulate(e)
    new = np.ones(len(s), dtype=bool)
    new[1:] = s[1:] > run_end[:-1]
    ms = s[new]
    me = np.maximum.reduceat(e, np.flatnonzero(new))
    mp = np.maximum.reduceat(p, np.flatnonzero(new))
    return ms, me, mp


def _bearing(lat0: np.ndarray, lon0: np.ndarray, lat1: np.ndarray, lon1: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Initial bearing (deg, 0 = north, clockwise) and distance (m) between fixes."""
    p0, p1 = np.radians(lat0), np.radians(lat1)
    dl = np.radians(lon1 - lon0)
    y = np.sin(dl) * np.cos(p1)
    x = np.cos(p0) * np.sin(p1) - np.sin(p0) * np.cos(p1) * np.cos(dl)
    bearing = np.degrees(np.arctan2(y, x)) % 360.0
    a = np.sin((p1 - p0) / 2) ** 2 + np.cos(p0) * np.cos(p1) * np.sin(dl / 2) ** 2
    dist = 2 * 6371008.8 * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))
    return bearing, dist


def _ffill_within(x: np.ndarray, seg: np.ndarray) -> np.ndarray:
    """Forward-fill NaNs, never across a segment boundary."""
    n = len(x)
    idx = np.where(~np.isnan(x), np.arange(n), -1)
    last = np.maximum.accumulate(idx)
    ok = (last >= 0)
    ok[ok] &= seg[last[ok]] == seg[ok]
    out = np.full(n, np.nan)
    out[ok] = x[last[ok]]
    return out


def gps_heading(lat: np.ndarray, lon: np.ndarray, step_ok: np.ndarray, seg: np.ndarray) -> np.ndarray:
    """Heading per row from the GPS track: bearing from the previous fix, held while (almost) still,
    smoothed by a centred 3-row circular mean within the segment. NaN where no bearing is known yet."""
    n = len(lat)
    fix = np.isfinite(lat) & np.isfinite(lon) & ~((lat == 0) & (lon == 0))
    raw = np.full(n, np.nan)
    if n > 1:
        b, d = _bearing(lat[:-1], lon[:-1], lat[1:], lon[1:])
        good = step_ok[1:] & fix[:-1] & fix[1:] & (d >= _MIN_MOVE_M)
        raw[1:][good] = b[good]
    held = _ffill_within(raw, seg)
    ok = ~np.isnan(held)
    sx = np.where(ok, np.sin(np.radians(held)), 0.0)
    cx = np.where(ok, np.cos(np.radians(held)), 0.0)
    same_prev = np.zeros(n, dtype=bool)
    same_prev[1:] = seg[1:] == seg[:-1]
    ssum, csum = sx.copy(), cx.copy()
    ssum[1:] += np.where(same_prev[1:], sx[:-1], 0.0)
    csum[1:] += np.where(same_prev[1:], cx[:-1], 0.0)
    ssum[:-1] += np.where(same_prev[1:], sx[1:], 0.0)
    csum[:-1] += np.where(same_prev[1:], cx[1:], 0.0)
    out = np.degrees(np.arctan2(ssum, csum)) % 360.0
    out[~ok] = np.nan
    return out


def _wrap(d: np.ndarray) -> np.ndarray:
    """Angle difference wrapped into (-180, 180]."""
    return 180.0 - (180.0 - d) % 360.0


# ---------------------------------------------------------------- detection


def detect_events(table: pa.Table, criteria: CriteriaSet | None = None, vehicle_type: str = "auto",
                  speed_limit: float | None = None) -> EventResult:
    """Dangerous-driving event intervals and the per-vehicle summary for a canonical table.

    `vehicle_type` is truck, bus, taxi or auto (from each vehicle's DTG header code); `speed_limit`
    (km/h) replaces every type's stand-in road limit.
    """
    criteria = (criteria or load_criteria()).with_speed_limit(speed_limit)
    for name in ("vehicle_id", "ts", "speed"):
        if name not in table.column_names:
            raise DtgError("missing column", field=name)
    table = table.sort_by([("vehicle_id", "ascending"), ("ts", "ascending")])
    resolved = resolve_vehicle_types(table, vehicle_type, criteria)
    types_by_vehicle = {v: t for v, (t, _) in resolved.items()}
    n = table.num_rows
    vid_enc = pc.dictionary_encode(table.column("vehicle_id")).combine_chunks()
    vidx = vid_enc.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    vnames = vid_enc.dictionary.to_pylist()
    ts = table.column("ts").cast(pa.int64()).to_numpy(zero_copy_only=False) if n else np.zeros(0, np.int64)
    speed = _col(table, "speed")

    # per-row criteria arrays from each vehicle's type
    tcode = {t: i for i, t in enumerate(VEHICLE_TYPES)}
    vt_of_v = np.array([tcode[types_by_vehicle[v]] for v in vnames], dtype=np.int64)
    tv = vt_of_v[vidx] if n else np.zeros(0, np.int64)
    crits = [criteria.by_type[t] for t in VEHICLE_TYPES]

    def param(name: str) -> np.ndarray:
        return np.array([getattr(c, name) for c in crits], dtype=np.float64)[tv]

    def banded(values: str, edges: str, at: np.ndarray) -> np.ndarray:
        band = np.zeros(n, dtype=np.int64)
        for k, c in enumerate(crits):
            rows = tv == k
            band[rows] = np.searchsorted(np.array(getattr(c, edges)), at[rows], side="left")
        table_ = np.array([getattr(c, values) for c in crits], dtype=np.float64)
        return table_[tv, band]

    # steps: row i-1 -> i is one second of the same vehicle with both speeds known
    step_ok = np.zeros(n, dtype=bool)
    if n > 1:
        dt = np.diff(ts)
        step_ok[1:] = (vidx[1:] == vidx[:-1]) & (dt >= _STEP_MS[0]) & (dt <= _STEP_MS[1]) \
            & np.isfinite(speed[1:]) & np.isfinite(speed[:-1])
    seg = np.cumsum(~step_ok)
    pos = np.arange(n) - np.searchsorted(seg, seg, side="left") if n else np.zeros(0, np.int64)
    v0 = np.empty(n)
    v0[0:1] = np.nan
    v0[1:] = speed[:-1]
    dv = speed - v0
    found: list[tuple[str, np.ndarray, np.ndarray, np.ndarray]] = []

    def add_steps(kind: str, flag: np.ndarray, peak: np.ndarray) -> None:
        first, last = _step_runs(flag & step_ok)
        peaks = _run_max(peak, first, last)
        found.append((kind, first - 1, last, peaks))

    # speed-change behaviours: a flagged step i covers rows i-1..i
    acc_thr = banded("accel", "accel_band_edges", v0)
    dec_thr = banded("decel", "decel_band_edges", v0)
    add_steps("sudden_acceleration", (v0 >= param("accel_min_speed") - _EPS) & (dv >= acc_thr - _EPS), dv)
    add_steps("sudden_start", (v0 <= param("start_max_speed") + _EPS) & (dv >= param("start") - _EPS), dv)
    add_steps("sudden_deceleration", (speed >= param("decel_min_end_speed") - _EPS) & (-dv >= dec_thr - _EPS), -dv)
    add_steps("sudden_stop", (speed <= param("stop_max_end_speed") + _EPS) & (-dv >= param("stop") - _EPS), -dv)

    # speeding: runs of rows over limit + margin, contiguous in time
    over = speed > param("speed_limit") + param("speeding_margin") + _EPS
    starts_run = over & ~(np.concatenate(([False], over[:-1])) & step_ok)
    run_id = np.cumsum(starts_run) * over
    if over.any():
        ids = run_id[over]
        rows = np.flatnonzero(over)
        bounds = np.flatnonzero(np.diff(np.concatenate(([0], ids))) != 0)
        first = rows[bounds]
        last = np.append(rows[bounds[1:] - 1], rows[-1])
        peaks = np.maximum.reduceat(speed[over], bounds)
    else:
        first = last = np.zeros(0, np.int64)
        peaks = np.zeros(0)
    found.append(("speeding", first, last, peaks))
    long_ = (last - first + 1) >= param("long_speeding_s")[first] if len(first) else np.zeros(0, bool)
    found.append(("long_speeding", first[long_], last[long_], peaks[long_]))

    # heading: azimuth where a whole segment has it, else the GPS track
    az = _col(table, "azimuth")
    az_ok = np.isfinite(az)
    seg_len = np.bincount(seg, minlength=seg.max() + 1 if n else 0)
    seg_az = np.bincount(seg, weights=az_ok.astype(float), minlength=len(seg_len))
    use_az = (seg_az == seg_len)[seg] if n else np.zeros(0, bool)
    heading = np.where(use_az, az % 360.0, np.nan)
    if n and not use_az.all():
        gh = gps_heading(_col(table, "lat"), _col(table, "lon"), step_ok, seg)
        heading = np.where(use_az, heading, gh)
    dh = np.zeros(n)
    h_ok = np.zeros(n, dtype=bool)
    if n > 1:
        dh[1:] = _wrap(heading[1:] - heading[:-1])
        h_ok[1:] = step_ok[1:] & np.isfinite(dh[1:])
    dh[~h_ok] = 0.0
    dh[np.abs(dh) > param("max_heading_rate")] = 0.0  # GPS noise
    cum_h = np.cumsum(dh)
    cum_bad = np.cumsum(~h_ok)

    def windows(w_name: str) -> list[tuple[int, np.ndarray]]:
        """(w, rows i whose w-second window i-w..i lies in one segment with headings known)."""
        out = []
        wv = param(w_name).astype(np.int64)
        for w in np.unique(wv):
            i = np.flatnonzero((wv == w) & (pos >= w))
            i = i[(cum_bad[i] - cum_bad[i - w]) == 0]
            out.append((int(w), i))
        return out

    def add_windows(kind: str, w: int, ends: np.ndarray, peaks: np.ndarray) -> None:
        found.append((kind, ends - w, ends, peaks))

    uturn_rows: list[tuple[np.ndarray, np.ndarray]] = []
    for w, i in windows("uturn_window_s"):
        delta = cum_h[i] - cum_h[i - w]
        vmin = _window_reduce(speed, w, "min")[i]
        hit = heading_in_band(np.abs(delta), param("uturn_min_deg")[i], param("uturn_max_deg")[i]) \
            & (vmin >= param("uturn_min_speed")[i] - _EPS)
        add_windows("sudden_uturn", w, i[hit], np.abs(delta[hit]))
        uturn_rows.append((i[hit] - w, i[hit]))
    for w, i in windows("turn_window_s"):
        delta = cum_h[i] - cum_h[i - w]
        vmin = _window_reduce(speed, w, "min")[i]
        fast = vmin >= param("turn_min_speed")[i] - _EPS
        lo, hi = param("turn_min_deg")[i], param("turn_max_deg")[i]
        right = fast & heading_in_band(delta, lo, hi)
        left = fast & heading_in_band(-delta, lo, hi)
        add_windows("sudden_right_turn", w, i[right], delta[right])
        add_windows("sudden_left_turn", w, i[left], -delta[left])
    for w, i in windows("lane_window_s"):
        delta = cum_h[i] - cum_h[i - w]
        vmin = _window_reduce(speed, w, "min")[i]
        rate = _window_reduce(np.abs(dh), w - 1, "max")[i] if w > 1 else np.abs(dh)[i]
        max_dv = _window_reduce(np.abs(np.nan_to_num(dv)), w - 1, "max")[i] if w > 1 else np.abs(dv)[i]
        mean_acc = (speed[i] - speed[i - w]) / w
        swerve = (vmin >= param("lane_min_speed")[i] - _EPS) & (np.abs(delta) <= param("lane_max_cum_deg")[i] + _EPS) \
            & (rate >= param("lane_rate")[i] - _EPS)
        lane = swerve & (max_dv <= param("lane_max_dv")[i] + _EPS)
        overtake = swerve & (mean_acc >= param("overtake_min_accel")[i] - _EPS)
        add_windows("sudden_lane_change", w, i[lane], rate[lane])
        add_windows("sudden_overtaking", w, i[overtake], rate[overtake])

    # merge per type; drop left/right turns that are part of a U-turn
    merged: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    for kind in EVENT_TYPES:
        parts = [f for f in found if f[0] == kind]
        s = np.concatenate([p[1] for p in parts]).astype(np.int64) if parts else np.zeros(0, np.int64)
        e = np.concatenate([p[2] for p in parts]).astype(np.int64) if parts else np.zeros(0, np.int64)
        p = np.concatenate([p[3] for p in parts]).astype(np.float64) if parts else np.zeros(0)
        merged[kind] = _merge(s, e, p) if kind not in ("speeding", "long_speeding") else (s, e, p)
    us, ue, _ = merged["sudden_uturn"]
    if len(us):
        for kind in ("sudden_left_turn", "sudden_right_turn"):
            s, e, p = merged[kind]
            k = np.searchsorted(us, e, side="right") - 1  # last U-turn starting at or before e
            inside = (k >= 0) & (ue[np.clip(k, 0, None)] >= s)
            merged[kind] = (s[~inside], e[~inside], p[~inside])

    events = _events_table(merged, vidx, vnames, ts, types_by_vehicle)
    summary = _summary(table, events, vidx, vnames, speed, ts, step_ok, resolved)
    return EventResult(events=events, summary=summary, criteria_version=criteria.version)


def heading_in_band(delta: np.ndarray, lo: np.ndarray | float, hi: np.ndarray | float) -> np.ndarray:
    """True where a cumulative heading change lies within [lo, hi] degrees (both ends included)."""
    return (delta >= np.asarray(lo) - _EPS) & (delta <= np.asarray(hi) + _EPS)


def _events_table(merged: dict, vidx: np.ndarray, vnames: list, ts: np.ndarray,
                  types_by_vehicle: dict) -> pa.Table:
    cols: dict[str, list] = {k: [] for k in ("vid", "type", "s", "e", "p")}
    for kind in EVENT_TYPES:
        s, e, p = merged[kind]
        cols["vid"].append(vidx[s])
        cols["type"].append(np.full(len(s), EVENT_TYPES.index(kind)))
        cols["s"].append(ts[s])
        cols["e"].append(ts[e])
        cols["p"].append(p)
    vid = np.concatenate(cols["vid"]).astype(np.int64)
    typ = np.concatenate(cols["type"]).astype(np.int64)
    start = np.concatenate(cols["s"]).astype(np.int64)
    end = np.concatenate(cols["e"]).astype(np.int64)
    peak = np.concatenate(cols["p"]).astype(np.float64)
    order = np.lexsort((typ, start, vid))
    vid, typ, start, end, peak = vid[order], typ[order], start[order], end[order], peak[order]
    names = np.array(vnames, dtype=object)
    kinds = np.array(EVENT_TYPES, dtype=object)
    return pa.table({
        "vehicle_id": pa.array(names[vid].tolist(), pa.string()),
        "vehicle_type": pa.array([types_by_vehicle[v] for v in names[vid]], pa.string()),
        "type": pa.array(kinds[typ].tolist(), pa.string()),
        "start": pa.array(start, pa.int64()).cast(TS_TYPE),
        "end": pa.array(end, pa.int64()).cast(TS_TYPE),
        "peak_value": pa.array(np.round(peak, 6), pa.float64()),
        "unit": pa.array([UNITS[k] for k in kinds[typ]], pa.string()),
    }, schema=EVENTS_SCHEMA)


def _summary(table: pa.Table, events: pa.Table, vidx: np.ndarray, vnames: list, speed: np.ndarray,
             ts: np.ndarray, step_ok: np.ndarray, resolved: dict[str, tuple[str, str]]) -> pa.Table:
    nv = len(vnames)
    dist = np.zeros(nv)
    if len(ts) > 1:
        seconds = np.diff(ts) / 1000.0
        km = (speed[1:] + speed[:-1]) / 2.0 * seconds / 3600.0
        np.add.at(dist, vidx[1:][step_ok[1:]], km[step_ok[1:]])
    rows = np.bincount(vidx, minlength=nv) if len(vidx) else np.zeros(nv, np.int64)
    odo = np.full(nv, np.nan)
    total = _col(table, "total_distance")
    okd = np.isfinite(total)
    if okd.any():
        hi = np.full(nv, -np.inf)
        lo = np.full(nv, np.inf)
        np.maximum.at(hi, vidx[okd], total[okd])
        np.minimum.at(lo, vidx[okd], total[okd])
        has = np.isfinite(hi)
        odo[has] = hi[has] - lo[has]
    ev_vid = events.column("vehicle_id").to_pylist()
    ev_type = events.column("type").to_pylist()
    index = {v: i for i, v in enumerate(vnames)}
    counts = np.zeros((nv, len(EVENT_TYPES)), dtype=np.int64)
    for v, t in zip(ev_vid, ev_type):
        counts[index[v], EVENT_TYPES.index(t)] += 1
    totals = counts.sum(axis=1)
    per100 = np.where(dist > 0, totals / np.where(dist > 0, dist, 1) * 100.0, np.nan)
    data: dict[str, pa.Array] = {
        "vehicle_id": pa.array(vnames, pa.string()),
        "vehicle_type": pa.array([resolved[v][0] for v in vnames], pa.string()),
        "vehicle_type_from": pa.array([resolved[v][1] for v in vnames], pa.string()),
        "seconds": pa.array(rows, pa.int64()),
        "distance_km": pa.array(np.round(dist, 6), pa.float64()),
        "odometer_km": pa.array(odo, pa.float64(), mask=~np.isfinite(odo)),
        "events_total": pa.array(totals, pa.int64()),
        "events_per_100km": pa.array(np.round(per100, 6), pa.float64(), mask=~np.isfinite(per100)),
    }
    for k, t in enumerate(EVENT_TYPES):
        data[t] = pa.array(counts[:, k], pa.int64())
    return pa.table(data)


def write_events(result: EventResult, out_dir: str | Path) -> dict[str, str]:
    """Write `events.parquet` and `summary.parquet` into `out_dir` atomically; return their paths."""
    from dtg.atomic import write_parquet

    out = Path(out_dir)
    paths = {"events": out / "events.parquet", "summary": out / "summary.parquet"}
    write_parquet(paths["events"], result.events)
    write_parquet(paths["summary"], result.summary)
    return {k: str(v) for k, v in paths.items()}
