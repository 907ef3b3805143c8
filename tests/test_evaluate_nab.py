"""`dtg evaluate` on real labelled data: NAB realTraffic/speed_7578 and its four anomaly windows
(derived fixture: tests/data/make_nab_fixture.py)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from typer.testing import CliRunner

from dtg.evaluate import evaluate, intervals_from_table, read_intervals
from dtg.intervals import merge
from dtg.schema import TZ

DATA = Path(__file__).resolve().parent / "data"
STEP_MS = 5 * 60 * 1000


def zscore_intervals(z: float) -> pa.Table:
    """A simple detector on the real series: points with |z| > z, merged when 5 minutes apart."""
    d = pd.read_csv(DATA / "nab_speed_7578.csv")
    ts = pd.to_datetime(d["timestamp"]).dt.tz_localize(TZ)
    ms = ts.astype("datetime64[ms, Asia/Seoul]").astype("int64").to_numpy()
    v = d["value"].to_numpy(float)
    score = np.abs(v - v.mean()) / v.std()
    iv = merge(score > z, ms, score, max_gap_ms=STEP_MS)
    return pa.table({"vehicle_id": ["speed_7578"] * len(iv), "start": ms[iv.start], "end": ms[iv.end]})


def as_ts(table: pa.Table) -> pa.Table:
    from dtg.schema import TS_TYPE

    return table.set_column(1, "start", table["start"].cast(TS_TYPE)).set_column(2, "end", table["end"].cast(TS_TYPE))


def test_nab_labels_read_as_four_korean_local_intervals():
    lab = read_intervals(DATA / "nab_speed_7578_labels.csv")
    assert len(lab) == 4 and set(lab.vehicle_id) == {"speed_7578"}
    assert lab.start[0] == int(pd.Timestamp("2015-09-11 15:34:00", tz=TZ).value // 1_000_000)
    assert ((lab.end - lab.start) > 0).all()


@pytest.mark.parametrize("z", [2.0, 3.0])
def test_zscore_detector_on_nab_matches_brute_force_definitions(z):
    from tests.test_evaluate import brute

    pred_t = as_ts(zscore_intervals(z))
    pred = intervals_from_table(pred_t)
    lab = read_intervals(DATA / "nab_speed_7578_labels.csv")
    m = evaluate(pred, lab)
    base = int(min(pred.start.min(), lab.start.min()))
    sec = lambda a: [((s - base) // 1000, (e - base) // 1000) for s, e in zip(a.start, a.end)]  # noqa: E731
    want = brute(sec(pred), sec(lab))
    for k, v in want.items():
        assert m[k] == (pytest.approx(v) if v is not None else None), k
    assert m["labels"] == 4 and m["predictions"] == len(pred)


def test_cli_on_nab_fixture_prints_event_wise_metrics(tmp_path):
    from dtg.cli import app

    import pyarrow.parquet as pq

    pq.write_table(as_ts(zscore_intervals(2.0)), tmp_path / "pred.parquet")
    res = CliRunner().invoke(app, ["evaluate", "--pred", str(tmp_path / "pred.parquet"), "--labels",
                                   str(DATA / "nab_speed_7578_labels.csv"), "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["labels"] == 4 and 0 <= out["precision"] <= 1 and 0 <= out["recall"] <= 1
