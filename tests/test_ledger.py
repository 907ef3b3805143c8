"""The scoring ledger, its commit protocol (roll forward after a kill) and the run lock."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from dtg.ledger import Ledger, commit, recover
from dtg.lock import LockBusy, RunLock


def _tmp_and_final(folder: Path, name: str, data: bytes) -> tuple[str, str]:
    tmp = folder / f".tmp-{name}.x"
    tmp.write_bytes(data)
    return str(tmp), str(folder / name)


def test_a_committed_input_is_done_with_its_outputs_and_counts(tmp_path):
    with Ledger(tmp_path / "l.sqlite") as led:
        led.begin("h1", "m/1", "a.csv", "run1")
        assert led.get("h1", "m/1").status == "running" and not led.is_done("h1", "m/1")
        move = _tmp_and_final(tmp_path, "part-h1.parquet", b"x")
        commit(led, "h1", "m/1", [move], [], [], {"rows": 5, "windows": 3, "anomalies": 1})
        e = led.get("h1", "m/1")
        assert e.status == "done" and e.outputs == [move[1]]
        assert (e.rows, e.windows, e.anomalies) == (5, 3, 1)
        assert e.started and e.finished and e.intent is None
        assert (tmp_path / "part-h1.parquet").read_bytes() == b"x"
        assert not Path(move[0]).exists()
        assert not led.is_done("h1", "m/2")  # another model version has not scored it


def test_a_changed_file_supersedes_the_old_hash_and_its_outputs(tmp_path):
    with Ledger(tmp_path / "l.sqlite") as led:
        led.begin("old", "m", "a.csv", "r1")
        old_out = _tmp_and_final(tmp_path, "part-old.parquet", b"old")
        commit(led, "old", "m", [old_out], [], [], {})
        led.begin("new", "m", "a.csv", "r2")
        sup = led.replaced("new", "a.csv", "m")
        assert [e.input_hash for e in sup] == ["old"]
        new_out = _tmp_and_final(tmp_path, "part-new.parquet", b"new")
        commit(led, "new", "m", [new_out], sup[0].outputs, [("old", "m")], {})
        assert led.get("old", "m") is None
        assert not (tmp_path / "part-old.parquet").exists()
        assert (tmp_path / "part-new.parquet").read_bytes() == b"new"


def test_another_version_of_the_same_model_replaces_an_input_but_another_model_does_not(tmp_path):
    with Ledger(tmp_path / "l.sqlite") as led:
        for model in ("demo/v1", "demo_x/v1", "other/v1"):
            led.begin("h", model, "a.csv", "r")
            commit(led, "h", model, [], [], [], {})
        led.begin("h", "demo/v2", "a.csv", "r")
        assert [e.model for e in led.replaced("h", "a.csv", "demo/v2")] == ["demo/v1"]
        assert [e.model for e in led.replaced("h2", "b.csv", "demo/v2")] == []


def test_recover_rolls_a_half_done_commit_forward_and_fails_interrupted_inputs(tmp_path):
    with Ledger(tmp_path / "l.sqlite") as led:
        led.begin("h", "m", "a.csv", "r1")
        m1 = _tmp_and_final(tmp_path, "one.parquet", b"1")
        m2 = _tmp_and_final(tmp_path, "two.parquet", b"2")
        led.intend("h", "m", [m1, m2], [], [], {"rows": 2})
        os.replace(*m1)  # killed after the first rename
        led.begin("h2", "m", "b.csv", "r1")  # killed while scoring this one
        assert recover(led, "r2") == {"rolled_forward": 1, "interrupted": 1}
        assert led.get("h", "m").status == "done"
        assert (tmp_path / "two.parquet").read_bytes() == b"2"
        assert led.get("h2", "m").status == "failed"
        assert recover(led, "r3") == {"rolled_forward": 0, "interrupted": 0}


def test_a_commit_deletes_only_scoring_outputs(tmp_path):
    keep = tmp_path / "notes.txt"
    keep.write_text("mine")
    old = tmp_path / "part-old.parquet"
    old.write_bytes(b"x")
    with Ledger(tmp_path / "l.sqlite") as led:
        led.begin("h", "m", "a.csv", "r")
        commit(led, "h", "m", [], [str(keep), str(old)], [], {})
    assert keep.read_text() == "mine" and not old.exists()


def test_ledger_survives_reopening(tmp_path):
    with Ledger(tmp_path / "l.sqlite") as led:
        led.begin("h", "m", "a.csv", "r")
        led.fail("h", "m", "a.csv", "bad line", "r")
    with Ledger(tmp_path / "l.sqlite") as led:
        e = led.get("h", "m")
        assert e.status == "failed" and e.error == "bad line"


def test_a_second_lock_holder_is_refused_without_wait(tmp_path):
    path = tmp_path / "score.lock"
    with RunLock(path):
        with pytest.raises(LockBusy, match=f"pid {os.getpid()}"):
            RunLock(path).acquire()
        with pytest.raises(LockBusy):
            RunLock(path, wait=True, timeout=0.3).acquire()
    with RunLock(path):  # released on exit
        pass


def test_the_lock_is_released_when_its_holder_is_killed(tmp_path):
    path = tmp_path / "score.lock"
    code = textwrap.dedent(f"""
        import sys, time
        from dtg.lock import RunLock
        RunLock({str(path)!r}).acquire()
        print("held", flush=True)
        time.sleep(60)
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "held"
        with pytest.raises(LockBusy):
            RunLock(path).acquire()
        proc.kill()
        proc.wait()
        with RunLock(path, wait=True, timeout=5):
            pass
    finally:
        proc.kill()
        proc.wait()
