"""SWAGTeacher: the Gaussian fitted to the iterates of SGD (Maddox et al., NeurIPS 2019).

The student trains on the one engine (its ``fit_objective``); a skorch callback sets the
learning rate of the SWA phase and collects the parameters at the end of each collection
period: their running mean and mean of squares, and the last ``max_rank`` deviations from the
running mean. Posterior draws are built from those moments, sample ``s`` from its own seed.
"""
import copy
import math
import numbers

import torch
from skorch.callbacks import Callback
from sklearn.base import BaseEstimator, ClassifierMixin, MetaEstimatorMixin
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from torch import nn
from torch.nn.utils import parameters_to_vector, vector_to_parameters

from .._devices import DeviceFallbackMixin
from .._interrupt import FitPolicyMixin, fit_policy
from .._random import draw_seed
from .._validation import (StrictParamsMixin, check_callbacks, check_device, check_input,
                           check_sample_weight, encode_labels, param_error)
from ..engine import Objective, dense_chunks
from ._network import check_network_estimator, clone_network
from ._posterior import CHUNK, SampledPosteriorMixin

#: SGD optimizers a SWAG student may train with (by the student's ``optimizer`` name).
SGD_OPTIMIZERS = ("sgd", "momentum")


def _is_sgd(optimizer):
    return (optimizer in SGD_OPTIMIZERS if isinstance(optimizer, str)
            else isinstance(optimizer, type) and issubclass(optimizer, torch.optim.SGD))


def cyclical_lr(step, cycle, lr_max, lr_min):
    """The learning rate of SWA's cyclical schedule at step ``step`` (from 1) of the SWA phase.

    ``(1 - t) lr_max + t lr_min`` with ``t = (((step - 1) mod cycle) + 1) / cycle``: within
    each cycle of ``cycle`` steps the rate falls linearly from just below ``lr_max`` to
    ``lr_min``, reached at the cycle's last step, where the parameters are collected
    (Izmailov et al. 2018, eq. 2).

    Parameters
    ----------
    step : int
        Optimiser step of the SWA phase, from 1.
    cycle : int
        Steps per cycle.
    lr_max, lr_min : float
        The rates at the start and the end of a cycle.

    Returns
    -------
    lr : float

    Examples
    --------
    >>> from skdistill.teachers.swag import cyclical_lr
    >>> [cyclical_lr(i, 4, 0.1, 0.02) for i in range(1, 6)]
    [0.08, 0.06, 0.04, 0.02, 0.08]
    """
    t = ((step - 1) % cycle + 1) / cycle
    return round((1.0 - t) * lr_max + t * lr_min, 15)


def has_batchnorm(module):
    """Whether ``module`` holds a BatchNorm layer (with running statistics)."""
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats
               for m in module.modules())


def refresh_batchnorm(module, batches):
    """Recompute the running statistics of every BatchNorm layer of ``module`` on ``batches``.

    SWAG's draws are new parameter vectors, whose BatchNorm statistics are those of no
    network: each draw recomputes them by one pass over the training rows without gradients,
    the BatchNorm layers alone in train mode (dropout and the rest stay in eval mode, so the
    pass draws no random numbers), each batch weighing by its rows (swa_gaussian's
    ``bn_update``): the running mean is the mean over the rows, the running variance the
    rows-weighted mean of the batches' variances. The layers' momentum and the module's modes
    are restored; ``module`` is changed in place.

    Parameters
    ----------
    module : torch.nn.Module
    batches : iterable of torch.Tensor
        Input batches on the module's device.

    Returns
    -------
    module : torch.nn.Module

    Examples
    --------
    >>> import torch
    >>> from skdistill.teachers.swag import refresh_batchnorm
    >>> net = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.BatchNorm1d(3))
    >>> X = torch.randn(100, 2)
    >>> _ = refresh_batchnorm(net, [X[:50], X[50:]])
    >>> torch.allclose(net[1].running_mean, net[0](X).mean(0).detach(), atol=1e-6)
    True
    """
    layers = [m for m in module.modules()
              if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
    if not layers:
        return module
    modes = {m: m.training for m in module.modules()}
    momenta = {m: m.momentum for m in layers}
    module.eval()
    for m in layers:
        m.reset_running_stats()
        m.train()
    seen = 0
    try:
        with torch.no_grad():
            for batch in batches:
                rows = len(batch)
                if not rows:
                    continue
                for m in layers:  # the running average, each row weighing alike
                    m.momentum = rows / (seen + rows)
                module(batch)
                seen += rows
    finally:
        for m, momentum in momenta.items():
            m.momentum = momentum
        for m, training in modes.items():
            m.train(training)
    return module


class SWAGSample:
    """One posterior sample of a :class:`SWAGTeacher`: ``sample(X) -> probabilities``.

    The network with one draw of its parameters (a private copy of it, so that samples run
    in parallel threads do not share state); ``X`` is a float32 batch, the result a
    ``(n, C)`` tensor on the teacher's device.
    """

    def __init__(self, module, row_shape=None):
        self.module, self.row_shape = module, row_shape

    def __call__(self, X):
        device = next(self.module.parameters()).device
        X = X.to(device)
        if self.row_shape is not None:
            X = X.reshape((len(X),) + tuple(self.row_shape))
        with torch.no_grad():
            return torch.softmax(self.module(X), dim=-1)


class _SWAGCollector(Callback):
    """Sets the learning rate of the SWA phase and collects the parameters.

    Epochs ``1..swa_start`` run at the optimizer's own rate; after them the rate is
    ``swa_lr`` (constant), and at the end of every ``collect_every``-th epoch after
    ``swa_start`` the parameters ``theta`` update ``mean`` and ``sq_mean`` (running means,
    float64) and the last ``max_rank`` deviations ``theta - mean`` (``mean`` including
    ``theta``), as in Maddox et al.'s Algorithm 1.
    """

    def __init__(self, swa_start, swa_lr, collect_every, max_rank):
        self.swa_start, self.swa_lr = swa_start, swa_lr
        self.collect_every, self.max_rank = collect_every, max_rank

    def initialize(self):
        self.n_models_ = 0
        self.mean_ = self.sq_mean_ = None
        self.deviations_ = []
        self.collected_epochs_ = []
        return self

    def on_train_begin(self, net, X=None, y=None, **kwargs):
        self.base_lr_ = [group["lr"] for group in net.optimizer_.param_groups]

    def _set_lr(self, net, lr):
        for group, base in zip(net.optimizer_.param_groups, self.base_lr_):
            group["lr"] = base if lr is None else lr

    def on_epoch_begin(self, net, **kwargs):
        epoch = len(net.history)
        self._set_lr(net, None if epoch <= self.swa_start else self.swa_lr)

    def on_epoch_end(self, net, **kwargs):
        epoch = len(net.history)
        if epoch > self.swa_start and (epoch - self.swa_start) % self.collect_every == 0:
            self.collect(net.module_)
            self.collected_epochs_.append(epoch)

    def collect(self, module):
        """Add the parameters of ``module`` to the moments and the deviations."""
        with torch.no_grad():
            theta = parameters_to_vector(module.parameters()).detach().to("cpu", torch.float64)
        n = self.n_models_
        if n == 0:
            self.mean_, self.sq_mean_ = theta.clone(), theta.square()
        else:
            self.mean_ = self.mean_ * (n / (n + 1.0)) + theta / (n + 1.0)
            self.sq_mean_ = self.sq_mean_ * (n / (n + 1.0)) + theta.square() / (n + 1.0)
        self.deviations_ = (self.deviations_ + [theta - self.mean_])[-self.max_rank:]
        self.n_models_ = n + 1


class _CyclicalSWAGCollector(_SWAGCollector):
    """:class:`_SWAGCollector` with SWA's cyclical schedule: after ``swa_start`` each cycle of
    ``collect_every`` epochs falls linearly, step by step, from the optimizer's rate to
    ``swa_lr`` (:func:`cyclical_lr`), and the parameters are collected at its end."""

    def on_train_begin(self, net, X=None, y=None, **kwargs):
        super().on_train_begin(net, X=X, y=y, **kwargs)
        train, _ = net.get_split_datasets(X, y)
        self.steps_per_epoch_ = max(1, math.ceil(len(train) / net.batch_size))
        self.swa_steps_ = 0
        self.lr_trace_ = []

    def on_epoch_begin(self, net, **kwargs):
        self._set_lr(net, None)
        self._swa_epoch = len(net.history) > self.swa_start

    def on_batch_begin(self, net, batch=None, training=False, **kwargs):
        if not (training and self._swa_epoch):
            return
        self.swa_steps_ += 1
        cycle = self.collect_every * self.steps_per_epoch_
        for group, base in zip(net.optimizer_.param_groups, self.base_lr_):
            group["lr"] = cyclical_lr(self.swa_steps_, cycle, base, self.swa_lr)
        self.lr_trace_.append(net.optimizer_.param_groups[0]["lr"])


class SWAGTeacher(StrictParamsMixin, DeviceFallbackMixin, SampledPosteriorMixin, FitPolicyMixin,
                  ClassifierMixin, MetaEstimatorMixin, BaseEstimator):
    """SWA-Gaussian: a Gaussian posterior fitted to the iterates of SGD.

    The network ``estimator`` is trained by SGD on the cross-entropy of the labels, its own
    rate for the first ``swa_start`` epochs, then, in the SWA phase, at the rate ``swa_lr``
    (``lr_schedule="constant"``) or at a rate cycling from its own rate down to ``swa_lr``
    (``"cyclical"``). At the end of every ``collect_every`` epochs of the SWA phase (of
    every cycle) its parameters ``theta_i`` are collected (Maddox et al., Algorithm 1): the
    running mean ``theta_SWA``, the running mean of squares, and the last ``K = max_rank``
    deviations ``D_i = theta_i - theta_bar_i`` from the running mean (including
    ``theta_i``). The posterior is ``N(theta_SWA, (Sigma_diag + D D^T / (K - 1)) / 2)`` with
    ``Sigma_diag = max(mean of squares - theta_SWA^2, 0)``; a draw is

        theta = theta_SWA + sqrt(scale) (Sigma_diag^(1/2) z1 / sqrt(2) + D z2 / sqrt(2 (K - 1)))

    with ``z1 ~ N(0, I_P)``, ``z2 ~ N(0, I_K)`` and ``K`` the deviations kept (``max_rank``
    once that many are collected). A network with BatchNorm layers has their running
    statistics recomputed on the training rows for every draw (:func:`refresh_batchnorm`).

    Predictions are the Bayesian model average: the softmax averaged over ``n_samples``
    draws, the same draws at every call (seeded by ``random_state``), which are also the
    posterior samples of :meth:`iter_samples`.

    SWAG describes the stationary distribution of SGD: the student's ``optimizer`` must be
    ``"sgd"`` or ``"momentum"`` (or a ``torch.optim.SGD`` class); another optimizer (Adam's
    adaptive steps) is refused with a ``ValueError`` rather than silently replaced.

    Ctrl-C during ``fit`` leaves the teacher unfitted (with a warning) and stops the script.

    Read more in ``doc/bayesian_teachers.md``.

    Parameters
    ----------
    estimator : skdistill student, default=None
        The unfitted network (``MLPStudent``, ``CNNStudent``), cloned and trained with its
        own settings (``max_epochs`` in all, ``lr`` before the SWA phase, ``batch_size``,
        ``weight_decay``, ``callbacks``...) and an SGD ``optimizer``. ``None`` means
        ``MLPStudent(optimizer="momentum")``. LatentBE students (several members) are
        refused with a ``TypeError``.
    swa_start : int, default=None
        Epochs before the SWA phase; ``None`` is half the estimator's ``max_epochs`` (at most
        ``max_epochs - 2 * collect_every``). At least ``2 * collect_every`` epochs must remain
        after it (two collected models).
    swa_lr : float, default=None
        The SWA phase's rate (constant), or the low end of each cycle (cyclical); ``None`` is
        the estimator's ``lr`` with ``"constant"``, and must be given with ``"cyclical"``
        (a cycle falls from the estimator's ``lr`` to it).
    lr_schedule : {"constant", "cyclical"}, default="constant"
        The SWA phase's learning rate (see above).
    collect_every : int, default=1
        Epochs between two collections (the cycle length of ``"cyclical"``).
    max_rank : int, default=20
        ``K``: deviations kept for the low-rank part of the covariance (at least 2).
    n_samples : int, default=30
        Posterior draws of the predictions.
    scale : float, default=1.0
        Factor of the posterior covariance (1 is the paper's ``1/2`` factor).
    device : str, default="cpu"
        Torch device of the posterior and of prediction (the student trains on its own
        ``device``).
    random_state : int, RandomState instance or None, default=None
        Seeds the student (when its own ``random_state`` is None) and the posterior draws.

    Attributes
    ----------
    estimator_ : estimator
        The fitted clone of ``estimator``: the network at the end of training.
    module_ : torch.nn.Module
        Its network with the SWA mean ``theta_SWA`` as parameters, on ``device``, in eval
        mode.
    mean_ : torch.Tensor of shape (n_params,)
        ``theta_SWA``, float64, in the order of ``torch.nn.utils.parameters_to_vector``.
    sq_mean_ : torch.Tensor of shape (n_params,)
        The mean of the squared parameters, float64.
    deviations_ : torch.Tensor of shape (K, n_params)
        The last ``K`` deviations ``theta_i - theta_bar_i``, oldest first, float64.
    n_models_ : int
        Parameter vectors collected.
    n_params_ : int
    classes_ : ndarray of shape (n_classes,)
    n_features_in_ : int

    References
    ----------
    Maddox, Izmailov, Garipov, Vetrov, Wilson. A Simple Baseline for Bayesian Uncertainty in
    Deep Learning. NeurIPS 2019.

    Izmailov, Podoprikhin, Garipov, Vetrov, Wilson. Averaging Weights Leads to Wider Optima
    and Better Generalization. UAI 2018.

    Examples
    --------
    >>> from sklearn.datasets import make_classification
    >>> from skdistill import MLPStudent, SWAGTeacher
    >>> X, y = make_classification(n_samples=200, n_features=5, random_state=0)
    >>> student = MLPStudent(hidden_layer_sizes=(16,), max_epochs=20, lr=0.05,
    ...                      optimizer="momentum", batch_size=32)
    >>> teacher = SWAGTeacher(student, swa_start=10, max_rank=5, n_samples=20,
    ...                       random_state=0).fit(X, y)
    >>> teacher.n_models_, tuple(teacher.deviations_.shape)
    (10, (5, 130))
    >>> teacher.sample_proba(X[:3]).shape
    (20, 3, 2)
    >>> teacher.score(X, y) > 0.8
    True
    """

    _parameter_constraints = {
        "estimator": [HasMethods(["fit", "predict_proba"]), None],
        "swa_start": [Interval(numbers.Integral, 0, None, closed="left"), None],
        "swa_lr": [Interval(numbers.Real, 0, None, closed="neither"), None],
        "lr_schedule": [StrOptions({"constant", "cyclical"})],
        "collect_every": [Interval(numbers.Integral, 1, None, closed="left")],
        "max_rank": [Interval(numbers.Integral, 2, None, closed="left")],
        "n_samples": [Interval(numbers.Integral, 1, None, closed="left")],
        "scale": [Interval(numbers.Real, 0, None, closed="left")],
        "device": [str, torch.device],
        "random_state": ["random_state"],
    }

    _fitted_attribute = "mean_"

    def __init__(self, estimator=None, *, swa_start=None, swa_lr=None, lr_schedule="constant",
                 collect_every=1, max_rank=20, n_samples=30, scale=1.0, device="cpu",
                 random_state=None):
        self.estimator = estimator
        self.swa_start = swa_start
        self.swa_lr = swa_lr
        self.lr_schedule = lr_schedule
        self.collect_every = collect_every
        self.max_rank = max_rank
        self.n_samples = n_samples
        self.scale = scale
        self.device = device
        self.random_state = random_state

    # -- fitting ------------------------------------------------------------------------------
    @fit_policy
    def fit(self, X, y, sample_weight=None):
        """Train the network by SGD and collect the SWAG moments of its iterates.

        Parameters
        ----------
        X : array-like or sparse matrix of shape (n_samples, ...)
        y : array-like of shape (n_samples,)
        sample_weight : array-like of shape (n_samples,), default=None
            Weights of the rows' cross-entropy terms.

        Returns
        -------
        self
        """
        self._validate_params()
        X, y = check_input(self, X, y, allow_nd=True, dtype=("float32", "float64"),
                           accept_sparse="csr")
        weight = check_sample_weight(self, sample_weight, X.shape[0])
        rng = check_random_state(self.random_state)
        self.classes_, _ = encode_labels(self, y)
        student, swa_start = self._student(rng)
        collector_class = (_CyclicalSWAGCollector if self.lr_schedule == "cyclical"
                           else _SWAGCollector)
        collector = collector_class(swa_start, self.swa_lr, self.collect_every, self.max_rank)
        callbacks = student.callbacks
        check_callbacks(student, callbacks)
        student.set_params(callbacks=list(callbacks or []) + [("swag", collector)])
        objective = Objective(nn.CrossEntropyLoss(reduction="none"), fields=("y",))
        student.fit_objective(X, y, objective, sample_weight=weight)
        student.set_params(callbacks=callbacks)
        collector = dict(student.net_.callbacks_)["swag"]
        if collector.n_models_ < 2:
            raise param_error(self, "swa_start", swa_start,
                              f"a SWA phase that collects at least 2 models (training "
                              f"stopped after {len(student.history_)} epochs, with "
                              f"{collector.n_models_} collected)")
        self._install(student, collector, X)
        self._sample_seed = draw_seed(rng)
        return self

    def _student(self, rng):
        """The unfitted clone of ``estimator`` that trains, and the resolved ``swa_start``."""
        from ..students import MLPStudent

        estimator = (MLPStudent(optimizer="momentum") if self.estimator is None
                     else self.estimator)
        check_network_estimator(self, estimator, self.classes_, "whose iterates SWAG averages",
                                frozen_ok=False)
        student = clone_network(self, estimator, rng,
                                "an unfitted skdistill student (MLPStudent, CNNStudent)")
        if self.lr_schedule == "cyclical" and self.swa_lr is None:
            raise param_error(self, "swa_lr", self.swa_lr,
                              "a float below the estimator's lr with lr_schedule='cyclical': "
                              "each cycle falls from the estimator's lr to swa_lr")
        if not _is_sgd(student.get_params().get("optimizer")):
            raise param_error(self, "estimator", estimator,
                              "a student trained by SGD (optimizer='sgd' or 'momentum', or a "
                              "torch.optim.SGD class): SWAG fits the stationary distribution "
                              "of SGD's iterates")
        epochs, every = student.max_epochs, self.collect_every
        if epochs < 2 * every:
            raise param_error(self, "estimator", estimator,
                              f"a student with max_epochs of at least 2 * collect_every = "
                              f"{2 * every} (two collected models), not {epochs}")
        swa_start = (min(epochs // 2, epochs - 2 * every) if self.swa_start is None
                     else self.swa_start)
        if epochs - swa_start < 2 * every:
            raise param_error(self, "swa_start", self.swa_start,
                              f"at most {epochs - 2 * self.collect_every}: at least "
                              f"2 * collect_every = {2 * self.collect_every} of the "
                              f"estimator's max_epochs={epochs} after swa_start (two "
                              "collected models)")
        return student, swa_start

    def _install(self, student, collector, X):
        """The collected moments become the fitted state; the collector keeps none of them."""
        device = torch.device(self.device)
        self.estimator_ = student
        self.n_models_ = collector.n_models_
        self.mean_ = collector.mean_.to(device)
        self.sq_mean_ = collector.sq_mean_.to(device)
        self.deviations_ = torch.stack(collector.deviations_).to(device)
        self.n_params_ = len(self.mean_)
        collector.mean_ = collector.sq_mean_ = None
        collector.deviations_ = []
        self._input_row_shape = student.row_shape() if hasattr(student, "row_shape") else None
        module = copy.deepcopy(student.module_).to(device).eval()
        module.requires_grad_(False)
        vector_to_parameters(self.mean_.to(next(module.parameters()).dtype), module.parameters())
        # the training rows, for the BatchNorm statistics of every draw (only when needed)
        self._bn_rows = X if has_batchnorm(module) else None
        if self._bn_rows is not None:
            self._refresh(module)
        self.module_ = module

    def _refresh(self, module):
        device = torch.device(self.device)
        batch = getattr(self.estimator_, "batch_size", CHUNK)
        refresh_batchnorm(module, (chunk.to(device) for chunk in
                                   dense_chunks(self._bn_rows, batch, self._input_row_shape)))
        return module

    def _validate_params(self):
        super()._validate_params()
        check_device(self, self.device)

    # -- posterior samples --------------------------------------------------------------------
    def _theta(self, s):
        """Draw ``s`` of the parameters, float64 ``(n_params_,)``, from its own seed."""
        generator = self._generator(s)
        K = len(self.deviations_)
        z1 = torch.randn(self.n_params_, dtype=torch.float64, generator=generator)
        z2 = torch.randn(K, dtype=torch.float64, generator=generator)
        z1, z2 = z1.to(self.mean_.device), z2.to(self.mean_.device)
        var = (self.sq_mean_ - self.mean_.square()).clamp_min(0.0)
        noise = (var.sqrt() * z1 / math.sqrt(2.0)
                 + self.deviations_.T @ z2 / math.sqrt(2.0 * (K - 1)))
        return self.mean_ + math.sqrt(self.scale) * noise

    def _module(self, s):
        """A private copy of the network with draw ``s`` of its parameters (BatchNorm
        statistics recomputed), in eval mode."""
        module = copy.deepcopy(self.module_)
        theta = self._theta(s)
        vector_to_parameters(theta.to(next(module.parameters()).dtype), module.parameters())
        if self._bn_rows is not None:
            self._refresh(module)
        return module.eval()

    def _row_shape(self):
        return self._input_row_shape

    def _sample(self, s):
        return SWAGSample(self._module(s), self._input_row_shape)

    def _draws(self):
        return [self._module(s) for s in range(self.n_samples)]

    def _chunk_sample_proba(self, chunk, modules):
        # in float64: float32 rows sum to one only within ~1e-7, which log_loss reports
        return torch.stack([torch.softmax(m(chunk).double(), dim=-1) for m in modules])
