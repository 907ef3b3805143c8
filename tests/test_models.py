"""Models: shapes match each target, options are checked, the forecaster is causal, window_errors' formula."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from dtg.errors import DtgError
from dtg.models import MODULES, build, model_class, names, window_errors
from dtg.models.base import objective

torch.set_num_threads(1)
WINDOW_MODELS = ["lstm-ae", "lstm-forecaster", "mlp-ae"]


@pytest.mark.parametrize("name", WINDOW_MODELS)
def test_every_model_maps_a_window_batch_to_its_target_shape(name):
    torch.manual_seed(0)
    model = build(name, n_features=4, size=20, hidden=8)
    y_hat = model(torch.rand(5, 20, 4))
    assert y_hat.shape == (5, 20, 4)
    assert model.target in ("reconstruct", "next")
    assert torch.isfinite(y_hat).all()


def test_model_targets_are_reconstruct_for_autoencoders_and_next_for_the_forecaster():
    assert model_class("lstm-ae").target == "reconstruct"
    assert model_class("mlp-ae").target == "reconstruct"
    assert model_class("lstm-forecaster").target == "next"


def test_registry_lists_the_three_window_models_and_builds_each_by_name():
    assert set(WINDOW_MODELS) <= set(names())
    for name in WINDOW_MODELS:
        assert type(build(name, 2, 5)).name == name
    assert set(names()) == set(MODULES)


@pytest.mark.parametrize("name", WINDOW_MODELS)
def test_options_set_the_architecture_and_round_trip_through_config_dict(name):
    model = build(name, 3, 10, hidden=12, layers=2, dropout=0.1, activation="elu")
    config = model.config_dict()
    assert (config["hidden"], config["layers"], config["dropout"], config["activation"]) == (12, 2, 0.1, "elu")
    again = build(name, 3, 10, **config)
    assert [p.shape for p in again.parameters()] == [p.shape for p in model.parameters()]


def test_lstm_ae_hidden_and_latent_sizes_are_used():
    model = build("lstm-ae", 4, 20, hidden=16, latent=3)
    assert model.encoder.hidden_size == 16
    assert model.to_latent.out_features == 3


def test_mlp_ae_is_a_bottleneck_of_the_given_latent_size():
    model = build("mlp-ae", 4, 20, hidden=32, layers=2, latent=5)
    assert model.net.sizes == (80, 32, 32, 5, 32, 32, 80)


def test_unknown_model_name_is_an_error_listing_the_valid_names():
    with pytest.raises(DtgError, match="unknown model 'gpt'.*lstm-ae") as err:
        build("gpt", 4, 20)
    assert err.value.field == "model"


def test_unknown_model_option_is_an_error_naming_the_option():
    with pytest.raises(DtgError, match="no option 'latent'") as err:
        build("lstm-forecaster", 4, 20, latent=4)
    assert err.value.field == "latent"


@pytest.mark.parametrize("key,value", [("hidden", 0), ("layers", -1), ("latent", 2.5), ("dropout", 1.0)])
def test_invalid_option_values_are_errors_naming_the_option(key, value):
    with pytest.raises(DtgError) as err:
        build("lstm-ae", 4, 20, **{key: value})
    assert err.value.field == key


def test_unknown_activation_is_an_error_naming_the_field():
    with pytest.raises(DtgError, match="unknown activation"):
        build("mlp-ae", 4, 20, activation="nope")


def test_forecaster_is_causal_step_t_does_not_see_later_seconds():
    torch.manual_seed(0)
    model = build("lstm-forecaster", 3, 12, hidden=8).eval()
    x = torch.rand(2, 12, 3)
    changed = x.clone()
    changed[:, 7:] = torch.rand(2, 5, 3)
    a, b = model(x), model(changed)
    assert torch.equal(a[:, :7], b[:, :7])
    assert not torch.allclose(a[:, 7:], b[:, 7:])


@settings(max_examples=40, deadline=None)
@given(arrays(np.float64, st.tuples(st.integers(1, 5), st.integers(1, 6), st.integers(1, 4)),
              elements=st.floats(-10, 10)), st.data())
def test_window_errors_is_mean_squared_error_over_time_per_feature_and_mean_over_features(y, data):
    y_hat = data.draw(arrays(np.float64, y.shape, elements=st.floats(-10, 10)))
    score, per_feature = window_errors(torch.from_numpy(y_hat), torch.from_numpy(y))
    b, t, f = y.shape
    expected = np.array([[sum((y_hat[i, s, k] - y[i, s, k]) ** 2 for s in range(t)) / t for k in range(f)]
                         for i in range(b)])
    np.testing.assert_allclose(per_feature.numpy(), expected, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(score.numpy(), expected.mean(axis=1), rtol=1e-9, atol=1e-12)
    assert (score.numpy() >= 0).all()
    np_score, np_feat = window_errors(y_hat, y)  # numpy arrays give the same numbers
    np.testing.assert_allclose(np_score, score.numpy())


def test_window_errors_are_zero_for_a_perfect_prediction():
    y = torch.rand(3, 20, 4)
    score, per_feature = window_errors(y.clone(), y)
    assert torch.count_nonzero(score) == 0 and torch.count_nonzero(per_feature) == 0


def test_cross_entropy_on_window_targets_trains_on_logits_and_predicts_their_sigmoid():
    loss_fn, output_fn = objective("cross-entropy", "reconstruct")
    logits, y = torch.tensor([[[0.0, 2.0]]]), torch.tensor([[[0.5, 1.0]]])
    assert torch.allclose(output_fn(logits), torch.sigmoid(logits))
    expected = torch.nn.functional.binary_cross_entropy(torch.sigmoid(logits), y)
    assert torch.allclose(loss_fn(logits, y), expected)
    mse_loss, identity = objective("mse", "next")
    assert identity(logits) is logits
    assert torch.allclose(mse_loss(logits, y), ((logits - y) ** 2).mean())


def test_unknown_loss_is_an_error_listing_the_valid_names():
    with pytest.raises(DtgError, match="unknown loss 'hinge'.*mse"):
        objective("hinge", "reconstruct")
