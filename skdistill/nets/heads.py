"""Several heads on one trunk: GPED's student network, one head per posterior expectation."""
import torch
import torch.nn.functional as F
from torch import nn


class LinearHead(nn.Module):
    """A linear layer with an output map: identity (logits), softplus (> 0) or sigmoid / 4.

    Parameters
    ----------
    n_in : int
        Width of the trunk's outputs.
    n_out : int
        Outputs of the head.
    output : {"identity", "softplus", "quarter_sigmoid"}, default="identity"
        The map applied to the linear outputs ``z``: ``z`` itself (logits), ``softplus(z)``
        (a positive quantity, e.g. an expected entropy) or ``sigmoid(z) / 4`` (in ``[0, 1/4]``,
        the range of a Bernoulli variance ``p (1 - p)``).

    Examples
    --------
    >>> import torch
    >>> from skdistill.nets import LinearHead
    >>> head = LinearHead(8, 3, output="quarter_sigmoid")
    >>> out = head(torch.randn(5, 8))
    >>> out.shape, bool(((out >= 0) & (out <= 0.25)).all())
    (torch.Size([5, 3]), True)
    """

    def __init__(self, n_in, n_out, output="identity"):
        super().__init__()
        self.linear = nn.Linear(n_in, n_out)
        self.output = output

    def forward(self, h):
        """The head's outputs for the trunk's outputs ``h``.

        Parameters
        ----------
        h : torch.Tensor of shape (n, n_in)
            The trunk's outputs.

        Returns
        -------
        out : torch.Tensor of shape (n, n_out)
            The linear outputs after the output map.
        """
        z = self.linear(h)
        if self.output == "softplus":
            return F.softplus(z)
        if self.output == "quarter_sigmoid":  # p (1 - p) lies in [0, 1/4]
            return 0.25 * torch.sigmoid(z)
        return z


class MultiHeadNet(nn.Module):
    """One shared trunk with several named heads; returns a dict of their outputs.

    Parameters
    ----------
    trunk : torch.nn.Module
        Maps an input batch to features, e.g. the ``features`` of a
        :class:`skdistill.base.TrunkHeadNet` (an :class:`MLP`, a :class:`CNN`).
    heads : dict of str to torch.nn.Module
        The heads, each mapping the trunk's outputs to its own outputs.

    Examples
    --------
    >>> import torch
    >>> from skdistill.nets import MLP, LinearHead, MultiHeadNet
    >>> net = MLP(4, 3, hidden_sizes=(8,))
    >>> multi = MultiHeadNet(net.features, {"predictive": LinearHead(net.n_hidden_out, 3),
    ...                                     "entropy": LinearHead(net.n_hidden_out, 1,
    ...                                                           "softplus")})
    >>> {name: tuple(out.shape) for name, out in multi(torch.randn(5, 4)).items()}
    {'predictive': (5, 3), 'entropy': (5, 1)}
    """

    def __init__(self, trunk, heads):
        super().__init__()
        self.trunk = trunk
        self.heads = nn.ModuleDict(heads)

    def forward(self, x):
        """Every head's outputs on the trunk's features of ``x``.

        Parameters
        ----------
        x : torch.Tensor
            An input batch, as the trunk takes it.

        Returns
        -------
        outputs : dict of str to torch.Tensor
            The outputs of each head, by name.
        """
        h = self.trunk(x)
        return {name: head(h) for name, head in self.heads.items()}


def head_expectation(value):
    """A head's output as the expectation it estimates: ``(n,)`` for a head one wide.

    Parameters
    ----------
    value : torch.Tensor of shape (n, k)
        A head's outputs.

    Returns
    -------
    expectation : torch.Tensor of shape (n,) or (n, k)
        ``value[:, 0]`` when ``k`` is 1, else ``value``.

    Examples
    --------
    >>> import torch
    >>> from skdistill.nets import head_expectation
    >>> head_expectation(torch.ones(4, 1)).shape, head_expectation(torch.ones(4, 3)).shape
    (torch.Size([4]), torch.Size([4, 3]))
    """
    return value[:, 0] if value.ndim == 2 and value.shape[1] == 1 else value
