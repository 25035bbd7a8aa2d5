"""What the teachers built on one skdistill network share: the checks of their ``estimator``."""
import numpy as np
from sklearn.frozen import FrozenEstimator
from torch import nn

from .._meta import is_fitted
from .._validation import param_error


def check_network_estimator(teacher, estimator, classes, role):
    """Check ``estimator`` as the one network of ``teacher``; return whether it is frozen.

    A LatentBE student (several members) is refused with a ``TypeError``; ``role`` says what
    the teacher needs one network for. A :class:`~sklearn.frozen.FrozenEstimator` must hold a
    fitted skdistill student (a torch ``module_``) that knows every label of ``classes`` and
    was fitted on ``teacher.n_features_in_`` features; the teacher's ``classes_`` (the
    network's) and ``estimator_`` (the frozen estimator) are then set.

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

    Returns
    -------
    frozen : bool
    """
    from ..students.latent_be import _LatentBEMixin

    frozen = isinstance(estimator, FrozenEstimator)
    if isinstance(estimator.estimator if frozen else estimator, _LatentBEMixin):
        raise param_error(teacher, "estimator", estimator,
                          "an MLPStudent or CNNStudent, or a fitted one in "
                          "sklearn.frozen.FrozenEstimator: a LatentBE student's network "
                          f"gives one set of logits per member, not the single network {role}",
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
