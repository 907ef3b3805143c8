"""Derived window features (gps_step, heading_rate): hand-made tracks, segment locality, CLI."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from dtg import schema
from dtg.cli import app
from dtg.errors import DtgError
from dtg.features import source_columns
from dtg.splits import SplitSpec
from dtg.windowset import build_window_set, check_features
from test_scoring_support import drive_table, write_dtg

torch.set_num_threads(1)

M_PER_DEG_LAT = 111_195.0  # mean Earth radius 6371.0088 km
T0_MS = 1_715_554_800_000
MOTION = ("gps_step", "heading_rate")


def track(bearings: list[float], speed_kmh: float = 36.0, lat0: float = 37.5, lon0: float = 127.0,
          vehicle: str = "v1", t0_ms: int = T0_MS) -> pa.Table:
    """A 1 Hz track: the first fix at (lat0, lon0), then one second along each bearing (deg) at
    `speed_kmh` (flat-earth steps, a few metres each)."""
    step = speed_kmh / 3.6
    lat, lon = [lat0], [lon0]
    for b in bearings:
        lat.append(lat[-1] + step * np.cos(np.radians(b)) / M_PER_DEG_LAT)
        lon.append(lon[-1] + step * np.sin(np.radians(b)) / (M_PER_DEG_LAT * np.cos(np.radians(lat[-2]))))
    n = len(lat)
    return pa.table({
        "vehicle_id": pa.array([vehicle] * n),
        "ts": pa.array(t0_ms + np.arange(n, dtype=np.int64) * 1000).cast(schema.TS_TYPE),
        "speed": pa.array(np.full(n, speed_kmh, np.float32)),
        "lat": pa.array(np.asarray(lat)),
        "lon": pa.array(np.asarray(lon)),
    })


def motion(table: pa.Table, max_gap: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """(rows, 2) gps_step, heading_rate of the table's segment rows, and each row's ts (epoch ms)."""
    ws = build_window_set(table, size=1, features=("speed", *MOTION), max_gap=max_gap,
                          split=SplitSpec.parse("1,0,0"))
    return np.asarray(ws.values[:, 1:]), np.asarray(ws.ts)


def test_a_straight_drive_moves_speed_over_3_6_metres_a_second_and_does_not_turn():
    for bearing in (0.0, 90.0, 225.0):
        values, _ = motion(track([bearing] * 40, speed_kmh=54.0))
        assert values[0, 0] == 0  # the first row of the segment
        np.testing.assert_allclose(values[1:, 0], 54.0 / 3.6, rtol=0.01)
        np.testing.assert_allclose(values[:, 1], 0.0, atol=0.5)


@pytest.mark.parametrize("turn", [90.0, -90.0])
def test_a_90_degree_turn_over_3_seconds_sums_to_90_degrees_of_heading_rate(turn):
    start = 350.0  # the turn crosses north: the rate is wrapped, not a 360-degree jump
    bearings = [start] * 15 + [start + turn * k / 4 for k in (1, 2, 3)] + [start + turn] * 15
    values, _ = motion(track(bearings))
    rate = values[:, 1]
    assert abs(rate.sum() - turn) < 3
    assert (np.sign(rate[np.abs(rate) > 1]) == np.sign(turn)).all()


def test_a_gap_resets_both_features_to_zero():
    t = track([0.0] * 40)
    keep = np.ones(t.num_rows, dtype=bool)
    keep[20:25] = False  # 5 missing seconds
    gapped = t.filter(pa.array(keep))
    values, ts = motion(gapped)
    after = int(np.flatnonzero(ts == T0_MS + 25_000)[0])
    assert values[after].tolist() == [0.0, 0.0]
    np.testing.assert_allclose(values[after + 1:, 0], 10.0, rtol=0.01)
    # the gap filled by interpolation (max_gap 6) stays inside the segment, but no step is taken across it
    filled, ts = motion(gapped, max_gap=6)
    assert len(ts) == 41 and filled[25, 0] == 0.0 and filled[26, 0] == pytest.approx(10.0, rel=0.01)


def test_a_no_fix_row_is_zero_and_does_not_make_its_neighbours_jump():
    t = track([45.0] * 40)
    lat, lon = t.column("lat").to_numpy().copy(), t.column("lon").to_numpy().copy()
    lat[20] = lon[20] = 0.0
    t = t.set_column(3, "lat", pa.array(lat)).set_column(4, "lon", pa.array(lon))
    values, _ = motion(t)
    assert values[20].tolist() == [0.0, 0.0] and values[21].tolist() == [0.0, 0.0]
    assert values[:, 0].max() < 10.1 and np.abs(values[:, 1]).max() < 0.5
    np.testing.assert_allclose(values[22:, 0], 10.0, rtol=0.01)


def test_two_vehicles_never_see_each_other():
    a = track([0.0] * 30, vehicle="a")
    b = track([90.0] * 30, vehicle="b", lat0=35.1, lon0=129.0)  # Busan, 300 km away, same seconds
    both, _ = motion(pa.concat_tables([b, a]))  # not sorted by vehicle: sorted inside
    alone_a, _ = motion(a)
    alone_b, _ = motion(b)
    np.testing.assert_array_equal(both, np.concatenate([alone_a, alone_b]))
    assert both[31].tolist() == [0.0, 0.0] and both[:, 0].max() < 10.1


@settings(max_examples=40, deadline=None)
@given(seg=st.lists(st.floats(0, 359), min_size=1, max_size=25),
       before=st.lists(st.floats(0, 359), min_size=0, max_size=10),
       after=st.lists(st.floats(0, 359), min_size=0, max_size=10),
       gap_s=st.integers(2, 30), speed=st.floats(0, 130), jump=st.floats(-0.5, 0.5))
def test_values_never_depend_on_rows_outside_their_segment(seg, before, after, gap_s, speed, jump):
    """The segment's values are the same alone and between other tracks (across gaps, at any place)."""
    mid = track(seg, speed_kmh=speed)
    n = mid.num_rows
    parts = [mid]
    if before:
        parts.insert(0, track(before, speed_kmh=120, lat0=37.5 + jump, lon0=127.0 - jump,
                              t0_ms=T0_MS - (len(before) + gap_s) * 1000))
    if after:
        parts.append(track(after, speed_kmh=120, lat0=37.5 - jump, lon0=127.0 + jump,
                           t0_ms=T0_MS + (n - 1 + gap_s) * 1000))
    alone, _ = motion(mid)
    around, ts = motion(pa.concat_tables(parts))
    start = int(np.flatnonzero(ts == T0_MS)[0])
    np.testing.assert_array_equal(around[start:start + n], alone)


def test_feature_names_list_the_derived_ones_and_need_their_source_columns():
    assert check_features("speed,gps_step,heading_rate") == ("speed", "gps_step", "heading_rate")
    with pytest.raises(DtgError, match="gps_step, heading_rate"):
        check_features("speed,gps_jump")
    assert source_columns(("speed", "gps_step", "heading_rate")) == ("speed", "lat", "lon")
    assert source_columns(("lon", "gps_step", "lat")) == ("lon", "lat")


def test_train_and_score_from_the_command_line_with_a_derived_feature(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    drive = drive_table(n=300, seed=21, spikes=(150,))
    write_dtg(tmp_path / "logs" / "a.dtg", drive.slice(0, 150))
    write_dtg(tmp_path / "logs" / "b.dtg", drive.slice(150))

    def dtg(*args: str) -> dict:
        result = CliRunner().invoke(app, [*args, "--json"])
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)

    dtg("ingest", "logs", "--lake", "lake")
    windows = dtg("window", "--lake", "lake", "--out", "windows", "--size", "8",
                  "--features", "speed,rpm,brake,gps_step")
    assert windows["features"] == ["speed", "rpm", "brake", "gps_step"]
    trained = dtg("train", "--windows", "windows", "--models", "models", "--model", "mlp-ae", "--name", "m",
                  "--epochs", "1", "--hidden", "8", "--device", "cpu")
    card = json.loads((tmp_path / trained["model_dir"] / "card.json").read_text())
    assert card["features"] == ["speed", "rpm", "brake", "gps_step"]
    scored = dtg("score", "logs", "--model", "m", "--models", "models", "--lake", "lake", "--out", "scores",
                 "--device", "cpu")
    assert scored["files_new"] == 2 and scored["windows_scored"] > 0
