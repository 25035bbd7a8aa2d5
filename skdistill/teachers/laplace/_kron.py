"""``hessian_structure="kron"``: Kronecker-factored (K-FAC) blocks of the posterior precision,
one per linear layer, accumulated from the network's activations and backpropagated factor
rows."""
import copy

import torch
from torch import nn

from ._base import HessianStructure


class UnsupportedLayer(ValueError):
    """A layer of the network that the Kronecker factorisation has no block for; the teacher
    turns it into the error that names its ``hessian_structure``."""


class KronPrecision:
    """A Kronecker-factored matrix ``blockdiag(B_l kron A_l, B_l) + prior I``.

    Per linear layer ``l`` (weight of shape ``(out, in)``): its weight's block ``B_l kron A_l``
    (``B_l`` of shape ``(out, out)`` over the output units, ``A_l`` of shape ``(in, in)``
    over the inputs, the weight taken row by row) and, if it has a bias, the bias's block
    ``B_l``. Blocks of different layers, and a layer's weight and bias, do not interact.
    Memory is ``sum_l in_l^2 + out_l^2`` floats, never ``P^2``.

    Attributes
    ----------
    layers : list of dict
        Per layer: ``"B"`` and ``"A"`` (float64 tensors), ``"weight"`` and ``"bias"`` (the
        offsets of the weight and the bias in the parameter vector; ``"bias"`` is None for a
        layer without one) and ``"name"`` (the layer's name in the network).
    prior : float
        ``prior``, added to the diagonal.
    n_params : int
        ``P``, the size of the matrix.

    Examples
    --------
    >>> import torch
    >>> from skdistill.teachers.laplace import KronPrecision
    >>> layer = {"name": "head", "weight": 0, "bias": 2, "B": torch.eye(1, dtype=torch.float64),
    ...          "A": torch.tensor([[2.0, 1.0], [1.0, 2.0]], dtype=torch.float64)}
    >>> KronPrecision([layer], 0.5, 3).to_dense()
    tensor([[2.5000, 1.0000, 0.0000],
            [1.0000, 2.5000, 0.0000],
            [0.0000, 0.0000, 1.5000]], dtype=torch.float64)
    """

    def __init__(self, layers, prior, n_params):
        self.layers, self.prior, self.n_params = layers, float(prior), n_params

    @property
    def shape(self):
        """``(n_params, n_params)``, the shape of the matrix it stands for."""
        return torch.Size((self.n_params, self.n_params))

    @property
    def device(self):
        """The device of the factors."""
        return self.layers[0]["A"].device

    @property
    def dtype(self):
        """float64, the type of the factors."""
        return torch.float64

    def add_diagonal(self, value):
        """The matrix plus ``value I``: the same factors, a prior larger by ``value``."""
        return KronPrecision(self.layers, self.prior + value, self.n_params)

    def to_dense(self):
        """The ``(n_params, n_params)`` matrix, float64 (for small networks: ``P^2`` floats)."""
        dense = torch.zeros(self.shape, dtype=torch.float64, device=self.device)
        for layer in self.layers:
            B, A = layer["B"], layer["A"]
            w = slice(layer["weight"], layer["weight"] + B.shape[0] * A.shape[0])
            dense[w, w] = torch.kron(B, A)
            if layer["bias"] is not None:
                b = slice(layer["bias"], layer["bias"] + B.shape[0])
                dense[b, b] = B
        dense.diagonal().add_(self.prior)
        return dense

    def __repr__(self):
        shapes = ", ".join(f"{tuple(layer['B'].shape)} x {tuple(layer['A'].shape)}"
                           for layer in self.layers)
        return f"KronPrecision(n_params={self.n_params}, prior={self.prior:g}, blocks=[{shapes}])"


def linear_layers(module):
    """The linear layers of ``module`` with their offsets in ``parameters_to_vector`` order:
    ``[(name, layer, weight_offset, bias_offset or None)]``; :class:`UnsupportedLayer` for a
    module with parameters of its own that is not an :class:`torch.nn.Linear`."""
    offsets, start = {}, 0
    for p in module.parameters():
        offsets[id(p)] = start
        start += p.numel()
    layers = []
    for name, sub in module.named_modules():
        if not list(sub.parameters(recurse=False)):
            continue
        if type(sub) is not nn.Linear:
            shown = name or "the network"
            raise UnsupportedLayer(f"{shown} ({type(sub).__name__})")
        bias = None if sub.bias is None else offsets[id(sub.bias)]
        layers.append((name, sub, offsets[id(sub.weight)], bias))
    return layers


class KronHessian(HessianStructure):
    """Kronecker-factored approximate curvature (K-FAC) of the GGN: one block per linear
    layer, ``B kron A`` for its weight and ``B`` for its bias (Martens & Grosse 2015).

    For a layer with inputs ``a_n`` (``in``) and the backpropagated factor rows ``g_nc``
    (``out``: the gradient at the layer's output of ``sqrt(p_c) (e_c - p)^T f``, whose outer
    products summed over the classes ``c`` give the GGN),
    ``A = sum_n w_n a_n a_n^T / sum_n w_n`` and ``B = sum_n w_n sum_c g_nc g_nc^T``. The
    exact GGN block of the weight is ``sum_n w_n (sum_c g_nc g_nc^T) kron a_n a_n^T``: K-FAC
    replaces the mean of a product by the product of the means, exact for one row; the bias's
    block ``B`` is exact. Blocks of different layers, and of a layer's weight and bias, are
    dropped.

    The factors are accumulated from the network (:attr:`from_network`), never from the
    ``(b, C, P)`` Jacobians: memory is ``sum_l in_l^2 + out_l^2`` floats. With the
    eigendecompositions ``A = Q_A diag(e_A) Q_A^T``, ``B = Q_B diag(e_B) Q_B^T``, the block of
    ``H`` is ``(Q_B kron Q_A) diag(e_B kron e_A + lambda) (Q_B kron Q_A)^T``: a draw is
    ``Q_B (Z / sqrt(e_B e_A^T + lambda)) Q_A^T`` for a standard normal ``(out, in)`` matrix
    ``Z``, and ``log det H`` is ``sum log(e_B e_A^T + lambda)`` over the blocks, at any
    ``lambda``.

    Parameters
    ----------
    n_params : int
        Parameters with a posterior: those of ``module``.
    device : torch.device
        Where the factors are accumulated and kept.
    module : torch.nn.Module
        The network whose parameters have a posterior; the modules with parameters must be
        :class:`torch.nn.Linear` layers taking ``(b, in)`` inputs (:class:`UnsupportedLayer`
        names another).

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from skdistill.teachers.laplace import KronHessian
    >>> net = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2)).double()
    >>> H = KronHessian(26, torch.device("cpu"), module=net)
    >>> x = torch.randn(5, 3, dtype=torch.float64)
    >>> H.accumulate_network(x, torch.softmax(net(x), 1).detach())
    >>> H.set_prior(1.0)
    >>> H.precision
    KronPrecision(n_params=26, prior=1, blocks=[(4, 4) x (3, 3), (2, 2) x (4, 4)])
    >>> H.precision.to_dense().shape
    torch.Size([26, 26])
    """

    name = "kron"
    from_network = True

    def __init__(self, n_params, device, module=None):
        if module is None:
            raise TypeError("KronHessian accumulates from a network: give its module")
        self._layers = linear_layers(module)
        self._module = module
        self._device = device
        super().__init__(n_params, device, module)
        self._total = 0.0
        self._eig = None

    def zeros(self, n_params, device):
        """Zero factors, one pair per linear layer."""
        layers = [{"name": name, "weight": w, "bias": b,
                   "B": torch.zeros((layer.out_features,) * 2, dtype=torch.float64,
                                    device=device),
                   "A": torch.zeros((layer.in_features,) * 2, dtype=torch.float64,
                                    device=device)}
                  for name, layer, w, b in self._layers]
        return KronPrecision(layers, 0.0, n_params)

    def accumulate(self, G):
        """Not available: the factors come from the network (:meth:`accumulate_network`)."""
        raise NotImplementedError("KronHessian accumulates from the network, not from "
                                  "factor rows: use accumulate_network")

    def batch_rows(self, n_classes):
        """Rows per call of :meth:`accumulate_network` for about 2**23 floats of activations
        and backpropagated rows."""
        width = sum(layer.in_features + layer.out_features for _, layer, _, _ in self._layers)
        return max(1, 2**23 // (max(1, n_classes) * width))

    def accumulate_network(self, inputs, p, weight=None):
        """Add a batch of rows to the factors.

        Parameters
        ----------
        inputs : torch.Tensor
            What the module takes, a batch of ``b`` rows.
        p : torch.Tensor
            ``(b, C)`` softmax probabilities of the rows at the MAP.
        weight : torch.Tensor, default=None
            ``(b,)`` row weights (None: ones).
        """
        net = copy.deepcopy(self._module).double().requires_grad_(True)
        layers = dict(net.named_modules())
        seen = {}

        def hook(name):
            def keep(module, args, output):
                seen[name] = (args[0], output)
            return keep

        handles = [layers[name].register_forward_hook(hook(name)) for name, *_ in self._layers]
        try:
            with torch.enable_grad():
                f = net(inputs.detach().double())
        finally:
            for handle in handles:
                handle.remove()
        p = p.detach().double().to(f.device)
        w = (torch.ones(len(p), dtype=torch.float64, device=f.device) if weight is None
             else weight.detach().double().to(f.device))
        for name, *_ in self._layers:
            if seen[name][0].dim() != 2:
                raise UnsupportedLayer(f"{name or 'the network'} (nn.Linear on inputs of "
                                       f"{seen[name][0].dim()} dimensions)")
        outputs = [seen[name][1] for name, *_ in self._layers]
        C = p.shape[1]
        eye = torch.eye(C, dtype=torch.float64, device=f.device)
        root_w = w.sqrt()
        B_new = [torch.zeros_like(layer["B"]) for layer in self.ggn.layers]
        for c in range(C):
            # factor row c of each row: sqrt(w) sqrt(p_c) (e_c - p)^T, at the logits
            v = (root_w * p[:, c].sqrt())[:, None] * (eye[c] - p)
            grads = torch.autograd.grad(f, outputs, grad_outputs=v, retain_graph=c < C - 1)
            for acc, g in zip(B_new, grads):
                acc.addmm_(g.T, g)
        total = self._total + float(w.sum())
        for layer, acc, (name, *_) in zip(self.ggn.layers, B_new, self._layers):
            a = seen[name][0].detach()
            layer["B"] += acc
            if total > 0:  # the weighted mean of a a^T over all rows so far
                layer["A"].mul_(self._total / total).addmm_((a * (w / total)[:, None]).T, a)
        self._total = total
        self._eig = None

    def add_diagonal(self, matrix, value):
        """``matrix + value I``: the same factors, a prior larger by ``value``."""
        return matrix.add_diagonal(value)

    def _eigen(self):
        """Per layer, the eigenvalues (clamped at 0) and eigenvectors of ``B`` and ``A``."""
        if self._eig is None:
            factors = self.curvature().layers
            self._eig = []
            for layer in factors:
                e_B, Q_B = torch.linalg.eigh(layer["B"])
                e_A, Q_A = torch.linalg.eigh(layer["A"])
                self._eig.append((e_B.clamp_min(0), Q_B, e_A.clamp_min(0), Q_A))
        return self._eig

    def set_prior(self, prior_precision):
        """Set :attr:`precision` to the factors with ``prior_precision`` and factorise."""
        super().set_prior(prior_precision)
        self._module = None  # accumulated: the network is not needed any more

    def factorise(self):
        """The eigendecompositions of the factors (positive definite: ``lambda > 0``)."""
        self._eigen()

    def log_det(self, prior_precision):
        """``sum log(e_B e_A^T + lambda)`` over the weights' blocks, ``sum log(e_B + lambda)``
        over the biases'."""
        total = 0.0
        for (e_B, _, e_A, _), layer in zip(self._eigen(), self.curvature().layers):
            total += float(torch.log(torch.outer(e_B, e_A) + prior_precision).sum())
            if layer["bias"] is not None:
                total += float(torch.log(e_B + prior_precision).sum())
        return total

    def sample(self, z):
        """Per block ``Q_B (Z / sqrt(e_B e_A^T + lambda)) Q_A^T`` (``Q_B (z / sqrt(e_B +
        lambda))`` for a bias), ``Z`` the block's draws as ``(out, in)`` matrices."""
        lam = self.prior_precision
        out = torch.empty_like(z)
        for (e_B, Q_B, e_A, Q_A), layer in zip(self._eigen(), self.precision.layers):
            n_out, n_in = len(e_B), len(e_A)
            w = slice(layer["weight"], layer["weight"] + n_out * n_in)
            Z = z[:, w].reshape(-1, n_out, n_in) / (torch.outer(e_B, e_A) + lam).sqrt()
            out[:, w] = (Q_B @ Z @ Q_A.T).reshape(len(z), -1)
            if layer["bias"] is not None:
                b = slice(layer["bias"], layer["bias"] + n_out)
                out[:, b] = (z[:, b] / (e_B + lam).sqrt()) @ Q_B.T
        return out

    def functional_variance(self, J):
        """``diag(J_n H^-1 J_n^T)``: per block, ``J``'s columns rotated to the eigenbasis,
        squared and divided by the eigenvalues."""
        lam = self.prior_precision
        var = torch.zeros(J.shape[:2], dtype=J.dtype, device=J.device)
        for (e_B, Q_B, e_A, Q_A), layer in zip(self._eigen(), self.precision.layers):
            n_out, n_in = len(e_B), len(e_A)
            w = slice(layer["weight"], layer["weight"] + n_out * n_in)
            R = Q_B.T @ J[:, :, w].reshape(*J.shape[:2], n_out, n_in) @ Q_A
            var += (R.square() / (torch.outer(e_B, e_A) + lam)).sum(dim=(2, 3))
            if layer["bias"] is not None:
                b = slice(layer["bias"], layer["bias"] + n_out)
                var += ((J[:, :, b] @ Q_B).square() / (e_B + lam)).sum(dim=2)
        return var
