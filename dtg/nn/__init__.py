"""The shared neural-network core every dtg model is built from, selectable by config name.

- `dtg.nn.activations.get(name, **kw)` — sigmoid, tanh, relu, leaky_relu, elu, softexponential, swish
- `dtg.nn.optimizers.build(name, params, lr=None, **hp)` — sgd, momentum, nag, adagrad, adadelta, rmsprop,
  adam, adamax, nadam (`DEFAULTS[name]` holds each default)
- `dtg.nn.losses.get(name)` — mse, cross-entropy, bce (on logits); `losses.argmax` decides a class
- `dtg.nn.mlp.MLP(sizes, activation, dropout, out_activation)`
- `dtg.nn.registry.names()` — every valid name by kind

Importing `dtg.nn` imports torch; CLI modules import it inside their commands.
"""

from dtg.nn import activations, losses, optimizers, registry
from dtg.nn.mlp import MLP

__all__ = ["MLP", "activations", "losses", "optimizers", "registry"]
