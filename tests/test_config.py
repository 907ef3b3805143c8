"""Pipeline TOML files: sections read and checked, errors name file, line and key; flags override the file."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dtg import config
from dtg.errors import DtgError
from dtg.train import TrainConfig

DEMO = Path(__file__).resolve().parents[1] / "pipelines" / "demo.toml"


def write(tmp_path, text: str) -> Path:
    path = tmp_path / "p.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_train_section_is_read_with_its_values(tmp_path):
    path = write(tmp_path, '[train]\nmodel = "mlp-ae"\nepochs = 3\nlr = 0.01\nbatch_size = "all"\nresume = false\n')
    assert config.section(path, "train", config.train_spec()) == {
        "model": "mlp-ae", "epochs": 3, "lr": 0.01, "batch_size": "all", "resume": False}


def test_unknown_key_is_an_error_naming_file_line_and_key(tmp_path):
    path = write(tmp_path, '[ingest]\nlake = "x"\n\n[train]\nmodel = "lstm-ae"\nepoch = 3\n')
    with pytest.raises(DtgError) as err:
        config.section(path, "train", config.train_spec())
    assert err.value.field == "epoch" and err.value.line == 6 and err.value.file == str(path)
    assert str(err.value).startswith(f"{path}:6: field 'epoch': unknown key in [train]")


def test_a_value_of_the_wrong_type_is_an_error_naming_the_key(tmp_path):
    path = write(tmp_path, '[train]\nepochs = "ten"\n')
    with pytest.raises(DtgError, match="must be int") as err:
        config.section(path, "train", config.train_spec())
    assert err.value.field == "epochs" and err.value.line == 2


def test_booleans_are_not_numbers(tmp_path):
    path = write(tmp_path, "[train]\nepochs = true\n")
    with pytest.raises(DtgError, match="must be int"):
        config.section(path, "train", config.train_spec())


def test_integers_are_accepted_where_a_number_is_expected(tmp_path):
    path = write(tmp_path, "[train]\nlr = 1\ndropout = 0\n")
    assert config.section(path, "train", config.train_spec()) == {"lr": 1, "dropout": 0}


def test_malformed_toml_is_an_error_with_its_line(tmp_path):
    path = write(tmp_path, '[train]\nmodel = "lstm-ae"\nepochs = = 3\n')
    with pytest.raises(DtgError, match="invalid TOML") as err:
        config.section(path, "train", config.train_spec())
    assert err.value.line == 3


def test_missing_file_and_missing_section_are_clear_errors(tmp_path):
    with pytest.raises(DtgError, match="config file not found"):
        config.section(tmp_path / "none.toml", "train", config.train_spec())
    with pytest.raises(DtgError, match=r"no \[train\] section"):
        config.section(write(tmp_path, "[window]\nsize = 20\n"), "train", config.train_spec())


def test_a_section_that_is_not_a_table_is_an_error(tmp_path):
    with pytest.raises(DtgError, match="must be a"):
        config.section(write(tmp_path, "train = 3\n"), "train", config.train_spec())


def test_train_spec_covers_every_training_setting_and_the_paths():
    spec = config.train_spec()
    assert {f.name for f in dataclasses.fields(TrainConfig)} <= set(spec)
    assert {"windows", "models", "name", "resume"} <= set(spec)
    assert spec["epochs"] == (int,) and spec["lr"] == (float,) and spec["activation"] == (str,)


@settings(max_examples=50, deadline=None)
@given(st.dictionaries(st.sampled_from(["a", "b", "c", "d"]), st.integers()),
       st.dictionaries(st.sampled_from(["a", "b", "c", "e"]), st.none() | st.integers()))
def test_merge_takes_every_given_flag_over_the_file_and_keeps_the_rest(file_options, flags):
    merged = config.merge(file_options, flags)
    for key, value in flags.items():
        if value is not None:
            assert merged[key] == value
    for key, value in file_options.items():
        if flags.get(key) is None:
            assert merged[key] == value
    assert set(merged) == set(file_options) | {k for k, v in flags.items() if v is not None}


def test_the_demo_pipeline_train_section_is_valid_and_builds_a_train_config():
    options = config.section(DEMO, "train", config.train_spec())
    settings_ = {k: v for k, v in options.items() if k not in config.TRAIN_PATHS}
    cfg = TrainConfig.from_dict(settings_)
    assert cfg.model == "lstm-ae" and options["name"] == "demo"
    data, _ = config.read(DEMO)
    assert {"ingest", "window", "train"} <= set(data)
