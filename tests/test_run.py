"""`dtg run PIPELINE.toml`: stages from one file, in order, through the same commands users type."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dtg.cli import app
from dtg.errors import DtgError
from dtg.pipeline import load, run, to_argv
from test_scoring_support import drive_table, publish_model, write_dtg


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_section_keys_become_the_stage_options(tmp_path):
    argv = to_argv("window", {"size": 20, "features": ["speed", "rpm"], "max_gap": 2, "wait": False,
                              "rescore": True}, tmp_path)
    assert argv == ["window", "--size", "20", "--features", "speed,rpm", "--max-gap", "2", "--no-wait",
                    "--rescore"]
    assert to_argv("ingest", {"sources": ["a", "b"], "lake": "L"}, tmp_path) == ["ingest", "--lake", "L", "a", "b"]


def test_bad_pipeline_files_are_one_clear_error(tmp_path):
    with pytest.raises(DtgError, match="unknown section \\[trian\\]"):
        load(_write(tmp_path / "p.toml", "[trian]\nepochs = 1\n"))
    with pytest.raises(DtgError, match="invalid TOML"):
        load(_write(tmp_path / "p.toml", "[ingest\n"))
    with pytest.raises(DtgError, match="not found"):
        load(tmp_path / "missing.toml")
    with pytest.raises(DtgError, match="seed must be an integer"):
        load(_write(tmp_path / "p.toml", "seed = 'x'\n[ingest]\nsources = ['a']\n"))


def test_stages_run_in_order_and_stop_at_the_first_failure(tmp_path):
    spec = load(_write(tmp_path / "p.toml", "seed = 7\n[score]\nthreshold = 1\n[window]\nsize = 5\n"
                                             "[train]\nepochs = 1\n[ingest]\nsources = ['x']\n"))
    calls = []

    def fake(argv):
        calls.append(argv)
        print(json.dumps({"model_dir": "models/m/v1"} if argv[0] == "train" else {"ok": argv[0]}))
        return 1 if argv[0] == "score" else 0

    result = run(spec, invoke=fake)
    assert [c[0] for c in calls] == ["ingest", "window", "train", "score"]
    assert calls[1] == ["window", "--size", "5", "--seed", "7", "--json"]  # the file's seed reaches seeded stages
    assert "--model" in calls[3] and calls[3][calls[3].index("--model") + 1] == "models/m/v1"
    assert (result.exit_code, result.failed_stage) == (1, "score")
    assert result.stages["ingest"] == {"ok": "ingest"}


def test_score_without_a_model_needs_a_train_stage(tmp_path):
    spec = load(_write(tmp_path / "p.toml", "[score]\nsources = ['x']\n"))
    with pytest.raises(DtgError, match="no model"):
        run(spec, invoke=lambda argv: 0)


def test_a_pipeline_ingests_windows_and_scores_and_says_where_the_outputs_are(tmp_path, monkeypatch):
    drive = drive_table(n=400, seed=9, spikes=(250,))
    model = publish_model(tmp_path / "models", drive, threshold=0.02)
    write_dtg(tmp_path / "logs" / "a.dtg", drive)
    monkeypatch.chdir(tmp_path)
    _write(tmp_path / "p.toml", f"""
[ingest]
sources = ["logs"]

[window]
size = 8
features = ["speed", "rpm", "brake", "lat"]

[score]
sources = ["logs"]
model = "{model.relative_to(tmp_path)}"
device = "cpu"
""")
    result = CliRunner().invoke(app, ["run", "p.toml"])
    assert result.exit_code == 0, result.output
    assert "scores:    data/scores/seconds" in result.stdout
    assert "anomalies: data/scores/anomalies" in result.stdout
    assert list((tmp_path / "data" / "scores" / "seconds").rglob("*.parquet"))
    as_json = CliRunner().invoke(app, ["run", "p.toml", "--json"])
    summary = json.loads(as_json.stdout)  # one object: every stage's summary inside
    assert list(summary["stages"]) == ["ingest", "window", "score"]
    assert summary["stages"]["ingest"]["rows_duplicate"] == 400  # second time: nothing new
    assert summary["stages"]["score"]["files_skipped"] == 1


def test_a_failing_stage_stops_the_pipeline_with_its_exit_code(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _write(tmp_path / "p.toml", "[window]\nlake = 'nowhere'\n[score]\nmodel = 'm'\n")
    result = CliRunner().invoke(app, ["run", "p.toml", "--json"])
    assert result.exit_code == 1
    summary = json.loads(result.stdout)
    assert summary["failed_stage"] == "window" and list(summary["stages"]) == ["window"]


def test_all_four_stages_score_with_the_model_train_just_wrote(tmp_path, monkeypatch):
    import torch

    torch.set_num_threads(1)
    write_dtg(tmp_path / "logs" / "a.dtg", drive_table(n=300, seed=11, spikes=(150,)))
    monkeypatch.chdir(tmp_path)
    _write(tmp_path / "p.toml", """
seed = 3
[ingest]
sources = ["logs"]
[window]
size = 8
features = ["speed", "rpm", "brake", "lat"]
[train]
name = "mini"
model = "mlp-ae"
hidden = 8
latent = 2
epochs = 1
batch_size = 64
device = "cpu"
[score]
sources = ["logs"]
device = "cpu"
""")
    result = CliRunner().invoke(app, ["run", "p.toml", "--json"])
    assert result.exit_code == 0, result.output
    stages = json.loads(result.stdout)["stages"]
    assert list(stages) == ["ingest", "window", "train", "score"]
    assert stages["train"]["model_dir"] == str(Path("models") / "mini" / "v1")
    assert stages["score"]["model"] == "mini/v1" and stages["score"]["files_new"] == 1


def test_the_human_summary_rounds_the_training_figures():
    from dtg.cli.run import _human

    text = _human({"pipeline": "p.toml", "exit_code": 0,
                   "stages": {"train": {"model_dir": "models/demo/v1", "val_loss": 0.008172865957021713,
                                        "threshold": 0.04691155970096588}}})
    assert "train:  models/demo/v1 (val loss 0.0081729, threshold 0.046912)" in text
