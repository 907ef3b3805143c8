"""The training loop: learning, repeatability, exact resume, early stopping, schedules, clipping, errors."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from _train_windows import window_set
from dtg.errors import DtgError
from dtg.nn import activations, optimizers
from dtg.train import TrainConfig, epoch_seed, evaluate, parse_batch_size, train

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def small():
    """~380 training windows of 20 s from the real-derived fixture (fast)."""
    return window_set(rows=300)


@pytest.fixture(scope="module")
def full():
    return window_set()


def tiny(**kw) -> TrainConfig:
    return TrainConfig(**{"hidden": 8, "epochs": 2, "batch_size": 64, "patience": 0, **kw})


def weights(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def assert_same_weights(a, b):
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


@pytest.mark.parametrize("model", ["lstm-ae", "lstm-forecaster", "mlp-ae"])
def test_loss_falls_on_real_drive_windows(full, model):
    result = train(full, TrainConfig(model=model, hidden=16, epochs=6, batch_size=32, lr=0.003, patience=0, seed=0))
    train_losses = [h["train_loss"] for h in result.history]
    val_losses = [h["val_loss"] for h in result.history]
    assert train_losses[-1] < 0.6 * train_losses[0]
    assert min(val_losses) < val_losses[0]


def test_same_seed_twice_gives_identical_weights_and_history(small):
    cfg = tiny(dropout=0.2, layers=2, seed=7)
    a, b = train(small, cfg), train(small, cfg)
    assert_same_weights(weights(a.model), weights(b.model))
    assert [h["train_loss"] for h in a.history] == [h["train_loss"] for h in b.history]
    assert np.array_equal(a.validation.scores, b.validation.scores)


def test_different_seeds_give_different_weights(small):
    a, b = train(small, tiny(seed=1)), train(small, tiny(seed=2))
    assert not torch.equal(a.model.head.weight, b.model.head.weight)


@pytest.mark.parametrize("model,schedule", [("lstm-ae", "cosine"), ("lstm-forecaster", "plateau"),
                                            ("mlp-ae", "step")])
def test_resume_after_an_interruption_equals_the_uninterrupted_run(small, tmp_path, model, schedule):
    cfg = tiny(model=model, epochs=4, dropout=0.3, layers=2, schedule=schedule, optimizer="nadam", seed=3, clip=1.0)
    whole = train(small, cfg, tmp_path / "whole")
    first = train(small, cfg, tmp_path / "split", stop_after=2)
    assert first.epochs_run == 2 and not first.completed
    rest = train(small, cfg, tmp_path / "split", resume=True)
    assert rest.completed and rest.epochs_run == 4
    assert_same_weights(weights(whole.model), weights(rest.model))
    for key in ("train_loss", "val_loss", "lr", "best"):
        assert [h[key] for h in whole.history] == [h[key] for h in rest.history], key
    assert np.array_equal(whole.validation.scores, rest.validation.scores)


def test_resume_without_a_checkpoint_is_a_clear_error(small, tmp_path):
    with pytest.raises(DtgError, match="no interrupted run to resume"):
        train(small, tiny(), tmp_path, resume=True)


def test_resume_with_other_settings_is_an_error_naming_the_setting(small, tmp_path):
    train(small, tiny(epochs=3), tmp_path, stop_after=1)
    with pytest.raises(DtgError, match="interrupted run used lr=None") as err:
        train(small, tiny(epochs=3, lr=0.1), tmp_path, resume=True)
    assert err.value.field == "lr"


def test_resume_on_other_windows_is_refused(small, full, tmp_path):
    train(small, tiny(epochs=3), tmp_path, stop_after=1)
    with pytest.raises(DtgError, match="other windows"):
        train(full, tiny(epochs=3), tmp_path, resume=True)


def test_checkpoint_loads_with_weights_only(small, tmp_path):
    train(small, tiny(epochs=1), tmp_path)
    payload = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert {"model", "optimizer", "scheduler", "rng", "state", "config"} <= set(payload)
    assert payload["state"]["epoch"] == 1


@pytest.mark.parametrize("name", list(optimizers.OPTIMIZERS))
def test_every_optimizer_trains_an_epoch_without_nan(small, name):
    result = train(small, tiny(optimizer=name, epochs=1))
    assert math.isfinite(result.history[0]["train_loss"]) and math.isfinite(result.val_loss)
    assert all(torch.isfinite(p).all() for p in result.model.parameters())


@pytest.mark.parametrize("name", list(activations.ACTIVATIONS))
@pytest.mark.parametrize("model", ["lstm-ae", "mlp-ae"])
def test_every_activation_trains_an_epoch_without_nan(small, name, model):
    result = train(small, tiny(model=model, activation=name, epochs=1))
    assert math.isfinite(result.history[0]["train_loss"]) and math.isfinite(result.val_loss)
    assert np.isfinite(result.validation.scores).all()


def test_cross_entropy_loss_trains_and_scores_in_the_scaled_space(small):
    result = train(small, tiny(loss="cross-entropy", epochs=2))
    assert math.isfinite(result.val_loss)
    assert result.validation.scores.max() <= 1.0  # sigmoid predictions vs targets mostly in [0, 1]


def test_early_stopping_stops_after_patience_and_keeps_the_best_epochs_weights(small):
    # A learning rate this high makes validation loss bounce: the run stops, the best weights stay.
    cfg = tiny(optimizer="sgd", lr=3.0, epochs=12, patience=2, seed=0)
    result = train(small, cfg)
    val = [h["val_loss"] for h in result.history]
    best = int(np.argmin(val)) + 1
    assert result.best_epoch == best
    assert result.stopped_early and result.epochs_run == best + 2 < 12
    assert result.val_loss == pytest.approx(min(val), rel=1e-6)


def test_patience_stops_a_run_that_no_longer_improves(small):
    result = train(small, tiny(optimizer="sgd", lr=1e-9, epochs=10, patience=1, seed=0))
    assert result.stopped_early and result.epochs_run < 10


def test_returned_model_has_the_best_validation_loss_of_the_history(small):
    result = train(small, tiny(epochs=4, lr=0.01))
    assert evaluate(result.model, small, "val", "mse", torch.device("cpu")).loss == pytest.approx(
        min(h["val_loss"] for h in result.history), rel=1e-5)


def test_batch_size_one_is_one_step_per_window_and_all_is_one_step_per_epoch(small):
    n_train = len(small.indices("train", "reconstruct"))
    full_batch = train(small, tiny(epochs=2, batch_size=0))
    stochastic = train(small, tiny(model="mlp-ae", epochs=1, batch_size=1))
    minibatch = train(small, tiny(epochs=1, batch_size=64))
    assert [h["steps"] for h in full_batch.history] == [1, 1]
    assert stochastic.history[0]["steps"] == n_train
    assert minibatch.history[0]["steps"] == -(-n_train // 64)


def test_gradient_clipping_bounds_each_step(small):
    # One SGD step over all windows: the weights move by exactly lr * clipped gradient norm <= lr * clip.
    cfg = tiny(optimizer="sgd", lr=1.0, epochs=1, batch_size=0, clip=0.01, seed=5)
    torch.manual_seed(5)
    from dtg.models import build

    start = weights(build("lstm-ae", 4, 20, hidden=8))
    moved = weights(train(small, cfg).model)
    step = torch.sqrt(sum(((moved[k] - start[k]) ** 2).sum() for k in start))
    assert 0 < step <= 0.01 + 1e-6
    unclipped = weights(train(small, dataclasses.replace(cfg, clip=0.0)).model)
    assert torch.sqrt(sum(((unclipped[k] - start[k]) ** 2).sum() for k in start)) > 0.01


def test_cosine_schedule_lowers_the_learning_rate_every_epoch_and_step_divides_it(small):
    cosine = train(small, tiny(epochs=4, lr=0.01, schedule="cosine"))
    lrs = [h["lr"] for h in cosine.history]
    assert lrs[0] == 0.01 and all(a > b for a, b in zip(lrs, lrs[1:]))
    step = train(small, tiny(epochs=4, lr=0.01, schedule="step"))
    assert [h["lr"] for h in step.history] == pytest.approx([0.01, 1e-3, 1e-4, 1e-5])


def test_a_diverging_run_is_a_clear_error(small):
    with pytest.raises(DtgError, match="training diverged"):
        train(small, tiny(optimizer="sgd", lr=1e12, epochs=2))


def test_shuffle_order_differs_per_epoch_and_is_fixed_by_the_seed(small):
    orders = [next(iter(small.batches("train", "reconstruct", 8, True, epoch_seed(4, e))))[0] for e in (0, 1, 0)]
    assert not torch.equal(orders[0], orders[1]) and torch.equal(orders[0], orders[2])


@pytest.mark.parametrize("key,value", [("epochs", 0), ("batch_size", -1), ("lr", -0.1), ("clip", -1.0),
                                       ("schedule", "warmup"), ("patience", 1.5)])
def test_invalid_settings_are_errors_naming_the_setting(key, value):
    with pytest.raises(DtgError) as err:
        TrainConfig(**{key: value}).check()
    assert err.value.field == key


def test_unknown_setting_is_an_error_naming_it():
    with pytest.raises(DtgError, match="unknown training setting 'epoch'") as err:
        TrainConfig.from_dict({"epoch": 3})
    assert err.value.field == "epoch"


@pytest.mark.parametrize("text,expected", [("all", 0), ("ALL", 0), ("32", 32), (1, 1)])
def test_batch_size_accepts_numbers_and_all(text, expected):
    assert parse_batch_size(text) == expected


def test_batch_size_rejects_other_words():
    with pytest.raises(DtgError, match="whole number or 'all'"):
        parse_batch_size("many")


@pytest.mark.parametrize("mode", ["bar", "lines"])
def test_progress_goes_to_stderr_and_never_to_stdout(small, capsys, mode):
    train(small, tiny(epochs=2), progress=mode)
    out, err = capsys.readouterr()
    assert out == ""
    assert "train" in err and "val" in err
    if mode == "lines":
        assert "epoch 1/2" in err and "epoch 2/2" in err
