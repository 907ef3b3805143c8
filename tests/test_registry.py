"""The model registry: versions, cards, hashed safetensors weights, loading that reproduces validation errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from _train_windows import window_set
from dtg import registry
from dtg.errors import DtgError
from dtg.train import TrainConfig, default_threshold, evaluate, fit

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def windows_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ws") / "windows"
    window_set(rows=300).save(folder)
    return folder


@pytest.fixture(scope="module")
def trained(windows_dir, tmp_path_factory):
    models = tmp_path_factory.mktemp("models")
    summary = fit(windows_dir, TrainConfig(hidden=8, epochs=2, seed=1), models, "ae")
    return models, summary


def copy_model(src, dst):
    dst.mkdir(parents=True)
    for item in src.iterdir():
        (dst / item.name).write_bytes(item.read_bytes())
    return dst


def test_fit_publishes_v1_with_weights_card_history_and_loss_curve(trained):
    models, summary = trained
    folder = models / "ae" / "v1"
    assert summary["model_dir"] == str(folder)
    assert {p.name for p in folder.iterdir()} == {"weights.safetensors", "card.json", "history.csv", "loss.png"}
    assert (folder / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    lines = (folder / "history.csv").read_text().splitlines()
    assert lines[0].startswith("epoch,train_loss,val_loss") and len(lines) == 1 + summary["epochs_run"]
    assert not (models / "ae" / ".checkpoint").exists()


def test_card_holds_what_scoring_needs(trained, windows_dir):
    models, summary = trained
    card = registry.read_card(models / "ae" / "v1")
    ws = window_set(rows=300)
    assert card["model"]["type"] == "lstm-ae" and card["model"]["config"]["hidden"] == 8
    assert card["target"] == "reconstruct"
    assert card["features"] == list(ws.features) and card["size"] == ws.size and card["stride"] == ws.stride
    assert card["scaler"] == ws.scaler.to_dict()
    assert card["windows"]["fingerprint"] == ws.fingerprint
    assert card["threshold"]["value"] == summary["threshold"] == card["val_scores"]["p99"]
    assert card["metrics"]["val_loss"] == summary["val_loss"]
    assert card["training"]["seed"] == 1 and card["training"]["optimizer_hp"]["lr"] == 0.001
    assert {"dtg", "torch", "numpy", "python"} <= set(card["packages"])
    assert card["weights"]["sha256"] == registry.sha256(models / "ae" / "v1" / "weights.safetensors")
    assert card["name"] == "ae" and card["version"] == "v1" and card["created"]


def test_a_loaded_model_reproduces_its_own_validation_errors(trained):
    models, _ = trained
    loaded = registry.load_model(models / "ae" / "v1")
    ws = window_set(rows=300)
    again = evaluate(loaded.model, ws, "val", loaded.card["training"]["loss"], torch.device("cpu"), scores=True)
    assert again.loss == loaded.card["metrics"]["val_loss"]
    assert default_threshold(again.scores) == loaded.threshold
    x = torch.from_numpy(ws.windows(ws.indices("val")))
    score, _ = loaded.errors(x, x)
    np.testing.assert_allclose(score.numpy(), again.scores, rtol=1e-6)


def test_loaded_scaler_is_the_window_sets(trained):
    models, _ = trained
    loaded = registry.load_model(models / "ae" / "v1")
    ws = window_set(rows=300)
    raw = np.asarray(ws.values[:50])
    np.testing.assert_array_equal(loaded.scaler.transform(raw), ws.scaler.transform(raw))


def test_a_tampered_weights_file_is_refused(trained, tmp_path):
    models, _ = trained
    folder = copy_model(models / "ae" / "v1", tmp_path / "m" / "v1")
    data = bytearray((folder / "weights.safetensors").read_bytes())
    data[-1] ^= 0x01  # one bit of one weight
    (folder / "weights.safetensors").write_bytes(bytes(data))
    with pytest.raises(DtgError, match="do not match the sha256"):
        registry.load_model(folder)


def test_a_truncated_weights_file_is_refused(trained, tmp_path):
    models, _ = trained
    folder = copy_model(models / "ae" / "v1", tmp_path / "m" / "v1")
    (folder / "weights.safetensors").write_bytes((folder / "weights.safetensors").read_bytes()[:100])
    with pytest.raises(DtgError, match="sha256"):
        registry.load_model(folder)


def test_a_missing_card_or_weights_file_is_a_clear_error(trained, tmp_path):
    models, _ = trained
    no_card = copy_model(models / "ae" / "v1", tmp_path / "a" / "v1")
    (no_card / "card.json").unlink()
    with pytest.raises(DtgError, match="card.json is missing"):
        registry.load_model(no_card)
    no_weights = copy_model(models / "ae" / "v1", tmp_path / "b" / "v1")
    (no_weights / "weights.safetensors").unlink()
    with pytest.raises(DtgError, match="weights are missing"):
        registry.load_model(no_weights)


def test_a_card_pointing_elsewhere_is_refused(trained, tmp_path):
    models, _ = trained
    folder = copy_model(models / "ae" / "v1", tmp_path / "m" / "v1")
    card = json.loads((folder / "card.json").read_text())
    card["weights"]["file"] = "../../../etc/passwd"
    (folder / "card.json").write_text(json.dumps(card))
    with pytest.raises(DtgError, match="missing"):
        registry.load_model(folder)


def test_a_corrupt_card_is_a_clear_error(trained, tmp_path):
    models, _ = trained
    folder = copy_model(models / "ae" / "v1", tmp_path / "m" / "v1")
    (folder / "card.json").write_text("{not json")
    with pytest.raises(DtgError, match="unreadable model card"):
        registry.load_model(folder)


def test_versions_increase_and_latest_resolves_to_the_newest(windows_dir, tmp_path):
    for _ in range(2):
        fit(windows_dir, TrainConfig(model="mlp-ae", hidden=8, epochs=1), tmp_path, "m")
    assert registry.versions(tmp_path, "m") == ["v1", "v2"]
    assert registry.resolve("m", tmp_path) == tmp_path / "m" / "v2"
    assert registry.resolve("m/latest", tmp_path) == tmp_path / "m" / "v2"
    assert registry.resolve("m/v1", tmp_path) == tmp_path / "m" / "v1"
    assert registry.resolve(tmp_path / "m", tmp_path) == tmp_path / "m" / "v2"
    assert registry.resolve(tmp_path / "m" / "v1") == tmp_path / "m" / "v1"
    assert registry.read_card(tmp_path / "m" / "v2")["version"] == "v2"


def test_versions_sort_by_number_not_text(tmp_path):
    for v in ("v2", "v10", "v1", "notes"):
        (tmp_path / "m" / v).mkdir(parents=True)
    assert registry.versions(tmp_path, "m") == ["v1", "v2", "v10"]


def test_unknown_model_or_version_is_a_clear_error(trained):
    models, _ = trained
    with pytest.raises(DtgError, match="no model named 'nope'"):
        registry.resolve("nope", models)
    with pytest.raises(DtgError, match="has no version 'v9'.*v1"):
        registry.resolve("ae/v9", models)


@pytest.mark.parametrize("name", ["../evil", "a/b", "", ".hidden", "x" * 65, "a..b"])
def test_unsafe_model_names_are_refused(name):
    with pytest.raises(DtgError, match="invalid model name"):
        registry.check_name(name)


def test_list_models_shows_each_version_and_flags_broken_cards(trained, tmp_path):
    models, _ = trained
    root = tmp_path / "models"
    copy_model(models / "ae" / "v1", root / "ae" / "v1")
    (root / "broken" / "v1").mkdir(parents=True)
    rows = registry.list_models(root)
    assert [(r["name"], r["version"]) for r in rows] == [("ae", "v1"), ("broken", "v1")]
    assert rows[0]["model"] == "lstm-ae" and rows[0]["threshold"] > 0
    assert "card.json is missing" in rows[1]["error"]
    assert registry.list_models(tmp_path / "none") == []


def test_forecaster_trained_with_cross_entropy_predicts_probabilities_after_loading(windows_dir, tmp_path):
    summary = fit(windows_dir, TrainConfig(model="lstm-forecaster", loss="cross-entropy", hidden=8, epochs=1),
                  tmp_path, "fc")
    loaded = registry.load_model(summary["model_dir"])
    assert loaded.target == "next"
    y_hat = loaded.predict(torch.rand(3, 20, 4))
    assert ((y_hat > 0) & (y_hat < 1)).all()


def test_a_second_training_run_of_the_same_name_is_refused_while_one_runs(windows_dir, tmp_path):
    from dtg.lock import RunLock
    from dtg.train import LOCK

    with RunLock(tmp_path / "busy" / LOCK):
        with pytest.raises(DtgError, match="another dtg train of 'busy' is running"):
            fit(windows_dir, TrainConfig(hidden=8, epochs=1), tmp_path, "busy")
    assert fit(windows_dir, TrainConfig(model="mlp-ae", hidden=8, epochs=1), tmp_path, "busy")["version"] == "v1"
