"""The DTG electronic record file: layout, round trip, vendor variants, rejected lines, unreadable files."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dtg import schema
from dtg.errors import DtgError
from dtg.readers import detect_format, dtg_text, read_source
from dtg.readers.dtg_text import HEADER_LEN, RECORD_LEN, DtgHeader

KST = ZoneInfo("Asia/Seoul")
HEADER = DtgHeader("DTG-TEST", "KMHXX00000000001", "31", "경기91아2345", "1234567890", "D0001")


def rows(n: int, start: dt.datetime = dt.datetime(2024, 5, 13, 8, 0, tzinfo=KST), **cols) -> pa.Table:
    base = {
        "ts": pa.array([start + dt.timedelta(seconds=i) for i in range(n)], schema.TS_TYPE),
        "speed": pa.array(np.arange(n) % 120, pa.float32()),
        "rpm": pa.array(700 + np.arange(n) * 3 % 2000, pa.float32()),
        "brake": pa.array(np.arange(n) % 2, pa.int8()),
        "lat": pa.array(37.5 + np.arange(n) * 1e-5),
        "lon": pa.array(127.0 + np.arange(n) * 1e-5),
    }
    base.update(cols)
    return pa.table(base)


def test_layout_widths_match_the_official_table():
    assert HEADER_LEN == 79 and RECORD_LEN == 68
    assert [w for _, w in dtg_text.RECORD_FIELDS] == [4, 7, 14, 3, 4, 1, 9, 9, 3, 6, 6, 2]
    assert [w for _, w in dtg_text.HEADER_FIELDS] == [20, 17, 2, 12, 10, 18]


def test_a_known_record_line_parses_to_the_documented_values():
    line = b"0012" + b"0123456" + b"24051308153025" + b"087" + b"1850" + b"1" + b"129158670" + b"035236021" \
        + b"271" + b"-012.5" + b"+003.0" + b"12"
    assert len(line) == RECORD_LEN
    data = HEADER.to_bytes() + b"\r\n" + line + b"\r\n"
    r = dtg_text.parse(data, "known.dtg")
    row = r.table.to_pylist()[0]
    assert row["ts"] == dt.datetime(2024, 5, 13, 8, 15, 30, 250000, tzinfo=KST)
    assert (row["speed"], row["rpm"], row["brake"]) == (87.0, 1850.0, 1)
    assert row["lon"] == pytest.approx(129.158670) and row["lat"] == pytest.approx(35.236021)
    assert (row["azimuth"], row["accel_x"], row["accel_y"], row["status"]) == (271.0, -12.5, 3.0, 12)
    assert (row["daily_distance"], row["total_distance"]) == (12.0, 123456.0)
    assert row["vehicle_id"] == "경기91아2345" and row["vehicle_type"] == "31" and row["driver_code"] == "D0001"
    assert row["source_row"] == 2 and r.encoding == "cp949" and r.variant == "standard"


def test_header_is_cp949_bytes_left_padded_with_hash():
    raw = HEADER.to_bytes()
    assert len(raw) == HEADER_LEN
    assert raw[37:39] == b"31"
    assert raw[39:51] == "경기91아2345".encode("cp949")  # 12 bytes: Hangul is 2 bytes in CP949
    assert raw[:20] == b"############DTG-TEST"
    assert DtgHeader.from_bytes(raw) == HEADER


def test_header_field_too_long_is_an_error_naming_the_field():
    with pytest.raises(DtgError, match="registration"):
        DtgHeader(registration="서울특별시70사12345").to_bytes()


_ts = st.integers(min_value=0, max_value=20 * 365 * 86400 * 100)  # hundredths since 2005


@st.composite
def record_tables(draw):
    n = draw(st.integers(min_value=1, max_value=40))
    start = draw(_ts)
    steps = draw(st.lists(st.integers(1, 500), min_size=n, max_size=n))
    hundredths = start + np.cumsum(steps)
    base = dt.datetime(2005, 1, 1, tzinfo=KST)
    ts = [base + dt.timedelta(milliseconds=int(h) * 10) for h in hundredths]
    ints = lambda lo, hi: np.array(draw(st.lists(st.integers(lo, hi), min_size=n, max_size=n)))  # noqa: E731
    return pa.table({
        "ts": pa.array(ts, schema.TS_TYPE),
        "speed": pa.array(ints(0, 255), pa.float32()),
        "rpm": pa.array(ints(0, 9999), pa.float32()),
        "brake": pa.array(ints(0, 1), pa.int8()),
        "lat": pa.array(ints(33_000_000, 38_999_999) / 1e6),
        "lon": pa.array(ints(124_000_000, 131_999_999) / 1e6),
        "daily_distance": pa.array(ints(0, 9999), pa.float32()),
        "total_distance": pa.array(ints(0, 9_999_999), pa.float64()),
        "azimuth": pa.array(ints(0, 360), pa.float32()),
        "accel_x": pa.array(ints(-1000, 1000) / 10, pa.float32()),
        "accel_y": pa.array(ints(-1000, 1000) / 10, pa.float32()),
        "status": pa.array(draw(st.lists(st.sampled_from(sorted(dtg_text.STATUS_CODES)), min_size=n, max_size=n)),
                           pa.int16()),
    })


@settings(max_examples=40, deadline=None)
@given(table=record_tables(), swap=st.booleans(), extra=st.sampled_from([b"", b"0012345+021", b"##"]))
def test_writing_then_reading_a_dtg_file_gives_the_same_rows(table, swap, extra):
    data = dtg_text.to_bytes(table, HEADER, swap_xy=swap, extra=extra)
    r = dtg_text.parse(data, "rt.dtg")
    assert r.rejects.num_rows == 0 and r.rows_read == table.num_rows
    got = r.table
    for name in table.column_names:
        assert got.column(name).to_pylist() == table.column(name).cast(schema.BY_NAME[name].type).to_pylist(), name
    assert got.column("source_row").to_pylist() == list(range(2, table.num_rows + 2))
    assert ("xy-swapped" in r.variant) == swap
    assert ("extra-fields" in r.variant) == bool(extra)


def test_utf8_header_is_accepted_and_reported():
    data = dtg_text.to_bytes(rows(3), HEADER)
    head, body = data.split(b"\r\n", 1)
    utf8 = head.decode("cp949").encode("utf-8") + b"\r\n" + body
    r = dtg_text.parse(utf8, "u.dtg")
    assert r.encoding == "utf-8" and r.table.num_rows == 3
    assert r.table.column("vehicle_id")[0].as_py() == "경기91아2345"


def test_lf_line_endings_and_blank_lines_are_accepted():
    data = dtg_text.to_bytes(rows(4), HEADER).replace(b"\r\n", b"\n")
    lines = data.split(b"\n")
    data = b"\n".join(lines[:3] + [b""] + lines[3:])
    r = dtg_text.parse(data, "lf.dtg")
    assert r.table.num_rows == 4 and r.rows_read == 4 and r.rejects.num_rows == 0
    assert r.table.column("source_row").to_pylist() == [2, 3, 5, 6]


def _corrupt(data: bytes, line: int, field: str, value: bytes) -> bytes:
    lines = data.split(b"\r\n")
    rec = bytearray(lines[line - 1])
    a = dtg_text.OFFSET[field]
    rec[a:a + len(value)] = value
    lines[line - 1] = bytes(rec)
    return b"\r\n".join(lines)


@pytest.mark.parametrize("field,value,reason", [
    ("speed", b"8x7", "bad_number:speed"),
    ("rpm", b"    ", "bad_number:rpm"),
    ("time", b"24133108153000", "bad_timestamp"),   # month 13
    ("time", b"23022908153000", "bad_timestamp"),   # 2023-02-29 does not exist
    ("time", b"24051324000000", "bad_timestamp"),   # hour 24
    ("accel_x", b"*001.0", "bad_number:accel_x"),
    ("x", b"12915867A", "bad_number:x"),
    ("status", b"-1", "bad_number:status"),
])
def test_unparseable_fields_reject_only_that_line_with_a_reason(field, value, reason):
    data = _corrupt(dtg_text.to_bytes(rows(5), HEADER), 4, field, value)
    r = dtg_text.parse(data, "bad.dtg")
    assert r.table.num_rows == 4 and r.rows_read == 5
    rej = r.rejects.to_pylist()
    assert [(x["row"], x["reason"]) for x in rej] == [(4, reason)]
    assert value.decode() in rej[0]["raw"] and rej[0]["file"] == "bad.dtg"


def test_leap_day_2024_is_a_valid_timestamp():
    start = dt.datetime(2024, 2, 29, 23, 59, 59, tzinfo=KST)
    r = dtg_text.parse(dtg_text.to_bytes(rows(2, start), HEADER), "leap.dtg")
    assert r.rejects.num_rows == 0
    assert r.table.column("ts").to_pylist()[1] == dt.datetime(2024, 3, 1, tzinfo=KST)


def test_truncated_last_record_is_rejected_and_the_rest_kept():
    data = dtg_text.to_bytes(rows(3), HEADER)[:-30]
    r = dtg_text.parse(data, "cut.dtg")
    assert r.table.num_rows == 2 and r.rows_read == 3
    assert r.rejects.to_pylist()[0]["reason"] == "truncated_record" and r.rejects.to_pylist()[0]["row"] == 4


def test_timestamps_are_korean_local_time():
    start = dt.datetime(2024, 1, 1, 0, 0, 0, tzinfo=KST)
    r = dtg_text.parse(dtg_text.to_bytes(rows(1, start), HEADER), "kst.dtg")
    epoch_ms = r.table.column("ts").cast(pa.int64())[0].as_py()
    assert epoch_ms == int(dt.datetime(2023, 12, 31, 15, 0, tzinfo=dt.timezone.utc).timestamp() * 1000)
    assert r.table.schema.field("ts").type == schema.TS_TYPE


def test_tz_option_reads_wall_clock_in_another_zone():
    start = dt.datetime(2024, 1, 1, 9, 0, 0, tzinfo=KST)
    data = dtg_text.to_bytes(rows(1, start), HEADER)
    r = dtg_text.parse(data, "utc.dtg", tz="UTC")
    assert r.table.column("ts")[0].as_py() == dt.datetime(2024, 1, 1, 9, 0, tzinfo=dt.timezone.utc)


def test_empty_registration_falls_back_to_the_vehicle_option_then_the_file_stem():
    data = dtg_text.to_bytes(rows(1), DtgHeader(vehicle_type="41"))
    assert dtg_text.parse(data, "x/차량A.dtg").table.column("vehicle_id")[0].as_py() == "차량A"
    assert dtg_text.parse(data, "x/a.dtg", vehicle="V1").table.column("vehicle_id")[0].as_py() == "V1"


@pytest.mark.parametrize("data,message", [
    (b"", "empty file"),
    (b"\x00\x01\x02PK\x03\x04" * 20, "binary"),
    (b"#####DTG#####\r\n0001", "header line is"),
    (b"a,b,c\r\n1,2,3\r\n", "header line is"),
])
def test_unreadable_files_raise_one_clear_error(data, message):
    with pytest.raises(DtgError, match=message) as info:
        dtg_text.parse(data, "broken.dtg")
    assert "broken.dtg" in str(info.value) and "\n" not in str(info.value)


def test_header_with_a_non_numeric_vehicle_type_is_not_a_dtg_file():
    data = b"#" * 37 + b"XX" + b"#" * 40 + b"\r\n"
    with pytest.raises(DtgError, match="vehicle type"):
        dtg_text.parse(data, "h.dtg")


def test_writer_refuses_values_the_format_cannot_hold():
    with pytest.raises(DtgError, match="speed"):
        dtg_text.to_bytes(rows(2, speed=pa.array([10.0, 1000.0], pa.float32())), HEADER)
    with pytest.raises(DtgError, match="2000-2099"):
        dtg_text.to_bytes(rows(1, dt.datetime(1999, 12, 31, tzinfo=KST)), HEADER)


def test_format_is_detected_from_content_not_extension(tmp_path):
    p = tmp_path / "log.bin"
    p.write_bytes(dtg_text.to_bytes(rows(3), HEADER))
    assert detect_format(p, p.read_bytes()) == "dtg"
    r = read_source(p)
    assert r.format == "dtg" and r.table.num_rows == 3


def test_sample_files_parse_without_unexpected_rejects(sample_dir):
    for f in sorted(sample_dir.glob("*.dtg")):
        r = dtg_text.read(f)
        assert r.rows_read > 3000 and r.rejects.num_rows == 0, f
        assert r.encoding == "cp949" and r.header["vehicle_type"] in dtg_text.VEHICLE_TYPES
