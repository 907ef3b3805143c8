"""The report's arithmetic: distance from speed, the threshold the flags were made with, time handling."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dtg.errors import DtgError
from dtg.report.build import applied_threshold
from dtg.report.data import (ModelInfo, Seconds, distance_km, epoch_ms, load_history, load_model_info,
                             load_seconds, valid_positions)
from dtg.schema import TS_TYPE

speeds = st.lists(st.floats(0, 250, allow_nan=False), min_size=2, max_size=200)


@settings(max_examples=60, deadline=None)
@given(v=st.floats(0, 250, allow_nan=False), n=st.integers(2, 5000))
def test_constant_speed_for_n_seconds_covers_speed_times_time(v, n):
    ts = 1_700_000_000_000 + 1000 * np.arange(n)
    assert distance_km(ts, np.full(n, v)) == pytest.approx(v * (n - 1) / 3600.0, rel=1e-9, abs=1e-12)


@settings(max_examples=60, deadline=None)
@given(a=speeds, b=speeds, gap_s=st.integers(3, 100_000))
def test_no_distance_is_counted_across_a_gap(a, b, gap_s):
    ta = 1000 * np.arange(len(a))
    tb = ta[-1] + 1000 * gap_s + 1000 * np.arange(len(b))
    joined = distance_km(np.concatenate([ta, tb]), np.concatenate([a, b]))
    assert joined == pytest.approx(distance_km(ta, a) + distance_km(tb, b), rel=1e-9, abs=1e-12)


@settings(max_examples=60, deadline=None)
@given(v=speeds, k=st.floats(0, 4, allow_nan=False))
def test_distance_scales_with_speed(v, k):
    ts = 1000 * np.arange(len(v))
    assert distance_km(ts, np.asarray(v) * k) == pytest.approx(k * distance_km(ts, v), rel=1e-9, abs=1e-9)


def test_missing_speeds_add_no_distance():
    ts = 1000 * np.arange(4)
    assert distance_km(ts, np.array([36.0, np.nan, 36.0, 36.0])) == pytest.approx(36.0 / 3600.0)


def test_no_fix_zero_zero_and_out_of_range_positions_are_not_drawn():
    lat = np.array([37.5, 0.0, np.nan, 95.0, 35.1])
    lon = np.array([127.0, 0.0, 127.0, 127.0, 129.0])
    assert valid_positions(lat, lon).tolist() == [True, False, False, False, True]


def test_zoneless_timestamps_are_read_as_korean_local_time():
    naive = pa.array([0], pa.timestamp("ms"))  # 1970-01-01 00:00 in Seoul = 1969-12-31 15:00 UTC
    aware = pa.array([0], TS_TYPE)
    assert epoch_ms(naive).tolist() == [-9 * 3600 * 1000]
    assert epoch_ms(aware).tolist() == [0]
    assert epoch_ms(pa.array([5], pa.timestamp("s", tz="UTC"))).tolist() == [5000]


def _seconds(score: np.ndarray, flags: np.ndarray) -> Seconds:
    return Seconds(1000 * np.arange(len(score)), score, flags, {"v": (0, len(score))})


def _model(threshold: float | None, kind: str = "percentile") -> ModelInfo:
    return ModelInfo("m", "v1", None, threshold, kind, None)


@settings(max_examples=60, deadline=None)
@given(scores=st.lists(st.floats(0, 10, allow_nan=False), min_size=1, max_size=300), t=st.floats(0, 10))
def test_the_cards_threshold_is_shown_when_the_flags_were_made_with_it(scores, t):
    s = np.asarray(scores)
    value, text = applied_threshold(_model(t), _seconds(s, s > t))
    assert value == t and "percentile" in text


@settings(max_examples=60, deadline=None)
@given(scores=st.lists(st.floats(0, 10, allow_nan=False), min_size=2, max_size=300, unique=True),
       q=st.floats(0.05, 0.95))
def test_an_overridden_fixed_threshold_is_read_from_the_flags_not_the_card(scores, q):
    s = np.asarray(scores)
    override = float(np.quantile(s, q))
    flags = s > override
    card = float(s.max()) + 1.0  # the card says nothing would be flagged
    if not flags.any():
        return
    value, text = applied_threshold(_model(card), _seconds(s, flags))
    assert value is None
    assert f"{s[flags].min():.4g}" in text and "card" in text


def test_flags_no_single_threshold_explains_are_called_dynamic():
    s = np.array([0.1, 0.9, 0.2, 0.8])
    value, text = applied_threshold(_model(0.5), _seconds(s, np.array([True, False, False, True])))
    assert value is None and text.startswith("varies per point")


def test_seconds_slice_one_vehicle_and_time_range(tmp_path):
    part = tmp_path / "seconds" / "vehicle=anything"
    part.mkdir(parents=True)
    ts = np.array([3000, 1000, 2000, 1000, 5000])
    pq.write_table(pa.table({"vehicle_id": ["b", "a", "a", "b", "a"], "ts": pa.array(ts, TS_TYPE),
                             "score": [0.3, 0.1, 0.2, 0.4, 0.5], "is_anomaly": [False] * 5}), part / "p.parquet")
    sec = load_seconds(tmp_path)
    assert sec.vehicles == ["a", "b"]
    assert sec.ts[sec.of("a")].tolist() == [1000, 2000, 5000]
    assert sec.score[sec.of("a", 1500, 5000)].tolist() == [0.2, 0.5]
    assert sec.ts[sec.of("b", 2000)].tolist() == [3000]
    assert sec.ts[sec.of("nobody")].tolist() == []


def test_model_json_from_dtg_score_gives_card_threshold_and_history(tmp_path):
    model_dir = tmp_path / "models" / "ae" / "3"
    model_dir.mkdir(parents=True)
    (model_dir / "history.csv").write_text("epoch,train_loss,val_loss\n1,0.5,0.6\n2,0.25,\n")
    scores = tmp_path / "scores"
    scores.mkdir()
    (scores / "model.json").write_text(json.dumps({"model": "ae/3", "model_dir": str(model_dir),
                                                   "card": {"threshold": {"kind": "fixed", "value": 0.7}}}))
    info = load_model_info(scores)
    assert (info.name, info.version, info.threshold, info.threshold_kind) == ("ae", "3", 0.7, "fixed")
    assert info.history["train_loss"].tolist() == [0.5, 0.25]
    assert np.isnan(info.history["val_loss"][1])


def test_broken_model_json_names_the_file_and_line(tmp_path):
    (tmp_path / "model.json").write_text('{\n  "card": {,\n}')
    with pytest.raises(DtgError) as err:
        load_model_info(tmp_path)
    assert err.value.file.endswith("model.json") and err.value.line == 2


def test_history_with_a_non_number_names_line_and_field(tmp_path):
    path = tmp_path / "history.csv"
    path.write_text("epoch,train_loss,val_loss\n1,0.5,0.6\n2,oops,0.5\n")
    with pytest.raises(DtgError) as err:
        load_history(path)
    assert (err.value.line, err.value.field) == (3, "train_loss")


def test_a_threshold_recorded_by_the_run_wins_over_the_cards(tmp_path):
    card = {"threshold": {"method": "percentile", "value": 0.7}}
    (tmp_path / "model.json").write_text(json.dumps({"card": card, "threshold": {"kind": "fixed", "value": 0.3}}))
    assert load_model_info(tmp_path).threshold == 0.3
    (tmp_path / "model.json").write_text(json.dumps({"card": card, "threshold": "default"}))
    assert load_model_info(tmp_path).threshold == 0.7


def _timeline_warnings() -> list[str]:
    from dtg.report import figures

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        figures.fleet_timeline(["서울70사1234"], [1000 * np.arange(100)], [(np.array([5000]), np.array([9000]))])
    return [str(w.message) for w in caught if "Glyph" in str(w.message)]


def test_the_shipped_font_draws_hangul_where_the_default_font_cannot(monkeypatch):
    import dtg.report.style as style

    assert _timeline_warnings() == []
    default_rc = style.rc
    monkeypatch.setattr(style, "rc", lambda: {**default_rc(), "font.family": ["DejaVu Sans"]})
    assert any("HANGUL SYLLABLE SEO" in m for m in _timeline_warnings())  # the glyph check can fail


def test_the_shipped_font_is_package_data_with_every_hangul_syllable():
    from importlib import resources

    from matplotlib.ft2font import FT2Font

    from dtg.report.style import FONT_FILE

    font = resources.files("dtg") / "fonts" / FONT_FILE
    assert font.is_file() and (resources.files("dtg") / "fonts" / "OFL.txt").is_file()
    with resources.as_file(font) as path:
        charmap = FT2Font(str(path)).get_charmap()
    assert all(c in charmap for c in range(0xAC00, 0xD7A4))  # all 11,172 precomposed syllables


def test_a_dynamic_threshold_recorded_by_the_run_is_named_and_draws_no_line(tmp_path):
    card = {"threshold": {"method": "percentile", "value": 0.7}}
    (tmp_path / "model.json").write_text(json.dumps({"card": card, "threshold": {"kind": "dynamic", "p": 0.13}}))
    info = load_model_info(tmp_path)
    assert (info.threshold, info.threshold_kind) == (None, "dynamic")
    s = np.array([0.1, 0.9, 0.2, 0.8])
    value, text = applied_threshold(info, _seconds(s, s > 0.5))
    assert value is None and text.startswith("dynamic")


@settings(max_examples=60, deadline=None)
@given(steps=st.lists(st.sampled_from([1000, 1000, 1000, 2000, 60_000]), min_size=1, max_size=100))
def test_lines_break_exactly_at_gaps_in_the_log(steps):
    from dtg.report.figures import GAP_MS, _with_gaps, local_time

    ms = np.concatenate([[1_715_554_800_000], 1_715_554_800_000 + np.cumsum(steps)])
    y = np.arange(len(ms), dtype=np.float64)
    t, out = _with_gaps(ms, y)
    gaps = int(np.count_nonzero(np.diff(ms) > GAP_MS))
    assert len(t) == len(out) == len(ms) + gaps
    assert int(np.isnan(out).sum()) == gaps
    assert out[~np.isnan(out)].tolist() == y.tolist()
    assert np.all(np.diff(t) > np.timedelta64(0)) and t[0] == local_time(ms[:1])[0]


def test_times_are_shown_in_korean_local_time():
    from dtg.report.figures import local_time
    from dtg.report.page import local_text

    ms = 1_715_554_800_000  # 2024-05-12 23:00 UTC
    assert local_text(ms) == "2024-05-13 08:00:00"
    assert str(local_time(np.array([ms]))[0]).startswith("2024-05-13T08:00:00")
