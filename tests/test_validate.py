"""Row validation: every reason code, its precedence, the Korea bounding-box policy, and the partition invariant."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dtg import schema
from dtg.validate import REASONS, outside_korea, validate

KST = ZoneInfo("Asia/Seoul")
T0 = dt.datetime(2024, 5, 13, 8, tzinfo=KST)


def table(n: int = 5, **overrides) -> pa.Table:
    cols = {
        "vehicle_id": ["서울70사1234"] * n,
        "ts": [T0 + dt.timedelta(seconds=i) for i in range(n)],
        "speed": [30.0] * n, "rpm": [1200.0] * n, "brake": [0] * n,
        "lat": [37.5] * n, "lon": [127.0] * n,
        "source_file": ["f.dtg"] * n, "source_row": list(range(2, n + 2)),
    }
    cols.update(overrides)
    t = pa.table({k: pa.array(v, schema.BY_NAME[k].type) for k, v in cols.items()})
    from dtg.readers.base import canonical

    return canonical(t)


def reasons_of(t: pa.Table) -> list[tuple[int, str]]:
    good, rej = validate(t)
    assert good.num_rows + rej.num_rows == t.num_rows
    return [(r["row"], r["reason"]) for r in rej.to_pylist()]


def test_valid_rows_pass_untouched():
    t = table()
    good, rej = validate(t)
    assert rej.num_rows == 0 and good.equals(t)


@pytest.mark.parametrize("column,value,reason", [
    ("speed", 255.5, "speed_out_of_range"),
    ("speed", -1.0, "speed_out_of_range"),
    ("speed", float("nan"), "bad_number:speed"),
    ("rpm", 10000.0, "rpm_out_of_range"),
    ("brake", 2, "brake_out_of_range"),
    ("lat", 91.0, "lat_out_of_range"),
    ("lon", -180.5, "lon_out_of_range"),
    ("azimuth", 361.0, "azimuth_out_of_range"),
    ("accel_x", 100.1, "accel_x_out_of_range"),
    ("accel_y", -150.0, "accel_y_out_of_range"),
    ("daily_distance", 10000.0, "daily_distance_out_of_range"),
    ("total_distance", -5.0, "total_distance_out_of_range"),
    ("status", 100, "status_out_of_range"),
])
def test_each_range_violation_has_its_own_reason(column, value, reason):
    n = 4
    base = table(n).column(column).to_pylist()
    vals = [v if v is not None else 0 for v in base]
    vals[2] = value
    t = table(n, **{column: vals})
    assert reasons_of(t) == [(4, reason)]
    assert reason in REASONS


def test_gps_zero_zero_is_no_fix():
    assert reasons_of(table(3, lat=[37.5, 0.0, 0.0], lon=[127.0, 0.0, 127.0])) == [(3, "gps_no_fix")]


@pytest.mark.parametrize("lat, lon, expected", [
    ([float("nan"), 0.0, -0.0, None], [0.0, 0.0, 0.0, 0.0], [(2, "bad_number:lat"), (3, "gps_no_fix"),
                                                            (4, "gps_no_fix")]),
    ([float("nan"), 0.0, -0.0, 37.5], [0.0, 0.0, 0.0, 127.0], [(2, "bad_number:lat"), (3, "gps_no_fix"),
                                                            (4, "gps_no_fix")]),  # NaN, no nulls
    ([37.5, 0.0, -0.0, 12.0], [127.0, 10.0, 5.0, 0.0], []),  # lat 0 or lon 0 alone is a position
    ([-10.0, 10.0, 37.5, 37.5], [0.0, 0.0, 127.0, 127.0], []),  # 0 within the range, never taken
])
def test_a_no_fix_needs_both_coordinates_exactly_zero(lat, lon, expected):
    assert reasons_of(table(4, lat=lat, lon=lon)) == expected


def test_missing_timestamp_and_vehicle_are_rejected():
    t = table(3)
    t = t.set_column(1, "ts", pa.array([T0, None, T0 + dt.timedelta(seconds=2)], schema.TS_TYPE))
    t = t.set_column(0, "vehicle_id", pa.array(["v", "v", None]))
    assert reasons_of(t) == [(3, "bad_timestamp"), (4, "missing:vehicle_id")]


def test_second_occurrence_of_a_timestamp_is_a_duplicate():
    ts = [T0, T0 + dt.timedelta(seconds=1), T0 + dt.timedelta(seconds=1), T0 + dt.timedelta(seconds=2)]
    assert reasons_of(table(4, ts=ts)) == [(4, "duplicate_timestamp")]


def test_same_second_of_two_vehicles_is_not_a_duplicate():
    assert reasons_of(table(2, vehicle_id=["a", "b"], ts=[T0, T0])) == []


def test_duplicate_keeps_the_first_valid_row_not_a_rejected_one():
    t = table(2, ts=[T0, T0], speed=[999.0, 10.0])
    good, rej = validate(t)
    assert [r["reason"] for r in rej.to_pylist()] == ["speed_out_of_range"]
    assert good.column("speed").to_pylist() == [10.0]


def test_clock_going_backwards_rejects_the_row_earlier_than_its_predecessor():
    s = [10, 11, 5, 12, 13]
    ts = [T0 + dt.timedelta(seconds=x) for x in s]
    assert reasons_of(table(5, ts=ts)) == [(4, "clock_backwards")]


def test_clock_is_checked_per_vehicle():
    ts = [T0 + dt.timedelta(seconds=x) for x in (10, 1, 11, 2)]
    assert reasons_of(table(4, vehicle_id=["a", "b", "a", "b"], ts=ts)) == []


def test_first_failing_check_gives_the_reason():
    ts = [T0, T0]
    assert reasons_of(table(2, ts=ts, lat=[37.5, 0.0], lon=[127.0, 0.0])) == [(3, "gps_no_fix")]


def test_outside_korea_but_on_earth_is_kept_and_flagged():
    t = table(3, lat=[37.5, 52.5, 33.2], lon=[127.0, 13.4, 126.5])  # Seoul, Berlin, Jeju
    good, rej = validate(t)
    assert rej.num_rows == 0 and good.num_rows == 3
    assert outside_korea(good).tolist() == [False, True, False]


def test_non_zero_status_code_is_kept_with_its_code():
    good, rej = validate(table(2, status=[0, 11]))
    assert rej.num_rows == 0 and good.column("status").to_pylist() == [0, 11]


def test_rejects_carry_raw_text_from_the_callback():
    t = table(2, speed=[10.0, 300.0])
    _, rej = validate(t, raw_text=lambda rows: [f"line {r}" for r in rows])
    assert rej.to_pylist() == [{"file": "f.dtg", "row": 3, "raw": "line 3", "reason": "speed_out_of_range"}]


@settings(max_examples=40, deadline=None)
@given(
    secs=st.lists(st.integers(0, 30), min_size=1, max_size=40),
    speeds=st.lists(st.sampled_from([0.0, 50.0, 300.0, -3.0]), min_size=40, max_size=40),
    vehicles=st.lists(st.sampled_from(["a", "b"]), min_size=40, max_size=40),
)
def test_every_row_is_either_kept_or_rejected_and_kept_rows_are_clean(secs, speeds, vehicles):
    n = len(secs)
    t = table(n, ts=[T0 + dt.timedelta(seconds=s) for s in secs], speed=speeds[:n], vehicle_id=vehicles[:n])
    good, rej = validate(t)
    assert good.num_rows + rej.num_rows == n
    assert sorted(good.column("source_row").to_pylist() + rej.column("row").to_pylist()) == list(range(2, n + 2))
    keys = list(zip(good.column("vehicle_id").to_pylist(), good.column("ts").to_pylist()))
    assert len(keys) == len(set(keys))
    sp = np.array(good.column("speed").to_pylist())
    assert ((sp >= 0) & (sp <= 255)).all()


@pytest.mark.parametrize("lat, lon, expected", [
    ([37.5, 35.1, 33.5], [127.0, 129.0, 126.5], [False, False, False]),  # all inside: no per-row check needed
    ([37.5, 37.5, None], [127.0, 140.0, 127.0], [False, True, False]),  # only the longitude leaves the box
    ([37.5, float("nan"), 37.5], [127.0, 127.0, 10.0], [False, False, True]),
])
def test_outside_korea_looks_at_both_coordinates_of_every_row(lat, lon, expected):
    assert outside_korea(table(3, lat=lat, lon=lon)).tolist() == expected


@pytest.mark.parametrize("value, reason", [(300.0, "speed_out_of_range"), (float("nan"), "bad_number:speed")])
def test_a_bad_value_in_a_later_chunk_of_a_column_is_found(value, reason):
    t = table(6, speed=[30.0, 31.0, 32.0, 33.0, value, 35.0])
    t = pa.concat_tables([t.slice(0, 3), t.slice(3)])
    assert t.column("speed").num_chunks == 2
    assert reasons_of(t) == [(6, reason)]
