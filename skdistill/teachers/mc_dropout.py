"""MCDropoutTeacher: a network trained with dropout, kept on at prediction (MC dropout).

Gal and Ghahramani read dropout as variational inference: the weights of a layer after a
dropout layer are ``W diag(z) / (1 - p)`` with ``z_j ~ Bernoulli(1 - p)``, so that a network
with one draw of all its masks is one sample of the approximate posterior ``q(W)``, and the
predictive is the average of ``n_samples`` such networks.

Sample ``s`` is one set of masks, one per unit of each dropout layer (a draw of ``q(W)``),
shared by every row it is applied to and drawn from its own seed by a private
``torch.Generator`` (never torch's global one): it is a fixed function of a row, the same in
any batch, chunk or row order, whichever samples are asked and in any thread.
"""
import contextvars
import copy
import numbers

import torch
from sklearn.base import BaseEstimator, ClassifierMixin, MetaEstimatorMixin
from sklearn.frozen import FrozenEstimator
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import HasMethods, Interval
from torch import nn

from .._devices import DeviceFallbackMixin
from .._interrupt import FitPolicyMixin, fit_policy
from .._random import draw_seed
from .._validation import (StrictParamsMixin, check_device, check_input, check_sample_weight,
                           Shown, encode_labels, param_error)
from ._network import check_network_estimator, clone_network
from ._posterior import SampledPosteriorMixin

# The dropout rate of the default network (MLPStudent) when neither ``estimator`` nor
# ``dropout`` gives one.
_DEFAULT_DROPOUT = 0.1
# The generator of the masks of the forward pass running in this thread (or task): None
# outside a posterior sample, where the network is the deterministic (eval mode) one.
_MASK_GENERATOR = contextvars.ContextVar("skdistill_mc_dropout_generator", default=None)


class SeededDropout(nn.Module):
    """Dropout with masks from the generator of the sample being evaluated.

    Inside a posterior sample of a :class:`MCDropoutTeacher` each call draws a mask of the
    shape of one row (one Bernoulli(1 - p) per unit, shared by the rows of the batch) and
    scales the kept units by ``1 / (1 - p)``, as :class:`torch.nn.Dropout` does; outside one
    it is the identity (the network in eval mode).

    Parameters
    ----------
    p : float
        Probability of dropping a unit.
    """

    def __init__(self, p):
        super().__init__()
        self.p = float(p)

    def forward(self, x):
        """``x`` with the sample's mask applied, or ``x`` itself outside a sample."""
        generator = _MASK_GENERATOR.get()
        if generator is None or self.p == 0:
            return x
        keep = torch.rand(x.shape[1:], generator=generator) >= self.p
        return x * (keep.to(device=x.device, dtype=x.dtype) / (1.0 - self.p))

    def extra_repr(self):
        """The rate, shown in the network's printout."""
        return f"p={self.p}"


def _seeded_copy(module, rate):
    """A copy of ``module`` in eval mode whose ``nn.Dropout`` layers are
    :class:`SeededDropout` layers of their own rate, or of ``rate`` where it is given."""
    module = copy.deepcopy(module)
    for parent in list(module.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, nn.Dropout):
                setattr(parent, name, SeededDropout(child.p if rate is None else rate))
    return module.eval().requires_grad_(False)


class MCDropoutSample:
    """One posterior sample of a :class:`MCDropoutTeacher`: ``sample(X) -> probabilities``.

    The network with the dropout masks of sample ``s``; ``X`` is a float32 batch (rows shaped
    as the teacher's training rows), the result a ``(n, C)`` tensor on the teacher's device.
    """

    def __init__(self, teacher, s):
        self.teacher, self.s = teacher, s

    def __call__(self, X):
        teacher = self.teacher
        X = X.to(teacher.device)
        if teacher._input_row_shape is not None:  # e.g. a CNN's images, from flat rows
            X = X.reshape((len(X),) + tuple(teacher._input_row_shape))
        with torch.no_grad():
            return torch.softmax(teacher._logits(X, self.s), dim=-1)


class MCDropoutTeacher(StrictParamsMixin, DeviceFallbackMixin, SampledPosteriorMixin,
                       FitPolicyMixin, ClassifierMixin, MetaEstimatorMixin, BaseEstimator):
    """Monte Carlo dropout: a network trained with dropout, kept on at prediction time.

    Dropout training is approximate variational inference (Gal & Ghahramani): a unit dropped
    with probability ``p`` makes the weights that read it ``W diag(z) / (1 - p)``,
    ``z_j ~ Bernoulli(1 - p)``, a draw of a variational posterior ``q(W)``. The network
    ``estimator`` is trained as usual (with its dropout); the predictive is then the average
    of the softmax over ``n_samples`` networks, each with one draw of all its dropout masks.

    Sample ``s`` is one mask per unit of every dropout layer, shared by all rows (a draw of
    the weights, as a Bayesian network's sample is) and drawn from its own seed by a private
    generator, never torch's global one: sample ``s`` is the same at every call, in any batch
    or thread and whichever samples are asked, so :meth:`predict_proba` is reproducible and
    is the mean of :meth:`sample_proba`, and :meth:`iter_samples` hands a distiller (such as
    :class:`~skdistill.GPEDDistiller`) the samples it averages over. Kept units are scaled
    by ``1 / (1 - p)`` as in training (inverted dropout), so the mean of the masked
    activations is the eval-mode activation.

    Read more in ``doc/bayesian_teachers.md``.

    Parameters
    ----------
    estimator : skdistill student or FrozenEstimator, default=None
        The network, with dropout: ``torch.nn.Dropout`` layers (other dropout modules are
        left in eval mode). An unfitted skdistill student (``MLPStudent``, ``CNNStudent``)
        is cloned and fitted with its own settings (with ``dropout`` as its rate, where
        given); a fitted one wrapped in :class:`sklearn.frozen.FrozenEstimator` is used as
        it is. ``None`` means ``MLPStudent(dropout=0.1)``. A network without dropout (a
        rate of 0) is refused: its samples would all be the same network, a point mass.
        LatentBE students (one set of logits per member) are refused with a ``TypeError``.
    dropout : float in (0, 1), default=None
        The dropout rate: ``None`` keeps the student's; a float sets an unfitted student's
        ``dropout`` (training and prediction), or the rate of a frozen network's dropout
        layers at prediction.
    n_samples : int, default=30
        Monte Carlo samples (mask sets) of the predictive.
    device : str, default="cpu"
        Torch device of prediction (the student trains on its own ``device``).
    random_state : int, RandomState instance or None, default=None
        Seeds the student (when its own ``random_state`` is None) and the masks.

    Attributes
    ----------
    estimator_ : estimator
        The fitted network's estimator (the fitted clone, or the ``FrozenEstimator``); its
        own ``predict_proba`` is the deterministic (eval mode) network's.
    module_ : torch.nn.Module
        A copy of its network on ``device``, in eval mode, with its ``nn.Dropout`` layers
        replaced by :class:`~skdistill.teachers.mc_dropout.SeededDropout` layers (the
        identity when called outside a posterior sample).
    dropout_ : float
        The dropout rate of the samples (the largest, where the layers' rates differ).
    classes_ : ndarray of shape (n_classes,)
    n_features_in_ : int

    References
    ----------
    Gal, Ghahramani. Dropout as a Bayesian Approximation: Representing Model Uncertainty in
    Deep Learning. ICML 2016.

    Srivastava, Hinton, Krizhevsky, Sutskever, Salakhutdinov. Dropout: A Simple Way to
    Prevent Neural Networks from Overfitting. JMLR 2014.

    Examples
    --------
    >>> from sklearn.datasets import make_classification
    >>> from skdistill import MCDropoutTeacher, MLPStudent
    >>> X, y = make_classification(n_samples=200, n_features=5, random_state=0)
    >>> student = MLPStudent(hidden_layer_sizes=(32,), dropout=0.2, max_epochs=30, lr=1e-2)
    >>> teacher = MCDropoutTeacher(student, n_samples=20, random_state=0).fit(X, y)
    >>> teacher.dropout_, teacher.sample_proba(X[:3]).shape
    (0.2, (20, 3, 2))
    >>> teacher.predict_uncertainty(X[:3]).epistemic.shape
    (3,)
    >>> teacher.score(X, y) > 0.8
    True
    """

    _parameter_constraints = {
        "estimator": [HasMethods(["fit", "predict_proba"]), None],
        "dropout": [Interval(numbers.Real, 0, 1, closed="neither"), None],
        "n_samples": [Interval(numbers.Integral, 1, None, closed="left")],
        "device": [str, torch.device],
        "random_state": ["random_state"],
    }

    _fitted_attribute = "module_"

    def __init__(self, estimator=None, *, dropout=None, n_samples=30, device="cpu",
                 random_state=None):
        self.estimator = estimator
        self.dropout = dropout
        self.n_samples = n_samples
        self.device = device
        self.random_state = random_state

    # -- fitting ------------------------------------------------------------------------------
    @fit_policy
    def fit(self, X, y, sample_weight=None):
        """Fit the network with dropout (unless frozen) and set up its dropout samples.

        Parameters
        ----------
        X : array-like or sparse matrix of shape (n_samples, ...)
        y : array-like of shape (n_samples,)
        sample_weight : array-like of shape (n_samples,), default=None
            Weights of the rows in the network's training loss.

        Returns
        -------
        self
        """
        self._validate_params()
        X, y = check_input(self, X, y, allow_nd=True, dtype=("float32", "float64"),
                           accept_sparse="csr")
        weight = check_sample_weight(self, sample_weight, X.shape[0])
        rng = check_random_state(self.random_state)
        self._fit_network(X, y, weight, rng)
        network = self._network()
        module = _seeded_copy(network.module_, self.dropout).to(self.device)
        rates = [m.p for m in module.modules() if isinstance(m, SeededDropout)]
        if not rates or max(rates) == 0:
            raise param_error(self, "estimator", self._described(self.estimator),
                              self._needs_dropout("its network has no nn.Dropout layer "
                                                  "with a positive rate"))
        self.module_ = module
        self.dropout_ = float(max(rates))
        self._input_row_shape = network.row_shape() if hasattr(network, "row_shape") else None
        self._sample_seed = draw_seed(rng)
        return self

    @staticmethod
    def _described(estimator):
        """``<MLPStudent with dropout=0.0>``: the estimator and the rate that matters here."""
        inner = estimator.estimator if isinstance(estimator, FrozenEstimator) else estimator
        rate = inner.get_params().get("dropout") if hasattr(inner, "get_params") else None
        name = type(inner).__name__
        if isinstance(estimator, FrozenEstimator):
            name = f"FrozenEstimator({name})"
        return Shown(f"<{name}>" if rate is None else f"<{name} with dropout={rate!r}>")

    @staticmethod
    def _needs_dropout(why):
        return ("a network with dropout, e.g. MLPStudent(dropout=0.1), or dropout= a rate in "
                f"(0, 1) for an unfitted student ({why}: every MC dropout sample would be the "
                "same network, a point-mass posterior)")

    def _fit_network(self, X, y, weight, rng):
        """Set ``estimator_`` (the fitted network) and ``classes_``."""
        from ..students import MLPStudent

        classes, _ = encode_labels(self, y)
        estimator = self.estimator
        if estimator is None:
            estimator = MLPStudent(dropout=_DEFAULT_DROPOUT if self.dropout is None
                                   else self.dropout)
        if check_network_estimator(self, estimator, classes,
                                   "whose dropout masks are sampled"):
            return
        student = clone_network(self, estimator, rng,
                                "a skdistill student (MLPStudent, CNNStudent) or a fitted one "
                                "in sklearn.frozen.FrozenEstimator",
                                members=("fit_objective", "row_shape"))
        if self.dropout is not None and "dropout" in student.get_params():
            student.set_params(dropout=self.dropout)
        if student.get_params().get("dropout", None) == 0:
            raise param_error(self, "estimator", self._described(student),
                              self._needs_dropout("its dropout is 0"))
        student.fit(X, y, sample_weight=weight)
        self.classes_, self.estimator_ = classes, student

    def _validate_params(self):
        super()._validate_params()
        check_device(self, self.device)

    def _network(self):
        est = self.estimator_
        return est.estimator if isinstance(est, FrozenEstimator) else est

    def _row_shape(self):
        return self._input_row_shape

    # -- posterior samples --------------------------------------------------------------------
    def _logits(self, X, s):
        """The logits of the network with the masks of sample ``s`` on a batch shaped as the
        network takes it (drawn afresh from the sample's seed: the same at every call)."""
        token = _MASK_GENERATOR.set(self._generator(s))
        try:
            return self.module_(X)
        finally:
            _MASK_GENERATOR.reset(token)

    def _sample(self, s):
        return MCDropoutSample(self, s)

    def _draws(self):
        return range(self.n_samples)  # the samples' numbers: each chunk draws their masks

    def _chunk_sample_proba(self, chunk, seeds):
        # in float64: float32 rows sum to one only within ~1e-7, which log_loss reports
        return torch.stack([torch.softmax(self._logits(chunk, s).double(), dim=-1)
                            for s in seeds])
