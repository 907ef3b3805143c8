"""Losses by name and the argmax decision helper, against direct numpy formulas."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from dtg.errors import DtgError
from dtg.nn import losses

torch.set_num_threads(1)
D = torch.float64
finite = st.floats(-20, 20, allow_nan=False)


def _log_softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def test_registered_names():
    assert list(losses.LOSSES) == ["mse", "cross-entropy", "bce"]
    assert losses.get("cross_entropy") is losses.cross_entropy


def test_unknown_loss_is_a_dtg_error_listing_valid_names():
    with pytest.raises(DtgError) as err:
        losses.get("hinge")
    assert err.value.field == "loss" and str(err.value).endswith("(valid: mse, cross-entropy, bce)")


@settings(deadline=None, max_examples=30)
@given(hnp.arrays(np.float64, st.tuples(st.integers(1, 5), st.integers(1, 4)), elements=finite),
       hnp.arrays(np.float64, st.tuples(st.integers(1, 5), st.integers(1, 4)), elements=finite))
def test_mse_is_the_mean_of_squared_differences(a, b):
    b = np.resize(b, a.shape)
    got = losses.get("mse")(torch.tensor(a), torch.tensor(b)).item()
    assert got == pytest.approx(np.mean((a - b) ** 2), rel=1e-12, abs=1e-12)


@settings(deadline=None, max_examples=30)
@given(st.integers(1, 6), st.integers(2, 5), st.data())
def test_cross_entropy_of_logits_and_class_indices_is_mean_negative_log_softmax(n, c, data):
    z = data.draw(hnp.arrays(np.float64, (n, c), elements=finite))
    y = np.array(data.draw(st.lists(st.integers(0, c - 1), min_size=n, max_size=n)))
    got = losses.get("cross-entropy")(torch.tensor(z), torch.tensor(y)).item()
    assert got == pytest.approx(-np.mean(_log_softmax(z)[np.arange(n), y]), rel=1e-10, abs=1e-12)


def test_cross_entropy_accepts_one_hot_float_or_integer_and_class_probabilities():
    z = torch.randn(7, 4, dtype=D, generator=torch.Generator().manual_seed(0))
    y = torch.tensor([0, 3, 1, 1, 2, 0, 3])
    ce = losses.get("cross-entropy")
    by_index = ce(z, y)
    one_hot = torch.nn.functional.one_hot(y, 4)
    torch.testing.assert_close(ce(z, one_hot), by_index)
    torch.testing.assert_close(ce(z, one_hot.to(D)), by_index)
    probs = torch.full((7, 4), 0.25, dtype=D)
    expected = -np.mean(_log_softmax(z.numpy()).mean(axis=1))
    assert ce(z, probs).item() == pytest.approx(expected, rel=1e-12)


def test_cross_entropy_handles_a_time_axis_of_logits():
    z = torch.randn(3, 5, 4, dtype=D, generator=torch.Generator().manual_seed(1))
    y = torch.randint(0, 4, (3, 5), generator=torch.Generator().manual_seed(2))
    flat = losses.cross_entropy(z.reshape(15, 4), y.reshape(15))
    torch.testing.assert_close(losses.cross_entropy(z, y), flat)


def test_cross_entropy_rejects_a_target_of_neither_shape():
    with pytest.raises(ValueError, match="target shape"):
        losses.cross_entropy(torch.zeros(4, 3), torch.zeros(3, dtype=torch.long))


@settings(deadline=None, max_examples=30)
@given(hnp.arrays(np.float64, st.integers(1, 8), elements=st.floats(-30, 30)), st.data())
def test_bce_is_binary_cross_entropy_of_sigmoid_of_logits(z, data):
    y = np.array(data.draw(st.lists(st.sampled_from([0.0, 1.0]), min_size=len(z), max_size=len(z))))
    log_p, log_not_p = -np.logaddexp(0, -z), -np.logaddexp(0, z)  # log σ(z), log(1 - σ(z)), exactly
    expected = -np.mean(y * log_p + (1 - y) * log_not_p)
    got = losses.get("bce")(torch.tensor(z), torch.tensor(y)).item()
    assert got == pytest.approx(expected, rel=1e-10, abs=1e-12)


def test_bce_on_logits_stays_finite_for_confident_wrong_predictions():
    z = torch.tensor([200.0, -200.0], requires_grad=True)
    loss = losses.bce(z, torch.tensor([0.0, 1.0]))
    (g,) = torch.autograd.grad(loss, z)
    assert loss.item() == pytest.approx(200.0) and torch.isfinite(g).all()


def test_argmax_picks_the_most_probable_class_per_row():
    z = torch.tensor([[0.1, 2.0, -1.0], [3.0, 0.0, 2.9], [-5.0, -4.0, -3.0]])
    assert losses.argmax(z).tolist() == [1, 0, 2]
    assert torch.equal(losses.argmax(z), torch.softmax(z, dim=-1).argmax(dim=-1))
    assert losses.argmax(z, dim=0).tolist() == [1, 0, 1]
