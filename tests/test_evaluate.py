"""`dtg evaluate` metrics on hand-made interval cases, checked against a brute-force oracle."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from dtg.errors import DtgError
from dtg.evaluate import Intervals, evaluate, f_beta, intervals_from_table, read_intervals
from dtg.schema import TS_TYPE

T0 = 1_700_000_000_000


def iv(*spans, vid="A", types=None) -> Intervals:
    """Intervals from (start_s, end_s) pairs, seconds after T0."""
    s = np.array([T0 + a * 1000 for a, _ in spans], dtype=np.int64)
    e = np.array([T0 + b * 1000 for _, b in spans], dtype=np.int64)
    vids = np.array([vid] * len(spans), dtype=object)
    return Intervals(vids, s, e, None if types is None else np.array(types, dtype=object))


def cat(*parts: Intervals) -> Intervals:
    typed = all(p.type is not None for p in parts)
    return Intervals(np.concatenate([p.vehicle_id for p in parts]), np.concatenate([p.start for p in parts]),
                     np.concatenate([p.end for p in parts]),
                     np.concatenate([p.type for p in parts]) if typed else None)


def test_no_overlap_finds_nothing():
    m = evaluate(iv((20, 30)), iv((0, 10)))
    assert (m["precision"], m["recall"], m["f1"], m["f0_5"]) == (0, 0, 0, 0)
    assert m["delay_mean_s"] is None


def test_touching_at_one_second_counts_as_overlap_but_adjacent_does_not():
    touching = evaluate(iv((10, 20)), iv((0, 10)))
    assert (touching["precision"], touching["recall"]) == (1, 1)
    assert touching["delay_mean_s"] == 10
    adjacent = evaluate(iv((11, 20)), iv((0, 10)))
    assert (adjacent["precision"], adjacent["recall"]) == (0, 0)


def test_one_prediction_covering_two_labels_finds_both():
    m = evaluate(iv((5, 25)), iv((0, 10), (20, 30)))
    assert (m["predictions"], m["predictions_matched"], m["labels"], m["labels_found"]) == (1, 1, 2, 2)
    assert (m["precision"], m["recall"], m["f1"]) == (1, 1, 1)
    assert (m["delay_mean_s"], m["delay_max_s"]) == (2.5, 5)  # delays 5 and 0


def test_two_predictions_inside_one_label_are_both_correct_and_the_first_sets_the_delay():
    m = evaluate(iv((7, 8), (3, 4)), iv((0, 10)))
    assert (m["precision"], m["recall"]) == (1, 1)
    assert m["delay_mean_s"] == 3


def test_prediction_starting_before_the_label_has_zero_delay():
    assert evaluate(iv((-5, 2)), iv((0, 10)))["delay_mean_s"] == 0


def test_half_the_predictions_right_and_half_the_labels_found():
    m = evaluate(iv((0, 1), (50, 51)), iv((0, 5), (100, 105)))
    assert (m["precision"], m["recall"]) == (0.5, 0.5)
    assert m["f1"] == pytest.approx(0.5) and m["f0_5"] == pytest.approx(0.5)


def test_f_half_weighs_precision_more_than_recall():
    m = evaluate(iv((0, 1)), iv((0, 5), (100, 105), (200, 205), (300, 305)))
    assert (m["precision"], m["recall"]) == (1, 0.25)
    assert m["f0_5"] == pytest.approx(1.25 * 0.25 / (0.25 + 0.25))
    assert m["f0_5"] > m["f1"]


def test_predictions_of_another_vehicle_find_nothing():
    m = evaluate(iv((0, 10), vid="B"), iv((0, 10), vid="A"))
    assert (m["precision"], m["recall"]) == (0, 0)
    assert set(m["vehicles"]) == {"A", "B"}
    assert m["vehicles"]["A"]["labels"] == 1 and m["vehicles"]["B"]["predictions"] == 1


def test_point_adjusted_f1_credits_a_whole_label_for_one_second():
    m = evaluate(iv((9, 9), (100, 109)), iv((0, 9)))
    assert m["point_adjusted_f1"] == pytest.approx(2 * 0.5 * 1 / 1.5)  # TP 10 s, FP 10 s, FN 0
    assert m["point_f1"] == pytest.approx(f_beta(1 / 11, 1 / 10, 1))
    assert (m["precision"], m["recall"]) == (0.5, 1)


def test_point_adjusted_f1_rewards_scattered_random_predictions_more_than_event_wise_precision():
    rng = np.random.default_rng(0)
    labels = iv(*[(a, a + 299) for a in range(0, 20_000, 1000)])
    picks = rng.choice(20_000, 200, replace=False)
    pred = iv(*[(int(p), int(p)) for p in picks])
    m = evaluate(pred, labels)
    assert m["point_adjusted_f1"] > 0.6 > m["precision"]


def test_no_predictions_gives_zero_scores_not_errors():
    m = evaluate(iv(), iv((0, 10)))
    assert m["predictions"] == 0 and m["precision"] == 0 and m["recall"] == 0 and m["point_adjusted_f1"] == 0


def test_per_type_recall_and_delay_when_labels_carry_types():
    labels = iv((0, 10), (100, 110), (200, 210), types=["spike", "drift", "drift"])
    m = evaluate(iv((3, 4), (205, 206)), labels)
    assert m["per_type"]["spike"] == {"labels": 1, "labels_found": 1, "recall": 1.0, "delay_mean_s": 3.0,
                                      "delay_median_s": 3.0, "delay_max_s": 3.0}
    assert m["per_type"]["drift"]["recall"] == 0.5 and m["per_type"]["drift"]["delay_max_s"] == 5


def brute(pred: list[tuple[int, int]], lab: list[tuple[int, int]]) -> dict[str, float]:
    """The definitions in docs/evaluation.md, on sets of integer seconds."""
    ps = [set(range(a, b + 1)) for a, b in pred]
    ls = [set(range(a, b + 1)) for a, b in lab]
    allp = set().union(*ps) if ps else set()
    alll = set().union(*ls) if ls else set()
    pred_hit = sum(1 for p in ps if any(p & x for x in ls))
    lab_hit = [any(x & p for p in ps) for x in ls]
    prec = pred_hit / len(ps) if ps else 0.0
    rec = sum(lab_hit) / len(ls) if ls else 0.0
    hit_secs = set().union(*[x for x, h in zip(ls, lab_hit) if h]) if any(lab_hit) else set()
    tp, fp = len(hit_secs), len(allp - alll)
    pa_p = tp / (tp + fp) if tp + fp else 0.0
    pa_r = tp / len(alll) if alll else 0.0
    delays = [min(x & allp) - a for (a, _), x, h in zip(lab, ls, lab_hit) if h]
    return {"precision": prec, "recall": rec, "point_adjusted_f1": f_beta(pa_p, pa_r, 1),
            "point_f1": f_beta(len(allp & alll) / len(allp) if allp else 0,
                               len(allp & alll) / len(alll) if alll else 0, 1),
            "delay_mean_s": float(np.mean(delays)) if delays else None}


span = st.tuples(st.integers(0, 80), st.integers(0, 12)).map(lambda t: (t[0], t[0] + t[1]))


@settings(max_examples=150, deadline=None)
@given(pred=st.lists(span, max_size=8), lab=st.lists(span, max_size=6))
def test_metrics_equal_the_brute_force_definitions(pred, lab):
    m = evaluate(iv(*pred), iv(*lab))
    want = brute(pred, lab)
    for k, v in want.items():
        assert m[k] == (pytest.approx(v) if v is not None else None), k


@settings(max_examples=60, deadline=None)
@given(p=st.floats(0, 1), r=st.floats(0, 1))
def test_f_beta_lies_between_precision_and_recall(p, r):
    for beta in (0.5, 1.0):
        f = f_beta(p, r, beta)
        assert min(p, r) - 1e-12 <= f <= max(p, r) + 1e-12 or f == 0


# ---------------------------------------------------------------- files and CLI


def test_csv_naive_times_are_korean_local_and_match_parquet(tmp_path):
    csv = tmp_path / "labels.csv"
    csv.write_text("vehicle_id,start,end,type\n서울70사1000,2023-11-15 07:13:20,2023-11-15 07:13:30,spike\n",
                   encoding="utf-8")
    got = read_intervals(csv)
    assert got.start[0] == 1_700_000_000_000 and got.end[0] == 1_700_000_010_000
    pq.write_table(pa.table({"vehicle_id": ["서울70사1000"],
                             "start": pa.array([1_700_000_000_000]).cast(TS_TYPE),
                             "end": pa.array([1_700_000_010_000]).cast(TS_TYPE)}), tmp_path / "p.parquet")
    assert read_intervals(tmp_path / "p.parquet").start.tolist() == got.start.tolist()


def test_reads_a_scores_folder_of_partitioned_anomalies(tmp_path):
    part = tmp_path / "scores" / "anomalies" / "vehicle=A" / "date=2023-11-15"
    part.mkdir(parents=True)
    pq.write_table(pa.table({"vehicle_id": ["A"], "start": pa.array([T0]).cast(TS_TYPE),
                             "end": pa.array([T0 + 5000]).cast(TS_TYPE), "peak_score": [3.0],
                             "top_feature": ["speed"]}), part / "part-0.parquet")
    got = read_intervals(tmp_path / "scores")
    assert len(got) == 1 and got.vehicle_id[0] == "A"


@pytest.mark.parametrize("text,line,field", [
    ("vehicle_id,start,end\nA,2023-11-15 07:13:30,2023-11-15 07:13:20\n", 1, "end"),
    ("vehicle_id,start\nA,2023-11-15 07:13:30\n", None, "end"),
    ("vehicle_id,start,end\nA,2023-11-15 07:13:30,2023-11-15 07:14:00\nA,yesterday,2023-11-15 07:14:00\n", 2,
     "start"),
])
def test_bad_label_files_name_line_and_field(tmp_path, text, line, field):
    path = tmp_path / "bad.csv"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(DtgError) as err:
        read_intervals(path)
    assert (err.value.line, err.value.field, err.value.file) == (line, field, str(path))


def test_interval_table_without_vehicle_is_an_error():
    with pytest.raises(DtgError, match="vehicle_id"):
        intervals_from_table(pa.table({"start": [1], "end": [2]}))


def _write(path, spans, vid="A", types=None):
    data = {"vehicle_id": [vid] * len(spans),
            "start": pa.array([T0 + a * 1000 for a, _ in spans]).cast(TS_TYPE),
            "end": pa.array([T0 + b * 1000 for _, b in spans]).cast(TS_TYPE)}
    if types:
        data["type"] = types
    pq.write_table(pa.table(data), path)


def test_cli_prints_one_json_object_with_event_wise_metrics(tmp_path):
    from dtg.cli import app

    _write(tmp_path / "pred.parquet", [(5, 25), (90, 95)])
    _write(tmp_path / "lab.parquet", [(0, 10), (20, 30), (200, 210)], types=["a", "b", "b"])
    res = CliRunner().invoke(app, ["evaluate", "--pred", str(tmp_path / "pred.parquet"),
                                   "--labels", str(tmp_path / "lab.parquet"), "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["precision"] == 0.5 and out["recall"] == pytest.approx(2 / 3)
    assert out["per_type"]["b"]["recall"] == 0.5 and "point_adjusted_f1" in out


def test_cli_missing_label_file_is_one_line_and_exit_1(tmp_path):
    from dtg.cli import app

    _write(tmp_path / "pred.parquet", [(5, 25)])
    res = CliRunner().invoke(app, ["evaluate", "--pred", str(tmp_path / "pred.parquet"),
                                   "--labels", str(tmp_path / "nope.csv")])
    assert res.exit_code == 1
    assert "nope.csv" in res.stderr and "Traceback" not in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
