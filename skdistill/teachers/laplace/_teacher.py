"""LaplaceTeacher: a network made Bayesian by a Laplace approximation around its MAP.

The form of the posterior precision is the :class:`~._base.HessianStructure` that
``STRUCTURES`` names for ``hessian_structure``; nothing here depends on which.
"""
import contextlib
import copy
import math
import numbers
import threading

import numpy as np
import torch
import torch.nn.functional as F
from scipy.optimize import minimize_scalar
from sklearn.base import BaseEstimator, ClassifierMixin, MetaEstimatorMixin
from sklearn.frozen import FrozenEstimator
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.validation import check_is_fitted
from torch import nn
from torch.func import functional_call, jacrev, jvp, vmap

from ..._devices import DeviceFallbackMixin
from ..._interrupt import FitPolicyMixin, fit_policy
from ..._random import draw_seed
from ..._validation import (StrictParamsMixin, check_device, check_input, check_sample_weight,
                            encode_labels, is_number, param_error)
from ...engine import Objective, dense_chunks, limit_threads, weighted_rows
from .._network import check_network_estimator, clone_network
from .._posterior import SampledPosteriorMixin
from ._base import NotPositiveDefinite
from ._full import cholesky
from ._kron import UnsupportedLayer
from ._registry import STRUCTURES

#: Prior precision of the MAP fit when ``prior_precision="marglik"`` (tuned post hoc).
MARGLIK_MAP_PRECISION = 1.0
#: Search interval of ``prior_precision="marglik"``.
MARGLIK_BOUNDS = (1e-6, 1e6)
# Floats in one batch of Jacobians (rows x classes x parameters): 32 MB.
_JACOBIAN_FLOATS = 2**23
# torch.func's transforms (vmap, jacrev, jvp) enter levels kept by the process, not by the
# thread (forward AD's dual levels, functorch's interpreter stack): two at once in different
# threads corrupt each other (wrong numbers, or an error inside torch). Every use here holds
# this lock, whichever teacher it is for.
_TORCH_FUNC_LOCK = threading.Lock()


def _private_copy(module):
    """A copy of ``module`` for ``functional_call``, which swaps the parameters it is given
    into the module while it runs: another thread's forward pass of the teacher's own network
    would run with them."""
    return copy.deepcopy(module)


class LaplaceSample:
    """One posterior sample of a :class:`LaplaceTeacher`: ``sample(X) -> probabilities``.

    The linearised network ``f(x, theta_MAP) + J(x) delta`` (the GLM predictive) at a draw
    ``delta`` of the Laplace posterior; ``X`` is a float32 batch, the result a ``(n, C)``
    tensor on the teacher's device.
    """

    def __init__(self, teacher, delta):
        self.teacher, self.delta = teacher, delta

    def __call__(self, X):
        teacher = self.teacher
        with torch.no_grad():
            inputs = teacher._inputs(X.to(teacher.device))
            return torch.softmax(teacher._glm_logits(inputs, self.delta[None])[0], dim=-1)


class _WithSquaredNorm(nn.Module):
    """A network's logits together with the squared norm of all its parameters."""

    def __init__(self, network):
        super().__init__()
        self.network = network

    def forward(self, x):
        return {"logits": self.network(x), "sq_norm": self.sq_norm()}

    def sq_norm(self):
        return sum(p.square().sum() for p in self.network.parameters())


class _PenalisedCrossEntropy(nn.Module):
    """Per row: ``-log p(y|x) + penalty * ||theta||^2``. Its (weighted) mean over the data is
    ``-log posterior / W`` for ``penalty = prior_precision / (2 W)``, ``W`` the total weight."""

    def __init__(self, penalty):
        super().__init__()
        self.penalty = penalty

    def forward(self, outputs, y):
        return (F.cross_entropy(outputs["logits"], y, reduction="none")
                + self.penalty * outputs["sq_norm"])


class _MAPObjective(Objective):
    """Train a student to the MAP under the Gaussian prior ``N(0, 1 / prior_precision)``;
    ``label`` names the prior precision when its term swamps the data."""

    def __init__(self, penalty, label):
        super().__init__(_PenalisedCrossEntropy(penalty), fields=("y",))
        self.label = label

    def penalties(self, module):
        return {self.label: self.loss.penalty * module.sq_norm()}

    def build(self, module):
        return _WithSquaredNorm(module)

    def deploy(self, module):
        return module.network


class LaplaceTeacher(StrictParamsMixin, DeviceFallbackMixin, SampledPosteriorMixin, FitPolicyMixin,
                     ClassifierMixin, MetaEstimatorMixin, BaseEstimator):
    """Laplace approximation of a network's posterior: a Gaussian around its MAP.

    The network ``estimator`` is trained to the maximum a posteriori (MAP) parameters
    ``theta*`` under the prior ``N(0, 1/prior_precision I)`` on all its parameters; the
    posterior over ``subset_of_weights`` is then approximated by ``N(theta*, H^-1)`` with
    ``H = GGN + prior_precision I``, where the generalised Gauss-Newton matrix
    ``GGN = sum_n J_n^T (diag(p_n) - p_n p_n^T) J_n`` (``J_n`` the Jacobian of the logits in
    the parameters, ``p_n`` the softmax at ``theta*``) is the Hessian of the negative
    log-likelihood for the softmax cross-entropy up to the second-order term of the network
    (exact for a linear model), computed in batches of rows. The other parameters stay at
    their MAP values.

    The predictive is that of the linearised network (the GLM predictive of Immer et al.,
    the default of laplace-torch): under ``delta ~ N(0, H^-1)`` the logits are
    ``f(x, theta*) + J(x) delta``. ``link_approx="mc"`` averages the softmax over
    ``n_samples`` draws of ``delta`` (for the last layer this is the network with the
    sampled last layer, exactly; for all weights a forward-mode Jacobian-vector product per
    draw); ``link_approx="probit"`` uses the multiclass probit approximation
    ``softmax(f / sqrt(1 + pi/8 diag(J H^-1 J^T)))``, which treats the logits as independent
    (the variance of their common shift, which the softmax ignores, flattens it too: expect it
    more cautious than ``"mc"``). Whatever ``link_approx``, :meth:`sample_proba`,
    :meth:`predict_expectation`, :meth:`predict_uncertainty` and :meth:`iter_samples` use the
    same ``n_samples`` Monte Carlo draws, seeded by ``random_state``.

    Ctrl-C during ``fit`` leaves the teacher unfitted (with a warning) and stops the script:
    the approximation is taken at the MAP, which an interrupted training has not reached. To
    stop the training by hand, fit the student alone (its Ctrl-C keeps the epochs done) and
    give it frozen as ``estimator``.

    Read more in ``doc/bayesian_teachers.md``.

    Parameters
    ----------
    estimator : skdistill student or FrozenEstimator, default=None
        The network. LatentBE students (several members) are refused with a ``TypeError``.
        An unfitted skdistill student (``MLPStudent``, ``CNNStudent``) is
        cloned and trained to the MAP with its own settings (``max_epochs``, ``lr``,
        ``optimizer``, ...): the prior enters its loss exactly, as
        ``prior_precision / (2 W) * ||theta||^2`` added to the mean cross-entropy (``W`` the
        number of rows, or the sum of ``sample_weight``), so that its minimum is the MAP of
        the summed log-likelihood; its ``weight_decay`` must be 0 (the prior takes its place),
        and its ``max_epochs`` enough to converge (the approximation assumes a mode).
        A fitted student wrapped in :class:`sklearn.frozen.FrozenEstimator` is used as it is,
        as the MAP. ``None`` means ``MLPStudent()``.
    subset_of_weights : {"last_layer", "all"}, default="last_layer"
        The parameters given a posterior: the linear ``head`` of the network (``features``
        then ``head``, as skdistill's networks are) or all of them.
    hessian_structure : {"full", "diag", "kron"}, default="full"
        ``"full"`` (at most ``MAX_FULL_PARAMS`` = 8192 parameters: the last layer, or all
        weights of a small network), ``"diag"`` (its diagonal, any size) or ``"kron"``
        (K-FAC: per linear layer ``B kron A``, ``A`` the ``(in, in)`` mean outer product of
        the layer's inputs and ``B`` the ``(out, out)`` sum of those of the backpropagated
        GGN factor rows, and ``B`` for the bias; the blocks between layers are dropped;
        memory ``sum in^2 + out^2``, for large networks of ``nn.Linear`` layers: another
        layer with parameters, such as a convolution, is refused). Another value raises a
        ``ValueError``.
    prior_precision : float or "marglik", default=1.0
        Precision ``lambda`` of the isotropic Gaussian prior. ``"marglik"`` trains the MAP
        with ``lambda = 1`` and then picks the ``lambda`` in ``[1e-6, 1e6]`` maximising the
        Laplace approximation of the log marginal likelihood (a 1-d search over
        ``log lambda``, the MAP held fixed, as laplace-torch's post-hoc tuning).
    n_samples : int, default=100
        Monte Carlo draws of the posterior.
    link_approx : {"mc", "probit"}, default="mc"
        How :meth:`predict_proba` integrates the softmax over the Gaussian logits.
    device : str, default="cpu"
        Torch device of the Laplace computations and of prediction (the student trains on
        its own ``device``).
    random_state : int, RandomState instance or None, default=None
        Seeds the student (when its own ``random_state`` is None) and the posterior draws.

    Attributes
    ----------
    estimator_ : estimator
        The MAP network's estimator (the fitted clone, or the ``FrozenEstimator``); its own
        ``predict_proba`` is the plug-in predictive.
    module_ : torch.nn.Module
        A copy of its network on ``device``, in eval mode.
    prior_precision_ : float
        ``prior_precision``, or the one ``"marglik"`` chose.
    posterior_precision_ : torch.Tensor or KronPrecision
        ``H = GGN + prior_precision_ I``, float64: ``(n_params_, n_params_)`` for
        ``"full"``, its diagonal ``(n_params_,)`` for ``"diag"``, and for ``"kron"`` a
        ``KronPrecision`` holding the factors per layer and the prior (its ``to_dense()``
        is the matrix, for small networks). Parameters in the order of
        ``torch.nn.utils.parameters_to_vector`` (the head: its weight row by row, then its
        bias).
    log_marginal_likelihood_ : float
        The Laplace log evidence at ``prior_precision_`` (see
        :meth:`log_marginal_likelihood`).
    n_params_ : int
        Parameters with a posterior.
    classes_ : ndarray of shape (n_classes,)
    n_features_in_ : int

    References
    ----------
    MacKay. A Practical Bayesian Framework for Backpropagation Networks. Neural
    Computation 1992.

    Daxberger, Kristiadi, Immer, Eschenhagen, Bauer, Hennig. Laplace Redux - Effortless
    Bayesian Deep Learning. NeurIPS 2021.

    Immer, Korzepa, Bauer. Improving predictions of Bayesian neural nets via local
    linearization. AISTATS 2021.

    Morad, Shlezinger, Eldar. SGD-based Knowledge Distillation with Bayesian Teachers.
    ICLR 2026.

    Examples
    --------
    >>> from sklearn.datasets import make_classification
    >>> from skdistill import LaplaceTeacher, MLPStudent
    >>> X, y = make_classification(n_samples=200, n_features=5, random_state=0)
    >>> teacher = LaplaceTeacher(MLPStudent(hidden_layer_sizes=(16,), max_epochs=30, lr=1e-2),
    ...                          n_samples=50, random_state=0).fit(X, y)
    >>> teacher.n_params_, teacher.posterior_precision_.shape
    (34, torch.Size([34, 34]))
    >>> teacher.sample_proba(X[:3]).shape
    (50, 3, 2)
    >>> teacher.score(X, y) > 0.8
    True
    """

    _parameter_constraints = {
        "estimator": [HasMethods(["fit", "predict_proba"]), None],
        "subset_of_weights": [StrOptions({"last_layer", "all"})],
        "hessian_structure": [str],  # a key of STRUCTURES, checked by _validate_params
        "prior_precision": [Interval(numbers.Real, 0, None, closed="neither"),
                            StrOptions({"marglik"})],
        "n_samples": [Interval(numbers.Integral, 1, None, closed="left")],
        "link_approx": [StrOptions({"mc", "probit"})],
        "device": [str, torch.device],
        "random_state": ["random_state"],
    }

    _fitted_attribute = "posterior_precision_"

    def __init__(self, estimator=None, *, subset_of_weights="last_layer",
                 hessian_structure="full", prior_precision=1.0, n_samples=100, link_approx="mc",
                 device="cpu", random_state=None):
        self.estimator = estimator
        self.subset_of_weights = subset_of_weights
        self.hessian_structure = hessian_structure
        self.prior_precision = prior_precision
        self.n_samples = n_samples
        self.link_approx = link_approx
        self.device = device
        self.random_state = random_state

    # -- fitting ------------------------------------------------------------------------------
    @fit_policy
    def fit(self, X, y, sample_weight=None):
        """Train the network to the MAP (unless frozen) and fit the Laplace posterior.

        Parameters
        ----------
        X : array-like or sparse matrix of shape (n_samples, ...)
        y : array-like of shape (n_samples,)
        sample_weight : array-like of shape (n_samples,), default=None
            Weights of the rows' log-likelihood terms, in the MAP fit and in the Hessian.

        Returns
        -------
        self
        """
        self._validate_params()
        X, y = check_input(self, X, y, allow_nd=True, dtype=("float32", "float64"),
                           accept_sparse="csr")
        weight = check_sample_weight(self, sample_weight, X.shape[0])
        rng = check_random_state(self.random_state)
        y_enc = self._fit_map(X, y, weight, rng)
        network = self._network()
        self.module_ = copy.deepcopy(network.module_).to(self.device).eval()
        self.module_.requires_grad_(False)
        self._input_row_shape = network.row_shape() if hasattr(network, "row_shape") else None
        self.n_params_ = sum(p.numel() for p in self._subnet().parameters())
        structure = STRUCTURES[self.hessian_structure]
        if structure.max_params is not None and self.n_params_ > structure.max_params:
            raise param_error(self, "hessian_structure", self.hessian_structure,
                              f"{' or '.join(map(repr, structure.instead))} for "
                              f"{self.n_params_} parameters "
                              f"(subset_of_weights={self.subset_of_weights!r}): a "
                              f"{structure.name} Hessian is built for at most "
                              f"{structure.max_params}")
        try:
            self._posterior = structure(self.n_params_, torch.device(self.device),
                                        self._subnet())
        except UnsupportedLayer as layer:
            raise param_error(self, "hessian_structure", self.hessian_structure,
                              f"'diag' or subset_of_weights='last_layer' for a network with "
                              f"{layer}: a {structure.name} Hessian has blocks for "
                              f"nn.Linear layers only") from None
        with limit_threads():
            self._log_likelihood = self._curvature(X, y_enc, weight)
        self._sq_norm = float(sum(p.double().square().sum() for p in self._subnet().parameters()))
        self.prior_precision_ = (self._tune_prior_precision()
                                 if self.prior_precision == "marglik"
                                 else float(self.prior_precision))
        with self._refusing_singular():
            self._posterior.set_prior(self.prior_precision_)
        self.posterior_precision_ = self._posterior.precision
        self.log_marginal_likelihood_ = self._log_evidence(self.prior_precision_)
        self._posterior.ggn = None  # H minus the prior: not kept twice
        self._sample_seed = draw_seed(rng)
        return self

    @contextlib.contextmanager
    def _refusing_singular(self):
        """Turn a singular posterior precision (a GGN with flat directions and a prior too weak
        to fill them in float64) into the error that names ``prior_precision``."""
        try:
            yield
        except NotPositiveDefinite:
            raise param_error(self, "prior_precision", self.prior_precision,
                              f"a larger prior precision: GGN + {self.prior_precision_:.3g} I "
                              "is not positive definite in float64") from None

    def _factor(self, H):
        """The Cholesky factor of a full posterior precision ``H`` (see ``_full.cholesky``),
        or the error naming ``prior_precision`` if it is singular."""
        with self._refusing_singular():
            return cholesky(H)

    @property
    def _cholesky(self):
        """The Cholesky factor of a full posterior precision (None for another structure);
        setting it replaces the one that the draws and the probit use."""
        return getattr(getattr(self, "_posterior", None), "cholesky", None)

    @_cholesky.setter
    def _cholesky(self, value):
        self._posterior.cholesky = value

    def _validate_params(self):
        super()._validate_params()
        check_device(self, self.device)
        if self.hessian_structure not in STRUCTURES:
            raise param_error(self, "hessian_structure", self.hessian_structure,
                              " or ".join(map(repr, STRUCTURES))
                              + " (the Hessian structures implemented)")

    def _fit_map(self, X, y, weight, rng):
        """Set ``estimator_`` (the MAP network) and ``classes_``; return the encoded labels."""
        from ...students import MLPStudent

        classes, y_enc = encode_labels(self, y)
        estimator = MLPStudent() if self.estimator is None else self.estimator
        if check_network_estimator(self, estimator, classes,
                                   "the Laplace posterior is taken around"):
            return np.searchsorted(self.classes_, np.asarray(y).ravel())
        student = clone_network(self, estimator, rng,
                                "a skdistill student (MLPStudent, CNNStudent) or a fitted one "
                                "in sklearn.frozen.FrozenEstimator")
        if getattr(student, "weight_decay", 0):
            raise param_error(self, "estimator", estimator,
                              "a student with weight_decay=0: the Gaussian prior "
                              "(prior_precision) is the MAP's regulariser")
        precision = (MARGLIK_MAP_PRECISION if self.prior_precision == "marglik"
                     else self.prior_precision)
        total = len(y_enc) if weight is None else float(weight.sum())
        shown = (repr(self.prior_precision) if isinstance(self.prior_precision, str)
                 else f"{self.prior_precision:g}")
        label = f"the prior precision of {type(self).__name__} (prior_precision={shown})"
        student.fit_objective(X, y, _MAPObjective(precision / (2 * total), label),
                              sample_weight=weight)
        self.classes_, self.estimator_ = classes, student
        return y_enc

    def _network(self):
        est = self.estimator_
        return est.estimator if isinstance(est, FrozenEstimator) else est

    def _subnet(self):
        """The module whose parameters have a posterior: the head, or the whole network."""
        if self.subset_of_weights == "all":
            return self.module_
        head = getattr(self.module_, "head", None)
        if not (isinstance(head, nn.Linear) and hasattr(self.module_, "features")):
            raise param_error(self, "subset_of_weights", "last_layer",
                              f"'all' for a network without a features trunk and a linear "
                              f"head ({type(self.module_).__name__})")
        return head

    def _inputs(self, X):
        """What the subnetwork takes, given a batch of rows (flat, or shaped as the network's
        training rows): the trunk's features, or the rows themselves."""
        if self._input_row_shape is not None:  # e.g. a CNN's images, from flat rows
            X = X.reshape((len(X),) + tuple(self._input_row_shape))
        return X if self.subset_of_weights == "all" else self.module_.features(X)

    def _row_shape(self):
        return self._input_row_shape

    def _jacobian(self, inputs):
        """Logits ``(b, C)`` and their Jacobian in the subnetwork's parameters ``(b, C, P)``."""
        subnet = self._subnet()
        with torch.no_grad():
            f = subnet(inputs)
        if self.subset_of_weights == "last_layer":
            # a linear head: d f_k / d W_kd = inputs_d and d f_k / d b_k = 1, as autograd
            # gives them, without torch.func's process-wide transforms
            b, C = f.shape
            eye = torch.eye(C, dtype=inputs.dtype, device=inputs.device)
            d_weight = torch.einsum("kl,bd->bkld", eye, inputs).reshape(b, C, -1)
            return f, torch.cat([d_weight, eye.expand(b, C, C)], dim=2)
        params = {name: p.detach() for name, p in subnet.named_parameters()}
        module = _private_copy(subnet)

        def logits(p, x):
            return functional_call(module, p, (x.unsqueeze(0),)).squeeze(0)

        with _TORCH_FUNC_LOCK:
            jac = vmap(jacrev(logits), in_dims=(None, 0))(params, inputs)
        return f, torch.cat([jac[name].reshape(len(inputs), f.shape[1], -1) for name in params],
                            dim=2)

    def _jacobian_rows(self):
        return max(1, _JACOBIAN_FLOATS // (len(self.classes_) * self.n_params_))

    def _curvature(self, X, y_enc, weight):
        """Accumulate the GGN into ``_posterior``; return the log-likelihood at the MAP.

        Each row contributes ``G_n^T G_n`` with ``G_n = diag(sqrt(p)) (I - 1 p^T) J_n``, so
        that ``G_n^T G_n = J_n^T (diag(p) - p p^T) J_n`` (times its weight).
        """
        device, n_params = torch.device(self.device), self.n_params_
        y_all = torch.as_tensor(y_enc, dtype=torch.int64)
        w_all = None if weight is None else torch.as_tensor(weight, dtype=torch.float64)
        log_lik, start = 0.0, 0
        posterior = self._posterior
        n_rows = (posterior.batch_rows(len(self.classes_)) if posterior.from_network
                  else self._jacobian_rows())
        for chunk in dense_chunks(X, n_rows, self._row_shape()):
            rows = slice(start, start + len(chunk))
            start += len(chunk)
            with torch.no_grad():
                inputs = self._inputs(chunk.to(device))
            if posterior.from_network:  # no Jacobians: the structure reads the network
                with torch.no_grad():
                    f = self._subnet()(inputs)
            else:
                f, J = self._jacobian(inputs)
            log_p = torch.log_softmax(f.double(), dim=1)
            p = log_p.exp()
            ll = log_p[torch.arange(len(p)), y_all[rows].to(device)]
            w = None if w_all is None else w_all[rows].to(device)
            log_lik += float(ll.sum() if w is None else weighted_rows(ll, w).sum())
            if posterior.from_network:
                posterior.accumulate_network(inputs, p, w)
                continue
            J = J.double()
            G = p.sqrt()[:, :, None] * (J - torch.einsum("bk,bkp->bp", p, J)[:, None, :])
            if w is not None:
                G = G * w.sqrt()[:, None, None]
            posterior.accumulate(G.reshape(-1, n_params))
        return log_lik

    # -- marginal likelihood ------------------------------------------------------------------
    def log_marginal_likelihood(self, prior_precision=None):
        """Laplace approximation of the log marginal likelihood (log evidence).

        ``log p(D | lambda) ~ log p(D | theta*) - lambda/2 ||theta*||^2 + P/2 log lambda
        - 1/2 log det(GGN + lambda I)`` over the ``P`` parameters with a posterior, the MAP
        ``theta*`` held fixed (MacKay 1992; Daxberger et al. 2021, eq. 3).

        Parameters
        ----------
        prior_precision : float, default=None
            ``lambda``; ``None`` is ``prior_precision_``.

        Returns
        -------
        log_evidence : float
        """
        check_is_fitted(self, "posterior_precision_")
        lam = self.prior_precision_ if prior_precision is None else prior_precision
        if not (is_number(lam) and lam > 0 and math.isfinite(lam)):
            raise param_error(self, "prior_precision", prior_precision,
                              "a positive finite float or None")
        return self._log_evidence(lam)

    def _log_evidence(self, lam):
        return (self._log_likelihood - 0.5 * lam * self._sq_norm
                + 0.5 * self.n_params_ * math.log(lam) - 0.5 * self._posterior.log_det(lam))

    def _tune_prior_precision(self):
        low, high = (math.log(b) for b in MARGLIK_BOUNDS)
        best = minimize_scalar(lambda t: -self._log_evidence(math.exp(t)),
                               bounds=(low, high), method="bounded",
                               options={"xatol": 1e-4})
        return float(math.exp(best.x))

    # -- posterior samples --------------------------------------------------------------------
    def _deltas(self, first, count):
        """Draws ``first, ..., first + count - 1`` of ``N(0, H^-1)``, float32 ``(count, P)``.

        Draw ``s`` comes from its own seed, so it is the same whichever draws are asked for.
        """
        device = self.posterior_precision_.device
        z = torch.stack([torch.randn(self.n_params_, dtype=torch.float64,
                                     generator=self._generator(s))
                         for s in range(first, first + count)]).to(device)
        return self._posterior.sample(z).float()

    def _glm_logits(self, inputs, deltas):
        """Linearised logits ``f(x) + J(x) delta`` for each row of ``deltas``: ``(S, b, C)``.

        For the last layer the network is linear in its parameters, so this is the network
        with the sampled head, one matrix product for all draws; for all weights it is a
        forward-mode Jacobian-vector product per draw.
        """
        subnet = self._subnet()
        if self.subset_of_weights == "last_layer":
            C, D = subnet.weight.shape
            d_weight = deltas[:, :C * D].reshape(-1, C, D)
            d_bias = deltas[:, C * D:]
            with torch.no_grad():
                return (subnet(inputs) + torch.einsum("bd,skd->sbk", inputs, d_weight)
                        + d_bias[:, None, :])
        params = {name: p.detach() for name, p in subnet.named_parameters()}
        sizes = [p.numel() for p in params.values()]
        module = _private_copy(subnet)

        def logits(p):
            return functional_call(module, p, (inputs,))

        out = []
        with _TORCH_FUNC_LOCK:
            for delta in deltas:
                tangent = {name: part.reshape(p.shape) for (name, p), part
                           in zip(params.items(), torch.split(delta, sizes))}
                f, jd = jvp(logits, (params,), (tangent,))
                out.append(f + jd)
        return torch.stack(out)

    def _sample(self, s):
        return LaplaceSample(self, self._deltas(s, 1)[0])

    def _draws(self):
        return self._deltas(0, self.n_samples)  # (S, P): one solve for all chunks of a call

    def _chunk_sample_proba(self, chunk, deltas):
        # in float64: float32 rows sum to one only within ~1e-7, which log_loss reports
        return torch.softmax(self._glm_logits(self._inputs(chunk), deltas).double(), dim=-1)

    # -- prediction ---------------------------------------------------------------------------
    def predict_proba(self, X):
        """Posterior predictive probabilities, by ``link_approx``.

        Monte Carlo over the ``n_samples`` draws, or the probit approximation.
        """
        if self.link_approx == "mc":
            return super().predict_proba(X)
        X = self._check_predict_X(X)
        out = [self._probit(chunk.to(self.device))
               for chunk in dense_chunks(X, self._jacobian_rows(), self._row_shape())]
        return (torch.cat(out).numpy() if out
                else np.empty((0, len(self.classes_)), dtype=np.float64))

    def _probit(self, chunk):
        """``softmax(f / sqrt(1 + pi/8 var))`` with ``var = diag(J H^-1 J^T)``, per row."""
        with torch.no_grad():
            inputs = self._inputs(chunk)
        f, J = self._jacobian(inputs)
        var = self._posterior.functional_variance(J.double())
        kappa = 1.0 / torch.sqrt(1.0 + math.pi / 8.0 * var)
        return torch.softmax(kappa * f.double(), dim=1).cpu()
