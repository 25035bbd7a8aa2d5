"""BatchEnsemble layers (Wen et al. 2020) and their merge into one plain network (LatentBE).

A BatchEnsemble layer holds one shared weight ``W`` and, per member ``m``, rank-one factors
``r_m`` (input side) and ``s_m`` (output side) and a bias ``b_m``; member ``m`` computes
``((x * r_m) W^T) * s_m + b_m``, i.e. it uses the weight ``W * outer(s_m, r_m)``. The batch is
tiled over members: a layer sees ``(M * B, ...)`` rows, member ``m`` owning rows
``m * B .. (m + 1) * B - 1``.

:func:`merge_batch_ensemble` averages the members' weights, ``W * mean_m outer(s_m, r_m)``, and
their biases, ``mean_m b_m``, into the plain layer type (Nam et al. 2022, LatentBE). For one
linear layer the merged output is exactly the mean of the member outputs; for a deep network it
is close when the factors stay near one, which the Gaussian prior of :meth:`prior_penalty`
enforces.
"""
import copy

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import skip_init


class _BEMixin:
    """Shared by :class:`BELinear` and :class:`BEConv2d`: factor bookkeeping and merging."""

    def _init_factors(self, n_members, in_size, out_size, bias):
        self.n_members = int(n_members)
        like = dict(dtype=self.weight.dtype, device=self.weight.device)
        # Factors start at one, so every member starts as the shared layer.
        self.r = nn.Parameter(torch.ones(n_members, in_size, **like))
        self.s = nn.Parameter(torch.ones(n_members, out_size, **like))
        init = torch.zeros(out_size, **like) if bias is None else bias.detach().clone()
        self.bias = nn.Parameter(init.unsqueeze(0).repeat(n_members, 1))

    def _factor_shape(self, x):
        return (1,) * (x.dim() - 2)

    def forward(self, x):
        m = self.n_members
        if x.shape[0] % m:
            raise ValueError(f"{type(self).__name__} got {x.shape[0]} rows, not a multiple of "
                             f"n_members={m}; tile the batch over members first")
        xs = x.view(m, x.shape[0] // m, *x.shape[1:])
        extra = self._factor_shape(x)
        xs = xs * self.r.view(m, 1, -1, *extra)
        out = self._shared(xs.reshape(x.shape))
        out = out.view(m, x.shape[0] // m, *out.shape[1:])
        out = out * self.s.view(m, 1, -1, *extra) + self.bias.view(m, 1, -1, *extra)
        return out.reshape(x.shape[0], *out.shape[2:])

    def member_weights(self):
        """The weight of every member, ``W * outer(s_m, r_m)``: shape ``(M, *W.shape)``."""
        extra = (1,) * (self.weight.dim() - 2)
        outer = self.s[:, :, None] * self.r[:, None, :]
        return self.weight.unsqueeze(0) * outer.view(*outer.shape, *extra)

    def prior_penalty(self):
        """``sum (r - 1)^2 + sum (s - 1)^2``: minus the log of a unit Gaussian prior at one."""
        return ((self.r - 1) ** 2).sum() + ((self.s - 1) ** 2).sum()


class BELinear(_BEMixin, nn.Module):
    """BatchEnsemble version of :class:`torch.nn.Linear` with ``n_members`` rank-one members.

    Build it from an existing layer with :meth:`from_linear` (the shared weight and every
    member's bias start as that layer's).
    """

    def __init__(self, in_features, out_features, n_members):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.weight = nn.Parameter(torch.empty(out_features, in_features))
        nn.init.kaiming_uniform_(self.weight, a=5 ** 0.5)
        self._init_factors(n_members, in_features, out_features, None)

    @classmethod
    def from_linear(cls, layer, n_members):
        be = cls(layer.in_features, layer.out_features, n_members)
        be.weight = nn.Parameter(layer.weight.detach().clone())
        be._init_factors(n_members, layer.in_features, layer.out_features, layer.bias)
        return be

    def _shared(self, x):
        return F.linear(x, self.weight)

    def merged(self):
        """A plain :class:`torch.nn.Linear` with the members' mean weight and mean bias."""
        # skip_init: the weights are overwritten below, and drawing an initialisation would
        # move torch's global random state (merging must not change the caller's draws).
        layer = skip_init(nn.Linear, self.in_features, self.out_features,
                          device=self.weight.device, dtype=self.weight.dtype)
        with torch.no_grad():
            layer.weight.copy_(self.member_weights().mean(0))
            layer.bias.copy_(self.bias.mean(0))
        return layer

    def extra_repr(self):
        return f"{self.in_features}, {self.out_features}, n_members={self.n_members}"


class BEConv2d(_BEMixin, nn.Module):
    """BatchEnsemble version of :class:`torch.nn.Conv2d`: factors over input/output channels."""

    def __init__(self, conv, n_members):
        super().__init__()
        if conv.groups != 1:
            raise ValueError("BEConv2d supports groups=1 convolutions only")
        self.conv_kwargs = dict(stride=conv.stride, padding=conv.padding,
                                dilation=conv.dilation)
        self.in_channels, self.out_channels = conv.in_channels, conv.out_channels
        self.kernel_size = conv.kernel_size
        self.weight = nn.Parameter(conv.weight.detach().clone())
        self._init_factors(n_members, conv.in_channels, conv.out_channels, conv.bias)

    def _shared(self, x):
        return F.conv2d(x, self.weight, None, **self.conv_kwargs)

    def merged(self):
        """A plain :class:`torch.nn.Conv2d` with the members' mean weight and mean bias."""
        layer = skip_init(nn.Conv2d, self.in_channels, self.out_channels, self.kernel_size,
                          **self.conv_kwargs, device=self.weight.device,
                          dtype=self.weight.dtype)
        with torch.no_grad():
            layer.weight.copy_(self.member_weights().mean(0))
            layer.bias.copy_(self.bias.mean(0))
        return layer

    def extra_repr(self):
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"n_members={self.n_members}")


def _convert(module, n_members):
    for name, child in module.named_children():
        if isinstance(child, nn.Linear):
            setattr(module, name, BELinear.from_linear(child, n_members))
        elif isinstance(child, nn.Conv2d):
            setattr(module, name, BEConv2d(child, n_members))
        else:
            _convert(child, n_members)


def _merge(module):
    for name, child in module.named_children():
        if isinstance(child, (BELinear, BEConv2d)):
            setattr(module, name, child.merged())
        else:
            _merge(child)


class BatchEnsemble(nn.Module):
    """``n_members`` BatchEnsemble copies of a plain network, run on one tiled batch.

    Every :class:`torch.nn.Linear` and :class:`torch.nn.Conv2d` of ``network`` (an
    :class:`~skdistill.nets.MLP` or :class:`~skdistill.nets.CNN`, say) becomes a
    :class:`BELinear` / :class:`BEConv2d` initialised from it, so at creation every member
    equals ``network``. ``forward(x)`` with ``x`` of shape ``(B, ...)`` returns member logits
    of shape ``(M, B, C)``.

    Parameters
    ----------
    network : torch.nn.Module
        The plain architecture; it is deep-copied, not modified.
    n_members : int

    Examples
    --------
    >>> import torch
    >>> from skdistill.nets import MLP
    >>> from skdistill.nets.batch_ensemble import BatchEnsemble, merge_batch_ensemble
    >>> be = BatchEnsemble(MLP(5, 3, (8,)), n_members=4)
    >>> be(torch.randn(2, 5)).shape
    torch.Size([4, 2, 3])
    >>> type(merge_batch_ensemble(be)).__name__
    'MLP'
    """

    def __init__(self, network, n_members):
        super().__init__()
        if int(n_members) < 1:
            raise ValueError(f"n_members={n_members!r} is invalid; expected an int >= 1")
        self.n_members = int(n_members)
        self.network = copy.deepcopy(network)
        _convert(self.network, self.n_members)

    def forward(self, x):
        batch = x.shape[0]
        tiled = x.repeat(self.n_members, *([1] * (x.dim() - 1)))
        out = self.network(tiled)
        return out.view(self.n_members, batch, *out.shape[1:])

    def be_layers(self):
        """The BatchEnsemble layers, input to output."""
        return [m for m in self.network.modules() if isinstance(m, (BELinear, BEConv2d))]

    def prior_penalty(self):
        """Sum over layers of ``||r - 1||^2 + ||s - 1||^2`` (all members)."""
        return sum(layer.prior_penalty() for layer in self.be_layers())


def merge_batch_ensemble(ensemble):
    """One plain network with every BE layer replaced by its members' average (LatentBE).

    The result has the class and architecture of the network the ensemble was built from
    (an :class:`~skdistill.nets.MLP` stays an ``MLP``), so its parameter count, FLOPs and
    inference time are those of a single network. Weights: ``W * mean_m outer(s_m, r_m)``;
    biases: ``mean_m b_m``.
    """
    if not isinstance(ensemble, BatchEnsemble):
        raise TypeError(f"merge_batch_ensemble expects a BatchEnsemble, got "
                        f"{type(ensemble).__name__}")
    merged = copy.deepcopy(ensemble.network)
    _merge(merged)
    return merged.eval()


__all__ = ["BELinear", "BEConv2d", "BatchEnsemble", "merge_batch_ensemble"]
