"""Any bytes at all: a reader returns rows that reconcile, or raises DtgError (one line), never anything else."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dtg import schema
from dtg.errors import DtgError
from dtg.readers import csv as csv_reader
from dtg.readers import dtg_text
from dtg.validate import validate

CSV_HEAD = "차량번호,시간,속도,RPM,브레이크,위도,경도\n"
cells = st.one_of(st.text(alphabet="0123456789.-:+ Z가T/", max_size=22), st.integers(-5, 400).map(str))


def check(result) -> None:
    assert result.rows_read == result.table.num_rows + result.rejects.num_rows
    assert result.table.schema == schema.SCHEMA
    good, rej = validate(result.table, result.raw_text)
    assert good.num_rows + rej.num_rows == result.table.num_rows


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=600), st.sampled_from(["auto", "utf-8", "cp949"]))
def test_arbitrary_bytes_never_crash_either_reader(data, encoding):
    for parse in (csv_reader.parse, dtg_text.parse):
        try:
            check(parse(data, "fuzz.bin", encoding=encoding))
        except DtgError as exc:
            assert "\n" not in str(exc)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(cells, min_size=5, max_size=9), max_size=12), st.sampled_from(["utf-8", "cp949"]))
def test_messy_csv_rows_are_each_kept_or_rejected(rows, encoding):
    text = CSV_HEAD + "".join(",".join(r) + "\n" for r in rows)
    try:
        result = csv_reader.parse(text.encode(encoding), "messy.csv")
    except DtgError as exc:
        assert "\n" not in str(exc)
        return
    check(result)
    assert result.rows_read == len(rows)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 67), st.sampled_from(b"0123456789+-. #xZ\xb0")), max_size=30),
       st.integers(0, 4))
def test_corrupted_dtg_bytes_are_each_kept_or_rejected(edits, cut):
    t0 = dt.datetime(2024, 5, 13, 8, tzinfo=dtg_text_tz())
    table = pa.table({"ts": pa.array([t0 + dt.timedelta(seconds=i) for i in range(5)], schema.TS_TYPE),
                      "speed": pa.array([10.0] * 5, pa.float32()), "lat": [37.5] * 5, "lon": [127.0] * 5})
    data = bytearray(dtg_text.to_bytes(table, dtg_text.DtgHeader(vehicle_type="21", registration="서울")))
    for k, (pos, byte) in enumerate(edits):
        data[81 + (k % 5) * 70 + pos] = byte
    data = bytes(data[:len(data) - cut * 7])
    result = dtg_text.parse(data, "corrupt.dtg")
    check(result)
    assert result.rows_read == 5


def dtg_text_tz():
    from zoneinfo import ZoneInfo

    return ZoneInfo(schema.TZ)
