"""`dtg window` from the command line: summary contract, stored set, clear errors."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pytest
from typer.testing import CliRunner

from dtg import schema
from dtg.windowset import WindowSet

T0 = 1_715_558_400_000  # 2024-05-13 09:00 Asia/Seoul


def lake_table(seed: int = 0) -> pa.Table:
    """Two vehicles: one with a 3-second hole (a gap at --max-gap 1, filled at --max-gap 3)."""
    rng = np.random.default_rng(seed)
    ts = np.concatenate([T0 + 1000 * np.arange(200), T0 + 1000 * np.arange(202, 400), T0 + 1000 * np.arange(300)])
    vid = ["서울70사1234"] * 398 + ["부산32바5678"] * 300
    n = len(ts)
    return pa.table({
        "vehicle_id": pa.array(vid, pa.string()),
        "ts": pa.array(ts, schema.TS_TYPE),
        "speed": pa.array(rng.uniform(0, 100, n), pa.float32()),
        "rpm": pa.array(rng.uniform(700, 2500, n), pa.float32()),
        "brake": pa.array(rng.integers(0, 2, n), pa.int8()),
        "lat": pa.array(35 + rng.uniform(0, 0.1, n)),
        "lon": pa.array(127 + rng.uniform(0, 0.1, n)),
        "source_file": pa.array(["x.csv"] * n),
        "source_row": pa.array(np.arange(1, n + 1), pa.int64()),
    })


@pytest.fixture()
def lake(tmp_path):
    from dtg.lake import Lake

    root = tmp_path / "lake"
    Lake(root).write(lake_table())
    return root


def run(*args: str):
    from dtg.cli import app

    return CliRunner().invoke(app, ["window", *args])


def test_json_summary_follows_the_contract_and_the_set_is_stored(lake, tmp_path):
    out = tmp_path / "windows"
    res = run("--lake", str(lake), "--out", str(out), "--json")
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    # vehicle 1: segments of 200 and 198 rows; vehicle 2: 300 rows
    assert summary["segments"] == 3 and summary["rows"] == 698
    assert summary["windows"] == (200 - 19) + (198 - 19) + (300 - 19)
    assert summary["features"] == ["speed", "rpm", "brake", "lat"]
    assert sum(summary["splits"].values()) + summary["purged"] == summary["windows"]
    assert summary["out"] == str(out)
    ws = WindowSet.load(out)
    assert ws.n_windows == summary["windows"] and ws.fingerprint == summary["fingerprint"]
    from dtg.lake import Lake

    assert ws.lake_fingerprint == Lake(lake).fingerprint()


def test_options_reach_the_window_set(lake, tmp_path):
    out = tmp_path / "w"
    res = run("--lake", str(lake), "--out", str(out), "--size", "10", "--stride", "5", "--max-gap", "3",
              "--features", "speed,rpm", "--scaler", "standard", "--split", "0.5,0.5", "--split-by", "vehicle",
              "--seed", "7", "--json")
    assert res.exit_code == 0, res.output
    s = json.loads(res.stdout)
    assert s["segments"] == 2 and s["rows_filled"] == 2 and s["rows"] == 700
    assert s["windows"] == (400 - 10) // 5 + 1 + (300 - 10) // 5 + 1
    assert s["scaler"] == "standard" and s["features"] == ["speed", "rpm"] and s["purged"] == 0
    meta = json.loads((out / "meta.json").read_text())
    assert meta["split_spec"] == {"fractions": [0.5, 0.5, 0.0], "by": "vehicle", "seed": 7}


def test_same_seed_gives_the_same_set(lake, tmp_path):
    a = run("--lake", str(lake), "--out", str(tmp_path / "a"), "--split-by", "vehicle", "--seed", "3", "--json")
    b = run("--lake", str(lake), "--out", str(tmp_path / "b"), "--split-by", "vehicle", "--seed", "3", "--json")
    assert json.loads(a.stdout) | {"out": ""} == json.loads(b.stdout) | {"out": ""}
    assert np.array_equal(np.load(tmp_path / "a" / "runs.npy"), np.load(tmp_path / "b" / "runs.npy"))
    assert np.array_equal(WindowSet.load(tmp_path / "a").split, WindowSet.load(tmp_path / "b").split)


def test_human_summary_goes_to_stdout_and_logs_to_stderr(lake, tmp_path):
    res = run("--lake", str(lake), "--out", str(tmp_path / "w"))
    assert res.exit_code == 0
    assert "windows of 20 s" in res.stdout and "read 698 rows" in res.stderr


@pytest.mark.parametrize("args,needle", [
    (["--features", "speed,throttle"], "unknown feature 'throttle' (valid: speed, rpm, brake, lat"),
    (["--split", "0.9,0.2"], "split fractions"),
    (["--scaler", "robust"], "unknown scaler 'robust'"),
    (["--split-by", "random"], "unknown split-by 'random'"),
    (["--size", "5000"], "no training windows"),
])
def test_bad_options_fail_with_one_clear_line(lake, tmp_path, args, needle):
    res = run("--lake", str(lake), "--out", str(tmp_path / "w"), *args)
    assert res.exit_code == 1
    errors = [line for line in res.stderr.splitlines() if line.startswith("dtg: error:")]
    assert len(errors) == 1 and needle in errors[0] and "Traceback" not in res.stderr
    assert not (tmp_path / "w").exists()


def test_a_missing_or_empty_lake_is_a_clear_error(tmp_path):
    res = run("--lake", str(tmp_path / "nope"), "--out", str(tmp_path / "w"))
    assert res.exit_code == 1 and "run `dtg ingest" in res.stderr
    (tmp_path / "empty").mkdir()
    res = run("--lake", str(tmp_path / "empty"), "--out", str(tmp_path / "w"))
    assert res.exit_code == 1 and "no rows" in res.stderr


def test_a_folder_that_is_not_a_window_set_is_not_overwritten(lake, tmp_path):
    out = tmp_path / "w"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    res = run("--lake", str(lake), "--out", str(out))
    assert res.exit_code == 1 and "not a window set" in res.stderr
    assert (out / "keep.txt").read_text() == "mine"


def test_sample_data_ingested_then_windowed_end_to_end(tmp_path):
    from pathlib import Path

    from dtg.cli import app

    sample = Path(__file__).resolve().parents[1] / "data" / "sample"
    if not any(sample.glob("*")):
        pytest.skip("no sample data")
    runner = CliRunner()
    lake = tmp_path / "lake"
    res = runner.invoke(app, ["ingest", str(sample), "--lake", str(lake), "--quarantine", str(tmp_path / "q"), "--json"])
    assert res.exit_code == 0, res.stderr
    ingested = json.loads(res.stdout)["rows_ingested"]
    res = run("--lake", str(lake), "--out", str(tmp_path / "w"), "--max-gap", "3", "--json")
    assert res.exit_code == 0, res.stderr
    s = json.loads(res.stdout)
    ws = WindowSet.load(tmp_path / "w")
    lengths = np.asarray(ws.seg_len)
    assert s["windows"] == int(np.maximum(0, lengths - 20 + 1).sum()) > 0
    assert s["rows"] == ingested + s["rows_filled"] - s["rows_invalid"] - s["rows_duplicate"]
    assert s["vehicles"] == 4
    # every window: one vehicle, consecutive seconds
    rows = np.asarray(ws.starts)[:, None] + np.arange(20)
    assert np.all(np.abs(np.diff(np.asarray(ws.ts)[rows], axis=1) - 1000) < 500)
    assert np.all(np.asarray(ws.vehicle_idx)[rows] == np.asarray(ws.vehicle_idx)[rows[:, :1]])


def test_reading_the_lake_in_small_vehicle_batches_gives_the_same_set(lake, tmp_path, monkeypatch):
    import dtg.cli.window as cli_window
    from dtg.lake import Lake

    assert run("--lake", str(lake), "--out", str(tmp_path / "one"), "--json").exit_code == 0
    monkeypatch.setattr(cli_window, "BATCH_ROWS", 10)  # every vehicle read on its own
    assert len(cli_window._vehicle_batches(Lake(lake))) == 2
    assert run("--lake", str(lake), "--out", str(tmp_path / "many"), "--json").exit_code == 0
    one, many = WindowSet.load(tmp_path / "one"), WindowSet.load(tmp_path / "many")
    for name in ("values", "ts", "starts", "split", "has_next", "vehicle_idx"):
        assert np.array_equal(np.asarray(getattr(one, name)), np.asarray(getattr(many, name))), name
    assert one.fingerprint == many.fingerprint and one.vehicles == many.vehicles


def test_the_set_from_dictionary_ids_equals_the_one_built_from_the_string_ids(lake, tmp_path, monkeypatch):
    """`dtg window` reads vehicle ids dictionary-encoded; the set is the one of the plain string read."""
    from dtg.lake import Lake
    from dtg.splits import SplitSpec
    from dtg.windowset import build_window_set

    reads, read = [], Lake.read

    def spy(self, *args, **kwargs):
        reads.append(kwargs.get("dictionary_ids"))
        return read(self, *args, **kwargs)

    monkeypatch.setattr(Lake, "read", spy)
    assert run("--lake", str(lake), "--out", str(tmp_path / "w"), "--json").exit_code == 0
    assert reads and all(reads)
    got = WindowSet.load(tmp_path / "w")
    want = build_window_set(read(Lake(lake)), split=SplitSpec(), lake_fingerprint=Lake(lake).fingerprint())
    for name in ("values", "ts", "starts", "split", "has_next", "vehicle_idx", "filled_rows"):
        assert np.array_equal(np.asarray(getattr(got, name)), np.asarray(getattr(want, name))), name
    assert got.fingerprint == want.fingerprint and got.vehicles == want.vehicles
    assert got.scaler.to_dict() == want.scaler.to_dict()
