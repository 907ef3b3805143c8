"""Scoring computations: per-second max over covering windows, file-boundary context, outputs."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from dtg.errors import DtgError
from dtg.lake import Lake
from dtg.scoring import (cover_max, kst_dates, load_scorer, own_rows, safe_name, score_chunks, score_input,
                         score_window_set, touches, vehicle_days)
from dtg.thresholds import FixedThreshold
from dtg.windowset import build_window_set
from test_scoring_support import FEATURES, SIZE, T0, drive_table, publish_model

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    return publish_model(root, drive_table(n=400, seed=1), threshold=0.05)


def _keys(table: pa.Table) -> dict[str, np.ndarray]:
    vid = table.column("vehicle_id")[0].as_py()
    return {vid: table.column("ts").cast(pa.int64()).to_numpy()}


def _seconds(out) -> list[tuple]:
    t = out.seconds
    return list(zip(t.column("ts").cast(pa.int64()).to_pylist(), t.column("score").to_pylist(),
                    t.column("top_feature").to_pylist()))


@pytest.fixture(scope="module")
def forecaster_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("forecaster")
    return publish_model(root, drive_table(n=400, seed=1), threshold=0.05, kind="lstm-forecaster")


@pytest.mark.parametrize("kind", ["autoencoder", "forecaster"])
def test_second_score_is_the_max_over_the_windows_covering_it(kind, model_dir, forecaster_dir):
    scorer = load_scorer(model_dir if kind == "autoencoder" else forecaster_dir, device="cpu")
    shift = 1 if kind == "forecaster" else 0  # a forecaster's error is about the window one second later
    table = drive_table(n=60, seed=2, spikes=(30,))
    ws = build_window_set(table, size=SIZE, features=FEATURES, split=None, scaler=scorer.scaler)
    own = np.ones(ws.rows, dtype=bool)
    scored = score_window_set(scorer, ws, own, batch_size=7)
    assert len(scored.window) == ws.rows - SIZE + 1 - shift
    assert scored.rows.tolist() == list(range(shift, ws.rows))  # a forecaster never scores the first second
    for k, r in enumerate(scored.rows):
        covering = [i for i, w in enumerate(scored.window)
                    if ws.starts[w] + shift <= r < ws.starts[w] + shift + SIZE]
        best = max(scored.window_score[i] for i in covering)
        assert scored.second_score[k] == best
        i = covering[int(np.argmax([scored.window_score[i] for i in covering]))]
        assert scored.second_top[k] == int(np.argmax(scored.window_features[i]))


def test_batch_size_does_not_change_the_scores(model_dir):
    scorer = load_scorer(model_dir, device="cpu")
    ws = build_window_set(drive_table(n=90, seed=3), size=SIZE, features=FEATURES, split=None, scaler=scorer.scaler)
    own = np.ones(ws.rows, dtype=bool)
    a = score_window_set(scorer, ws, own, batch_size=5)
    b = score_window_set(scorer, ws, own, batch_size=4096)
    np.testing.assert_allclose(a.second_score, b.second_score, rtol=1e-6)


@pytest.mark.parametrize("kind", ["autoencoder", "forecaster"])
def test_one_log_or_the_same_log_split_in_two_gives_identical_scores(kind, tmp_path, model_dir, forecaster_dir):
    scorer = load_scorer(model_dir if kind == "autoencoder" else forecaster_dir, device="cpu")
    whole = drive_table(n=300, seed=4, spikes=(148,))
    first, second = whole.slice(0, 150), whole.slice(150)
    lake = Lake(tmp_path / "lake")
    lake.write(whole)
    thr = FixedThreshold(0.05).fit()
    one, _ = score_input(scorer, lake, _keys(whole), thr)
    a, _ = score_input(scorer, lake, _keys(first), thr)
    b, _ = score_input(scorer, lake, _keys(second), thr)
    assert _seconds(one) == _seconds(a) + _seconds(b)
    assert one.windows.equals(pa.concat_tables([a.windows, b.windows]))
    flags = one.seconds.column("is_anomaly").to_pylist()
    assert flags == a.seconds.column("is_anomaly").to_pylist() + b.seconds.column("is_anomaly").to_pylist()


@pytest.fixture(scope="module")
def motion_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("motion")
    return publish_model(root, curvy(drive_table(n=400, seed=1)), threshold=0.05,
                         features=("speed", "rpm", "gps_step", "heading_rate"))


def curvy(table: pa.Table) -> pa.Table:
    """The drive with a winding course, so that heading_rate is not 0."""
    lon = table.column("lon").to_numpy() + 0.0004 * np.sin(np.arange(table.num_rows) / 6.0)
    return table.set_column(table.schema.get_field_index("lon"), "lon", pa.array(lon))


def test_derived_features_give_identical_scores_for_one_log_or_the_same_log_split_in_two(tmp_path, motion_dir):
    scorer = load_scorer(motion_dir, device="cpu")
    whole = curvy(drive_table(n=300, seed=4, spikes=(148,)))
    lake = Lake(tmp_path / "lake")
    lake.write(whole)
    thr = FixedThreshold(0.05).fit()
    one, _ = score_input(scorer, lake, _keys(whole), thr)
    for cut in (150, 151, 152, 153):  # heading_rate reads three seconds back and one ahead
        a, _ = score_input(scorer, lake, _keys(whole.slice(0, cut)), thr)
        b, _ = score_input(scorer, lake, _keys(whole.slice(cut)), thr)
        assert _seconds(one) == _seconds(a) + _seconds(b)
        assert one.windows.equals(pa.concat_tables([a.windows, b.windows]))
    assert set(one.seconds.column("top_feature").to_pylist()) & {"gps_step", "heading_rate"}


def test_a_later_log_uses_the_preceding_seconds_in_the_lake_as_context(tmp_path, model_dir):
    scorer = load_scorer(model_dir, device="cpu")
    whole = drive_table(n=300, seed=5)
    first, second = whole.slice(0, 150), whole.slice(150)
    thr = FixedThreshold(0.05).fit()
    lake_split = Lake(tmp_path / "split")
    lake_split.write(first)  # night 1: only the first log exists
    score_input(scorer, lake_split, _keys(first), thr)
    lake_split.write(second)  # night 2
    b, _ = score_input(scorer, lake_split, _keys(second), thr)
    lake_whole = Lake(tmp_path / "whole")
    lake_whole.write(whole)
    one, _ = score_input(scorer, lake_whole, _keys(whole), thr)
    assert _seconds(b) == _seconds(one)[150:]  # every second of the later log, its first ones included
    n_b_windows = b.windows.num_rows
    assert n_b_windows == 150  # windows ending in the second log, the first SIZE-1 of them starting before it
    assert b.windows.equals(one.windows.slice(one.windows.num_rows - n_b_windows))


def test_anomaly_intervals_merge_consecutive_flagged_seconds(tmp_path, model_dir):
    scorer = load_scorer(model_dir, device="cpu")
    table = drive_table(n=200, seed=6, spikes=(100,))
    lake = Lake(tmp_path / "lake")
    lake.write(table)
    out, _ = score_input(scorer, lake, _keys(table), FixedThreshold(0.0).fit())  # everything anomalous
    assert out.anomalies.num_rows == 1
    a = out.anomalies.to_pylist()[0]
    assert a["seconds"] == out.seconds.num_rows == 200
    scores = np.asarray(out.seconds.column("score"))
    assert a["peak_score"] == scores.max()
    peak_row = int(np.argmax(scores))
    assert a["top_feature"] == out.seconds.column("top_feature")[peak_row].as_py()
    assert a["start"] == out.seconds.column("ts")[0].as_py() and a["end"] == out.seconds.column("ts")[-1].as_py()
    nothing, _ = score_input(scorer, lake, _keys(table), FixedThreshold(1e9).fit())
    assert nothing.anomalies.num_rows == 0 and not any(nothing.seconds.column("is_anomaly").to_pylist())


def test_a_lake_without_a_model_feature_is_a_clear_error(tmp_path, model_dir):
    scorer = load_scorer(model_dir, device="cpu")
    table = drive_table(n=50, seed=7)
    table = table.set_column(table.schema.get_field_index("rpm"), "rpm", pa.nulls(50, pa.float32()))
    lake = Lake(tmp_path / "lake")
    lake.write(table)
    with pytest.raises(DtgError, match="rpm"):
        score_input(scorer, lake, _keys(table), FixedThreshold(1.0).fit())


def test_an_input_is_scored_vehicle_day_by_vehicle_day_in_korean_local_time():
    kst = dt.timezone(dt.timedelta(hours=9))
    ms = np.array([dt.datetime(2024, 5, 13, 23, 59, 59, tzinfo=kst).timestamp(),
                   dt.datetime(2024, 5, 14, 0, 0, 0, tzinfo=kst).timestamp()]) * 1000
    assert kst_dates(ms.astype(np.int64)).tolist() == ["2024-05-13", "2024-05-14"]
    keys = {"b": ms.astype(np.int64), "a": ms[1:].astype(np.int64)}
    assert [(v, d, len(t)) for v, d, t in vehicle_days(keys)] == [
        ("a", "2024-05-14", 1), ("b", "2024-05-13", 1), ("b", "2024-05-14", 1)]


def test_a_drive_across_midnight_scores_the_same_as_its_two_days_apart(tmp_path, model_dir):
    scorer = load_scorer(model_dir, device="cpu")
    start = dt.datetime(2024, 5, 13, 23, 55, 0, tzinfo=dt.timezone(dt.timedelta(hours=9)))
    whole = drive_table(n=600, seed=10, start=start)  # 23:55 .. 00:05
    lake = Lake(tmp_path / "lake")
    lake.write(whole)
    thr = FixedThreshold(0.05).fit()
    chunks = list(score_chunks(scorer, lake, _keys(whole), thr))
    assert [c.date for c in chunks] == ["2024-05-13", "2024-05-14"]
    assert [c.outputs.seconds.num_rows for c in chunks] == [300, 300]
    assert chunks[1].outputs.windows.num_rows == 300  # windows ending after midnight, first ones starting before
    one, _ = score_input(scorer, lake, _keys(whole), thr)
    night = whole.slice(0, 300)
    alone, _ = score_input(scorer, lake, _keys(night), thr)
    assert _seconds(one)[:300] == _seconds(alone)


def test_a_log_touches_another_when_it_has_seconds_of_its_vehicles_within_the_context():
    day = 1_715_558_400_000  # 2024-05-13 09:00 KST
    keys = {"a": np.arange(day, day + 10_000, 1000), "b": np.array([day + 86_400_000])}
    assert touches(keys, {"a": np.array([day + 9_000 + 5_000])}, margin_ms=5_000)
    assert touches(keys, {"a": np.array([day - 5_000])}, margin_ms=5_000)
    assert not touches(keys, {"a": np.array([day + 9_000 + 5_001])}, margin_ms=5_000)
    assert not touches(keys, {"c": keys["a"]}, margin_ms=5_000)  # another vehicle
    assert not touches(keys, {"b": np.array([day + 40_000])}, margin_ms=5_000)  # b's day is the next one
    assert touches(keys, {"b": np.array([day + 86_400_000 + 1_000])}, margin_ms=5_000)


def test_the_look_ahead_gives_the_window_set_it_prepared_once_and_only_for_its_vehicle_day(tmp_path, model_dir):
    from dtg.scoring import _LookAhead, vehicle_day_set

    scorer = load_scorer(model_dir, device="cpu")
    lake = Lake(tmp_path / "lake")
    whole = drive_table(n=150, seed=11)
    lake.write(whole.slice(0, 120))
    keys = _keys(whole.slice(0, 120))
    ahead = _LookAhead(lake, keys, [])
    ahead.prepare_first(scorer)
    lake.write(whole.slice(120))  # 30 more seconds, within the first 120's context
    (vehicle, ts), = keys.items()
    assert vehicle_day_set(scorer, ahead, vehicle, ts[:60])[0].rows < 120  # another vehicle-day: built
    ahead.prepare_first(scorer)  # now with the 30 seconds stored
    lake.write(drive_table(n=10, seed=12, start=T0 - dt.timedelta(seconds=10)))  # 10 s of context before
    prepared = vehicle_day_set(scorer, ahead, vehicle, ts)[0]
    again = vehicle_day_set(scorer, ahead, vehicle, ts)[0]
    assert (prepared.rows, again.rows) == (120 + 11, 120 + 11 + 10)  # as prepared; then built from the lake
    thr = FixedThreshold(0.05).fit()
    primed = _LookAhead(lake, keys, [])
    primed.prepare_first(scorer)
    assert [c.outputs.seconds for c in score_chunks(scorer, primed, keys, thr)][0].equals(
        score_input(scorer, lake, keys, thr)[0].seconds)


def test_model_ids_become_safe_file_names():
    assert safe_name("tiny/v1") == "tiny_v1"
    assert safe_name("../../etc") == "_.._etc"
    assert "/" not in safe_name("a/b\\c") and not safe_name(".hidden").startswith(".")


def test_own_rows_exclude_interpolated_seconds(model_dir):
    scorer = load_scorer(model_dir, device="cpu")
    table = drive_table(n=40, seed=8)
    table = pa.concat_tables([table.slice(0, 20), table.slice(21)])  # one missing second: filled
    ws = build_window_set(table, size=SIZE, features=FEATURES, max_gap=2, split=None, scaler=scorer.scaler)
    own = own_rows(ws, _keys(table))
    assert ws.rows == 40 and own.sum() == 39 and not own[20]


@settings(deadline=None, max_examples=100)
@given(st.integers(1, 6), st.data())
def test_cover_max_is_the_max_over_covering_windows(size, data):
    n_rows = data.draw(st.integers(1, 40))
    first = np.array(sorted(data.draw(st.sets(st.integers(0, n_rows - 1), max_size=n_rows))), dtype=np.int64)
    first = first[first + size <= n_rows]
    scores = np.array(data.draw(st.lists(st.floats(0, 100, width=32), min_size=len(first), max_size=len(first))),
                      dtype=np.float32)
    rows = np.arange(n_rows)
    best, which = cover_max(first, scores, n_rows, size, rows)
    for r in rows:
        covering = [i for i, f in enumerate(first) if f <= r < f + size]
        if not covering:
            assert which[r] == -1
            continue
        top = max(scores[i] for i in covering)
        assert best[r] == top
        assert which[r] == min(i for i in covering if scores[i] == top)  # ties: the earliest window
