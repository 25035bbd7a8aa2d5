"""DeepEnsembleTeacher: independently trained networks whose mean prediction is the teacher."""
import numbers

import numpy as np
from joblib import Parallel, delayed
from sklearn.base import BaseEstimator, ClassifierMixin, MetaEstimatorMixin, clone
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import HasMethods, Interval
from sklearn.utils.validation import check_is_fitted

import torch

from .._devices import DeviceFallbackMixin
from .._interrupt import FitPolicyMixin, fit_policy
from .._random import draw_seed
from .._validation import (StrictParamsMixin, check_input, check_sample_weight, check_teacher_proba,
                           check_validation_fraction, encode_labels, validate_params,
                           warn_class_mismatch)
from .._meta import fit_with_weights, is_fitted, weights_for


def _parallel(n_jobs):
    """``joblib.Parallel`` in the active backend, handing over each result as it finishes.

    A generator lets Ctrl-C keep the members fitted so far. The backends that cannot return
    one (``"multiprocessing"``, Ray's ``"ray"``) return the list at the end instead.
    """
    try:
        return Parallel(n_jobs=n_jobs, return_as="generator")
    except ValueError as exc:
        if "return_as" not in str(exc):
            raise
        return Parallel(n_jobs=n_jobs)


class MemberSample:
    """One member of a fitted ensemble as a posterior sample: ``sample(X) -> probabilities``.

    ``X`` is a float32 tensor batch of rows shaped as the ensemble's training ``X``; the result
    is the member's ``predict_proba`` as a float32 ``(n, C)`` tensor, columns in the
    ensemble's ``classes_`` order.
    """

    def __init__(self, ensemble, member):
        self.ensemble, self.member = ensemble, member

    def __call__(self, X):
        proba = self.member.predict_proba(X.detach().cpu().numpy())
        proba = check_teacher_proba(self.ensemble, proba, self.member.classes_,
                                    self.ensemble.classes_, self.member)
        return torch.as_tensor(proba, dtype=torch.float32)


class DeepEnsembleTeacher(StrictParamsMixin, DeviceFallbackMixin, FitPolicyMixin, ClassifierMixin,
                          MetaEstimatorMixin, BaseEstimator):
    """Deep ensemble: ``n_members`` copies of a network trained from different seeds.

    Each member is a clone of ``base_estimator`` with its own ``random_state`` drawn from
    ``random_state``, fitted on all of ``X, y`` (in parallel with ``n_jobs`` joblib workers).
    :meth:`predict_proba` is the members' mean, :meth:`sample_proba` gives every member's
    probabilities, and ``modules_`` exposes the members' torch networks, through which
    input gradients can flow (the diversifying perturbations of
    :class:`~skdistill.EnsembleDistiller` need them).

    Parameters
    ----------
    base_estimator : classifier, default=None
        ``None`` means :class:`~skdistill.MLPStudent` with its defaults. Any scikit-learn
        classifier with ``predict_proba`` and a ``random_state`` parameter works; ``modules_``
        is only available when the members are skdistill students.
    n_members : int, default=4
    n_jobs : int, default=None
        Members fitted in parallel through :class:`joblib.Parallel`, in the active joblib
        backend: ``joblib.parallel_backend("dask")`` sends them to a dask cluster
        (``doc/scaling_out.md``). ``None`` means 1 outside such a block, ``-1`` all cores.
    random_state : int, RandomState instance or None, default=None
        Draws the members' seeds; an int makes two fits identical.

    Attributes
    ----------
    members_ : list of fitted estimators
    modules_ : list of torch.nn.Module
        The members' networks (``member.module_``), in eval mode; empty for members that
        are not torch students.
    classes_ : ndarray of shape (n_classes,)
    n_features_in_ : int

    References
    ----------
    Lakshminarayanan, Pritzel, Blundell. Simple and Scalable Predictive Uncertainty
    Estimation using Deep Ensembles. NeurIPS 2017.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from skdistill import DeepEnsembleTeacher, MLPStudent
    >>> X, y = load_iris(return_X_y=True)
    >>> de = DeepEnsembleTeacher(MLPStudent(hidden_layer_sizes=(16,), max_epochs=50, lr=1e-2),
    ...                          n_members=3, random_state=0).fit(X, y)
    >>> de.sample_proba(X[:2]).shape
    (3, 2, 3)
    >>> de.score(X, y) > 0.9
    True
    """

    _parameter_constraints = {
        "base_estimator": [HasMethods(["fit", "predict_proba"]), None],
        "n_members": [Interval(numbers.Integral, 1, None, closed="left")],
        "n_jobs": [Interval(numbers.Integral, None, -1, closed="right"),
                   Interval(numbers.Integral, 1, None, closed="left"), None],
        "random_state": ["random_state"],
    }

    def __init__(self, base_estimator=None, n_members=4, n_jobs=None, random_state=None):
        self.base_estimator = base_estimator
        self.n_members = n_members
        self.n_jobs = n_jobs
        self.random_state = random_state

    def _base(self):
        if self.base_estimator is None:
            from ..students import MLPStudent

            return MLPStudent()
        return self.base_estimator

    @fit_policy
    def fit(self, X, y, sample_weight=None):
        """Fit ``n_members`` clones of ``base_estimator`` with different seeds.

        Parameters
        ----------
        X : array-like or sparse matrix of shape (n_samples, ...)
        y : array-like of shape (n_samples,)
        sample_weight : array-like of shape (n_samples,), default=None
            Passed to every member's ``fit`` when it accepts them (else the members are
            fitted unweighted, with a warning).

        Returns
        -------
        self
        """
        validate_params(self)
        X, y = check_input(self, X, y, allow_nd=True, accept_sparse="csr")
        self.classes_, _ = encode_labels(self, y)
        sample_weight = weights_for(self, self._base(),
                                    check_sample_weight(self, sample_weight, X.shape[0]),
                                    "base_estimator")
        base = self._base()
        check_validation_fraction(base, getattr(base, "validation_fraction", None), X.shape[0])
        rng = check_random_state(self.random_state)
        members = []
        for _ in range(self.n_members):
            member = clone(base)
            if "random_state" in member.get_params():
                member.set_params(random_state=draw_seed(rng))
            members.append(member)
        fitted = self._fit_progress["members"] = []
        for member in _parallel(self.n_jobs)(
                delayed(fit_with_weights)(member, X, y, sample_weight) for member in members):
            fitted.append(member)
        self._keep_members(fitted)
        return self

    def _salvage(self):
        return self._keep_members(self._fit_progress.get("members", []))

    def _keep_members(self, fitted):
        """Install the fitted members; on Ctrl-C, those finished so far (None if none)."""
        if not fitted:
            return None
        warn_class_mismatch(self, fitted, self.classes_, "ensemble's members")
        self.members_ = list(fitted)
        self.modules_ = [m.module_.eval() for m in self.members_ if hasattr(m, "module_")]
        return f"the {len(fitted)} of {self.n_members} members fitted so far"

    def iter_samples(self, X, y, sample_weight=None):
        """The members as posterior samples, one :class:`MemberSample` each (teacher protocol).

        Fits the ensemble on ``X, y`` first unless it is fitted already; a fitted ensemble
        yields its members without refitting.

        Yields
        ------
        sample : MemberSample
        """
        if not is_fitted(self):
            self.fit(X, y, sample_weight=sample_weight)
        for member in self.members_:
            yield MemberSample(self, member)

    def sample_proba(self, X):
        """Every member's class probabilities: shape ``(n_members, n_samples, n_classes)``."""
        check_is_fitted(self, "members_")
        X = check_input(self, X, reset=False, allow_nd=True, accept_sparse="csr")
        return np.stack([check_teacher_proba(self, m.predict_proba(X), m.classes_,
                                             self.classes_, m)
                         for m in self.members_])

    def predict_proba(self, X):
        """The ensemble's predictive distribution: the mean of the members' probabilities."""
        return self.sample_proba(X).mean(axis=0)

    def predict(self, X):
        """Most probable class under the ensemble mean."""
        proba = self.predict_proba(X)
        return self.classes_[np.argmax(proba, axis=1)]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.non_deterministic = False
        tags.input_tags.sparse = True
        return tags
