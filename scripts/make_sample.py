"""Build the bundled sample fleet in data/sample/ from the real traces in ../shared/realdata.

    .venv/bin/python scripts/make_sample.py [--realdata ../shared/realdata] [--out data/sample] [--seed 7]

Speed (and RPM where the source has it) comes from real drives; what the source lacks is derived
plausibly: RPM from a gear model, brake from deceleration (with the throttle released where the
source logs it), position integrated from speed along a random but smooth heading path inside
Korea, azimuth from that path, accelerations from speed and turn rate. A few realistic faults are
planted so the quarantine path shows in the demo. Deterministic for a given --seed.
See data/sample/README.md for sources and licences.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pyarrow as pa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dtg import atomic, schema  # noqa: E402
from dtg.readers.dtg_text import DtgHeader, to_bytes  # noqa: E402

SEOUL = ZoneInfo(schema.TZ)


def carobd(realdata: Path, names: list[str], gaps_s: list[int], start: dt.datetime) -> pd.DataFrame:
    """Concatenate carOBD drives (1 Hz: row i = second i) with parked gaps between them."""
    parts, t0 = [], start
    for name, gap in zip(names, gaps_s):
        d = pd.read_csv(realdata / "carobd" / f"{name}.csv.gz", index_col=False)
        d.columns = [c.replace(" ()", "").strip() for c in d.columns]
        ts = pd.date_range(t0, periods=len(d), freq="s")
        parts.append(pd.DataFrame({"ts": ts, "speed": d["VEHICLE_SPEED"].to_numpy(float),
                                   "rpm": d["ENGINE_RPM"].to_numpy(float), "throttle": d["THROTTLE"].to_numpy(float)}))
        t0 = ts[-1] + pd.Timedelta(seconds=gap)
    return pd.concat(parts, ignore_index=True)


def cmap(realdata: Path, name: str, day: dt.date) -> pd.DataFrame:
    """A real GPS-logged day from CMAP (fastsim), moved to `day`; keeps its real gaps."""
    d = pd.read_csv(realdata / "fastsim" / "cmap" / f"{name}.csv.gz")
    ts = pd.to_datetime(d["timestamp"])
    ts = ts - ts.dt.normalize() + pd.Timestamp(day)
    return pd.DataFrame({"ts": ts, "speed": np.round(d["speed_mph"].to_numpy(float) * 1.609344)})


def truck_cycle(realdata: Path, column: str, start: dt.datetime, repeats: int, gap_s: int) -> pd.DataFrame:
    """A VECTO truck cycle (carculator) driven `repeats` times with a stop of `gap_s` seconds between."""
    d = pd.read_csv(realdata / "carculator" / "truck_cycles.csv.gz", sep=";")
    v = d[column].to_numpy(float)
    v = v[~np.isnan(v)]
    last = np.flatnonzero(v > 0)[-1] + 1
    v = np.round(v[:last + 30])
    parts, t0 = [], pd.Timestamp(start)
    for _ in range(repeats):
        ts = pd.date_range(t0, periods=len(v), freq="s")
        parts.append(pd.DataFrame({"ts": ts, "speed": v}))
        t0 = ts[-1] + pd.Timedelta(seconds=gap_s)
    return pd.concat(parts, ignore_index=True)


def gear_rpm(speed: np.ndarray, rng: np.random.Generator, idle: float, kmh_per_krpm: list[float],
             shift_rpm: float) -> np.ndarray:
    """Diesel engine speed from road speed: the highest gear that keeps rpm above `shift_rpm` / 2."""
    ratios = np.asarray(kmh_per_krpm)
    rpm_all = speed[:, None] / ratios[None, :] * 1000.0
    ok = rpm_all >= shift_rpm / 2
    gear = np.where(ok.any(1), ok.shape[1] - 1 - np.argmax(ok[:, ::-1], axis=1), 0)
    rpm = rpm_all[np.arange(len(speed)), gear]
    rpm = np.where(speed < 2, idle, np.maximum(rpm, idle))
    return np.round(np.clip(rpm + rng.normal(0, 12, len(speed)), idle - 30, 2800))


def continuous(ts: pd.Series) -> np.ndarray:
    """True where a row follows the previous one by exactly one second."""
    step = ts.diff().dt.total_seconds().to_numpy()
    return np.nan_to_num(step, nan=0.0) == 1.0


def derive(df: pd.DataFrame, rng: np.random.Generator, home: tuple[float, float], radius_km: float) -> pd.DataFrame:
    """Add brake, position, azimuth, accelerations and distances to a (ts, speed[, rpm, throttle]) frame."""
    n = len(df)
    v = df["speed"].to_numpy(float)
    cont = continuous(df["ts"])
    dv = np.where(cont, np.diff(v, prepend=v[0]), 0.0) / 3.6  # m/s^2
    released = df["throttle"].to_numpy() <= df["throttle"].min() + 2.5 if "throttle" in df else np.ones(n, bool)
    brake = (dv <= -0.4) & released
    for i in range(1, n):  # hold the brake while standing after braking
        if not brake[i] and cont[i] and brake[i - 1] and v[i] == 0:
            brake[i] = True
    lat0, lon0 = home
    lat, lon = np.empty(n), np.empty(n)
    heading = np.empty(n)
    h, la, lo = rng.uniform(0, 360), lat0, lon0
    turn_left, turn_rate = 0, 0.0
    for i in range(n):
        ms = v[i] / 3.6
        if ms > 0.5:
            if turn_left == 0 and rng.random() < 0.004:  # a junction: 90 degrees over ~6 s
                turn_left, turn_rate = 6, rng.choice([-15.0, 15.0])
            if turn_left:
                h += turn_rate
                turn_left -= 1
            else:
                h += rng.normal(0, 1.2)
            dy, dx = (la - lat0) * 111.32, (lo - lon0) * 111.32 * np.cos(np.radians(lat0))
            if np.hypot(dx, dy) > radius_km:  # steer back towards home
                back = np.degrees(np.arctan2(-dx, -dy)) % 360
                h += np.clip(((back - h + 180) % 360) - 180, -3, 3)
            h %= 360
            la += ms * np.cos(np.radians(h)) / 111_320
            lo += ms * np.sin(np.radians(h)) / (111_320 * np.cos(np.radians(la)))
        lat[i], lon[i], heading[i] = la, lo, h
    yaw = np.where(cont, ((np.diff(heading, prepend=heading[0]) + 180) % 360) - 180, 0.0)
    accel_y = np.round(v / 3.6 * np.radians(yaw), 1)
    km = np.cumsum(v / 3600.0)
    out = df.assign(
        brake=brake.astype(np.int8), lat=np.round(lat, 6), lon=np.round(lon, 6), azimuth=np.round(heading) % 360,
        accel_x=np.round(dv, 1), accel_y=accel_y, daily_distance=np.floor(km), status=np.zeros(n, np.int16),
    )
    return out


def to_arrow(df: pd.DataFrame) -> pa.Table:
    ts = pd.DatetimeIndex(df["ts"]).tz_localize(SEOUL)
    cols = {"ts": pa.array(ts, schema.TS_TYPE)}
    for c in ("speed", "rpm", "brake", "lat", "lon", "daily_distance", "total_distance", "azimuth",
              "accel_x", "accel_y", "status"):
        cols[c] = pa.array(df[c].to_numpy())
    return pa.table(cols)


def write_dtg(path: Path, df: pd.DataFrame, header: DtgHeader) -> None:
    atomic.write_bytes(path, to_bytes(to_arrow(df), header))


def write_korean_csv(path: Path, df: pd.DataFrame, vehicle: str) -> None:
    """A vendor-style CSV export with Korean headers, CP949."""
    out = pd.DataFrame({
        "차량번호": vehicle,
        "일시": pd.DatetimeIndex(df["ts"]).strftime("%Y-%m-%d %H:%M:%S"),
        "속도(km/h)": df["speed"].astype(int),
        "엔진회전수(RPM)": df["rpm"].astype(int),
        "브레이크": df["brake"],
        "위도": df["lat"].map(lambda x: f"{x:.6f}"),
        "경도": df["lon"].map(lambda x: f"{x:.6f}"),
        "방위각": df["azimuth"].astype(int),
        "상태코드": df["status"].map(lambda s: f"{s:02d}"),
        "자동차유형": "22",
    })
    text = out.to_csv(index=False, lineterminator="\r\n")
    lines = text.split("\r\n")
    # Fault: one row whose time the device wrote garbled (an impossible hour).
    bad = len(lines) // 2
    cells = lines[bad].split(",")
    cells[1] = cells[1][:11] + "25" + cells[1][13:]
    lines[bad] = ",".join(cells)
    atomic.write_bytes(path, "\r\n".join(lines).encode("cp949"))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--realdata", type=Path, default=ROOT.parent / "shared" / "realdata")
    ap.add_argument("--out", type=Path, default=ROOT / "data" / "sample")
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    day = dt.date(2024, 5, 13)

    # 1. Corporate taxi, Busan: real speed AND rpm (carOBD drives), parked between drives.
    taxi = carobd(args.realdata, ["drive1", "drive2", "drive3"], [1500, 2400, 0],
                  dt.datetime.combine(day, dt.time(8, 5)))
    taxi = derive(taxi, rng, (35.1580, 129.0600), 8.0)
    taxi["total_distance"] = 184_322 + taxi["daily_distance"]
    fix = len(taxi) // 3  # fault: a second without GPS fix, written as (0, 0) with status 11
    taxi.loc[fix, ["lat", "lon"]] = 0.0
    taxi.loc[fix, "status"] = 11
    write_dtg(out / "부산32바5678_20240513.dtg", taxi,
              DtgHeader("DTG-S100", "KMHE341CBNA000123", "21", "부산32바5678", "6028100123", "9007151234567"))

    # 2. City bus, Seoul: real GPS-logged speed with real gaps (CMAP), rpm from a 6-gear diesel model.
    bus = cmap(args.realdata, "4107032_1_2007-05-23", day)
    bus["rpm"] = gear_rpm(bus["speed"].to_numpy(), rng, 650, [7, 12, 19, 28, 40, 55], 2000)
    bus = derive(bus, rng, (37.5547, 126.9706), 10.0)
    bus["total_distance"] = 412_907 + bus["daily_distance"]
    dup = len(bus) // 2  # fault: the device wrote one second twice
    bus = pd.concat([bus.iloc[:dup + 1], bus.iloc[[dup]], bus.iloc[dup + 1:]], ignore_index=True)
    write_dtg(out / "서울70사1234_20240513.dtg", bus,
              DtgHeader("DTG-B200", "KL5UM52FDEK000456", "11", "서울70사1234", "1018200456", "8503121234568"))

    # 3. General freight truck, Gyeonggi: VECTO regional-delivery cycle (18 t) twice; 12-speed gear model.
    truck = truck_cycle(args.realdata, "Regional delivery, 18t", dt.datetime.combine(day, dt.time(5, 40)), 3, 1800)
    truck["rpm"] = gear_rpm(truck["speed"].to_numpy(), rng, 600,
                            [4, 6, 8, 11, 14, 18, 23, 29, 36, 44, 52, 60], 1800)
    truck = derive(truck, rng, (37.2636, 127.0286), 15.0)
    truck["total_distance"] = 733_015 + truck["daily_distance"]
    flaky = slice(len(truck) // 4, len(truck) // 4 + 5)  # a speed-sensor fault flagged for 5 s (kept)
    truck.loc[truck.index[flaky], "status"] = 12
    write_dtg(out / "경기91아2345_20240513.dtg", truck,
              DtgHeader("DTG-T300", "KMFGA17LPHC000789", "31", "경기91아2345", "1358600789", "7711051234569"))

    # 4. Private taxi, Incheon, next day: real carOBD drives exported as a Korean-header CP949 CSV.
    ptaxi = carobd(args.realdata, ["ufpe1", "ufpe7"], [3000, 0], dt.datetime.combine(day + dt.timedelta(days=1),
                                                                                       dt.time(9, 30)))
    ptaxi = derive(ptaxi, rng, (37.4563, 126.7052), 8.0)
    ptaxi["total_distance"] = 96_210 + ptaxi["daily_distance"]
    write_korean_csv(out / "인천31사7890_20240514.csv", ptaxi, "인천31사7890")

    total = sum(f.stat().st_size for f in out.iterdir() if f.is_file())
    rows = len(taxi) + len(bus) + len(truck) + len(ptaxi)
    print(f"wrote {rows} rows in 4 files, {total / 1e6:.2f} MB, to {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
