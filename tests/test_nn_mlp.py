"""The MLP builder: layer layout, per-layer activations, dropout, validation, and that it learns."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from dtg.errors import DtgError
from dtg.nn import MLP, losses, optimizers, registry
from dtg.nn.activations import SoftExponential

torch.set_num_threads(1)


def test_layers_are_linear_activation_dropout_per_hidden_layer_then_output_activation():
    m = MLP([4, 8, 6, 2], activation="tanh", dropout=0.2, out_activation="sigmoid")
    kinds = [type(layer) for layer in m]
    assert kinds == [nn.Linear, nn.Tanh, nn.Dropout, nn.Linear, nn.Tanh, nn.Dropout, nn.Linear, nn.Sigmoid]
    assert [(l.in_features, l.out_features) for l in m if isinstance(l, nn.Linear)] == [(4, 8), (8, 6), (6, 2)]
    assert m(torch.zeros(5, 4)).shape == (5, 2)


def test_no_dropout_layers_and_a_linear_output_by_default():
    kinds = [type(layer) for layer in MLP([3, 5, 1])]
    assert kinds == [nn.Linear, nn.ReLU, nn.Linear]


def test_each_hidden_layer_gets_its_own_trainable_activation():
    m = MLP([2, 4, 4, 1], activation="softexponential", activation_kw={"alpha": 0.1})
    acts = [layer for layer in m if isinstance(layer, SoftExponential)]
    assert len(acts) == 2 and acts[0].alpha is not acts[1].alpha
    assert acts[0].alpha.item() == pytest.approx(0.1)
    assert sum(p.numel() for p in m.parameters()) == (2 * 4 + 4) + (4 * 4 + 4) + (4 + 1) + 2


def test_dropout_is_active_in_training_and_off_in_eval():
    torch.manual_seed(0)
    m = MLP([16, 64, 16], dropout=0.5)
    x = torch.randn(8, 16)
    m.eval()
    assert torch.equal(m(x), m(x))
    m.train()
    assert not torch.equal(m(x), m(x))


@pytest.mark.parametrize("kw,field", [({"sizes": [4]}, "sizes"), ({"sizes": [4, 0, 2]}, "sizes"),
                                      ({"sizes": [4, 2.5]}, "sizes"), ({"sizes": [4, 2], "dropout": 1.0}, "dropout"),
                                      ({"sizes": [4, 2], "activation": "gelu"}, "activation"),
                                      ({"sizes": [4, 2], "out_activation": "softmax"}, "activation")])
def test_invalid_configuration_is_a_dtg_error_naming_the_field(kw, field):
    with pytest.raises(DtgError) as err:
        MLP(**kw)
    assert err.value.field == field


def test_an_mlp_built_by_names_learns_xor():
    torch.manual_seed(0)
    x = torch.tensor([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    y = torch.tensor([0, 1, 1, 0])
    m = MLP([2, 16, 2], activation="tanh")
    opt = optimizers.build("adam", m.parameters(), lr=0.05)
    loss_fn = losses.get("cross-entropy")
    for _ in range(300):
        opt.zero_grad()
        loss = loss_fn(m(x), y)
        loss.backward()
        opt.step()
    assert losses.argmax(m(x)).tolist() == [0, 1, 1, 0]
    assert loss.item() < 0.05


def test_registry_lists_every_name_by_kind():
    assert registry.names() == {
        "activation": ["sigmoid", "tanh", "relu", "leaky_relu", "elu", "softexponential", "swish"],
        "optimizer": ["sgd", "momentum", "nag", "adagrad", "adadelta", "rmsprop", "adam", "adamax", "nadam"],
        "loss": ["mse", "cross-entropy", "bce"],
    }


def test_registry_lookup_rejects_a_non_string_name_clearly():
    with pytest.raises(DtgError, match="optimizer name must be a string"):
        optimizers.build(3, [torch.zeros(1, requires_grad=True)])
