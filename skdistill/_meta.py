"""Helpers for estimators that fit other estimators (teachers, members, students)."""
from sklearn.exceptions import NotFittedError
from sklearn.frozen import FrozenEstimator
from sklearn.utils.validation import check_is_fitted, has_fit_parameter

from ._interrupt import warn_user


def is_fitted(estimator):
    """Whether ``estimator`` is fitted (scikit-learn's test, as a boolean)."""
    try:
        check_is_fitted(estimator)
    except NotFittedError:
        return False
    return True


def weights_for(owner, estimator, sample_weight, what="teacher"):
    """``sample_weight`` if ``estimator.fit`` accepts it; else None, with a warning.

    A teacher whose ``fit`` has no ``sample_weight`` is fitted unweighted, with a warning
    naming it (the student still trains on the weights); a frozen one is not refitted.
    """
    if sample_weight is None or isinstance(estimator, FrozenEstimator):
        return None
    if has_fit_parameter(estimator, "sample_weight"):
        return sample_weight
    warn_user(f"{type(owner).__name__}: the {what} {type(estimator).__name__}'s fit takes no "
              "sample_weight; it is fitted unweighted (the student uses the weights).")
    return None


def fit_with_weights(estimator, X, y, sample_weight=None):
    """``estimator.fit(X, y)``, passing ``sample_weight`` only when there is one."""
    if sample_weight is None:
        return estimator.fit(X, y)
    return estimator.fit(X, y, sample_weight=sample_weight)
