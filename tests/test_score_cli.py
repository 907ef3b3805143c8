"""`dtg score` on the command line: JSON summary, exit codes 0/1/3, one-line errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dtg.cli import app
from dtg.lock import RunLock
from test_scoring_support import drive_table, publish_model, write_dtg

KEYS = {"files_new", "files_skipped", "windows_scored", "anomalies_total", "anomalies", "out"}


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("cli") / "ws"
    drive = drive_table(n=400, seed=3, spikes=(200,))
    publish_model(root / "models", drive, threshold=0.02)
    write_dtg(root / "in" / "a.dtg", drive.slice(0, 200))
    write_dtg(root / "in" / "b.dtg", drive.slice(200))
    return root


@pytest.fixture()
def ws(template, tmp_path, monkeypatch) -> Path:
    dest = tmp_path / "ws"
    shutil.copytree(template, dest)
    monkeypatch.chdir(dest)
    return dest


def _run(*args: str):
    return CliRunner().invoke(app, ["score", *args])


def test_json_summary_is_one_object_with_the_contract_keys(ws):
    result = _run("in", "--model", "tiny", "--device", "cpu", "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert KEYS <= set(summary)
    assert summary["files_new"] == 2 and summary["out"] == str(Path("data") / "scores")
    assert summary["anomalies_total"] == len(summary["anomalies"]) > 0
    first = summary["anomalies"][0]
    assert set(first) == {"vehicle_id", "start", "end", "peak_score", "top_feature"}
    assert first["start"].endswith("+09:00")
    assert (ws / "data" / "ledger.sqlite").is_file()
    meta = json.loads((ws / "data" / "scores" / "model.json").read_text())
    assert meta["model"] == "tiny/v1" and meta["threshold"] == {"kind": "fixed", "value": 0.02}
    again = json.loads(_run("in", "--model", "tiny", "--device", "cpu", "--json").stdout)
    assert (again["files_new"], again["files_skipped"]) == (0, 2)


def test_a_corrupted_log_exits_1_after_scoring_the_good_ones(ws):
    (ws / "in" / "c.dtg").write_bytes(b"PK\x03\x04 zip, not a log")
    result = _run("in", "--model", "tiny", "--device", "cpu", "--json")
    assert result.exit_code == 1
    summary = json.loads(result.stdout)
    assert summary["files_new"] == 2 and summary["files_failed"] == 1
    assert "c.dtg" in summary["errors"][0]["file"]
    assert "Traceback" not in result.stderr


def test_a_run_while_another_holds_the_lock_exits_3_with_a_clear_message(ws):
    with RunLock(ws / "data" / "ledger.sqlite.lock"):
        result = _run("in", "--model", "tiny", "--device", "cpu", "--json")
    assert result.exit_code == 3
    assert result.stdout == ""
    assert "another dtg score run holds the lock" in result.stderr and "--wait" in result.stderr


def test_bad_options_are_one_line_errors(ws):
    result = _run("in", "--model", "tiny", "--threshold", "loud")
    assert result.exit_code == 1 and "invalid threshold 'loud'" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    result = _run("in", "--model", "nosuch")
    assert result.exit_code == 1 and "no model named 'nosuch'" in result.stderr
    result = _run("in", "--model", "tiny", "--engine", "spark")
    assert result.exit_code == 1 and "engine 'spark'" in result.stderr


def test_a_threshold_value_overrides_the_cards(ws):
    low = json.loads(_run("in", "--model", "tiny", "--device", "cpu", "--threshold", "0", "--json").stdout)
    assert low["anomalies_total"] == 2  # every second anomalous: one interval per log (intervals are per log)
    high = json.loads(_run("in", "--model", "tiny", "--device", "cpu", "--threshold", "1e9", "--rescore",
                           "--json").stdout)
    assert high["files_new"] == 2 and high["anomalies_total"] == 0
    assert not list((ws / "data" / "scores" / "anomalies").rglob("*.parquet"))  # the rescore replaced them


def test_without_sources_every_lake_partition_not_yet_scored_is_scored(ws):
    assert CliRunner().invoke(app, ["ingest", "in/a.dtg", "--json"]).exit_code == 0
    first = json.loads(_run("--model", "tiny", "--device", "cpu", "--json").stdout)
    assert first["files_new"] == 1 and first["seconds_scored"] == 200  # one vehicle-day
    again = json.loads(_run("--model", "tiny", "--device", "cpu", "--json").stdout)
    assert (again["files_new"], again["files_skipped"]) == (0, 1)
    assert CliRunner().invoke(app, ["ingest", "in/b.dtg", "--json"]).exit_code == 0  # the day grows
    grown = json.loads(_run("--model", "tiny", "--device", "cpu", "--json").stdout)
    assert grown["files_new"] == 1 and grown["seconds_scored"] == 400
    seconds = list((ws / "data" / "scores" / "seconds").rglob("*.parquet"))
    assert len(seconds) == 1  # the partition's old scores were replaced, not kept beside the new


def test_a_missing_log_is_reported_and_an_empty_folder_is_no_work(ws):
    result = _run("in/nope.dtg", "--model", "tiny", "--device", "cpu", "--json")
    assert result.exit_code == 1
    assert "No such file" in json.loads(result.stdout)["errors"][0]["error"]
    (ws / "empty").mkdir()
    result = _run("empty", "--model", "tiny", "--device", "cpu", "--json")
    assert result.exit_code == 0
    assert json.loads(result.stdout)["files_new"] == 0


def test_report_flag_writes_the_html_report(ws):
    result = _run("in", "--model", "tiny", "--device", "cpu", "--report", "--json")
    assert result.exit_code == 0, result.output
    report = Path(json.loads(result.stdout)["report"])
    assert report.is_file() and report.read_text(encoding="utf-8").lstrip().lower().startswith("<!doctype html")


def test_the_summary_lists_at_most_the_limit_of_intervals(ws, monkeypatch):
    import dtg.scoring as scoring

    monkeypatch.setattr(scoring, "SUMMARY_ANOMALY_LIMIT", 1)
    summary = json.loads(_run("in", "--model", "tiny", "--device", "cpu", "--threshold", "0", "--json").stdout)
    assert summary["anomalies_total"] == 2 and len(summary["anomalies"]) == 1


def test_an_unknown_option_is_a_usage_error_with_exit_2(ws):
    result = _run("in", "--model", "tiny", "--frobnicate")
    assert result.exit_code == 2
