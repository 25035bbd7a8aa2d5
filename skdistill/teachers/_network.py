"""What the teachers built on one skdistill network share: the checks of their ``estimator``."""
import numpy as np
from sklearn.base import clone
from sklearn.frozen import FrozenEstimator
from torch import nn

from .._meta import is_fitted
from .._random import draw_seed
from .._validation import param_error


def check_network_estimator(teacher, estimator, classes, role, frozen_ok=True):
    """Check ``estimator`` as the one network of ``teacher``; return whether it is frozen.

    A LatentBE student (several members) is refused with a ``TypeError``; ``role`` says what
    the teacher needs one network for. Where ``frozen_ok``, a
    :class:`~sklearn.frozen.FrozenEstimator` must hold a fitted skdistill student (a torch
    ``module_``) that knows every label of ``classes`` and was fitted on
    ``teacher.n_features_in_`` features; the teacher's ``classes_`` (the network's) and
    ``estimator_`` (the frozen estimator) are then set. Otherwise a frozen estimator is
    refused with a ``TypeError``: the teacher trains its network itself.

    Parameters
    ----------
    teacher : estimator
        The teacher, named in the errors; its ``n_features_in_`` is set.
    estimator : estimator
        Its network: an unfitted skdistill student or a fitted one, frozen.
    classes : ndarray
        The labels of the fit.
    role : str
        What the teacher does with the network, e.g. ``"the Laplace posterior is taken
        around"``.
    frozen_ok : bool, default=True
        Whether a fitted network in a ``FrozenEstimator`` will do.

    Returns
    -------
    frozen : bool
    """
    from ..students.latent_be import _LatentBEMixin

    frozen = isinstance(estimator, FrozenEstimator)
    if isinstance(estimator.estimator if frozen else estimator, _LatentBEMixin):
        expected = ("an MLPStudent or CNNStudent, or a fitted one in "
                    "sklearn.frozen.FrozenEstimator" if frozen_ok
                    else "an MLPStudent or CNNStudent")
        raise param_error(teacher, "estimator", estimator,
                          f"{expected}: a LatentBE student's network gives one set of logits "
                          f"per member, not the single network {role}", TypeError)
    if frozen and not frozen_ok:
        raise param_error(teacher, "estimator", estimator,
                          f"an unfitted MLPStudent or CNNStudent: {type(teacher).__name__} "
                          "trains its network itself, and a FrozenEstimator's is fitted already",
                          TypeError)
    if not frozen:
        return False
    network = estimator.estimator
    if not (is_fitted(network) and isinstance(getattr(network, "module_", None), nn.Module)):
        raise param_error(teacher, "estimator", estimator,
                          "a FrozenEstimator of a fitted skdistill student (with a torch "
                          "module_)", TypeError)
    known = np.isin(classes, network.classes_)
    if not known.all():
        raise param_error(teacher, "y", f"<labels {classes[~known].tolist()}>",
                          "labels among the frozen estimator's classes_ "
                          f"{network.classes_.tolist()}")
    n_features = getattr(network, "n_features_in_", teacher.n_features_in_)
    if n_features != teacher.n_features_in_:
        raise ValueError(f"{type(teacher).__name__}: X has {teacher.n_features_in_} features, "
                         f"but the frozen estimator was fitted on {n_features}.")
    teacher.classes_ = np.asarray(network.classes_)
    teacher.estimator_ = estimator
    return True


def clone_network(teacher, estimator, rng, expected, members=("fit_objective",)):
    """The unfitted clone of ``estimator`` that ``teacher`` trains.

    It must have ``members`` (else a ``TypeError`` naming ``estimator``, ``expected`` saying
    what it takes); a ``random_state`` of None is drawn from ``rng``, so that the teacher's
    seed makes the network's training reproducible.

    Parameters
    ----------
    teacher : estimator
        The teacher, named in the error.
    estimator : estimator
        Its network, an unfitted skdistill student.
    rng : numpy.random.RandomState
        The teacher's random state.
    expected : str
        What the teacher's ``estimator`` may be, for the error.
    members : tuple of str, default=("fit_objective",)
        What the network must have.

    Returns
    -------
    student : estimator
    """
    student = clone(estimator)
    if not all(hasattr(student, member) for member in members):
        raise param_error(teacher, "estimator", estimator, expected, TypeError)
    if student.get_params().get("random_state", 0) is None:
        student.set_params(random_state=draw_seed(rng))
    return student
