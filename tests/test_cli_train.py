"""`dtg train` and `dtg models list|show` through the command line."""

from __future__ import annotations

import json

import pytest
import torch
from typer.testing import CliRunner

from _train_windows import window_set
from dtg.cli import app

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def windows_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ws") / "windows"
    window_set(rows=250).save(folder)
    return folder


def dtg(*args: str):
    return CliRunner().invoke(app, [str(a) for a in args])


def one_json(result) -> dict:
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1, result.stdout
    return json.loads(lines[0])


def assert_one_line_error(result, *needles: str) -> None:
    assert result.exit_code == 1, result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("dtg: error:")]
    assert len(errors) == 1 and "Traceback" not in result.stderr, result.stderr
    for needle in needles:
        assert needle in errors[0], errors[0]


def test_train_json_prints_one_summary_object_and_publishes_the_model(windows_dir, tmp_path):
    res = dtg("train", "--windows", windows_dir, "--models", tmp_path, "--epochs", "2", "--hidden", "8", "--json")
    assert res.exit_code == 0, res.output
    summary = one_json(res)
    assert {"model_dir", "epochs_run", "train_loss", "val_loss", "threshold"} <= set(summary)
    assert summary["model_dir"] == str(tmp_path / "lstm-ae" / "v1") and summary["epochs_run"] == 2
    assert (tmp_path / "lstm-ae" / "v1" / "weights.safetensors").is_file()
    assert "epoch 2/2" in res.stderr  # progress goes to stderr


def test_train_human_summary_names_the_model_and_threshold(windows_dir, tmp_path):
    res = dtg("train", "--windows", windows_dir, "--models", tmp_path, "--model", "mlp-ae", "--epochs", "1",
              "--name", "base")
    assert res.exit_code == 0, res.output
    assert f"model: {tmp_path / 'base' / 'v1'} (mlp-ae)" in res.stdout and "threshold" in res.stdout


def test_config_file_is_read_and_flags_override_it(windows_dir, tmp_path):
    cfg = tmp_path / "p.toml"
    cfg.write_text(f'[train]\nwindows = "{windows_dir}"\nmodels = "{tmp_path / "m"}"\nname = "fromfile"\n'
                   'model = "lstm-forecaster"\nhidden = 8\nepochs = 3\nbatch_size = "all"\nresume = false\n')
    res = dtg("train", "--config", cfg, "--epochs", "1", "--json")
    assert res.exit_code == 0, res.output
    summary = one_json(res)
    assert summary["model_dir"] == str(tmp_path / "m" / "fromfile" / "v1")
    assert summary["epochs_run"] == 1 and summary["model"] == "lstm-forecaster"
    card = json.loads((tmp_path / "m" / "fromfile" / "v1" / "card.json").read_text())
    assert card["training"]["batch_size"] == 0 and card["model"]["config"]["hidden"] == 8


def test_an_invalid_config_key_is_one_clear_error_naming_it(tmp_path):
    cfg = tmp_path / "p.toml"
    cfg.write_text('[train]\nmodel = "lstm-ae"\nhiden = 8\n')
    assert_one_line_error(dtg("train", "--config", cfg), f"{cfg}:3", "'hiden'", "unknown key in [train]")


def test_an_unknown_model_or_optimizer_is_one_clear_error(windows_dir, tmp_path):
    assert_one_line_error(dtg("train", "--windows", windows_dir, "--models", tmp_path, "--model", "gpt"),
                          "unknown model 'gpt'")
    assert_one_line_error(dtg("train", "--windows", windows_dir, "--models", tmp_path, "--optimizer", "lion"),
                          "unknown optimizer 'lion'")


def test_a_missing_window_set_is_one_clear_error(tmp_path):
    assert_one_line_error(dtg("train", "--windows", tmp_path / "none", "--models", tmp_path), "not a window set")


def test_an_unsafe_name_is_refused(windows_dir, tmp_path):
    assert_one_line_error(dtg("train", "--windows", windows_dir, "--models", tmp_path, "--name", "../x"),
                          "invalid model name")
    assert not (tmp_path.parent / "x").exists()


def test_resume_without_an_interrupted_run_is_one_clear_error(windows_dir, tmp_path):
    assert_one_line_error(dtg("train", "--windows", windows_dir, "--models", tmp_path, "--resume"),
                          "no interrupted run to resume")


def test_resume_continues_a_checkpointed_run(windows_dir, tmp_path):
    from dtg.train import RUN_DIR, TrainConfig, train
    from dtg.windowset import WindowSet

    cfg = TrainConfig(hidden=8, epochs=3, seed=0)
    train(WindowSet.load(windows_dir), cfg, tmp_path / "lstm-ae" / RUN_DIR, stop_after=1)
    res = dtg("train", "--windows", windows_dir, "--models", tmp_path, "--hidden", "8", "--epochs", "3",
              "--resume", "--json")
    assert res.exit_code == 0, res.output
    assert one_json(res)["epochs_run"] == 3
    assert "epoch 1/3" not in res.stderr and "epoch 2/3" in res.stderr


def test_models_list_and_show(windows_dir, tmp_path):
    assert dtg("train", "--windows", windows_dir, "--models", tmp_path, "--epochs", "1", "--hidden", "8",
               "--name", "ae").exit_code == 0
    listed = one_json(dtg("models", "list", "--models", tmp_path, "--json"))
    assert [(m["name"], m["version"], m["model"]) for m in listed["models"]] == [("ae", "v1", "lstm-ae")]
    shown = one_json(dtg("models", "show", "ae", "--models", tmp_path, "--json"))
    assert shown["model_dir"] == str(tmp_path / "ae" / "v1") and shown["model"]["type"] == "lstm-ae"
    human = dtg("models", "show", "ae/latest", "--models", tmp_path)
    assert human.exit_code == 0 and "ae/v1: lstm-ae" in human.stdout and "threshold" in human.stdout
    table = dtg("models", "list", "--models", tmp_path)
    assert "ae/v1" in table.stdout and "lstm-ae" in table.stdout


def test_models_show_of_an_unknown_model_is_one_clear_error(tmp_path):
    assert_one_line_error(dtg("models", "show", "nope", "--models", tmp_path), "no model named 'nope'")


def test_models_list_of_an_empty_registry_says_so(tmp_path):
    res = dtg("models", "list", "--models", tmp_path / "none")
    assert res.exit_code == 0 and "no models in" in res.stdout
