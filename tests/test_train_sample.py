"""Training on the bundled sample fleet (ingested into a lake, windowed), through `dtg train --config`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from dtg.cli import app
from dtg.lake import Lake
from dtg.splits import SplitSpec
from dtg.windowset import build_window_set

torch.set_num_threads(1)
DEMO = Path(__file__).resolve().parents[1] / "pipelines" / "demo.toml"


@pytest.fixture(scope="module")
def sample_windows(sample_lake, tmp_path_factory):
    table = Lake(sample_lake).read(columns=["vehicle_id", "ts", "speed", "rpm", "brake", "lat"])
    folder = tmp_path_factory.mktemp("sample_windows") / "windows"
    build_window_set(table, size=20, split=SplitSpec()).save(folder)
    return folder


def test_loss_falls_training_the_demo_model_on_the_sample_fleet(sample_windows, tmp_path):
    res = CliRunner().invoke(app, ["train", "--config", str(DEMO), "--windows", str(sample_windows),
                                   "--models", str(tmp_path), "--epochs", "3", "--batch-size", "256", "--json"])
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    assert summary["model_dir"] == str(tmp_path / "demo" / "v1")  # name and model from the file
    history = (tmp_path / "demo" / "v1" / "history.csv").read_text().splitlines()[1:]
    train_loss = [float(row.split(",")[1]) for row in history]
    val_loss = [float(row.split(",")[2]) for row in history]
    assert len(train_loss) == 3
    assert train_loss[-1] < 0.5 * train_loss[0] and val_loss[-1] < val_loss[0]
    card = json.loads((tmp_path / "demo" / "v1" / "card.json").read_text())
    assert card["training"]["schedule"] == "cosine" and card["training"]["batch_size"] == 256
    assert 0 < summary["threshold"] == card["threshold"]["value"]
