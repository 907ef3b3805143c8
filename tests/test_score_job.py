"""The scheduled job: exactly once per log × model version, safe to rerun, to kill and to run twice."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dtg.ledger import Ledger
from dtg.scoring import run_score
from test_scoring_support import drive_table, publish_model, write_dtg

ROOT = Path(__file__).resolve().parents[1]
N_LOGS = 6


def _workspace(root: Path) -> Path:
    """A workspace with a model and N_LOGS drive logs of two vehicles (consecutive halves of drives)."""
    root.mkdir(parents=True, exist_ok=True)
    drives = [drive_table("서울70사1234", n=900, seed=1, spikes=(400,)),
              drive_table("부산32바5678", n=900, seed=2, spikes=(700,))]
    publish_model(root / "models", drives[0], threshold=0.05)
    for v, d in enumerate(drives):
        for k in range(N_LOGS // 2):
            write_dtg(root / "incoming" / f"v{v}_{k}.dtg", d.slice(k * 300, 300))
    return root


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    return _workspace(tmp_path_factory.mktemp("template") / "ws")


def _copy(template: Path, dest: Path) -> Path:
    shutil.copytree(template, dest)
    return dest


def _score(ws: Path, model: str = "models/tiny/v1", **kw) -> dict:
    cwd = os.getcwd()
    os.chdir(ws)
    try:
        args = dict(lake_dir="data/lake", out_dir="data/scores", ledger_path="data/ledger.sqlite",
                    quarantine_dir="data/quarantine", device="cpu")
        args.update(kw)
        return run_score(["incoming"], model, **args).to_dict()
    finally:
        os.chdir(cwd)


def _snapshot(ws: Path) -> dict[str, bytes]:
    out = ws / "data" / "scores"
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


def test_a_second_run_scores_nothing_new_and_leaves_outputs_byte_identical(template, tmp_path):
    ws = _copy(template, tmp_path / "ws")
    first = _score(ws)
    assert first["files_new"] == N_LOGS and first["files_failed"] == 0
    assert first["windows_scored"] > 0 and first["seconds_scored"] == 2 * 900
    before = _snapshot(ws)
    assert any(k.startswith("anomalies/") for k in before)
    assert not any(Path(k).name.startswith(".") for k in before)
    second = _score(ws)
    assert (second["files_new"], second["files_skipped"], second["windows_scored"]) == (0, N_LOGS, 0)
    assert _snapshot(ws) == before


def test_rescore_rewrites_the_same_files_with_the_same_bytes(template, tmp_path):
    ws = _copy(template, tmp_path / "ws")
    _score(ws)
    before = _snapshot(ws)
    again = _score(ws, rescore=True)
    assert again["files_new"] == N_LOGS
    assert _snapshot(ws) == before


def test_a_changed_log_is_scored_again_and_its_old_outputs_replaced(template, tmp_path):
    ws = _copy(template, tmp_path / "ws")
    _score(ws)
    before = set(_snapshot(ws))
    log = ws / "incoming" / "v0_2.dtg"
    write_dtg(log, drive_table("서울70사1234", n=900, seed=1).slice(600, 290))  # re-sent, 10 s shorter
    result = _score(ws)
    assert (result["files_new"], result["files_skipped"]) == (1, N_LOGS - 1)
    after = set(_snapshot(ws))
    assert len(before - after) == len(after - before) > 0  # the log's files were swapped, nothing doubled
    with Ledger(ws / "data" / "ledger.sqlite") as led:
        rows = [e for e in led.entries() if e.path.endswith("v0_2.dtg")]
        assert len(rows) == 1 and rows[0].status == "done" and rows[0].rows == 290


def test_a_corrupted_log_is_reported_and_the_good_ones_are_scored(template, tmp_path):
    ws = _copy(template, tmp_path / "ws")
    (ws / "incoming" / "broken.dtg").write_bytes(b"\x00\x01 not a drive log\n")
    result = _score(ws)
    assert result["files_new"] == N_LOGS and result["files_failed"] == 1
    assert [e["file"] for e in result["errors"]] == [str(Path("incoming") / "broken.dtg")]
    with Ledger(ws / "data" / "ledger.sqlite") as led:
        assert [e.status for e in led.entries() if e.path.endswith("broken.dtg")] == ["failed"]
    retry = _score(ws)  # a failed log is tried again next time, the good ones are not
    assert (retry["files_new"], retry["files_skipped"], retry["files_failed"]) == (0, N_LOGS, 1)


def test_dynamic_threshold_flags_seconds_per_vehicle(template, tmp_path):
    ws = _copy(template, tmp_path / "ws")
    result = _score(ws, threshold="dynamic")
    assert result["threshold"] == "dynamic" and result["files_new"] == N_LOGS


# -- kill -9 and concurrency: real processes ------------------------------------------------------

RUNNER = """
import json, os, signal, sys
import torch
kill_after = int(os.environ.get("KILL_AFTER_RENAMES", "0"))
if kill_after:  # test hook in the child only: die by SIGKILL right after the k-th output rename
    real_replace, done = os.replace, []
    def replace(src, dst, *a, **k):
        real_replace(src, dst, *a, **k)
        if any(f"/{kind}/" in str(dst) for kind in ("windows", "seconds", "anomalies")):
            done.append(dst)
            if len(done) == kill_after:
                os.kill(os.getpid(), signal.SIGKILL)
    os.replace = replace
torch.set_num_threads(1)
from dtg.scoring import run_score
print("ready", flush=True)
s = run_score(["incoming"], "models/tiny/v1", lake_dir="data/lake", out_dir="data/scores",
              ledger_path="data/ledger.sqlite", quarantine_dir="data/quarantine", device="cpu",
              wait=True, batch_size=16)
print(json.dumps(s.to_dict()))
"""


def _spawn(ws: Path, kill_after_renames: int = 0) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1",
           "KILL_AFTER_RENAMES": str(kill_after_renames)}
    return subprocess.Popen([sys.executable, "-c", RUNNER], cwd=ws, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _started(proc: subprocess.Popen) -> float:
    """Wait until the runner has imported everything; return that moment."""
    assert proc.stdout.readline().strip() == "ready"
    return time.monotonic()


def test_killed_runs_then_a_rerun_give_the_outputs_of_a_clean_run(template, tmp_path):
    clean = _copy(template, tmp_path / "clean")
    proc = _spawn(clean)
    t0 = _started(proc)
    out, err = proc.communicate(timeout=120)
    duration = time.monotonic() - t0  # the job itself, imports excluded
    assert proc.returncode == 0, err
    reference = _snapshot(clean)
    for k, fraction in enumerate((0.1, 0.3, 0.5, 0.65, 0.8, 0.9)):
        ws = _copy(template, tmp_path / f"kill{k}")
        victim = _spawn(ws)
        _started(victim)
        time.sleep(duration * fraction)
        victim.send_signal(signal.SIGKILL)
        victim.wait()
        rerun = _spawn(ws)
        out, err = rerun.communicate(timeout=120)
        assert rerun.returncode == 0, err
        summary = json.loads(out.strip().splitlines()[-1])
        assert summary["files_new"] + summary["files_skipped"] == N_LOGS
        assert _snapshot(ws) == reference, f"kill at {fraction:.0%} of the run"
        with Ledger(ws / "data" / "ledger.sqlite") as led:
            assert sorted(e.status for e in led.entries()) == ["done"] * N_LOGS


def test_a_run_killed_in_the_middle_of_a_commit_is_rolled_forward(template, tmp_path):
    clean = _copy(template, tmp_path / "clean")
    proc = _spawn(clean)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    reference = _snapshot(clean)
    for k in (1, 4):  # inside the first log's commit (3 output files), inside the second's
        ws = _copy(template, tmp_path / f"commit{k}")
        victim = _spawn(ws, kill_after_renames=k)
        victim.communicate(timeout=120)
        assert victim.returncode == -signal.SIGKILL
        with Ledger(ws / "data" / "ledger.sqlite") as led:
            assert [e.status for e in led.entries()].count("committing") == 1
        rerun = _spawn(ws)
        out, err = rerun.communicate(timeout=120)
        assert rerun.returncode == 0, err
        summary = json.loads(out.strip().splitlines()[-1])
        assert summary["recovered"]["rolled_forward"] == 1
        assert _snapshot(ws) == reference


def test_two_runs_at_once_score_each_log_once(template, tmp_path):
    ws = _copy(template, tmp_path / "ws")
    procs = [_spawn(ws), _spawn(ws)]
    summaries = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        summaries.append(json.loads(out.strip().splitlines()[-1]))
    assert sorted(s["files_new"] for s in summaries) == [0, N_LOGS]
    assert sum(s["files_skipped"] for s in summaries) == N_LOGS
    with Ledger(ws / "data" / "ledger.sqlite") as led:
        assert len(led.entries()) == N_LOGS


def test_an_input_failing_after_some_chunks_leaves_nothing_of_itself(template, tmp_path, monkeypatch):
    import dtg.scoring as scoring
    from dtg.errors import DtgError

    ws = _copy(template, tmp_path / "ws")
    real = scoring.score_chunks

    def one_then_fail(scorer, lake, keys, threshold, batch_size=4096):
        chunks = real(scorer, lake, keys, threshold, batch_size)
        yield next(chunks)
        if "부산32바5678" in keys:
            raise DtgError("the lake has no rpm here", field="rpm")
        yield from chunks

    monkeypatch.setattr(scoring, "score_chunks", one_then_fail)
    result = _score(ws)
    assert (result["files_new"], result["files_failed"]) == (N_LOGS // 2, N_LOGS // 2)
    files = _snapshot(ws)
    assert not any("부산" in k for k in files)  # the failed logs' first chunks were not committed
    assert not list((ws / "data" / "scores").rglob(".tmp-*"))  # and their temp files are gone


def test_a_new_version_of_the_model_replaces_the_old_versions_scores_in_the_same_folder(template, tmp_path):
    ws = _copy(template, tmp_path / "ws")
    _score(ws)
    v2 = publish_model(ws / "models", drive_table("서울70사1234", n=900, seed=1), threshold=0.05, seed=1)
    assert v2.name == "v2"
    summary = _score(ws, model="models/tiny/v2")
    other = _score(ws, out_dir="data/scores-v1")
    assert summary["files_new"] == N_LOGS
    names = list(_snapshot(ws))
    assert names and all(n == "model.json" or n.endswith("-tiny_v2.parquet") for n in names)
    assert other["files_new"] == N_LOGS  # v1's rows were replaced, so v1 scores them again elsewhere
    assert list((ws / "data" / "scores-v1").rglob("*-tiny_v1.parquet"))
    assert all(n == "model.json" or n.endswith("-tiny_v2.parquet") for n in _snapshot(ws))  # untouched


def test_two_copies_of_one_log_are_scored_once(template, tmp_path):
    ws = _copy(template, tmp_path / "ws")
    shutil.copy(ws / "incoming" / "v0_0.dtg", ws / "incoming" / "v0_0 copy.dtg")
    result = _score(ws)
    assert (result["files_new"], result["files_skipped"]) == (N_LOGS, 1)


def test_logs_scored_while_later_ones_are_still_ingested_get_the_outputs_of_ingesting_all_first(
        template, tmp_path, monkeypatch):
    import threading

    import dtg.scoring as scoring
    from dtg.ingest import ingest

    reference = _copy(template, tmp_path / "reference")  # every log stored before the job starts
    assert ingest([reference / "incoming"], reference / "data" / "lake", reference / "data" / "quarantine").ok
    _score(reference)

    ws = _copy(template, tmp_path / "ws")
    first_scored = threading.Event()
    real_ingest, real_chunks, calls = scoring._ingest_file, scoring.score_chunks, []

    def slow_ingest(path, lake, quarantine_dir):  # later logs are stored only after the first is scored
        if calls:
            assert first_scored.wait(60)
        return real_ingest(path, lake, quarantine_dir)

    def counted_chunks(*args, **kwargs):
        calls.append(1)
        yield from real_chunks(*args, **kwargs)
        first_scored.set()

    monkeypatch.setattr(scoring, "_ingest_file", slow_ingest)
    monkeypatch.setattr(scoring, "score_chunks", counted_chunks)
    result = _score(ws)
    assert (result["files_new"], result["files_failed"]) == (N_LOGS, 0)
    assert len(calls) > N_LOGS  # v0_0 was scored before v0_1 (its context) was stored, and again after
    assert _snapshot(ws) == _snapshot(reference)
    with Ledger(ws / "data" / "ledger.sqlite") as led:
        assert sorted(e.status for e in led.entries()) == ["done"] * N_LOGS


def test_a_run_marks_all_its_inputs_running_in_one_transaction(tmp_path):
    with Ledger(tmp_path / "ledger.sqlite") as led:
        led.begin_all([("h1", "a.dtg"), ("h2", "b.dtg")], "tiny/v1", "run1")
        entries = led.entries()
    assert [(e.input_hash, e.path, e.status, e.run_id) for e in entries] == [
        ("h1", "a.dtg", "running", "run1"), ("h2", "b.dtg", "running", "run1")]
    assert entries[0].started == entries[1].started
