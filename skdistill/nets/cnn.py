"""Convolutional classifier networks of the GPED paper, with width multipliers K1 and K2."""
from torch import nn

from .mlp import make_activation, scaled_widths

#: (conv channels, conv kernel size, fully connected widths) of the GPED base architectures.
CNN_ARCHITECTURES = {
    "mnist": ((10, 20), 4, (80,)),
    "cifar": ((16, 32), 5, (200, 50)),
}


class CNN(nn.Module):
    """Conv -> MaxPool blocks followed by fully connected layers, returning logits.

    Kernel and pooling sizes are clipped to the spatial size that reaches them, so any input
    of at least 1x1 pixels works; at 28x28 (MNIST) and 32x32 (CIFAR) the clipping never
    applies and the network is exactly the paper's.

    Parameters
    ----------
    input_shape : tuple of int
        ``(channels, height, width)``.
    n_outputs : int
    channels : sequence of int
        Output channels of each conv layer (already scaled by K1).
    kernel_size : int
    fc_sizes : sequence of int
        Hidden fully connected widths (already scaled by K2).
    activation : str
    dropout : float
    """

    def __init__(self, input_shape, n_outputs, channels=(10, 20), kernel_size=4,
                 fc_sizes=(80,), activation="relu", dropout=0.0):
        super().__init__()
        c, h, w = input_shape
        layers = []
        for out in channels:
            kh, kw = min(kernel_size, h), min(kernel_size, w)
            layers += [nn.Conv2d(c, out, (kh, kw)), make_activation(activation)]
            h, w = h - kh + 1, w - kw + 1
            ph, pw = min(2, h), min(2, w)
            layers.append(nn.MaxPool2d((ph, pw)))
            h, w, c = h // ph, w // pw, out
        layers.append(nn.Flatten())
        width = c * h * w
        for size in fc_sizes:
            layers += [nn.Linear(width, size), make_activation(activation)]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            width = size
        self.input_shape = tuple(input_shape)
        self.features = nn.Sequential(*layers)
        self.n_hidden_out = width
        self.head = nn.Linear(width, n_outputs)

    def forward(self, x):
        if x.dim() == 2:
            x = x.view(x.shape[0], *self.input_shape)
        elif x.dim() == 3:
            x = x.unsqueeze(1)
        return self.head(self.features(x))

    @classmethod
    def from_architecture(cls, name, input_shape, n_outputs, k1=1.0, k2=1.0, **kwargs):
        """Build a named GPED architecture with conv width multiplier ``k1`` and FC ``k2``."""
        channels, kernel, fc = CNN_ARCHITECTURES[name]
        return cls(input_shape, n_outputs, channels=scaled_widths(channels, k1),
                   kernel_size=kernel, fc_sizes=scaled_widths(fc, k2), **kwargs)
