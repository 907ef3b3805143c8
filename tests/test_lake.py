"""The lake: safe partition keys, one row per (vehicle, second), atomic parts, sorted reads, fingerprints."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
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
from dtg.lake import DIGEST_ALGO, Lake, local_dates, partition_key, table_digest, vehicle_id_of
from dtg.readers.base import canonical

KST = ZoneInfo("Asia/Seoul")
T0 = dt.datetime(2024, 5, 13, 8, tzinfo=KST)


def rows(vehicle: str, secs, start: dt.datetime = T0, speed: float = 10.0) -> pa.Table:
    secs = list(secs)
    n = len(secs)
    return canonical(pa.table({
        "vehicle_id": pa.array([vehicle] * n, pa.string()),
        "ts": pa.array([start + dt.timedelta(seconds=s) for s in secs], schema.TS_TYPE),
        "speed": pa.array([speed + s % 7 for s in secs], pa.float32()),
        "rpm": pa.array([900.0] * n, pa.float32()), "brake": pa.array([0] * n, pa.int8()),
        "lat": pa.array([37.5] * n), "lon": pa.array([127.0] * n),
        "source_file": pa.array(["t.dtg"] * n), "source_row": pa.array(list(range(2, n + 2)), pa.int64()),
    }))


UNSAFE = ["../../etc", "a/b", "..", ".", "%2e%2e", ".hidden", "a\\b", "x\x00y", "/abs", "~root", "a b", "C:\\x",
          "서울70사1234", "..\\..\\win"]


@pytest.mark.parametrize("vid", UNSAFE)
def test_unsafe_vehicle_ids_stay_inside_the_lake_and_read_back(tmp_path, vid):
    lake = Lake(tmp_path / "lake")
    assert lake.write(rows(vid, range(3))) == (3, 0)
    root = (tmp_path / "lake").resolve()
    for path in (tmp_path).rglob("*"):
        if path.is_file() and path.suffix == ".parquet":
            assert root in path.resolve().parents
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lake"]
    assert lake.vehicles() == [vid]
    assert lake.read(vehicles=[vid]).column("vehicle_id").to_pylist() == [vid] * 3


@settings(max_examples=200, deadline=None)
@given(st.text(min_size=1, max_size=16))
def test_partition_key_is_path_safe_and_reversible(vid):
    key = partition_key(vid)
    assert vehicle_id_of(key) == vid
    assert not set(key) & set("./\\\x00:") and key not in ("", ".", "..")
    assert Path(key).name == key


def test_empty_or_overlong_vehicle_id_is_an_error():
    with pytest.raises(DtgError, match="empty"):
        partition_key("")
    with pytest.raises(DtgError, match="too long"):
        partition_key("/" * 70)


def test_partitions_are_vehicle_and_local_date(tmp_path):
    lake = Lake(tmp_path)
    late = dt.datetime(2024, 5, 13, 23, 59, 58, tzinfo=KST)  # crosses local midnight; UTC date is earlier
    lake.write(rows("서울70사1234", range(4), start=late))
    parts = lake.partitions()
    assert [(p.vehicle_id, str(p.date)) for p in parts] == [("서울70사1234", "2024-05-13"),
                                                            ("서울70사1234", "2024-05-14")]
    assert parts[0].path == tmp_path / "vehicle=서울70사1234" / "date=2024-05-13"
    assert lake.read(start=dt.datetime(2024, 5, 14)).num_rows == 2  # naive = Korean local time


def test_reingesting_the_same_rows_adds_nothing(tmp_path):
    lake = Lake(tmp_path)
    t = rows("v", range(100))
    assert lake.write(t) == (100, 0)
    fp = lake.fingerprint()
    files = sorted(tmp_path.rglob("part-*.parquet"))
    assert lake.write(t) == (0, 100)
    assert sorted(tmp_path.rglob("part-*.parquet")) == files and lake.fingerprint() == fp


def test_overlapping_rows_add_only_new_seconds(tmp_path):
    lake = Lake(tmp_path)
    lake.write(rows("v", range(0, 60)))
    assert lake.write(rows("v", range(30, 90))) == (30, 30)
    ts = lake.read().column("ts").to_pylist()
    assert len(ts) == 90 and ts == sorted(set(ts))


def test_duplicates_within_one_write_are_counted_once(tmp_path):
    lake = Lake(tmp_path)
    assert lake.write(rows("v", [0, 1, 1, 2])) == (3, 1)


def test_read_is_sorted_by_vehicle_then_time_and_filters(tmp_path):
    lake = Lake(tmp_path)
    lake.write(rows("b", [5, 3, 4]))
    lake.write(rows("a", [9, 1]))
    lake.write(rows("b", [1, 2]))
    t = lake.read()
    assert t.schema == schema.SCHEMA
    got = list(zip(t.column("vehicle_id").to_pylist(), [x.second for x in t.column("ts").to_pylist()]))
    assert got == [("a", 1), ("a", 9), ("b", 1), ("b", 2), ("b", 3), ("b", 4), ("b", 5)]
    sub = lake.read(vehicles=["b"], start=T0 + dt.timedelta(seconds=2), end=T0 + dt.timedelta(seconds=4),
                    columns=["ts", "speed"])
    assert sub.column_names == ["ts", "speed"] and [x.second for x in sub.column("ts").to_pylist()] == [2, 3]
    assert lake.read(vehicles=["nobody"]).num_rows == 0


def test_read_with_dictionary_ids_gives_the_same_rows_with_one_dictionary(tmp_path):
    lake = Lake(tmp_path)
    lake.write(rows("b", [5, 3, 4]))
    lake.write(rows("a", [9, 1]))
    lake.write(rows("b", [1, 2], start=T0 + dt.timedelta(days=1)))
    lake.write(rows("c", [7]))
    for query in ({}, {"vehicles": ["c", "a"], "columns": ["vehicle_id", "ts", "speed"]}):
        plain, coded = lake.read(**query), lake.read(**query, dictionary_ids=True)
        vid = coded.column("vehicle_id")
        assert vid.type == pa.dictionary(pa.int32(), pa.string()) and vid.num_chunks == 1
        assert len(set(vid.chunk(0).dictionary.to_pylist())) == len(vid.chunk(0).dictionary)
        assert coded.cast(plain.schema).equals(plain)
    empty = Lake(tmp_path / "none").read(dictionary_ids=True)
    assert empty.num_rows == 0 and empty.schema.field("vehicle_id").type == pa.dictionary(pa.int32(), pa.string())


def test_reading_an_empty_or_missing_lake_gives_an_empty_canonical_table(tmp_path):
    t = Lake(tmp_path / "none").read()
    assert t.num_rows == 0 and t.schema == schema.SCHEMA
    assert Lake(tmp_path / "none").vehicles() == []


def test_fingerprint_depends_on_content_not_on_how_it_was_written(tmp_path):
    one, two = Lake(tmp_path / "one"), Lake(tmp_path / "two")
    t = rows("v", range(50))
    one.write(t)
    two.write(t.slice(30))
    two.write(t.slice(0, 30))
    assert one.fingerprint() == two.fingerprint()
    two.write(rows("v", [50]))
    assert one.fingerprint() != two.fingerprint()


def test_fingerprint_sees_a_changed_value_in_an_otherwise_equal_lake(tmp_path):
    a, b = Lake(tmp_path / "a"), Lake(tmp_path / "b")
    a.write(rows("v", range(10), speed=10.0))
    b.write(rows("v", range(10), speed=11.0))
    assert a.fingerprint() != b.fingerprint()


@pytest.mark.parametrize("left", [b"", b"\xff\xfe", b'{"algo": "blake2b-256/2", "parts"'])
def test_a_digest_cache_a_crash_left_empty_or_torn_is_recomputed(tmp_path, left):
    # _digest.json is renamed into place without fsync: after a crash it may hold anything
    lake = Lake(tmp_path)
    lake.write(rows("v", range(10)))
    fp = lake.fingerprint()
    for d in tmp_path.rglob("_digest.json"):
        d.write_bytes(left)
    assert lake.fingerprint() == fp
    assert not [p for p in tmp_path.rglob("*") if p.name.startswith(".tmp-")]


def test_stale_digest_is_recomputed(tmp_path):
    lake = Lake(tmp_path)
    lake.write(rows("v", range(10)))
    fp = lake.fingerprint()
    for d in tmp_path.rglob("_digest.json"):
        d.write_text('{"parts": [], "rows": 0, "sha256": "x"}')
    assert lake.fingerprint() == fp


def test_temp_files_of_an_unfinished_write_are_invisible_to_readers(tmp_path):
    lake = Lake(tmp_path)
    lake.write(rows("v", range(5)))
    part_dir = lake.partitions()[0].path
    (part_dir / ".tmp-part-x.parquet.abc").write_bytes(b"PAR1 half written")
    assert lake.read().num_rows == 5 and len(lake.partitions()[0].files) == 1


def test_a_failed_write_leaves_the_stored_rows_unchanged(tmp_path, monkeypatch):
    lake = Lake(tmp_path)
    lake.write(rows("v", range(5)))
    fp = lake.fingerprint()

    import dtg.atomic

    def boom(path, table, **kw):
        with dtg.atomic.atomic_path(path) as tmp:
            tmp.write_bytes(b"partial")
            raise OSError("disk full")

    monkeypatch.setattr(dtg.atomic, "write_parquet", boom)
    with pytest.raises(OSError):
        lake.write(rows("v", range(5, 10)))
    monkeypatch.undo()
    assert lake.fingerprint() == fp and lake.read().num_rows == 5
    assert not [p for p in tmp_path.rglob("*") if p.name.startswith(".tmp-")]


def test_parts_get_the_usual_umask_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        lake = Lake(tmp_path)
        lake.write(rows("v", range(2)))
    finally:
        os.umask(old)
    assert os.stat(lake.partitions()[0].files[0]).st_mode & 0o777 == 0o644


def test_sample_lake_holds_every_sample_vehicle(sample_lake):
    lake = Lake(sample_lake)
    assert lake.vehicles() == ["경기91아2345", "부산32바5678", "서울70사1234", "인천31사7890"]
    t = lake.read(columns=["vehicle_id", "ts"])
    assert t.num_rows == lake.num_rows() > 20000


def test_new_vehicle_days_get_their_digest_at_write_time_equal_to_a_recomputed_one(tmp_path, monkeypatch):
    lake = Lake(tmp_path)
    lake.write(rows("v", [3, 1, 2]))
    lake.write(rows("w", range(5)))
    import dtg.lake

    def no_reading(*a, **k):
        raise AssertionError("fingerprint() read Parquet data although every digest was cached")

    with monkeypatch.context() as m:
        m.setattr(dtg.lake.ds, "dataset", no_reading)
        cached = lake.fingerprint()
    for d in tmp_path.rglob("_digest.json"):
        d.unlink()
    assert lake.fingerprint() == cached


def _digest_table() -> pa.Table:
    t = rows("서울70사1234", [0, 1, 2, 5])
    t = t.set_column(t.schema.get_field_index("accel_x"), "accel_x", pa.array([0.5, None, -1.0, None], pa.float32()))
    return t.set_column(t.schema.get_field_index("driver_code"), "driver_code", pa.array(["d1", None, "d2", "d1"]))


def test_table_digest_is_pinned_to_its_algo_version_and_ignores_chunking():
    t = _digest_table()
    # Cached `_digest.json` files of this DIGEST_ALGO stay valid only while this value holds.
    assert DIGEST_ALGO == "blake2b-256/2"
    assert table_digest(t) == "eb15c37beddd7d16efecf8ab1fbf9c84cc5e78db951fbe0dd21e9436c7cbcf8a"
    rechunked = pa.concat_tables([t.slice(0, 1), t.slice(1, 2), t.slice(3)])
    assert rechunked.column("driver_code").num_chunks == 3
    assert table_digest(rechunked) == table_digest(t)
    assert table_digest(t.slice(0, 0)) == table_digest(schema.empty_table())


def _blocks(block: int, n_blocks: int) -> pa.Table:
    """Two vehicles' logs in alternating blocks of `block` seconds, like a fleet export."""
    parts = []
    for b in range(n_blocks):
        for v in ("v", "w"):
            parts.append(rows(v, range(b * block, (b + 1) * block)))
    return pa.concat_tables(parts).combine_chunks()


@pytest.mark.parametrize("block", [1, 3, 200])
def test_parts_of_blocked_or_scattered_rows_hold_the_same_content(tmp_path, block):
    # block 200: each vehicle-day is a few long runs of the input, stored as slices of it;
    # blocks of 1 or 3 rows: scattered rows, stored through a take. Both store the same content.
    table = _blocks(block, 600 // block)
    lake, ref = Lake(tmp_path / "lake"), Lake(tmp_path / "ref")
    assert lake.write(table) == (1200, 0)
    ref.write(table.sort_by([("vehicle_id", "ascending"), ("ts", "ascending")]))
    expected = table.sort_by([("vehicle_id", "ascending"), ("ts", "ascending")])
    assert lake.read().equals(expected)
    assert lake.fingerprint() == ref.fingerprint()
    for p in lake.partitions():
        assert pq.ParquetFile(p.files[0]).metadata.num_row_groups == 1
    for d in (tmp_path / "lake").rglob("_digest.json"):
        d.unlink()
    assert lake.fingerprint() == ref.fingerprint()


def test_parts_use_lz4_dictionaries_deltas_and_split_coordinates(tmp_path):
    lake = Lake(tmp_path)
    lake.write(rows("v", range(100)))
    meta = pq.ParquetFile(lake.partitions()[0].files[0]).metadata.row_group(0)
    cols = {meta.column(i).path_in_schema: meta.column(i) for i in range(meta.num_columns)}
    assert {c.compression for c in cols.values()} == {"LZ4"}
    for name in ("ts", "source_row"):
        assert "DELTA_BINARY_PACKED" in cols[name].encodings
    for name in ("lat", "lon"):
        assert "BYTE_STREAM_SPLIT" in cols[name].encodings
    assert "RLE_DICTIONARY" in cols["speed"].encodings


@settings(max_examples=40, deadline=None)
@given(start=st.integers(-1_000_000_000_000, 2_500_000_000_000),
       steps=st.lists(st.integers(0, 600_000) | st.just(30 * 86_400_000), min_size=1, max_size=300))
def test_local_dates_equal_arrows_per_row_local_dates(start, steps):
    ts = pa.array(start + np.cumsum(np.array(steps, dtype=np.int64)), schema.TS_TYPE)
    expected = pc.local_timestamp(ts).to_numpy().astype("datetime64[D]")
    assert (local_dates(ts) == expected).all()
    assert (local_dates(pa.chunked_array([ts.slice(0, 1), ts.slice(1)])) == expected).all()
