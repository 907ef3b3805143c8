"""`dtg ingest` end to end: the sample, the row invariant, idempotence, quarantine, unreadable files, the CLI."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path
from zoneinfo import ZoneInfo

import pyarrow as pa
import pyarrow.compute  # noqa: F401 - pa.compute in the property test
import pytest
from hypothesis import given, settings
from typer.testing import CliRunner

from dtg import quarantine, schema
from dtg.cli import app
from dtg.ingest import expand_sources, ingest
from dtg.lake import Lake
from dtg.readers import dtg_text
from dtg.readers.dtg_text import DtgHeader
from test_readers_dtg import record_tables

KST = ZoneInfo("Asia/Seoul")
HEADER = DtgHeader("DTG", "VIN", "21", "서울32바1111", "1", "D")


def dtg_bytes(secs, vehicle: str = "서울32바1111", lat: float = 37.5, **cols) -> bytes:
    secs = list(secs)
    n = len(secs)
    t0 = dt.datetime(2024, 5, 13, 8, tzinfo=KST)
    base = {"ts": pa.array([t0 + dt.timedelta(seconds=s) for s in secs], schema.TS_TYPE),
            "speed": pa.array([20.0] * n, pa.float32()), "rpm": pa.array([1000.0] * n, pa.float32()),
            "brake": pa.array([0] * n, pa.int8()), "lat": pa.array([lat] * n), "lon": pa.array([127.0] * n)}
    base.update(cols)
    return dtg_text.to_bytes(pa.table(base), DtgHeader("DTG", "VIN", "21", vehicle, "1", "D"))


def invariant(s: dict) -> bool:
    return s["rows_read"] == s["rows_ingested"] + s["rows_duplicate"] + s["rows_quarantined"]


def test_sample_ingests_with_the_planted_faults_quarantined(sample_dir, tmp_path):
    s = ingest([sample_dir], tmp_path / "lake", tmp_path / "q").to_dict()
    assert s["files"] == 4 and s["errors"] == [] and invariant(s)
    assert s["quarantine_reasons"] == {"bad_timestamp": 1, "duplicate_timestamp": 1, "gps_no_fix": 1}
    assert s["rows_ingested"] == Lake(tmp_path / "lake").num_rows() == s["rows_read"] - 3
    q = quarantine.read(tmp_path / "q").to_pylist()
    assert {r["reason"] for r in q} == set(s["quarantine_reasons"]) and all(r["raw"] and r["row"] > 1 for r in q)


def test_reingesting_a_file_adds_no_rows_and_keeps_the_fingerprint(sample_dir, tmp_path):
    first = ingest([sample_dir], tmp_path / "lake", tmp_path / "q").to_dict()
    fp = Lake(tmp_path / "lake").fingerprint()
    again = ingest([sample_dir], tmp_path / "lake", tmp_path / "q").to_dict()
    assert again["rows_ingested"] == 0 and again["rows_duplicate"] == first["rows_ingested"] and invariant(again)
    assert Lake(tmp_path / "lake").fingerprint() == fp


def test_overlapping_files_add_only_the_new_seconds(tmp_path):
    (tmp_path / "a.dtg").write_bytes(dtg_bytes(range(0, 100)))
    (tmp_path / "b.dtg").write_bytes(dtg_bytes(range(50, 150)))
    s = ingest([tmp_path / "a.dtg", tmp_path / "b.dtg"], tmp_path / "lake", tmp_path / "q").to_dict()
    assert (s["rows_read"], s["rows_ingested"], s["rows_duplicate"]) == (200, 150, 50)
    assert [f["rows_ingested"] for f in s["per_file"]] == [100, 50]


def test_every_kind_of_bad_row_is_quarantined_and_counted(tmp_path):
    speeds = pa.array([20, 20, 20, 20, 20, 20, 300, 20], pa.float32())
    lines = dtg_bytes([10, 11, 12, 13, 13, 5, 15, 16], speed=speeds).split(b"\r\n")
    lines[3] = lines[3][:25] + b"9x9" + lines[3][28:]  # line 4: bad number in speed
    lines[8] = lines[8][:40]                            # line 9: truncated record
    (tmp_path / "bad.dtg").write_bytes(b"\r\n".join(lines))
    s = ingest([tmp_path / "bad.dtg"], tmp_path / "lake", tmp_path / "q").to_dict()
    assert invariant(s) and (s["rows_read"], s["rows_ingested"], s["rows_quarantined"]) == (8, 3, 5)
    q = sorted((r["row"], r["reason"]) for r in quarantine.read(tmp_path / "q").to_pylist())
    assert q == [(4, "bad_number:speed"), (6, "duplicate_timestamp"), (7, "clock_backwards"),
                 (8, "speed_out_of_range"), (9, "truncated_record")]


def test_positions_outside_korea_are_stored_and_reported(tmp_path):
    (tmp_path / "eu.dtg").write_bytes(dtg_bytes(range(5), lat=52.5))
    s = ingest([tmp_path / "eu.dtg"], tmp_path / "lake", tmp_path / "q").to_dict()
    assert s["rows_ingested"] == 5 and s["rows_outside_korea"] == 5


@pytest.mark.parametrize("name,content,message", [
    ("empty.dtg", b"", "empty file"),
    ("binary.dtg", bytes(range(256)) * 8, "binary"),
    ("truncated.dtg", dtg_bytes(range(3))[:50], "header line is 50 bytes"),
    ("photo.jpg", b"\xff\xd8\xff\xe0JFIF" + bytes(300), "binary"),
    ("notes.txt", "오늘의 운행 메모\n".encode("utf-8"), "header line is"),
])
def test_an_unreadable_file_is_one_error_and_the_other_files_go_on(tmp_path, name, content, message):
    (tmp_path / "good.dtg").write_bytes(dtg_bytes(range(10)))
    (tmp_path / name).write_bytes(content)
    s = ingest([tmp_path / name, tmp_path / "good.dtg"], tmp_path / "lake", tmp_path / "q").to_dict()
    assert s["rows_ingested"] == 10 and s["files"] == 2 and s["files_failed"] == 1
    (err,) = s["errors"]
    assert err["file"].endswith(name) and message in err["reason"] and "\n" not in err["reason"]


def test_folders_are_searched_recursively_for_log_files_only(tmp_path):
    (tmp_path / "x" / "y").mkdir(parents=True)
    (tmp_path / "x" / "y" / "deep.dtg").write_bytes(b"1")
    (tmp_path / "x" / "a.csv").write_bytes(b"1")
    (tmp_path / "x" / "README.md").write_bytes(b"1")
    (tmp_path / "x" / "README.txt").write_bytes(b"1")
    (tmp_path / "x" / ".hidden.dtg").write_bytes(b"1")
    got = [p.relative_to(tmp_path).as_posix() for p in expand_sources([tmp_path / "x"])]
    assert got == ["x/a.csv", "x/y/deep.dtg"]


def test_a_concurrent_reader_sees_only_whole_files(tmp_path):
    (tmp_path / "a.dtg").write_bytes(dtg_bytes(range(1000)))
    ingest([tmp_path / "a.dtg"], tmp_path / "lake", tmp_path / "q")
    names = [p.name for p in (tmp_path / "lake").rglob("*") if p.is_file()]
    assert all(n.startswith("part-") or n in ("_digest.json", ".lock") for n in names)


# ----------------------------------------------------------------------------------------------- CLI

runner = CliRunner()


def test_cli_json_prints_one_object_whose_counts_reconcile(sample_dir, tmp_workspace):
    result = runner.invoke(app, ["ingest", str(sample_dir), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert invariant(summary) and summary["files"] == 4 and summary["rows_quarantined"] == 3
    for key in ("files", "rows_read", "rows_ingested", "rows_duplicate", "rows_quarantined", "errors"):
        assert key in summary
    assert (tmp_workspace / "data" / "lake").is_dir() and (tmp_workspace / "data" / "quarantine").is_dir()


def test_cli_exits_1_with_one_line_per_unreadable_file_but_stores_the_rest(tmp_path):
    (tmp_path / "ok.dtg").write_bytes(dtg_bytes(range(5)))
    (tmp_path / "bad.dtg").write_bytes(b"")
    result = runner.invoke(app, ["ingest", str(tmp_path / "bad.dtg"), str(tmp_path / "ok.dtg"),
                                 "--lake", str(tmp_path / "lake"), "--quarantine", str(tmp_path / "q"), "--json"])
    assert result.exit_code == 1
    summary = json.loads(result.stdout)
    assert summary["rows_ingested"] == 5 and len(summary["errors"]) == 1
    assert "Traceback" not in result.stderr and "bad.dtg: empty file" in result.stderr


def test_cli_options_reach_the_readers(tmp_path):
    csv = tmp_path / "log.csv"
    csv.write_text("Zeit,Geschw\n2024-05-13 08:00:00,10\n", encoding="utf-8")
    mapping = tmp_path / "m.json"
    mapping.write_text(json.dumps({"Zeit": "ts", "Geschw": "speed"}))
    result = runner.invoke(app, ["ingest", str(csv), "--format", "csv", "--encoding", "utf-8", "--tz", "UTC",
                                 "--mapping", str(mapping), "--vehicle", "DE-1", "--lake", str(tmp_path / "lake"),
                                 "--quarantine", str(tmp_path / "q"), "--json"])
    assert result.exit_code == 0, result.output
    t = Lake(tmp_path / "lake").read()
    assert t.column("vehicle_id").to_pylist() == ["DE-1"]
    assert t.column("ts")[0].as_py() == dt.datetime(2024, 5, 13, 8, tzinfo=dt.timezone.utc)


def test_cli_bad_option_value_is_one_clear_error(tmp_path):
    (tmp_path / "ok.dtg").write_bytes(dtg_bytes(range(2)))
    result = runner.invoke(app, ["ingest", str(tmp_path / "ok.dtg"), "--encoding", "latin-9",
                                 "--lake", str(tmp_path / "lake"), "--quarantine", str(tmp_path / "q")])
    assert result.exit_code == 1 and "unsupported encoding 'latin-9'" in result.stderr


def test_cli_human_summary_goes_to_stdout_and_logs_to_stderr(sample_dir, tmp_path):
    result = runner.invoke(app, ["ingest", str(sample_dir), "--lake", str(tmp_path / "lake"),
                                 "--quarantine", str(tmp_path / "q")])
    assert result.exit_code == 0
    assert "ingested 4 of 4 files" in result.stdout and "gps_no_fix 1" in result.stdout
    assert "부산32바5678_20240513.dtg" in result.stderr


@pytest.mark.slow
def test_installed_dtg_command_runs_on_the_sample(sample_dir, tmp_path):
    exe = Path(sys.executable).with_name("dtg")
    if not exe.exists():
        pytest.skip("dtg console script not installed in this environment")
    out = subprocess.run([str(exe), "ingest", str(sample_dir), "--lake", str(tmp_path / "lake"),
                          "--quarantine", str(tmp_path / "q"), "--json"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert invariant(json.loads(out.stdout))


@settings(max_examples=15, deadline=None)
@given(table=record_tables())
def test_a_written_dtg_file_ingests_to_exactly_its_rows(table):
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        (d / "rt.dtg").write_bytes(dtg_text.to_bytes(table, HEADER))
        s = ingest([d / "rt.dtg"], d / "lake", d / "q").to_dict()
        assert invariant(s) and s["rows_quarantined"] == 0 and s["rows_ingested"] == table.num_rows
        got = Lake(d / "lake").read()
        order = pa.compute.sort_indices(table, [("ts", "ascending")])
        want = table.take(order)
        for name in table.column_names:
            assert got.column(name).to_pylist() == want.column(name).cast(schema.BY_NAME[name].type).to_pylist()
        assert got.column("vehicle_id").to_pylist() == [HEADER.registration] * table.num_rows


def test_concurrent_ingests_of_overlapping_files_store_each_second_once(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    (tmp_path / "a.dtg").write_bytes(dtg_bytes(range(0, 400)))
    (tmp_path / "b.dtg").write_bytes(dtg_bytes(range(200, 600)))
    with ThreadPoolExecutor(2) as pool:
        runs = list(pool.map(lambda f: ingest([tmp_path / f], tmp_path / "lake", tmp_path / "q").to_dict(),
                             ["a.dtg", "b.dtg"]))
    assert sum(r["rows_ingested"] for r in runs) == 600 and sum(r["rows_duplicate"] for r in runs) == 200
    ts = Lake(tmp_path / "lake").read().column("ts").to_pylist()
    assert len(ts) == len(set(ts)) == 600


def test_rejected_rows_reach_the_quarantine_even_if_the_lake_write_fails(tmp_path, monkeypatch):
    data = dtg_bytes([0, 1, 1, 2])  # line 4 repeats a second
    (tmp_path / "a.dtg").write_bytes(data)

    def broken(self, table):
        raise OSError("disk full")

    monkeypatch.setattr(Lake, "write", broken)
    with pytest.raises(OSError):
        ingest([tmp_path / "a.dtg"], tmp_path / "lake", tmp_path / "q")
    assert [(r["row"], r["reason"]) for r in quarantine.read(tmp_path / "q").to_pylist()] == \
        [(4, "duplicate_timestamp")]


def test_parquet_rows_out_of_range_are_quarantined_with_a_rendering_of_the_row(tmp_path):
    import pyarrow.parquet as pq

    t0 = dt.datetime(2024, 5, 13, 8, tzinfo=KST)
    pq.write_table(pa.table({"vehicle_id": ["p1", "p1"], "ts": pa.array([t0, t0 + dt.timedelta(seconds=1)],
                                                                        schema.TS_TYPE),
                             "speed": [10.0, 999.0], "lat": [37.5, 37.5], "lon": [127.0, 127.0]}),
                   tmp_path / "x.parquet")
    s = ingest([tmp_path / "x.parquet"], tmp_path / "lake", tmp_path / "q").to_dict()
    assert (s["rows_read"], s["rows_ingested"], s["rows_quarantined"]) == (2, 1, 1) and invariant(s)
    (q,) = quarantine.read(tmp_path / "q").to_pylist()
    assert q["row"] == 2 and q["reason"] == "speed_out_of_range" and "999.0" in q["raw"] and "p1" in q["raw"]


def test_forcing_the_wrong_format_is_one_clear_error(tmp_path):
    (tmp_path / "log.csv").write_text("time,speed\n2024-05-13 08:00:00,1\n")
    s = ingest([tmp_path / "log.csv"], tmp_path / "lake", tmp_path / "q", fmt="dtg").to_dict()
    assert s["files_failed"] == 1 and "not a DTG record file" in s["errors"][0]["reason"]
    s = ingest([tmp_path / "log.csv"], tmp_path / "lake", tmp_path / "q", fmt="parquet").to_dict()
    assert "not a readable Parquet file" in s["errors"][0]["reason"]


@pytest.mark.parametrize("option,value,message", [
    ("--tz", "Mars/Base", "unknown time zone 'Mars/Base'"),
    ("--format", "xml", "unknown format 'xml'"),
])
def test_cli_bad_options_stop_before_any_file_is_read(sample_dir, tmp_path, option, value, message):
    result = runner.invoke(app, ["ingest", str(sample_dir), option, value, "--lake", str(tmp_path / "lake"),
                                 "--quarantine", str(tmp_path / "q"), "--json"])
    assert result.exit_code == 1 and message in result.stderr and result.stderr.count("\n") == 1
    assert result.stdout == "" and not (tmp_path / "lake").exists()
