"""The scoring ledger: an SQLite table recording each input scored by each model version.

One row per (input content hash, model version). Status moves running → committing → done (or
failed). 'committing' rows carry the intent of the commit (temp file → final name moves, and the
superseded outputs to delete), so a run killed mid-commit is finished by the next run (roll forward);
a 'running' row of a dead run is simply scored again. Run times live here, never in output files.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS inputs (
    input_hash TEXT NOT NULL,
    model      TEXT NOT NULL,
    path       TEXT NOT NULL,
    status     TEXT NOT NULL CHECK (status IN ('running', 'committing', 'done', 'failed')),
    run_id     TEXT,
    started    TEXT,
    finished   TEXT,
    rows       INTEGER,
    windows    INTEGER,
    anomalies  INTEGER,
    error      TEXT,
    outputs    TEXT NOT NULL DEFAULT '[]',
    intent     TEXT,
    PRIMARY KEY (input_hash, model)
);
CREATE INDEX IF NOT EXISTS inputs_path ON inputs (path, model);
"""


@dataclass(frozen=True)
class Entry:
    """One ledger row."""

    input_hash: str
    model: str
    path: str
    status: str
    run_id: str | None
    started: str | None
    finished: str | None
    rows: int | None
    windows: int | None
    anomalies: int | None
    error: str | None
    outputs: list[str]
    intent: dict[str, Any] | None


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds")


class Ledger:
    """The ledger at `path` (created on first use). Every change is one committed transaction."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # One connection, used by one thread at a time (the scoring job hands it to its commit thread).
        self._db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(SCHEMA)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> "Ledger":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- queries ----------------------------------------------------------------------------------

    def get(self, input_hash: str, model: str) -> Entry | None:
        cur = self._db.execute("SELECT * FROM inputs WHERE input_hash = ? AND model = ?", (input_hash, model))
        row = cur.fetchone()
        return None if row is None else self._entry(cur, row)

    def is_done(self, input_hash: str, model: str) -> bool:
        e = self.get(input_hash, model)
        return e is not None and e.status == "done"

    def entries(self, status: str | None = None) -> list[Entry]:
        sql, args = "SELECT * FROM inputs", ()
        if status is not None:
            sql, args = sql + " WHERE status = ?", (status,)
        cur = self._db.execute(sql + " ORDER BY path, input_hash, model", args)
        return [self._entry(cur, r) for r in cur.fetchall()]

    def replaced(self, input_hash: str, path: str, model: str) -> list[Entry]:
        """Done rows that scoring (input_hash, path) with `model` replaces: the same path with other
        content (the file changed) by this model, and the same input (content or path) by another
        version of the same model name (`name/version`)."""
        prefix = model.split("/", 1)[0] + "/"
        cur = self._db.execute(
            "SELECT * FROM inputs WHERE status = 'done' AND NOT (input_hash = ? AND model = ?) AND ("
            "(model = ? AND path = ?) OR "
            "(substr(model, 1, length(?)) = ? AND model != ? AND (input_hash = ? OR path = ?)))",
            (input_hash, model, model, path, prefix, prefix, model, input_hash, path))
        return [self._entry(cur, r) for r in cur.fetchall()]

    @staticmethod
    def _entry(cur: sqlite3.Cursor, row: tuple) -> Entry:
        d = dict(zip([c[0] for c in cur.description], row))
        d["outputs"] = json.loads(d["outputs"] or "[]")
        d["intent"] = json.loads(d["intent"]) if d["intent"] else None
        return Entry(**d)

    # -- state changes ----------------------------------------------------------------------------

    _BEGIN = ("INSERT INTO inputs (input_hash, model, path, status, run_id, started) VALUES (?, ?, ?, 'running', ?, ?) "
              "ON CONFLICT (input_hash, model) DO UPDATE SET path = excluded.path, status = 'running', "
              "run_id = excluded.run_id, started = excluded.started, finished = NULL, error = NULL, intent = NULL")

    def begin(self, input_hash: str, model: str, path: str, run_id: str) -> None:
        """Mark the input running (replacing a failed or stale row; a done row too when rescoring)."""
        self._db.execute(self._BEGIN, (input_hash, model, path, run_id, _now()))

    def begin_all(self, inputs: list[tuple[str, str]], model: str, run_id: str) -> None:
        """`begin` for every (input_hash, path) of a run in one transaction: one disk sync, not one each."""
        started = _now()
        with self._tx():
            self._db.executemany(self._BEGIN, [(h, model, path, run_id, started) for h, path in inputs])

    def intend(self, input_hash: str, model: str, moves: list[tuple[str, str]], remove: list[str],
               superseded: list[tuple[str, str]], counts: dict[str, int]) -> None:
        """Record what the commit will do (temp → final moves, files to delete, (hash, model) rows to
        drop), then commit it."""
        intent = {"moves": moves, "remove": remove, "superseded": superseded, "counts": counts}
        self._db.execute("UPDATE inputs SET status = 'committing', intent = ? WHERE input_hash = ? AND model = ?",
                         (json.dumps(intent), input_hash, model))

    def finish(self, input_hash: str, model: str) -> None:
        """Mark done after the moves: outputs = the intent's final names; superseded rows deleted."""
        e = self.get(input_hash, model)
        if e is None or e.intent is None:
            raise RuntimeError(f"no commit intent for {input_hash[:12]} × {model}")
        intent = e.intent
        counts = intent["counts"]
        with self._tx():
            self._db.execute(
                "UPDATE inputs SET status = 'done', finished = ?, rows = ?, windows = ?, anomalies = ?, "
                "outputs = ?, intent = NULL WHERE input_hash = ? AND model = ?",
                (_now(), counts.get("rows"), counts.get("windows"), counts.get("anomalies"),
                 json.dumps(sorted(final for _, final in intent["moves"])), input_hash, model))
            for old_hash, old_model in intent["superseded"]:
                self._db.execute("DELETE FROM inputs WHERE input_hash = ? AND model = ? AND status = 'done'",
                                 (old_hash, old_model))

    def fail(self, input_hash: str, model: str, path: str, error: str, run_id: str) -> None:
        self._db.execute(
            "INSERT INTO inputs (input_hash, model, path, status, run_id, started, finished, error) "
            "VALUES (?, ?, ?, 'failed', ?, ?, ?, ?) ON CONFLICT (input_hash, model) DO UPDATE SET "
            "status = 'failed', path = excluded.path, run_id = excluded.run_id, finished = excluded.finished, "
            "error = excluded.error, intent = NULL",
            (input_hash, model, path, run_id, _now(), _now(), error))

    def forget(self, input_hash: str, model: str) -> None:
        self._db.execute("DELETE FROM inputs WHERE input_hash = ? AND model = ?", (input_hash, model))

    def _tx(self):
        db = self._db

        class _Tx:
            def __enter__(self) -> None:
                db.execute("BEGIN IMMEDIATE")

            def __exit__(self, exc_type: object, *rest: object) -> None:
                db.execute("COMMIT" if exc_type is None else "ROLLBACK")

        return _Tx()


def commit(ledger: Ledger, input_hash: str, model: str, moves: list[tuple[str, str]], remove: list[str],
           superseded: list[tuple[str, str]], counts: dict[str, int]) -> None:
    """Make an input's outputs visible: record the intent, rename temp files, drop replaced outputs,
    mark done. Killed at any step, `recover` on the next run finishes it with the same result."""
    ledger.intend(input_hash, model, moves, remove, superseded, counts)
    _apply(ledger, input_hash, model)


def _apply(ledger: Ledger, input_hash: str, model: str) -> None:
    import os

    from dtg.atomic import _fsync_dir

    entry = ledger.get(input_hash, model)
    assert entry is not None and entry.intent is not None
    dirs = set()
    for tmp, final in entry.intent["moves"]:
        if os.path.exists(tmp):
            os.replace(tmp, final)
            dirs.add(os.path.dirname(final))
        elif not os.path.exists(final):
            raise RuntimeError(f"commit of {entry.path}: neither {tmp} nor {final} exists")
    finals = {final for _, final in entry.intent["moves"]}
    for old in entry.intent["remove"]:
        # Only ever delete scoring outputs, whatever a damaged or edited ledger says.
        if old not in finals and Path(old).name.startswith("part-") and old.endswith(".parquet"):
            Path(old).unlink(missing_ok=True)
            dirs.add(os.path.dirname(old))
    for d in sorted(dirs):
        _fsync_dir(Path(d))
    ledger.finish(input_hash, model)


def recover(ledger: Ledger, run_id: str) -> dict[str, int]:
    """Finish the commits of dead runs and mark their interrupted inputs failed (scored again when
    given again). Call only while holding the run lock, so no live run owns these rows."""
    rolled = interrupted = 0
    for e in ledger.entries("committing"):
        _apply(ledger, e.input_hash, e.model)
        rolled += 1
    for e in ledger.entries("running"):
        ledger.fail(e.input_hash, e.model, e.path, "interrupted (the run scoring it was killed)", run_id)
        interrupted += 1
    return {"rolled_forward": rolled, "interrupted": interrupted}
