"""VITeacher: a mean-field Gaussian Bayesian network trained by Bayes by backprop.

Training runs on the one engine (:class:`skdistill.engine.StudentNet`): the per-row loss is
the negative log-likelihood of one draw of the pre-activations (the engine takes its mean,
weighted by ``sample_weight``), the KL term is the engine's regulariser, and KL annealing and
the ELBO's record are a skorch callback, so callbacks, a validation split, learning-rate
schedules and the Ctrl-C policy act as they do for the students.
"""
import copy
import numbers

import numpy as np
import torch
from skorch.callbacks import Callback
from skorch.dataset import ValidSplit
from skorch.helper import predefined_split
from skorch.history import History
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils._param_validation import Interval

from .._devices import DeviceFallbackMixin
from .._interrupt import FitPolicyMixin, fit_policy
from .._random import draw_seed, seeded
from .._validation import (StrictParamsMixin, check_callbacks, check_device, check_input,
                           check_layer_sizes, check_sample_weight, check_validation_fraction,
                           encode_labels, param_error)
from ..engine import (NonFiniteLossError, Objective, RowDataset, StudentNet,
                      completed_epochs, divergence_error, limit_threads, max_abs,
                      non_finite_problem)
from ..nets import BayesMLP
from ._posterior import SampledPosteriorMixin

#: Standard deviation of the variational posterior at initialisation.
INIT_STD = 1e-2
# Training rows on which the trained posterior's outputs are checked for NaN and infinity.
_CHECKED_ROWS = 1024


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


class _KLTerm:
    """The KL term of ``-ELBO / N``, the engine's regulariser: ``factor * kl_weight * KL(q ||
    prior) / N`` of a :class:`~skdistill.nets.BayesMLP`, ``N`` the training rows' total
    weight. ``factor`` is the annealing factor of the current step (:class:`_ELBOSchedule`);
    ``kl`` keeps the last value of the KL, detached, for the ELBO's record."""

    def __init__(self, prior_precision, kl_weight, total):
        self.prior_precision, self.kl_weight, self.total = prior_precision, kl_weight, total
        self.factor = 1.0
        self.kl = None

    def __call__(self, module):
        kl = module.kl(self.prior_precision)
        self.kl = kl.detach()
        return self.factor * self.kl_weight * kl / self.total


class _ELBOSchedule(Callback):
    """KL annealing and the ELBO's record, for the engine training a :class:`VITeacher`.

    Before training step ``t`` (from 1) the KL term (the net's regulariser, a
    :class:`_KLTerm`) is scaled by ``min(1, t / anneal_steps)``, by 1 when ``anneal_steps``
    is 0. After it, the step's ELBO estimate ``-N * mean NLL - kl_weight * KL`` is added to
    the epoch's sum, on the device (no synchronisation per step). At the end of each epoch
    the history gets ``elbo`` (the mean of those estimates) and ``kl_weight`` (the KL's
    weight in its last step).
    """

    def __init__(self, anneal_steps=0):
        self.anneal_steps = anneal_steps

    def initialize(self):
        self.steps_ = 0
        self._sum, self._count = None, 0
        return self

    def on_batch_begin(self, net, batch=None, training=False, **kwargs):
        if training:
            net.regularizer.factor = (min(1.0, (self.steps_ + 1) / self.anneal_steps)
                                      if self.anneal_steps else 1.0)

    def on_batch_end(self, net, batch=None, training=False, loss=None, **kwargs):
        if not training:
            return
        self.steps_ += 1
        term = net.regularizer
        # loss = mean NLL + factor * kl_weight * KL / N
        elbo = -term.total * loss.detach() + (term.factor - 1.0) * term.kl_weight * term.kl
        self._sum = elbo if self._sum is None else self._sum + elbo
        self._count += 1

    def on_epoch_end(self, net, **kwargs):
        if self._count:
            term = net.regularizer
            net.history.record("elbo", float(self._sum) / self._count)
            net.history.record("kl_weight", term.factor * term.kl_weight)
        self._sum, self._count = None, 0


class _VINet(StudentNet):
    """The engine with the :class:`_ELBOSchedule` (``schedule``) among skorch's default
    callbacks, ahead of the per-epoch table, which then prints the ELBO; the user's callbacks
    come after it, as for a student, and see the epoch's ELBO."""

    schedule = None

    def get_default_callbacks(self):
        defaults = list(super().get_default_callbacks())
        names = [name for name, _ in defaults]
        at = names.index("print_log") if "print_log" in names else len(defaults)
        return defaults[:at] + [("elbo", self.schedule)] + defaults[at:]


class VITeacher(StrictParamsMixin, DeviceFallbackMixin, SampledPosteriorMixin, FitPolicyMixin,
                ClassifierMixin, BaseEstimator):
    """Bayesian neural network classifier with a mean-field Gaussian variational posterior.

    Every weight and bias has its own Gaussian ``q = N(mu, sigma^2)``, trained by Bayes by
    backprop (Blundell et al.) to maximise the evidence lower bound

        ELBO = sum_n log p(y_n | x_n, theta) (expected under q) - kl_weight * KL(q || prior)

    with the prior ``N(0, 1/prior_precision)`` on every parameter (the KL in closed form).
    Each minibatch estimates the log-likelihood sum as ``N/B`` times its own, with one draw of
    the pre-activations per row (the local reparameterisation trick of Kingma et al.), and
    Adam takes a step on ``-ELBO / N``: the minibatch's mean negative log-likelihood plus
    ``kl_weight * KL / N``. With ``kl_annealing = k`` the KL term is scaled by a factor
    rising linearly from ``1/(k * steps per epoch)`` to 1 over the first ``k`` epochs.

    Training runs on the same engine as the students (a skorch ``NeuralNet``), so
    ``callbacks`` (``EarlyStopping``, ``LRScheduler``, ``Checkpoint``, ``ProgressBar``),
    ``validation_fraction`` and ``verbose`` act as they do for
    :class:`~skdistill.MLPStudent`. The history records each epoch's ``train_loss`` (the mean
    of ``-ELBO / N`` with the annealed KL weight), ``elbo``, ``kl_weight`` (the annealed
    weight in force at the epoch's end) and, with a validation split, ``valid_loss``: the
    validation rows' mean negative log-likelihood under one draw of the pre-activations.

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
        At most ``max_epochs``, so that the full ELBO is reached (a callback that stops
        training earlier, such as ``EarlyStopping``, may stop it before).
    device : str, default="cpu"
        Torch device of training and prediction.
    callbacks : list of skorch callbacks, default=None
        Passed to the underlying :class:`skorch.NeuralNet` (``EarlyStopping``,
        ``ProgressBar``, ``Checkpoint``, ``LRScheduler``...). They are copied, never mutated.
        They may monitor ``elbo`` (``EarlyStopping(monitor="elbo", lower_is_better=False)``).
    validation_fraction : float, default=None
        Hold out this fraction of the training data as skorch's validation split (gives
        ``valid_loss`` for ``EarlyStopping``); ``None`` trains on everything. ``N`` in the
        ELBO is then the training rows' total weight.
    verbose : int, default=0
        Print skorch's per-epoch table (with the ELBO) when positive.
    random_state : int, RandomState instance or None, default=None
        Seeds initialisation, minibatches, the validation split, the training noise and the
        posterior draws.

    Attributes
    ----------
    module_ : skdistill.nets.BayesMLP
        The variational posterior (means ``weight_mu``, ``bias_mu`` and
        ``softplus(rho)`` standard deviations of every layer).
    elbo_history_ : list of float
        The ELBO (with ``kl_weight``, without annealing) at each epoch: the mean over the
        epoch's minibatches of their estimate ``N/B sum log p - kl_weight * KL``.
    history_ : skorch.history.History
        The training history, one row per completed epoch (see above).
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
    >>> from skorch.callbacks import LRScheduler
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

    The learning rate halved every 10 epochs, with the KL weight annealed over 10:

    >>> teacher = VITeacher(hidden_layer_sizes=(16,), max_epochs=30, lr=1e-2, batch_size=50,
    ...                     kl_annealing=10, random_state=0,
    ...                     callbacks=[LRScheduler("StepLR", step_size=10, gamma=0.5)]).fit(X, y)
    >>> teacher.history_[-1, "event_lr"], teacher.history_[-1, "kl_weight"]
    (0.0025, 1.0)
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
        "callbacks": [list, None],
        "validation_fraction": [Interval(numbers.Real, 0, 1, closed="neither"), None],
        "verbose": ["verbose"],
        "random_state": ["random_state"],
    }

    _fitted_attribute = "module_"

    def __init__(self, hidden_layer_sizes=(400, 400), *, prior_precision=1.0, n_samples=100,
                 max_epochs=50, batch_size=128, lr=1e-3, kl_weight=1.0, kl_annealing=0,
                 device="cpu", callbacks=None, validation_fraction=None, verbose=0,
                 random_state=None):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.prior_precision = prior_precision
        self.n_samples = n_samples
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.kl_weight = kl_weight
        self.kl_annealing = kl_annealing
        self.device = device
        self.callbacks = callbacks
        self.validation_fraction = validation_fraction
        self.verbose = verbose
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
        data = RowDataset(X, {"y": y_enc.astype(np.int64), "weight": weight}, keep=("y",))
        train, valid = self._split(data, weight, seed)
        total = float(len(train) if weight is None else weight[self._rows(train)].sum())
        steps_per_epoch = -(-len(train) // self.batch_size)
        with seeded(seed, self.device, self), limit_threads():
            module = BayesMLP(int(np.prod(X.shape[1:])), len(self.classes_),
                              check_layer_sizes(self, self.hidden_layer_sizes),
                              init_std=INIT_STD)
            net = self._make_net(module, _KLTerm(self.prior_precision, self.kl_weight, total),
                                 valid)
            net.schedule = _ELBOSchedule(self.kl_annealing * steps_per_epoch)
            self._fit_progress["net"] = net
            try:
                net.fit(train, None)
            except NonFiniteLossError as exc:
                raise divergence_error(self, f"the loss became {exc.value} at epoch "
                                       f"{exc.epoch}, batch {exc.batch}", self.lr,
                                       max_abs(X)) from None
        if net.interrupted_:
            # skorch swallows Ctrl-C and returns; the policy (fit_policy) needs to see it
            raise KeyboardInterrupt
        problem = non_finite_problem(net.module_, data.dense(slice(0, _CHECKED_ROWS)))
        if problem is not None:
            raise divergence_error(self, problem, self.lr, max_abs(X))
        return self._install(net)

    def _split(self, data, weight, seed):
        """``(training rows, validation rows or None)`` of the dataset ``data``: skorch's
        split for ``validation_fraction``, as a student's (made here, so that ``N`` is the
        training rows' weight)."""
        if self.validation_fraction is None:
            return data, None
        check_validation_fraction(self, self.validation_fraction, len(data))
        train, valid = ValidSplit(self.validation_fraction, stratified=False,
                                  random_state=seed)(data)
        if weight is not None and not weight[self._rows(train)].sum() > 0:
            raise param_error(self, "sample_weight", "<array>",
                              "weights with a positive sum over the training rows left by "
                              f"validation_fraction={self.validation_fraction:g}")
        return train, valid

    @staticmethod
    def _rows(dataset):
        """Row numbers of a split's part (a ``Subset``), or all rows."""
        indices = getattr(dataset, "indices", None)
        return slice(None) if indices is None else np.asarray(indices)

    def _make_net(self, module, kl_term, valid):
        """The engine: the per-row negative log-likelihood (its weighted mean taken by the
        engine), the KL term as its regulariser, Adam, the teacher's callbacks."""
        objective = Objective(torch.nn.CrossEntropyLoss(reduction="none"), fields=("y",))
        return _VINet.for_estimator(
            self, module, objective, regularizer=kl_term, optimizer=torch.optim.Adam,
            train_split=None if valid is None else predefined_split(valid),
            callbacks=copy.deepcopy(self.callbacks))

    def _install(self, net):
        """The trained posterior, its complete epochs' history and ELBO become the fitted
        state."""
        self.module_ = net.module_.eval()
        self.history_ = History([row for row in net.history if "train_loss" in row])
        self.elbo_history_ = [row["elbo"] for row in self.history_ if "elbo" in row]
        self.n_iter_ = net.schedule.steps_
        return self

    def _salvage(self):
        """Ctrl-C policy: the posterior is usable once at least one epoch is complete."""
        net = self._fit_progress.get("net")
        epochs = completed_epochs(net.history if net is not None else None)
        if not epochs:
            return None
        self._install(net)
        return f"the posterior after {epochs} of {self.max_epochs} epochs"

    def _validate_params(self):
        super()._validate_params()
        check_device(self, self.device)
        check_callbacks(self, self.callbacks)
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
