"""Dangerous-driving events on hand-built per-second sequences: at, just under and just over each
threshold, for each vehicle type."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dtg.errors import DtgError
from dtg.events import EVENT_TYPES, detect_events, heading_in_band, load_criteria
from dtg.schema import TS_TYPE

T0 = 1_700_000_000_000
CRIT = load_criteria()
TYPES = ("truck", "bus", "taxi")


def drive(speed, azimuth=None, vid="서울70사1000", t0=T0, ts=None, lat=None, lon=None, code=None) -> pa.Table:
    n = len(speed)
    ts = np.asarray(ts if ts is not None else t0 + np.arange(n) * 1000, dtype=np.int64)
    cols = {"vehicle_id": pa.array([vid] * n), "ts": pa.array(ts).cast(TS_TYPE),
            "speed": pa.array(np.asarray(speed, dtype=np.float32))}
    if azimuth is not None:
        cols["azimuth"] = pa.array(np.asarray(azimuth, dtype=np.float32))
    if lat is not None:
        cols["lat"] = pa.array(np.asarray(lat, dtype=np.float64))
        cols["lon"] = pa.array(np.asarray(lon, dtype=np.float64))
    if code is not None:
        cols["vehicle_type"] = pa.array([code] * n, pa.string())
    return pa.table(cols)


def events_of(table, vtype="truck", kind=None, **kw):
    ev = detect_events(table, vehicle_type=vtype, **kw).events
    rows = ev.to_pylist()
    return [r for r in rows if kind is None or r["type"] == kind]


def ms(ts) -> int:
    return int(pa.scalar(ts, TS_TYPE).cast(pa.int64()).as_py()) if not isinstance(ts, int) else ts


def step(v0: float, dv: float, before: int = 3, after: int = 3) -> list[float]:
    return [v0] * before + [v0 + dv] * after


# ---------------------------------------------------------------- the table itself


def test_bundled_table_holds_the_published_kotsa_numbers():
    expected = {  # DTG-DOMAIN.md, "The 11 dangerous-driving behaviours"
        "truck": ((7, 6, 5), 6, (8, 8, 8), 8, 20, 15, 6),
        "bus": ((8, 7, 6), 8, (9, 10, 12), 9, 25, 20, 8),
        "taxi": ((12, 10, 8), 10, (14, 14, 14), 14, 30, 25, 10),
    }
    for vtype, (acc, start, dec, stop, turn, uturn, lane) in expected.items():
        c = CRIT.by_type[vtype]
        assert (c.accel, c.start, c.decel, c.stop) == (acc, start, dec, stop)
        assert (c.turn_min_speed, c.uturn_min_speed, c.lane_rate) == (turn, uturn, lane)
        assert (c.speeding_margin, c.long_speeding_s, c.lane_min_speed) == (20, 180, 30)
    flat = load_criteria(version="kotsa-flat")
    got = {t: (flat.by_type[t].accel[0], flat.by_type[t].start, flat.by_type[t].decel[0], flat.by_type[t].stop)
           for t in TYPES}
    assert got == {"truck": (5, 5, 8, 8), "bus": (6, 6, 9, 9), "taxi": (8, 8, 14, 14)}


# ---------------------------------------------------------------- speed changes


@pytest.mark.parametrize("vtype", TYPES)
@pytest.mark.parametrize("band,v0", [(0, 8.0), (1, 15.0), (2, 40.0)])
def test_sudden_acceleration_at_under_and_over_each_band_threshold(vtype, band, v0):
    thr = CRIT.by_type[vtype].accel[band]
    assert events_of(drive(step(v0, thr - 0.1)), vtype, "sudden_acceleration") == []
    for dv in (thr, thr + 0.1):
        found = events_of(drive(step(v0, dv)), vtype, "sudden_acceleration")
        assert len(found) == 1
        assert (ms(found[0]["start"]), ms(found[0]["end"])) == (T0 + 2000, T0 + 3000)
        assert found[0]["peak_value"] == pytest.approx(dv, abs=1e-4)


def test_acceleration_band_is_chosen_by_the_speed_at_the_start_of_the_second():
    c = CRIT.by_type["truck"]  # 7 up to 10 km/h, 6 up to 20 km/h
    dv = (c.accel[0] + c.accel[1]) / 2
    assert events_of(drive(step(10.0, dv)), "truck", "sudden_acceleration") == []
    assert len(events_of(drive(step(11.0, dv)), "truck", "sudden_acceleration")) == 1


def test_acceleration_counts_only_from_6_kmh_below_that_it_is_a_start():
    thr = CRIT.by_type["bus"].accel[0]
    assert len(events_of(drive(step(6.0, thr)), "bus", "sudden_acceleration")) == 1
    assert events_of(drive(step(5.0, thr)), "bus", "sudden_acceleration") == []
    assert len(events_of(drive(step(5.0, thr)), "bus", "sudden_start")) == 1


@pytest.mark.parametrize("vtype", TYPES)
@pytest.mark.parametrize("v0", [0.0, 5.0])
def test_sudden_start_at_under_and_over_threshold(vtype, v0):
    thr = CRIT.by_type[vtype].start
    assert events_of(drive(step(v0, thr - 0.1)), vtype, "sudden_start") == []
    assert len(events_of(drive(step(v0, thr)), vtype, "sudden_start")) == 1
    assert len(events_of(drive(step(v0, thr + 0.1)), vtype, "sudden_start")) == 1


def test_sudden_start_needs_5_kmh_or_less_before():
    thr = CRIT.by_type["taxi"].start
    assert events_of(drive(step(5.5, thr)), "taxi", "sudden_start") == []


@pytest.mark.parametrize("vtype", TYPES)
@pytest.mark.parametrize("band,v0", [(0, 28.0), (1, 45.0), (2, 90.0)])
def test_sudden_deceleration_at_under_and_over_each_band_threshold(vtype, band, v0):
    thr = CRIT.by_type[vtype].decel[band]
    assert events_of(drive(step(v0, -(thr - 0.1))), vtype, "sudden_deceleration") == []
    for dv in (thr, thr + 0.1):
        found = events_of(drive(step(v0, -dv)), vtype, "sudden_deceleration")
        assert len(found) == 1 and found[0]["peak_value"] == pytest.approx(dv, abs=1e-4)


def test_bus_deceleration_band_edges_at_30_and_50_kmh():
    c = CRIT.by_type["bus"]  # 9 up to 30, 10 up to 50, 12 above
    assert len(events_of(drive(step(30.0, -c.decel[0])), "bus", "sudden_deceleration")) == 1
    assert events_of(drive(step(31.0, -c.decel[0])), "bus", "sudden_deceleration") == []
    assert len(events_of(drive(step(50.0, -c.decel[1])), "bus", "sudden_deceleration")) == 1
    assert events_of(drive(step(51.0, -c.decel[1])), "bus", "sudden_deceleration") == []


@pytest.mark.parametrize("vtype", TYPES)
def test_sudden_stop_at_under_and_over_threshold(vtype):
    thr = CRIT.by_type[vtype].stop
    v0 = thr + 3.0
    assert events_of(drive(step(v0, -(thr - 0.1))), vtype, "sudden_stop") == []
    assert len(events_of(drive(step(v0, -thr)), vtype, "sudden_stop")) == 1
    assert len(events_of(drive(step(v0, -(thr + 0.1))), vtype, "sudden_stop")) == 1


def test_stop_ends_at_5_kmh_or_less_above_that_it_is_a_deceleration():
    thr = CRIT.by_type["truck"].stop
    at5 = events_of(drive(step(5.0 + thr, -thr)), "truck")
    at6 = events_of(drive(step(6.0 + thr, -thr)), "truck")
    assert [e["type"] for e in at5] == ["sudden_stop"]
    assert [e["type"] for e in at6] == ["sudden_deceleration"]


def test_consecutive_flagged_seconds_form_one_event_with_the_largest_change():
    speeds = [20, 20, 28, 38, 45, 45]  # +8, +10, +7 per second, all sudden for a truck
    found = events_of(drive(speeds), "truck", "sudden_acceleration")
    assert len(found) == 1
    assert (ms(found[0]["start"]), ms(found[0]["end"])) == (T0 + 1000, T0 + 4000)
    assert found[0]["peak_value"] == 10


def test_no_speed_change_event_across_a_gap():
    ts = T0 + np.array([0, 1, 2, 7, 8, 9]) * 1000  # 5 s missing between rows 2 and 3
    assert events_of(drive([50, 50, 50, 10, 10, 10], ts=ts), "truck") == []
    assert events_of(drive([10, 10, 10, 50, 50, 50], ts=ts), "truck") == []


def test_no_event_between_the_last_row_of_one_vehicle_and_the_first_of_the_next():
    a = drive([60.0] * 5, vid="A")
    b = drive([0.0] * 5, vid="B", t0=T0 + 5000)
    assert events_of(pa.concat_tables([a, b]), "truck") == []


# ---------------------------------------------------------------- speeding


@pytest.mark.parametrize("vtype", TYPES)
def test_speeding_is_more_than_limit_plus_20(vtype):
    c = CRIT.by_type[vtype]
    at = c.speed_limit + c.speeding_margin
    assert events_of(drive([at] * 10), vtype, "speeding") == []
    found = events_of(drive([at - 1] * 3 + [at + 0.1] * 4 + [at - 1] * 3), vtype, "speeding")
    assert len(found) == 1
    assert (ms(found[0]["start"]), ms(found[0]["end"])) == (T0 + 3000, T0 + 6000)


@pytest.mark.parametrize("vtype", TYPES)
def test_long_speeding_needs_180_seconds(vtype):
    c = CRIT.by_type[vtype]
    over = c.speed_limit + c.speeding_margin + 5
    for seconds, expected in ((179, 0), (180, 1), (181, 1)):
        table = drive([over - 30] * 2 + [over] * seconds + [over - 30] * 2)
        assert len(events_of(table, vtype, "long_speeding")) == expected
        assert len(events_of(table, vtype, "speeding")) == 1


def test_a_gap_splits_speeding_so_long_speeding_needs_contiguous_seconds():
    ts = T0 + np.r_[np.arange(100), np.arange(110, 210)] * 1000
    table = drive([130.0] * 200, ts=ts)
    assert len(events_of(table, "truck", "speeding")) == 2
    assert events_of(table, "truck", "long_speeding") == []


def test_speed_limit_override_replaces_the_vehicle_type_limit():
    table = drive([95.0] * 10)
    assert events_of(table, "truck", "speeding") == []
    assert len(events_of(table, "truck", "speeding", speed_limit=70)) == 1
    with pytest.raises(DtgError):
        detect_events(table, vehicle_type="truck", speed_limit=-5)


# ---------------------------------------------------------------- heading


def turn(speed: float, total: float, steps: int, before: int = 3, after: int = 3, start: float = 90.0):
    az = [start] * before + [start + total * (k + 1) / steps for k in range(steps)] + [start + total] * after
    return drive([speed] * len(az), azimuth=np.mod(az, 360.0))


@pytest.mark.parametrize("vtype", TYPES)
def test_sudden_turn_speed_at_under_and_over_threshold(vtype):
    v = CRIT.by_type[vtype].turn_min_speed
    assert events_of(turn(v - 0.1, 90, 3), vtype, "sudden_right_turn") == []
    assert len(events_of(turn(v, 90, 3), vtype, "sudden_right_turn")) == 1
    assert len(events_of(turn(v + 0.1, -90, 3), vtype, "sudden_left_turn")) == 1


@pytest.mark.parametrize("vtype", TYPES)
def test_sudden_turn_angle_at_under_and_over_60_degrees_in_4_seconds(vtype):
    v = CRIT.by_type[vtype].turn_min_speed + 5
    assert events_of(turn(v, 59.9, 4), vtype, "sudden_right_turn") == []
    assert events_of(turn(v, 59.9, 5), vtype, "sudden_right_turn") == []
    found = events_of(turn(v, 60, 4), vtype, "sudden_right_turn")
    assert len(found) == 1 and found[0]["peak_value"] == pytest.approx(60, abs=1e-3)
    assert len(events_of(turn(v, -60.1, 4), vtype, "sudden_left_turn")) == 1
    assert events_of(turn(v, -60.1, 4), vtype, "sudden_right_turn") == []


def test_turn_window_spans_4_seconds_a_slower_turn_is_not_sudden():
    assert events_of(turn(40, 70, 6), "truck", "sudden_right_turn") == []  # 46.7 deg in any 4 s
    assert len(events_of(turn(40, 70, 4), "truck", "sudden_right_turn")) == 1


def test_heading_band_includes_both_ends():
    got = heading_in_band(np.array([59.9, 60.0, 120.0, 120.1]), 60.0, 120.0)
    assert got.tolist() == [False, True, True, False]


@pytest.mark.parametrize("vtype", TYPES)
def test_sudden_uturn_speed_and_angle_thresholds(vtype):
    v = CRIT.by_type[vtype].uturn_min_speed
    assert events_of(turn(v - 0.1, 180, 6), vtype, "sudden_uturn") == []
    assert len(events_of(turn(v, 180, 6), vtype, "sudden_uturn")) == 1
    assert len(events_of(turn(v, -160, 6), vtype, "sudden_uturn")) == 1
    assert events_of(turn(v + 1, 159.9, 6), vtype, "sudden_uturn") == []


def test_a_uturn_is_not_also_reported_as_a_left_turn():
    table = turn(40, -180, 6)
    kinds = [e["type"] for e in events_of(table, "truck")]
    assert kinds == ["sudden_uturn"]


def swerve(speeds, rate, back_to=0.0):
    az = [100.0] * 3 + [100.0 + rate] * 2 + [100.0 + back_to] * (len(speeds) - 5)
    return drive(speeds, azimuth=az)


@pytest.mark.parametrize("vtype", TYPES)
def test_sudden_lane_change_rate_at_under_and_over_threshold(vtype):
    rate = CRIT.by_type[vtype].lane_rate
    assert events_of(swerve([50.0] * 10, rate - 0.1), vtype, "sudden_lane_change") == []
    assert len(events_of(swerve([50.0] * 10, rate), vtype, "sudden_lane_change")) == 1
    assert len(events_of(swerve([50.0] * 10, -(rate + 0.1)), vtype, "sudden_lane_change")) == 1


def test_lane_change_needs_30_kmh_throughout():
    assert len(events_of(swerve([30.0] * 10, 8), "truck", "sudden_lane_change")) == 1
    assert events_of(swerve([29.9] * 10, 8), "truck", "sudden_lane_change") == []


def test_lane_change_needs_heading_back_within_2_degrees():
    assert len(events_of(swerve([50.0] * 10, 8, back_to=2.0), "truck", "sudden_lane_change")) == 1
    assert events_of(swerve([50.0] * 10, 8, back_to=2.1), "truck", "sudden_lane_change") == []


def test_lane_change_needs_speed_change_within_2_kmh_per_second():
    steady = list(50.0 + 2.0 * np.arange(10))
    faster = list(50.0 + 2.1 * np.arange(10))
    assert len(events_of(swerve(steady, 8), "truck", "sudden_lane_change")) == 1
    assert events_of(swerve(faster, 8), "truck", "sudden_lane_change") == []


@pytest.mark.parametrize("vtype", TYPES)
def test_sudden_overtaking_is_a_swerve_while_accelerating_3_kmh_per_second(vtype):
    rate = CRIT.by_type[vtype].lane_rate
    at = list(40.0 + 3.0 * np.arange(12))
    under = list(40.0 + 2.9 * np.arange(12))
    assert len(events_of(swerve(at, rate), vtype, "sudden_overtaking")) == 1
    assert events_of(swerve(under, rate), vtype, "sudden_overtaking") == []
    assert events_of(swerve(under, rate), vtype, "sudden_lane_change") == []
    assert events_of(swerve(at, rate - 0.1), vtype, "sudden_overtaking") == []


def test_heading_jumps_faster_than_60_degrees_per_second_are_noise():
    assert events_of(turn(50, 90, 1), "truck") == []
    assert len(events_of(turn(50, 90, 2), "truck", "sudden_right_turn")) == 1


def test_no_turn_across_a_gap():
    az = [0, 0, 0, 30, 60, 90, 90, 90]
    ts = T0 + np.array([0, 1, 2, 3, 10, 11, 12, 13]) * 1000
    assert events_of(drive([50] * 8, azimuth=az, ts=ts), "truck") == []


def track(headings_deg, speed_kmh):
    """GPS fixes of a vehicle moving at speed, taking each heading for one second."""
    lat, lon = [37.5], [127.0]
    for h in headings_deg:
        d = speed_kmh / 3.6 / 111_320.0
        lat.append(lat[-1] + d * np.cos(np.radians(h)))
        lon.append(lon[-1] + d * np.sin(np.radians(h)) / np.cos(np.radians(37.5)))
    return np.array(lat), np.array(lon)


def test_turns_from_the_gps_track_when_azimuth_is_missing():
    headings = [0] * 6 + [30, 60, 90] + [90] * 6
    lat, lon = track(headings, 40)
    table = drive([40.0] * len(lat), lat=lat, lon=lon)
    assert [e["type"] for e in events_of(table, "truck")] == ["sudden_right_turn"]
    lat, lon = track([0] * 6 + [-30, -60, -90] + [-90] * 6, 40)
    assert [e["type"] for e in events_of(drive([40.0] * len(lat), lat=lat, lon=lon), "truck")] == \
        ["sudden_left_turn"]


def test_gps_track_of_a_straight_drive_with_a_lost_fix_gives_no_turn():
    lat, lon = track([45] * 20, 50)
    lat[8], lon[8] = 0.0, 0.0  # (0, 0): no fix
    assert events_of(drive([50.0] * len(lat), lat=lat, lon=lon), "truck") == []


# ---------------------------------------------------------------- vehicle types, criteria files, summary


def test_auto_vehicle_type_from_the_dtg_header_code():
    tables = [drive([0.0], vid=v, code=c) for v, c in (("b", "11"), ("t", "21"), ("r", "32"), ("n", "41"))]
    tables.append(drive([0.0], vid="x"))
    summary = detect_events(pa.concat_tables(tables, promote_options="default"), vehicle_type="auto").summary
    got = dict(zip(summary.column("vehicle_id").to_pylist(), summary.column("vehicle_type").to_pylist()))
    assert got == {"b": "bus", "t": "taxi", "r": "truck", "n": "truck", "x": "truck"}
    how = dict(zip(summary.column("vehicle_id").to_pylist(), summary.column("vehicle_type_from").to_pylist()))
    assert how == {"b": "code 11", "t": "code 21", "r": "code 32", "n": "fallback", "x": "fallback"}


def test_auto_vehicle_type_changes_the_thresholds_used():
    seq = step(15.0, 7.0)  # sudden for a bus (7 in the 10-20 band), not for a taxi (10)
    assert len(events_of(drive(seq, code="12"), "auto", "sudden_acceleration")) == 1
    assert events_of(drive(seq, code="22"), "auto", "sudden_acceleration") == []


def test_flat_criteria_version_uses_one_threshold_for_every_band():
    flat = load_criteria(version="kotsa-flat")
    table = drive(step(8.0, 5.0))
    assert events_of(table, "truck", "sudden_acceleration") == []
    found = detect_events(table, flat, vehicle_type="truck").events
    assert found.column("type").to_pylist() == ["sudden_acceleration"]


def test_criteria_file_overrides_the_bundled_table(tmp_path):
    from importlib import resources

    text = resources.files("dtg").joinpath("data", "event_criteria.toml").read_text(encoding="utf-8")
    path = tmp_path / "mine.toml"
    path.write_text(text.replace("accel = [7.0, 6.0, 5.0]", "accel = [3.0, 3.0, 3.0]"), encoding="utf-8")
    mine = load_criteria(path)
    assert mine.by_type["truck"].accel == (3.0, 3.0, 3.0)
    assert len(detect_events(drive(step(30.0, 3.0)), mine, vehicle_type="truck").events) == 1


@pytest.mark.parametrize("edit,field", [
    (("start = 6.0\n", ""), "start"),
    (("stop = 8.0\n", "stop = 8.0\nstopp = 1\n"), "stopp"),
    (("start = 6.0\n", "start = \"fast\"\n"), "start"),
])
def test_bad_criteria_file_names_the_field(tmp_path, edit, field):
    from importlib import resources

    text = resources.files("dtg").joinpath("data", "event_criteria.toml").read_text(encoding="utf-8")
    path = tmp_path / "bad.toml"
    path.write_text(text.replace(*edit, 1), encoding="utf-8")
    with pytest.raises(DtgError) as err:
        load_criteria(path)
    assert err.value.field == field and str(path) in str(err.value)


def test_unknown_criteria_version_lists_the_versions():
    with pytest.raises(DtgError, match="kotsa-flat"):
        load_criteria(version="nope")


def test_summary_distance_from_speed_and_events_per_100km():
    table = drive([36.0] * 101 + [36.0 + 8.0] * 2)  # 100 s at 36 km/h = 1 km, then one sudden acceleration
    summary = detect_events(table, vehicle_type="truck").summary.to_pylist()[0]
    assert summary["distance_km"] == pytest.approx(1.0 + (36 + 44) / 2 / 3600 + 44 / 3600, rel=1e-6)
    assert summary["events_total"] == 1 and summary["sudden_acceleration"] == 1
    assert summary["events_per_100km"] == pytest.approx(100.0 / summary["distance_km"], rel=1e-6)
    assert summary["odometer_km"] is None


def test_summary_of_a_parked_vehicle_has_no_rate():
    summary = detect_events(drive([0.0] * 10), vehicle_type="bus").summary.to_pylist()[0]
    assert summary["distance_km"] == 0 and summary["events_per_100km"] is None


# ---------------------------------------------------------------- invariants


speeds_st = st.lists(st.floats(0, 140, allow_nan=False, width=32), min_size=2, max_size=60)


@settings(max_examples=40, deadline=None)
@given(a=speeds_st, b=speeds_st, gap=st.integers(0, 5), az=st.lists(st.floats(0, 359), min_size=60, max_size=60))
def test_events_of_two_vehicles_together_equal_each_alone(a, b, gap, az):
    ta = drive(a, azimuth=az[:len(a)], vid="A")
    tb = drive(b, azimuth=az[:len(b)], vid="B", t0=T0 + (len(a) + gap) * 1000)
    both = detect_events(pa.concat_tables([tb, ta]), vehicle_type="bus").events
    alone = pa.concat_tables([detect_events(ta, vehicle_type="bus").events,
                              detect_events(tb, vehicle_type="bus").events])
    assert both.to_pylist() == alone.to_pylist()


@settings(max_examples=40, deadline=None)
@given(speed=speeds_st, cut=st.integers(1, 59))
def test_events_never_span_a_gap(speed, cut):
    cut = min(cut, len(speed) - 1)
    ts = T0 + np.r_[np.arange(cut), np.arange(cut, len(speed)) + 3] * 1000
    ev = detect_events(drive(speed, ts=ts), vehicle_type="taxi").events
    gap_start, gap_end = T0 + (cut - 1) * 1000, T0 + (cut + 3) * 1000
    for e in ev.to_pylist():
        s, t = ms(e["start"]), ms(e["end"])
        assert s <= t
        assert t <= gap_start or s >= gap_end
        assert e["type"] in EVENT_TYPES


# ---------------------------------------------------------------- command line


def _lake_with(tmp_path, table):
    from dtg.lake import Lake
    from dtg.schema import conform

    n = table.num_rows
    full = table.append_column("source_file", pa.array(["t.dtg"] * n)).append_column(
        "source_row", pa.array(np.arange(1, n + 1), pa.int64()))
    for name in ("rpm", "brake", "lat", "lon"):
        if name not in full.column_names:
            full = full.append_column(name, pa.array(np.zeros(n)))
    Lake(tmp_path / "lake").write(conform(full))
    return tmp_path / "lake"


def test_cli_writes_events_and_summary_and_prints_one_json_object(tmp_path):
    import json

    import pyarrow.parquet as pq
    from typer.testing import CliRunner

    from dtg.cli import app

    lake = _lake_with(tmp_path, drive(step(20.0, 12.0) + [32.0] * 100 + [18.0], code="21"))
    res = CliRunner().invoke(app, ["events", "--lake", str(lake), "--out", str(tmp_path / "ev"), "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["counts"]["sudden_acceleration"] == 1 and out["counts"]["sudden_deceleration"] == 1
    assert out["per_vehicle"][0]["vehicle_type"] == "taxi"
    ev = pq.read_table(tmp_path / "ev" / "events.parquet")
    assert ev.column("type").to_pylist() == ["sudden_acceleration", "sudden_deceleration"]
    assert pq.read_table(tmp_path / "ev" / "summary.parquet").num_rows == 1
    res = CliRunner().invoke(app, ["events", "--lake", str(lake), "--out", str(tmp_path / "ev2"), "--json",
                                   "--vehicle-type", "truck", "--speed-limit", "10"])
    assert json.loads(res.stdout)["counts"]["speeding"] == 1


def test_cli_bad_criteria_file_is_one_line_naming_the_field(tmp_path):
    from typer.testing import CliRunner

    from dtg.cli import app

    lake = _lake_with(tmp_path, drive([10.0] * 5))
    bad = tmp_path / "c.toml"
    bad.write_text('default = "x"\n[x.common]\nstart = 1\n', encoding="utf-8")
    res = CliRunner().invoke(app, ["events", "--lake", str(lake), "--criteria", str(bad)])
    assert res.exit_code == 1 and "Traceback" not in res.stderr
    assert str(bad) in res.stderr and len(res.stderr.strip().splitlines()) == 1
