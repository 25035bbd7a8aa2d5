"""VITeacher: a mean-field Gaussian Bayesian network trained by Bayes by backprop."""
import math
import numbers

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils._param_validation import Interval

from .._devices import DeviceFallbackMixin
from .._interrupt import FitPolicyMixin, fit_policy
from .._random import draw_seed, seeded
from .._validation import (StrictParamsMixin, check_device, check_input, check_layer_sizes,
                           check_sample_weight, encode_labels, param_error)
from ..engine import divergence_error, limit_threads, max_abs, weighted_rows
from ..nets import BayesMLP
from ._posterior import SampledPosteriorMixin
from .sgld import _Rows

#: Standard deviation of the variational posterior at initialisation.
INIT_STD = 1e-2


class VISample:
    """One posterior sample of a :class:`VITeacher`: ``sample(X) -> probabilities``.

    The network with one draw of all its weights from the variational posterior; ``X`` is a
    float32 batch, the result a ``(n, C)`` tensor on the teacher's device.
    """

    def __init__(self, module, weights):
        self.module, self.weights = module, weights

    def __call__(self, X):
        device = self.weights[0][0].device
        with torch.no_grad():
            return torch.softmax(self.module(X.to(device), self.weights), dim=-1)


class VITeacher(StrictParamsMixin, DeviceFallbackMixin, SampledPosteriorMixin, FitPolicyMixin,
                ClassifierMixin, BaseEstimator):
    """Bayesian neural network classifier with a mean-field Gaussian variational posterior.

    Every weight and bias has its own Gaussian ``q = N(mu, sigma^2)``, trained by Bayes by
    backprop (Blundell et al.) to maximise the evidence lower bound

        ELBO = sum_n log p(y_n | x_n, theta) (expected under q) - kl_weight * KL(q || prior)

    with the prior ``N(0, 1/prior_precision)`` on every parameter (the KL in closed form).
    Each minibatch estimates the log-likelihood sum as ``N/B`` times its own, with one draw of
    the pre-activations per row (the local reparameterisation trick of Kingma et al.), and
    Adam takes a step on ``-ELBO / N``. With ``kl_annealing = k`` the KL term is scaled by a
    factor rising linearly from ``1/(k * steps per epoch)`` to 1 over the first ``k`` epochs.

    Predictions average the softmax over ``n_samples`` draws of all the weights from ``q``,
    the same draws at every call (seeded by ``random_state``), which are also the posterior
    samples of :meth:`iter_samples`.

    Ctrl-C during ``fit`` keeps the posterior trained so far (with a warning) once an epoch
    is complete; before that the teacher is left unfitted.

    Read more in ``doc/bayesian_teachers.md``.

    Parameters
    ----------
    hidden_layer_sizes : tuple of int, default=(400, 400)
        Hidden widths of the fully connected network (ReLU); ``()`` is a Bayesian softmax
        regression.
    prior_precision : float, default=1.0
        Precision ``lambda`` of the isotropic Gaussian prior on all parameters.
    n_samples : int, default=100
        Posterior draws of the predictions.
    max_epochs : int, default=50
        Passes over the data (at least one).
    batch_size : int, default=128
    lr : float, default=1e-3
        Adam's learning rate.
    kl_weight : float, default=1.0
        Weight of the KL term (1 is the ELBO; smaller values trust the data more).
    kl_annealing : int, default=0
        Epochs over which the KL weight rises linearly to ``kl_weight``; 0 is no annealing.
        At most ``max_epochs``, so that the full ELBO is reached.
    device : str, default="cpu"
        Torch device of training and prediction.
    random_state : int, RandomState instance or None, default=None
        Seeds initialisation, minibatches, the training noise and the posterior draws.

    Attributes
    ----------
    module_ : skdistill.nets.BayesMLP
        The variational posterior (means ``weight_mu``, ``bias_mu`` and
        ``softplus(rho)`` standard deviations of every layer).
    elbo_history_ : list of float
        The ELBO (with ``kl_weight``, without annealing) at each epoch: the mean over the
        epoch's minibatches of their estimate ``N/B sum log p - kl_weight * KL``.
    n_iter_ : int
        Optimiser steps taken.
    classes_ : ndarray of shape (n_classes,)
    n_features_in_ : int

    References
    ----------
    Blundell, Cornebise, Kavukcuoglu, Wierstra. Weight Uncertainty in Neural Networks.
    ICML 2015.

    Kingma, Salimans, Welling. Variational Dropout and the Local Reparameterization Trick.
    NeurIPS 2015.

    Morad, Shlezinger, Eldar. SGD-based Knowledge Distillation with Bayesian Teachers.
    ICLR 2026.

    Examples
    --------
    >>> from sklearn.datasets import make_classification
    >>> from skdistill import VITeacher
    >>> X, y = make_classification(n_samples=200, n_features=5, random_state=0)
    >>> teacher = VITeacher(hidden_layer_sizes=(16,), max_epochs=60, lr=1e-2, batch_size=50,
    ...                     n_samples=50, random_state=0).fit(X, y)
    >>> teacher.elbo_history_[-1] > teacher.elbo_history_[0]
    True
    >>> teacher.sample_proba(X[:3]).shape
    (50, 3, 2)
    >>> teacher.score(X, y) > 0.8
    True
    """

    _parameter_constraints = {
        "hidden_layer_sizes": ["array-like", Interval(numbers.Integral, 1, None, closed="left")],
        "prior_precision": [Interval(numbers.Real, 0, None, closed="neither")],
        "n_samples": [Interval(numbers.Integral, 1, None, closed="left")],
        "max_epochs": [Interval(numbers.Integral, 1, None, closed="left")],
        "batch_size": [Interval(numbers.Integral, 1, None, closed="left")],
        "lr": [Interval(numbers.Real, 0, None, closed="neither")],
        "kl_weight": [Interval(numbers.Real, 0, None, closed="left")],
        "kl_annealing": [Interval(numbers.Integral, 0, None, closed="left")],
        "device": [str, torch.device],
        "random_state": ["random_state"],
    }

    _fitted_attribute = "module_"

    def __init__(self, hidden_layer_sizes=(400, 400), *, prior_precision=1.0, n_samples=100,
                 max_epochs=50, batch_size=128, lr=1e-3, kl_weight=1.0, kl_annealing=0,
                 device="cpu", random_state=None):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.prior_precision = prior_precision
        self.n_samples = n_samples
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.kl_weight = kl_weight
        self.kl_annealing = kl_annealing
        self.device = device
        self.random_state = random_state

    # -- fitting ------------------------------------------------------------------------------
    @fit_policy
    def fit(self, X, y, sample_weight=None):
        """Maximise the ELBO on ``X, y`` for ``max_epochs`` epochs.

        Parameters
        ----------
        X : array-like or sparse matrix of shape (n_samples, ...)
        y : array-like of shape (n_samples,)
        sample_weight : array-like of shape (n_samples,), default=None
            Weights of the rows' log-likelihood terms (``N`` becomes their sum); a row of
            weight 0 has no influence.

        Returns
        -------
        self
        """
        self._validate_params()
        X, y = check_input(self, X, y, allow_nd=True, dtype=("float32", "float64"),
                           accept_sparse="csr")
        self.classes_, y_enc = encode_labels(self, y)
        weight = check_sample_weight(self, sample_weight, X.shape[0])
        seed = draw_seed(self.random_state)
        self._sample_seed = seed + 1
        device = torch.device(self.device)
        with seeded(seed, device, self), limit_threads():
            self.module_ = BayesMLP(int(np.prod(X.shape[1:])), len(self.classes_),
                                    check_layer_sizes(self, self.hidden_layer_sizes),
                                    init_std=INIT_STD).to(device)
            yt = torch.as_tensor(y_enc, dtype=torch.int64, device=device)
            wt = None if weight is None else torch.as_tensor(weight, dtype=torch.float32,
                                                               device=device)
            self._train(_Rows(X, device), yt, wt, max_abs(X))
        self.module_.eval()
        return self

    def _train(self, Xt, yt, wt, x_scale):
        module = self.module_
        module.train()
        optimizer = torch.optim.Adam(module.parameters(), lr=self.lr)
        n = len(Xt)
        batch = min(self.batch_size, n)
        total = float(n if wt is None else wt.sum())
        steps_per_epoch = -(-n // batch)
        anneal_steps = self.kl_annealing * steps_per_epoch
        self.elbo_history_, self.n_iter_ = [], 0
        for epoch in range(self.max_epochs):
            order = torch.randperm(n, device=yt.device)
            elbo = 0.0
            for b, start in enumerate(range(0, n, batch)):
                idx = order[start:start + batch]
                nll = F.cross_entropy(module(Xt[idx]), yt[idx], reduction="none")
                if wt is None:
                    mean_nll = nll.mean()
                else:
                    w = wt[idx]
                    mean_nll = (weighted_rows(nll, w).sum()
                                / w.sum().clamp_min(torch.finfo(w.dtype).tiny))
                kl = module.kl(self.prior_precision)
                anneal = min(1.0, (self.n_iter_ + 1) / anneal_steps) if anneal_steps else 1.0
                loss = mean_nll + anneal * self.kl_weight * kl / total
                value = loss.item()
                if not math.isfinite(value):
                    raise divergence_error(self, f"the loss became {value} at epoch {epoch}, "
                                           f"batch {b}", self.lr, x_scale)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                self.n_iter_ += 1
                elbo += -total * mean_nll.item() - self.kl_weight * kl.item()
            self.elbo_history_.append(elbo / steps_per_epoch)
            self._fit_progress["epochs"] = epoch + 1

    def _salvage(self):
        """Ctrl-C policy: the posterior is usable once at least one epoch is complete."""
        epochs = self._fit_progress.get("epochs", 0)
        if not epochs:
            return None
        self.module_.eval()
        return f"the posterior after {epochs} of {self.max_epochs} epochs"

    def _validate_params(self):
        super()._validate_params()
        check_device(self, self.device)
        if self.kl_annealing > self.max_epochs:
            raise param_error(self, "kl_annealing", self.kl_annealing,
                              f"at most max_epochs={self.max_epochs}: the KL weight rises to "
                              f"kl_weight over kl_annealing epochs, and would never reach it")

    # -- posterior samples --------------------------------------------------------------------
    def _weights(self, s):
        """Draw ``s`` of all the weights, from its own seed."""
        with torch.no_grad():
            return self.module_.sample(self._generator(s))

    def _sample(self, s):
        return VISample(self.module_, self._weights(s))

    def _draws(self):
        # the seeds: each chunk draws its weights afresh, holding one set of them at a time
        return range(self.n_samples)

    def _chunk_sample_proba(self, chunk, seeds):
        # in float64: float32 rows sum to one only within ~1e-7, which log_loss reports
        return torch.stack([torch.softmax(self.module_(chunk, self._weights(s)).double(),
                                          dim=-1) for s in seeds])
