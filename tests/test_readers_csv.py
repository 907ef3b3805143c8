"""CSV logs: header aliases (English, Korean), mapping files, encodings, time zones, rejected rows."""

from __future__ import annotations

import datetime as dt
import json
from zoneinfo import ZoneInfo

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dtg import schema
from dtg.errors import DtgError
from dtg.readers import csv as csv_reader
from dtg.readers import read_source
from dtg.readers.base import assume_tz

KST = ZoneInfo("Asia/Seoul")

KOREAN = ("차량번호,일시,속도(km/h),엔진회전수(RPM),브레이크,위도,경도\r\n"
          "서울70사1234,2024-05-13 08:00:00,12,900,0,37.5,127.0\r\n"
          "서울70사1234,2024-05-13 08:00:01,14,950,1,37.50001,127.00001\r\n")


def parse(text: str | bytes, name: str = "log.csv", **kw):
    data = text.encode("utf-8") if isinstance(text, str) else text
    return csv_reader.parse(data, name, **kw)


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "cp949", "euc-kr"])
def test_korean_headers_are_read_in_every_supported_encoding(encoding):
    r = parse(KOREAN.encode(encoding))
    assert r.encoding == ("cp949" if encoding in ("cp949", "euc-kr") else "utf-8")
    t = r.table
    assert t.num_rows == 2 and r.rejects.num_rows == 0
    assert t.column("vehicle_id").to_pylist() == ["서울70사1234"] * 2
    assert t.column("speed").to_pylist() == [12.0, 14.0] and t.column("brake").to_pylist() == [0, 1]
    assert t.column("ts")[0].as_py() == dt.datetime(2024, 5, 13, 8, tzinfo=KST)
    assert t.column("source_row").to_pylist() == [2, 3]


def test_explicit_wrong_encoding_is_a_clear_error():
    with pytest.raises(DtgError, match="utf-8"):
        parse(KOREAN.encode("cp949"), encoding="utf-8")


def test_english_aliases_and_canonical_names_are_accepted():
    text = ("Vehicle,Timestamp,Speed,Engine_RPM,Brake,Latitude,Longitude,heading\n"
            "v1,2024-05-13T08:00:00,1,2,0,37,127,90\n")
    row = parse(text).table.to_pylist()[0]
    assert (row["vehicle_id"], row["speed"], row["rpm"], row["lat"], row["lon"], row["azimuth"]) == \
        ("v1", 1.0, 2.0, 37.0, 127.0, 90.0)
    canon = "vehicle_id,ts,speed,rpm,brake,lat,lon,status\nv2,2024-05-13 08:00:00,5,800,1,36,128,11\n"
    row = parse(canon).table.to_pylist()[0]
    assert (row["vehicle_id"], row["status"], row["brake"]) == ("v2", 11, 1)


def test_missing_vehicle_column_uses_the_vehicle_option_or_the_file_stem():
    text = "time,speed\n2024-05-13 08:00:00,3\n"
    assert parse(text, "logs/부산12가3456.csv").table.column("vehicle_id")[0].as_py() == "부산12가3456"
    assert parse(text, vehicle="T-1").table.column("vehicle_id")[0].as_py() == "T-1"


def test_missing_optional_signals_become_nulls():
    t = parse("time,speed\n2024-05-13 08:00:00,3\n").table
    assert t.column("rpm").null_count == 1 and t.schema == schema.SCHEMA


def test_no_timestamp_column_is_an_error_naming_the_field():
    with pytest.raises(DtgError, match="no timestamp column") as info:
        parse("vehicle,speed\nv,1\n")
    assert info.value.field == "ts" and info.value.line == 1


def test_two_headers_mapping_to_one_column_are_an_error():
    with pytest.raises(DtgError, match="both map to 'speed'"):
        parse("time,speed,속도\n2024-05-13 08:00:00,1,2\n")


@pytest.mark.parametrize("suffix,content", [
    (".toml", '[columns]\n"Zeit" = "ts"\n"Geschw" = "speed"\n"Kfz" = "vehicle_id"\n[scale]\nspeed = 1.609344\n'),
    (".json", json.dumps({"columns": {"Zeit": "ts", "Geschw": "speed", "Kfz": "vehicle_id"},
                          "scale": {"speed": 1.609344}})),
])
def test_mapping_file_maps_vendor_headers_and_scales_units(tmp_path, suffix, content):
    m = tmp_path / f"vendor{suffix}"
    m.write_text(content, encoding="utf-8")
    mapping = csv_reader.load_mapping(m)
    r = parse("Kfz;Zeit;Geschw\nA1;2024-05-13 08:00:00;10\n", mapping=mapping)
    row = r.table.to_pylist()[0]
    assert row["vehicle_id"] == "A1" and row["speed"] == pytest.approx(16.09344)


def test_mapping_to_an_unknown_column_is_rejected(tmp_path):
    m = tmp_path / "m.json"
    m.write_text(json.dumps({"Speed!": "velocity"}))
    with pytest.raises(DtgError, match="unknown column 'velocity'"):
        csv_reader.load_mapping(m)


@pytest.mark.parametrize("text,expected", [
    ("2024-05-13 08:00:00", dt.datetime(2024, 5, 13, 8, tzinfo=KST)),
    ("2024-05-13T08:00:00.250", dt.datetime(2024, 5, 13, 8, 0, 0, 250000, tzinfo=KST)),
    ("2024/05/13 08:00:00", dt.datetime(2024, 5, 13, 8, tzinfo=KST)),
    ("2024.05.13 08:00", dt.datetime(2024, 5, 13, 8, tzinfo=KST)),
    ("20240513080000", dt.datetime(2024, 5, 13, 8, tzinfo=KST)),
    ("2024-05-12T23:00:00Z", dt.datetime(2024, 5, 13, 8, tzinfo=KST)),
    ("2024-05-13T01:00:00+02:00", dt.datetime(2024, 5, 13, 8, tzinfo=KST)),
])
def test_timestamp_formats(text, expected):
    ts, ok = csv_reader.parse_timestamps(pa.array([text]), "Asia/Seoul")
    assert ok.all() and ts[0].as_py() == expected


def test_tz_option_applies_to_naive_timestamps_only():
    t = parse("time,speed\n2024-05-13 08:00:00,1\n2024-05-13 08:00:01+09:00,1\n", tz="UTC").table
    got = t.column("ts").to_pylist()
    assert got[0] == dt.datetime(2024, 5, 13, 8, tzinfo=dt.timezone.utc)
    assert got[1] == dt.datetime(2024, 5, 13, 8, 0, 1, tzinfo=KST)


@settings(max_examples=50, deadline=None)
@given(st.datetimes(min_value=dt.datetime(2000, 1, 1), max_value=dt.datetime(2099, 12, 31)))
def test_any_valid_wall_clock_time_parses_back_to_itself(t):
    t = t.replace(microsecond=t.microsecond // 1000 * 1000)
    text = t.strftime("%Y-%m-%d %H:%M:%S.") + f"{t.microsecond // 1000:03d}"
    ts, ok = csv_reader.parse_timestamps(pa.array([text]), "Asia/Seoul")
    assert ok.all() and ts[0].as_py() == t.replace(tzinfo=KST)


def test_bad_numbers_and_times_reject_only_their_rows_with_line_numbers():
    text = ("time,speed,rpm\n"
            "2024-05-13 08:00:00,1,800\n"
            "2024-05-13 08:00:01,fast,800\n"
            "2024-02-30 08:00:02,3,800\n"
            "\n"
            "2024-05-13 08:00:03,4,8x0\n"
            "not a time,5,800\n"
            "2024-05-13 08:00:05,6,800\n")
    r = parse(text)
    assert r.rows_read == 6 and r.table.num_rows == 2
    assert r.table.column("source_row").to_pylist() == [2, 8]
    got = [(x["row"], x["reason"]) for x in r.rejects.to_pylist()]
    assert got == [(3, "bad_number:speed"), (4, "bad_timestamp"), (6, "bad_number:rpm"), (7, "bad_timestamp")]
    assert r.rejects.to_pylist()[0]["raw"] == "2024-05-13 08:00:01,fast,800"


def test_a_row_with_the_wrong_number_of_fields_is_rejected_as_malformed():
    r = parse("time,speed\n2024-05-13 08:00:00,1\n2024-05-13 08:00:01,2,9,9\n2024-05-13 08:00:02,3\n")
    assert r.rows_read == 3 and r.table.num_rows == 2
    assert [(x["row"], x["reason"]) for x in r.rejects.to_pylist()] == [(3, "malformed_row")]
    assert r.table.column("source_row").to_pylist() == [2, 4]


@pytest.mark.parametrize("value", ["2", "0.5", "-1"])
def test_brake_that_is_not_0_or_1_is_rejected(value):
    r = parse(f"time,brake\n2024-05-13 08:00:00,{value}\n2024-05-13 08:00:01,1\n")
    assert [x["reason"] for x in r.rejects.to_pylist()] == ["brake_out_of_range"]


def test_raw_text_of_cp949_rejects_is_decoded_korean():
    text = "차량번호,시간,속도\n대구80바1111,2024-05-13 08:00:00,빠름\n"
    r = parse(text.encode("cp949"))
    assert r.rejects.to_pylist()[0]["raw"] == "대구80바1111,2024-05-13 08:00:00,빠름"


def test_header_only_csv_reads_zero_rows():
    r = parse("time,speed\n")
    assert r.rows_read == 0 and r.table.num_rows == 0


@pytest.mark.parametrize("unit", ["s", "ms", "us", "ns"])
def test_parquet_in_canonical_schema_is_read_with_naive_ts_as_local_time(tmp_path, unit):
    p = tmp_path / "x.parquet"
    pq.write_table(pa.table({"vehicle_id": ["v"], "ts": pa.array([dt.datetime(2024, 5, 13, 8)], pa.timestamp(unit)),
                             "speed": [3.0], "extra": [1]}), p, coerce_timestamps=None if unit != "ns" else "us")
    r = read_source(p)
    assert r.format == "parquet" and r.table.schema == schema.SCHEMA
    row = r.table.to_pylist()[0]
    assert row["ts"] == dt.datetime(2024, 5, 13, 8, tzinfo=KST) and row["source_row"] == 1
    assert row["source_file"] == str(p)


def test_parquet_without_ts_is_an_error(tmp_path):
    p = tmp_path / "y.parquet"
    pq.write_table(pa.table({"speed": [1.0]}), p)
    with pytest.raises(DtgError, match="no 'ts' column"):
        read_source(p)


def test_unrecognised_content_is_an_error(tmp_path):
    p = tmp_path / "notes.md"
    p.write_text("just some words\nno delimiters here\n")
    with pytest.raises(DtgError, match="unrecognised format"):
        read_source(p)


def test_sample_csv_is_korean_cp949_with_one_planted_bad_time(sample_dir):
    f = next(sample_dir.glob("*.csv"))
    r = read_source(f)
    assert r.encoding == "cp949" and r.format == "csv"
    assert [x["reason"] for x in r.rejects.to_pylist()] == ["bad_timestamp"]
    assert r.rows_read == r.table.num_rows + 1


def test_cp949_whose_first_hangul_is_far_down_is_still_detected():
    rows = "".join(f"v1,2024-05-13 08:{i // 60 % 60:02d}:{i % 60:02d},{i % 100}\n" for i in range(3000))
    text = "vehicle,time,speed\n" + rows + "서울70사1234,2024-05-13 09:00:00,5\n"
    data = text.encode("cp949")
    assert data[:65536].isascii()
    r = parse(data)
    assert r.encoding == "cp949" and r.table.column("vehicle_id")[-1].as_py() == "서울70사1234"


def test_explicit_utf8_on_a_cp949_file_is_an_error_even_past_the_start():
    text = "vehicle,time\n" + "v,2024-05-13 08:00:00\n" * 4000 + "서울,2024-05-13 08:00:01\n"
    with pytest.raises(DtgError, match="cannot decode as utf-8"):
        parse(text.encode("cp949"), encoding="utf-8")


def test_an_impossible_date_alone_is_rejected_on_the_fast_path():
    r = parse("time,speed\n2024-05-13 08:00:00,1\n2024-02-30 08:00:00,1\n\n2024-05-13 08:00:02,1\n")
    assert [(x["row"], x["reason"]) for x in r.rejects.to_pylist()] == [(3, "bad_timestamp")]
    assert r.table.column("source_row").to_pylist() == [2, 5]


def test_an_empty_time_cell_is_a_bad_timestamp():
    r = parse("time,speed\n2024-05-13 08:00:00,1\n,2\n")
    assert [(x["row"], x["reason"]) for x in r.rejects.to_pylist()] == [(3, "bad_timestamp")]


def test_a_file_of_zoned_timestamps_keeps_each_rows_offset():
    r = parse("time,speed\n2024-05-13T01:00:00+02:00,1\n2024-05-12T23:00:01Z,1\n")
    assert r.table.column("ts").to_pylist() == [dt.datetime(2024, 5, 13, 8, tzinfo=KST),
                                                 dt.datetime(2024, 5, 13, 8, 0, 1, tzinfo=KST)]


def test_unknown_time_zone_is_an_option_error(tmp_path):
    p = tmp_path / "x.csv"
    p.write_text("time,speed\n2024-05-13 08:00:00,1\n")
    with pytest.raises(DtgError, match="unknown time zone 'Mars/Base'") as info:
        read_source(p, tz="Mars/Base")
    assert info.value.field == "tz"


def test_blank_lines_before_the_header_and_at_the_end_are_not_rows():
    r = parse("\r\n\r\ntime,speed\r\n2024-05-13 08:00:00,1\r\n\r\n2024-05-13 08:00:01,2\r\n\r\n\r\n")
    assert r.rows_read == 2 and r.rejects.num_rows == 0
    assert r.table.column("source_row").to_pylist() == [4, 6]


def test_a_line_of_empty_cells_is_a_row_with_a_bad_timestamp():
    r = parse("time,speed\n2024-05-13 08:00:00,1\n,\n")
    assert r.rows_read == 2 and [(x["row"], x["reason"]) for x in r.rejects.to_pylist()] == [(3, "bad_timestamp")]


@pytest.mark.parametrize("ids, expected", [
    (["v1", "v1", "w2"], ["v1", "v1", "w2"]),  # nothing to trim: the column is kept as parsed
    ([" v1 ", "v1", "   "], ["v1", "v1", None]),  # blanks around ids go, a blank id is missing
])
def test_vehicle_ids_are_trimmed_and_blank_ones_are_missing(ids, expected):
    text = "vehicle_id,time\n" + "".join(f"{v},2024-05-13 08:00:0{i}\n" for i, v in enumerate(ids))
    assert parse(text).table.column("vehicle_id").to_pylist() == expected


def test_whole_numbers_written_with_decimals_are_valid_brake_and_status_codes():
    r = parse("time,brake,status\n2024-05-13 08:00:00,1.0,12.0\n2024-05-13 08:00:01,0,0\n"
              "2024-05-13 08:00:02,,3\n")
    assert r.rejects.num_rows == 0
    assert r.table.column("brake").to_pylist() == [1, 0, None]
    assert r.table.column("status").to_pylist() == [12, 0, 3]
    assert r.table.schema.field("brake").type == pa.int8()


ZONES = ["Asia/Seoul", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata", "UTC"]


@settings(max_examples=60, deadline=None)
@given(zone=st.sampled_from(ZONES), start=st.integers(-2_000_000_000_000, 2_500_000_000_000),
       steps=st.lists(st.integers(0, 600_000) | st.just(30 * 86_400_000), min_size=1, max_size=400),
       nulls=st.sets(st.integers(0, 399)))
def test_per_hour_time_zone_conversion_equals_arrows_per_row_one(zone, start, steps, nulls):
    ms = start + np.cumsum(np.array(steps, dtype=np.int64))
    mask = np.array([i in nulls for i in range(len(ms))])
    naive = pa.array(ms, pa.timestamp("ms"), mask=mask)
    expected = pc.assume_timezone(naive, timezone=zone, ambiguous="earliest", nonexistent="earliest")
    assert assume_tz(naive, zone).equals(expected)


@pytest.mark.parametrize("zone, local", [
    ("Europe/Berlin", "2024-03-31 01:00:00"),  # clocks go forward at 02:00: an hour that does not exist
    ("Europe/Berlin", "2024-10-27 01:00:00"),  # clocks go back at 03:00: an hour that happens twice
    ("Australia/Lord_Howe", "2024-04-07 01:00:00"),  # a half-hour step
])
def test_per_hour_conversion_across_a_transition_second_by_second(zone, local):
    t0 = int(dt.datetime.fromisoformat(local).replace(tzinfo=dt.timezone.utc).timestamp() * 1000)
    naive = pa.array(t0 + np.arange(0, 3 * 3_600_000, 1000, dtype=np.int64), pa.timestamp("ms"))
    expected = pc.assume_timezone(naive, timezone=zone, ambiguous="earliest", nonexistent="earliest")
    assert assume_tz(naive, zone).equals(expected)


def test_float32_columns_hold_the_float32_nearest_to_the_written_number():
    written = ["0.1", "254.99999", "3.4028235e38", "-9.81", "1e-45", "123.456789"]
    text = "time,speed,accel_x\n" + "".join(f"2024-05-13 08:00:0{i},{w},{w}\n" for i, w in enumerate(written))
    r = parse(text)
    expected = pa.array([float(w) for w in written], pa.float64()).cast(pa.float32())
    assert r.table.column("speed").combine_chunks().equals(expected)
    assert r.table.column("accel_x").type == pa.float32()


def test_bare_carriage_returns_end_lines_like_pyarrow_does():
    data = (b"\r\n\rvehicle_id,ts,speed,rpm,brake,lat,lon\r"
            b"A,2024-05-13 08:00:00,10,900,0,37.5,127.0\r"
            b"A,bad,11,900,0,37.5,127.0\r"
            b"A,2024-05-13 08:00:02,12,900,0,37.5,127.0\r")
    res = csv_reader.parse(data, "old-mac.csv")
    assert res.table.column("source_row").to_pylist() == [4, 6]
    assert res.table.column("speed").to_pylist() == [10, 12]
    assert res.rejects.to_pylist() == [{"file": "old-mac.csv", "row": 5, "raw": "A,bad,11,900,0,37.5,127.0",
                                        "reason": "bad_timestamp"}]


def test_a_header_line_cut_by_a_bare_carriage_return_is_one_clear_error():
    with pytest.raises(DtgError, match="no timestamp column"):  # found by fuzzing: was a csv module crash
        csv_reader.parse(b"\x01\r\x01", "x.csv")
