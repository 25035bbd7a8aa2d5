"""Mean-field Gaussian layers (Bayes by backprop) with the local reparameterisation trick."""
import math

import torch
import torch.nn.functional as F
from torch import nn

from .mlp import make_activation


class BayesLinear(nn.Module):
    """A linear layer with an independent Gaussian ``N(mu, softplus(rho)^2)`` on each weight.

    Called on a batch it draws the pre-activations, not the weights (local
    reparameterisation, Kingma et al. 2015): ``x mu_W^T + mu_b + sqrt(x^2 s_W^2 + s_b^2) eps``
    with one ``eps`` per row and unit, which has the distribution of ``x W^T + b`` under
    ``W, b ~ q`` and a lower-variance gradient than one weight draw per batch. Called with
    ``weights=(W, b)`` (from :meth:`sample`) it is the deterministic layer of that draw.

    Parameters
    ----------
    n_in, n_out : int
    init_std : float, default=1e-2
        Standard deviation of ``q`` at initialisation; the means are initialised as
        ``torch.nn.Linear``'s weights.
    """

    def __init__(self, n_in, n_out, init_std=1e-2):
        super().__init__()
        self.weight_mu = nn.Parameter(torch.empty(n_out, n_in))
        self.weight_rho = nn.Parameter(torch.empty(n_out, n_in))
        self.bias_mu = nn.Parameter(torch.empty(n_out))
        self.bias_rho = nn.Parameter(torch.empty(n_out))
        self.init_std = init_std
        self.reset_parameters()

    def reset_parameters(self):
        nn.init.kaiming_uniform_(self.weight_mu, a=math.sqrt(5))
        bound = 1 / math.sqrt(self.weight_mu.shape[1]) if self.weight_mu.shape[1] else 0.0
        nn.init.uniform_(self.bias_mu, -bound, bound)
        rho = math.log(math.expm1(self.init_std))  # softplus(rho) = init_std
        nn.init.constant_(self.weight_rho, rho)
        nn.init.constant_(self.bias_rho, rho)

    def stds(self):
        """Standard deviations ``(s_W, s_b)`` of ``q``."""
        return F.softplus(self.weight_rho), F.softplus(self.bias_rho)

    def forward(self, x, weights=None):
        if weights is not None:
            return F.linear(x, *weights)
        w_std, b_std = self.stds()
        mean = F.linear(x, self.weight_mu, self.bias_mu)
        var = F.linear(x.square(), w_std.square(), b_std.square())
        return mean + var.sqrt() * torch.randn_like(mean)

    def sample(self, generator):
        """One draw ``(W, b)`` of ``q``; the noise comes from ``generator`` (on the CPU)."""
        w_std, b_std = self.stds()
        eps_w = torch.randn(self.weight_mu.shape, generator=generator)
        eps_b = torch.randn(self.bias_mu.shape, generator=generator)
        return (self.weight_mu + w_std * eps_w.to(w_std.device),
                self.bias_mu + b_std * eps_b.to(b_std.device))

    def kl(self, prior_precision):
        """``KL(q || N(0, 1/prior_precision))`` summed over the layer's parameters."""
        total = 0.0
        for mu, std in zip((self.weight_mu, self.bias_mu), self.stds()):
            var = std.square()
            total = total + 0.5 * (prior_precision * (var + mu.square()) - 1.0
                                   - torch.log(prior_precision * var)).sum()
        return total


class BayesMLP(nn.Module):
    """A fully connected network of :class:`BayesLinear` layers, returning logits.

    ``forward(x)`` draws the pre-activations (local reparameterisation); ``forward(x,
    weights)`` runs the draw ``weights = sample(generator)`` of every layer.
    """

    def __init__(self, n_features, n_outputs, hidden_sizes=(100,), activation="relu",
                 init_std=1e-2):
        super().__init__()
        widths = [n_features, *hidden_sizes, n_outputs]
        self.flatten = nn.Flatten()
        self.layers = nn.ModuleList(BayesLinear(a, b, init_std)
                                    for a, b in zip(widths[:-1], widths[1:]))
        self.activation = make_activation(activation)

    def forward(self, x, weights=None):
        h = self.flatten(x)
        last = len(self.layers) - 1
        for i, layer in enumerate(self.layers):
            h = layer(h, None if weights is None else weights[i])
            if i < last:
                h = self.activation(h)
        return h

    def sample(self, generator):
        """One draw of all the weights (a list of ``(W, b)``, one per layer)."""
        return [layer.sample(generator) for layer in self.layers]

    def kl(self, prior_precision):
        """``KL(q || prior)`` over all the weights."""
        return sum(layer.kl(prior_precision) for layer in self.layers)
