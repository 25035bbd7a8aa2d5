"""Fully connected classifier network with width multipliers."""
import math
from numbers import Real

from torch import nn

ACTIVATIONS = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "gelu": nn.GELU,
    "elu": nn.ELU,
    "leaky_relu": nn.LeakyReLU,
    "identity": nn.Identity,
}


def make_activation(name):
    """Return a fresh activation module for ``name`` (one of ``ACTIVATIONS``)."""
    try:
        return ACTIVATIONS[name]()
    except KeyError:
        raise ValueError(
            f"activation={name!r} is not supported; use one of {sorted(ACTIVATIONS)}"
        ) from None


def scaled_widths(sizes, width_multiplier):
    """Widths ``floor(size * k)`` (at least 1) for a float ``k`` or one ``k`` per layer.

    >>> scaled_widths((100, 50), 0.25)
    [25, 12]
    >>> scaled_widths((100, 50), [2, 0.01])
    [200, 1]
    """
    sizes = list(sizes)
    if isinstance(width_multiplier, Real):
        mults = [float(width_multiplier)] * len(sizes)
    else:
        mults = [float(m) for m in width_multiplier]
        if len(mults) != len(sizes):
            raise ValueError(
                f"width_multiplier has {len(mults)} values but there are {len(sizes)} "
                "layers to scale; give one float or one value per layer"
            )
    return [max(1, int(math.floor(s * m + 1e-9))) for s, m in zip(sizes, mults)]


class MLP(nn.Module):
    """Multi-layer perceptron returning logits.

    Parameters
    ----------
    n_features : int
    n_outputs : int
    hidden_sizes : sequence of int
        Widths of the hidden layers (already scaled).
    activation : str
    dropout : float
        Dropout probability after each hidden activation.
    """

    def __init__(self, n_features, n_outputs, hidden_sizes=(100,), activation="relu",
                 dropout=0.0):
        super().__init__()
        layers = []
        width = n_features
        for size in hidden_sizes:
            layers += [nn.Linear(width, size), make_activation(activation)]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            width = size
        self.features = nn.Sequential(nn.Flatten(), *layers)
        self.n_hidden_out = width
        self.head = nn.Linear(width, n_outputs)

    def forward(self, x):
        return self.head(self.features(x))
