"""Window classifier: labels from events, the labelled source, per-class metrics, the model."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from dtg.errors import DtgError
from dtg.evaluate import per_class
from dtg.labels import CLASSES, LabelledWindows, labelled_source, window_classes
from dtg.schema import TS_TYPE
from dtg.splits import SplitSpec
from dtg.windowset import build_window_set

torch.set_num_threads(1)
T0 = 1_715_558_400_000


def fleet(n: int = 60, vehicles=("A", "B"), speed=None) -> pa.Table:
    parts = []
    for v in vehicles:
        s = np.full(n, 40.0, np.float32) if speed is None else np.asarray(speed, np.float32)
        parts.append(pa.table({
            "vehicle_id": [v] * n, "ts": pa.array(T0 + np.arange(n) * 1000).cast(TS_TYPE), "speed": s,
            "rpm": np.full(n, 1500.0, np.float32), "brake": np.zeros(n, np.int8),
            "lat": np.full(n, 37.5), "lon": np.full(n, 127.0)}))
    return pa.concat_tables(parts)


def events(*rows) -> pa.Table:
    """rows: (vehicle, type, start second, end second)."""
    return pa.table({
        "vehicle_id": [r[0] for r in rows], "type": [r[1] for r in rows],
        "start": pa.array([T0 + r[2] * 1000 for r in rows], pa.int64()).cast(TS_TYPE),
        "end": pa.array([T0 + r[3] * 1000 for r in rows], pa.int64()).cast(TS_TYPE)})


def scoring_set(table, size=5):
    return build_window_set(table, size=size, features=("speed", "rpm"), split=SplitSpec((1.0,)),
                            scaler="minmax")


def test_windows_touching_an_event_take_its_type_others_are_normal():
    ws = scoring_set(fleet(vehicles=("A",)))
    labels = window_classes(ws, events(("A", "sudden_stop", 10, 11)))
    starts = np.asarray(ws.starts)
    hit = set(starts[labels == CLASSES.index("sudden_stop")].tolist())
    assert hit == set(range(6, 12))  # windows of 5 rows covering row 10 or 11
    assert (labels[~np.isin(starts, list(hit))] == 0).all()


def test_the_event_covering_most_of_the_window_wins():
    ws = scoring_set(fleet(vehicles=("A",)))
    labels = window_classes(ws, events(("A", "speeding", 20, 23), ("A", "sudden_start", 24, 24)))
    starts = np.asarray(ws.starts)
    by_start = dict(zip(starts.tolist(), labels.tolist()))
    assert by_start[20] == CLASSES.index("speeding")      # 4 rows speeding, 1 sudden start
    assert by_start[24] == CLASSES.index("sudden_start")  # 1 row sudden start, 0 speeding
    assert by_start[22] == CLASSES.index("speeding")      # 2 vs 1


def test_events_label_only_their_own_vehicle():
    ws = scoring_set(fleet())
    labels = window_classes(ws, events(("B", "sudden_uturn", 30, 35), ("Z", "speeding", 0, 59)))
    vehicles = np.asarray(ws.vehicles)[ws.window_vehicle()]
    assert (labels[vehicles == "A"] == 0).all()
    assert (labels[vehicles == "B"] == CLASSES.index("sudden_uturn")).sum() == 6 + 4


def test_min_overlap_requires_that_many_event_rows_in_the_window():
    ws = scoring_set(fleet(vehicles=("A",)))
    ev = events(("A", "sudden_acceleration", 10, 12))
    assert (window_classes(ws, ev, min_overlap=3) > 0).sum() == 3   # windows starting 8, 9, 10
    assert (window_classes(ws, ev, min_overlap=1) > 0).sum() == 7


def test_labelled_source_batches_pair_each_window_with_its_class():
    ws = scoring_set(fleet())
    src = LabelledWindows(ws, window_classes(ws, events(("A", "sudden_stop", 10, 11))))
    seen = []
    for x, y in src.batches("train", "class", batch_size=7, shuffle=True, seed=3):
        assert x.shape[1:] == (5, 2) and x.dtype == torch.float32 and y.dtype == torch.int64
        seen += y.tolist()
    assert sorted(seen) == sorted(src.labels[src.indices("train")].tolist())
    a = [y.tolist() for _, y in src.batches("train", "class", 7, True, 3)]
    assert a == [y.tolist() for _, y in src.batches("train", "class", 7, True, 3)]
    assert src.counts("train")["sudden_stop"] == 6
    with pytest.raises(DtgError):
        LabelledWindows(ws, np.zeros(3))


def test_labelled_source_without_events_file_says_to_run_dtg_events(tmp_path):
    with pytest.raises(DtgError, match="dtg events"):
        labelled_source(scoring_set(fleet()), tmp_path / "nothing")


def test_per_class_metrics_on_a_hand_made_case():
    m = per_class([0, 0, 1, 1, 2], [0, 1, 1, 1, 0], ("normal", "a", "b"))
    assert m["classes"]["a"] == {"precision": 2 / 3, "recall": 1.0, "f1": pytest.approx(0.8), "support": 2,
                                 "predicted": 3}
    assert m["classes"]["b"]["recall"] == 0 and m["classes"]["b"]["predicted"] == 0
    assert m["accuracy"] == 0.6
    assert m["confusion"] == [[1, 1, 0], [0, 2, 0], [1, 0, 0]]


@settings(max_examples=40, deadline=None)
@given(pairs=st.lists(st.tuples(st.integers(0, 3), st.integers(0, 3)), min_size=1, max_size=60))
def test_per_class_metrics_equal_scikit_learn(pairs):
    from sklearn.metrics import precision_recall_fscore_support

    y_true, y_pred = np.array(pairs).T
    m = per_class(y_true, y_pred, ("n", "a", "b", "c"))
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=[0, 1, 2, 3], zero_division=0)
    for i, name in enumerate("nabc"):
        got = m["classes"][name]
        assert (got["precision"], got["recall"], got["f1"], got["support"]) == \
            (pytest.approx(p[i]), pytest.approx(r[i]), pytest.approx(f[i]), s[i])


def test_classifier_gives_one_logit_per_class_and_argmax_decisions():
    from dtg.models import build

    model = build("lstm-classifier", 3, 20, hidden=8)
    x = torch.randn(4, 20, 3)
    logits = model(x)
    assert logits.shape == (4, len(CLASSES))
    assert torch.equal(model.predict(x), logits.argmax(dim=1))
    assert model.target == "class"
    assert model.config_dict()["class_names"][0] == "normal"


def jumpy_drive(n: int = 3000, seed: int = 0) -> pa.Table:
    """Steady 30 km/h with a +12 km/h jump every 40 s, back down 15 s later: sudden accelerations and
    decelerations for a truck, and normal driving between them."""
    rng = np.random.default_rng(seed)
    v = 30 + rng.normal(0, 0.5, n)
    for k in range(20, n - 20, 40):
        v[k:k + 15] += 12
    return pa.table({"vehicle_id": ["A"] * n, "ts": pa.array(T0 + np.arange(n) * 1000).cast(TS_TYPE),
                     "speed": v.astype(np.float32), "rpm": np.full(n, 1500, np.float32),
                     "brake": np.zeros(n, np.int8), "lat": np.full(n, 37.5), "lon": np.full(n, 127.0)})


def test_training_loop_learns_event_classes_with_cross_entropy():
    from dtg.events import detect_events
    from dtg.labels import class_report
    from dtg.train import TrainConfig, train

    table = jumpy_drive()
    ws = build_window_set(table, size=10, features=("speed",), split=SplitSpec((0.7, 0.3)))
    src = LabelledWindows(ws, window_classes(ws, detect_events(table, vehicle_type="truck").events))
    cfg = TrainConfig(model="lstm-classifier", loss="cross-entropy", epochs=15, batch_size=64, hidden=16, lr=0.01,
                      patience=0, device="cpu", seed=1)
    result = train(src, cfg)
    val = class_report(result.model, src)["classification_val"]
    for name in ("normal", "sudden_acceleration", "sudden_deceleration"):
        assert val["classes"][name]["support"] > 50
        assert val["classes"][name]["recall"] > 0.6 and val["classes"][name]["precision"] > 0.6, name
    assert result.validation.per_feature.shape == (result.validation.windows, 0)


def test_classifier_refuses_a_regression_loss():
    from dtg.train import TrainConfig, train

    ws = build_window_set(jumpy_drive(400), size=10, features=("speed",), split=SplitSpec((0.7, 0.3)))
    src = LabelledWindows(ws, np.zeros(ws.n_windows, np.int64))
    with pytest.raises(DtgError, match="cross-entropy"):
        train(src, TrainConfig(model="lstm-classifier", loss="mse", epochs=1, device="cpu"))


def test_a_classifier_config_defaults_to_cross_entropy_and_keeps_an_explicit_loss():
    from dtg.train import TrainConfig

    assert TrainConfig.from_dict({"model": "lstm-classifier"}).loss == "cross-entropy"
    assert TrainConfig.from_dict({"model": "lstm-classifier", "loss": "mse"}).loss == "mse"  # refused by train
    assert TrainConfig.from_dict({"model": "lstm-ae"}).loss == "mse"
    assert TrainConfig.from_dict({}).loss == "mse"


def test_dtg_train_lstm_classifier_from_the_command_line_reports_per_class_metrics(tmp_workspace):
    import json

    from typer.testing import CliRunner

    from dtg.cli import app
    from dtg.lake import Lake
    from dtg.schema import conform

    table = jumpy_drive(2000)
    n = table.num_rows
    table = table.append_column("source_file", pa.array(["j.csv"] * n)).append_column(
        "source_row", pa.array(np.arange(1, n + 1), pa.int64()))
    Lake("data/lake").write(conform(table))
    runner = CliRunner()
    assert runner.invoke(app, ["events", "--vehicle-type", "truck", "--json"]).exit_code == 0
    assert runner.invoke(app, ["window", "--size", "10", "--features", "speed", "--json"]).exit_code == 0
    res = runner.invoke(app, ["train", "--model", "lstm-classifier", "--epochs", "3", "--device", "cpu", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    classes = out["classification_val"]["classes"]
    assert set(classes) >= {"normal", "sudden_acceleration", "sudden_deceleration"}
    assert out["class_counts_train"]["sudden_acceleration"] > 0
    card = json.loads((tmp_workspace / out["model_dir"] / "card.json").read_text(encoding="utf-8"))
    assert card["target"] == "class" and card["classification_val"]["windows"] > 0
    from dtg.registry import load_model

    loaded = load_model(tmp_workspace / out["model_dir"])  # safetensors round trip keeps the classes
    assert loaded.model.config.class_names == CLASSES
    assert loaded.model(torch.zeros(2, 10, 1)).shape == (2, len(CLASSES))


def test_dtg_train_lstm_classifier_without_events_is_a_clear_error(tmp_workspace):
    from typer.testing import CliRunner

    from dtg.cli import app
    from dtg.lake import Lake
    from dtg.schema import conform

    table = jumpy_drive(600)
    n = table.num_rows
    Lake("data/lake").write(conform(table.append_column("source_file", pa.array(["j.csv"] * n)).append_column(
        "source_row", pa.array(np.arange(1, n + 1), pa.int64()))))
    runner = CliRunner()
    assert runner.invoke(app, ["window", "--size", "10", "--features", "speed"]).exit_code == 0
    res = runner.invoke(app, ["train", "--model", "lstm-classifier", "--loss", "cross-entropy", "--epochs", "1",
                              "--device", "cpu"])
    assert res.exit_code == 1 and "dtg events" in res.stderr and "Traceback" not in res.stderr
