"""`dtg lab optimizers`: the JSON contract, the files it writes, and one-line errors."""

from __future__ import annotations

import csv
import json

import pytest
from PIL import Image
from typer.testing import CliRunner

from dtg.cli import app

runner = CliRunner()
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def invoke(*args: str):
    return runner.invoke(app, ["lab", "optimizers", *args])


def test_json_summary_is_one_object_and_lists_the_files_written(tmp_path):
    out = tmp_path / "study"
    r = invoke("--function", "saddle", "--steps", "40", "--optimizers", "sgd,momentum,adam", "--out", str(out),
               "--json")
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout)  # exactly one JSON document on stdout
    assert summary["functions"] == ["saddle"] and summary["steps"] == 40
    assert [row["optimizer"] for row in summary["results"]] == ["sgd", "momentum", "adam"]
    assert sorted(summary["files"]) == sorted(str(out / n) for n in
                                              ("optimizers-saddle.png", "optimizers.csv", "optimizers.md"))
    assert (out / "optimizers-saddle.png").read_bytes()[:8] == PNG_MAGIC
    with Image.open(out / "optimizers-saddle.png") as png:  # decodes: 13 x 5.6 in at 90 dpi, palette
        assert png.size == (1170, 504) and png.mode == "P"
    with open(out / "optimizers.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [row["optimizer"] for row in rows] == ["sgd", "momentum", "adam"]
    assert not [p for p in out.iterdir() if p.name.startswith(".tmp-")]
    assert "running 3 optimizers" in r.stderr


def test_all_functions_give_one_png_each_and_a_row_per_optimizer_and_function(tmp_path):
    r = invoke("--steps", "5", "--out", str(tmp_path), "--json")
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout)
    assert summary["functions"] == ["beale", "saddle", "valley"]
    assert len(summary["results"]) == 27
    for name in summary["functions"]:
        assert (tmp_path / f"optimizers-{name}.png").read_bytes()[:8] == PNG_MAGIC


def test_human_output_prints_the_markdown_table(tmp_path):
    r = invoke("--function", "valley", "--steps", "10", "--optimizers", "sgd", "--out", str(tmp_path))
    assert r.exit_code == 0, r.output
    assert "| valley | sgd | 0.002 |" in r.stdout
    assert (tmp_path / "optimizers.md").read_text() in r.stdout


def test_lr_override_reaches_the_run(tmp_path):
    r = invoke("--function", "beale", "--steps", "3", "--optimizers", "adam", "--lr", "adam=0.05", "--out",
               str(tmp_path), "--json")
    assert json.loads(r.stdout)["results"][0]["lr"] == 0.05


def test_tune_uses_the_tuned_rates_and_an_explicit_lr_still_wins(tmp_path, monkeypatch):
    from dtg.lab import study

    calls = []

    def fake_tune(names=None, **kw):
        calls.append(names)
        return {"sgd": 0.0123, "adam": 0.0456}

    monkeypatch.setattr(study, "tune_learning_rates", fake_tune)
    r = invoke("--function", "beale", "--steps", "2", "--optimizers", "sgd,adam", "--tune", "--lr", "Adam=0.5",
               "--out", str(tmp_path), "--json")
    assert r.exit_code == 0, r.output
    assert calls == [["sgd", "adam"]]
    assert {row["optimizer"]: row["lr"] for row in json.loads(r.stdout)["results"]} == {"sgd": 0.0123, "adam": 0.5}


def test_a_rerun_writes_the_same_table(tmp_path):
    args = ("--function", "valley", "--steps", "30", "--optimizers", "nag,rmsprop", "--json")
    invoke(*args, "--out", str(tmp_path / "a"))
    invoke(*args, "--out", str(tmp_path / "b"))
    assert (tmp_path / "a" / "optimizers.csv").read_bytes() == (tmp_path / "b" / "optimizers.csv").read_bytes()


@pytest.mark.parametrize("args,needle", [
    (("--lr", "adam"), "--lr expects NAME=RATE"),
    (("--lr", "adam=fast"), "--lr expects NAME=RATE"),
    (("--lr", "adamw=0.1"), "unknown optimizer 'adamw' (valid: sgd, momentum, nag"),
    (("--optimizers", "sgd,lbfgs"), "unknown optimizer 'lbfgs'"),
    (("--lr", "sgd=-1"), "must be a positive number"),
])
def test_bad_values_are_one_line_errors_with_exit_code_1(tmp_path, args, needle):
    r = invoke("--function", "saddle", "--steps", "2", "--out", str(tmp_path / "o"), *args)
    assert r.exit_code == 1
    assert needle in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert "Traceback" not in r.output and r.stdout == ""
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("args", [("--function", "bowl"), ("--steps", "0")])
def test_usage_errors_exit_2(args):
    assert invoke(*args).exit_code == 2
