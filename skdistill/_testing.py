"""Small, fast instances of every estimator, for tests and smoke benchmarks.

:func:`fast_instance` builds any estimator that :func:`skdistill.discovery.all_estimators`
lists from one generic rule, so that a new estimator is tested without a configuration of its
own:

1. its sub-estimator parameters left at ``None`` (``teacher``, ``student``, ...) get test
   instances of the classes of :data:`SUB_ESTIMATORS`;
2. every parameter named in :data:`FAST_PARAMS`, its own or a sub-estimator's, gets that
   small value;
3. only where the generic rule cannot work, :data:`PER_CLASS` fixes parameters of one class.

A class whose test instance is still slow to fit, or fails to, needs an entry in
:data:`PER_CLASS` (or a new name in :data:`FAST_PARAMS`): the tests that fit every estimator
fail for it until then.
"""
import inspect
from importlib import import_module

from sklearn.base import BaseEstimator, clone

from .discovery import all_estimators

#: Small values of parameters, by name: a test instance takes each wherever it, or one of its
#: sub-estimators, has a parameter of that name. Small networks and few epochs, draws, members
#: and folds; an SGLD step and prior suited to the standardised data of the tests. A GPED
#: chain of 350 iterations after 100 of burn-in gives its student 250 steps (half the advised
#: 500, whose warning the tests ignore), enough for scikit-learn's checks' small problems, and
#: a fit of about one second (the checks fit ~200 times).
FAST_PARAMS = {
    "hidden_layer_sizes": (16,),
    "width_multiplier": 0.5,
    "max_epochs": 20,
    "lr": 1e-2,
    "n_members": 2,
    "n_samples": 10,
    "n_iter": 350,
    "burn_in": 100,
    "thinning": 25,
    "step_size": 2e-3,
    "prior_precision": 1.0,
    "n_folds": 3,
    "teacher_calibration_cv": 3,
    "n_estimators": 10,
}

#: The sub-estimator a parameter of this name left at ``None`` gets a test instance of: a
#: skdistill estimator by name, or a scikit-learn class (``module:Class``). A forest is the
#: distillers' own default teacher (smaller here, by ``n_estimators``).
SUB_ESTIMATORS = {
    "teacher": "sklearn.ensemble:RandomForestClassifier",
    "student": "MLPStudent",
    "base_estimator": "MLPStudent",
    "estimator": "MLPStudent",
}

#: Marks a parameter of :data:`PER_CLASS` that keeps its class's default.
DEFAULT = "<default>"

#: Where the generic rule cannot work: parameters of one class, by the class's name, set after
#: the generic values (a path with ``__`` sets a sub-estimator's). A sub-estimator given by
#: name is a test instance of that class, used where the parameter is ``None``.
PER_CLASS = {
    # A chain teacher drives the student: one student step per SGLD iteration after burn-in
    # (thinning None resolves to 1 for a short chain), and the chain, not the student's
    # max_epochs, sets their number.
    "GPEDDistiller": {"teacher": "SGLDTeacher", "thinning": DEFAULT,
                      "student__max_epochs": DEFAULT},
    # One BatchEnsemble member per ensemble member.
    "EnsembleDistiller": {"teacher": "DeepEnsembleTeacher", "student": "LatentBEStudent"},
    # Its held-out calibration rows leave too few rows of a class in scikit-learn's smallest
    # problems for cross-fitted teachers: its own teacher's probabilities.
    "RankingDistiller": {"n_folds": DEFAULT},
    # Its test network (an MLPStudent, whose dropout is 0) needs dropout to be sampled.
    "MCDropoutTeacher": {"dropout": 0.1},
    # SWAG follows SGD's iterates: its student trains by SGD with momentum, for epochs enough
    # to collect several models after its first half (a one-epoch student collects one).
    "SWAGTeacher": {"estimator__optimizer": "momentum", "estimator__max_epochs": 20},
}


def _class(name):
    if ":" in name:
        module, attr = name.split(":")
        return getattr(import_module(module), attr)
    return dict(all_estimators())[name]


def _default(estimator, path):
    *parents, name = path.split("__")
    for parent in parents:
        estimator = estimator.get_params(deep=False)[parent]
    return inspect.signature(type(estimator)).parameters[name].default


def _sub_estimator(estimator, name):
    """The class name (or ``module:Class``) of what a ``None`` parameter ``name`` gets."""
    choice = PER_CLASS.get(type(estimator).__name__, {}).get(name, SUB_ESTIMATORS.get(name))
    return choice if isinstance(choice, str) and choice != DEFAULT else None


def _fill(estimator, given):
    """Set the ``None`` sub-estimators of ``estimator`` (``given`` ones first), recursively."""
    subs = {}
    for name, value in estimator.get_params(deep=False).items():
        if isinstance(given.get(name), BaseEstimator):
            subs[name] = clone(given[name])
        elif value is None and _sub_estimator(estimator, name):
            subs[name] = _fill(_class(_sub_estimator(estimator, name))(), {})
    return estimator.set_params(**subs) if subs else estimator


def _tree(estimator, prefix=""):
    """``(path prefix, estimator)`` of ``estimator`` and of every sub-estimator in it."""
    yield prefix, estimator
    for name, value in estimator.get_params(deep=False).items():
        if isinstance(value, BaseEstimator):
            yield from _tree(value, f"{prefix}{name}__")


def fast_instance(estimator_class, **params):
    """Build a small, fast instance of a skdistill estimator class for tests.

    Parameters
    ----------
    estimator_class : type
        One of the classes :func:`skdistill.discovery.all_estimators` lists (or another
        scikit-learn estimator).
    **params
        Values by parameter name, set like those of :data:`FAST_PARAMS` (over them) wherever
        the estimator or a sub-estimator has that parameter, except where :data:`PER_CLASS`
        fixes it. An estimator given for a parameter of ``estimator_class`` (``teacher=...``)
        is used as it is (a clone). For one parameter only, call ``set_params`` on the result.

    Returns
    -------
    estimator : estimator instance
        Unfitted.

    Examples
    --------
    >>> from skdistill import DeepEnsembleTeacher
    >>> from skdistill._testing import fast_instance
    >>> teacher = fast_instance(DeepEnsembleTeacher, max_epochs=2, random_state=0)
    >>> teacher.n_members, teacher.base_estimator.max_epochs, teacher.base_estimator.random_state
    (2, 2, 0)
    """
    estimator = _fill(estimator_class(), params)
    given = tuple(f"{name}__" for name, value in params.items()
                  if isinstance(value, BaseEstimator))
    values = {**FAST_PARAMS, **{name: value for name, value in params.items()
                                if not isinstance(value, BaseEstimator)}}
    nested = {key: values[key.rsplit("__", 1)[-1]] for key in estimator.get_params(deep=True)
              if key.rsplit("__", 1)[-1] in values and not key.startswith(given)}
    estimator.set_params(**nested)
    fixed = {}
    for prefix, sub in _tree(estimator):
        if prefix.startswith(given):
            continue
        for path, value in PER_CLASS.get(type(sub).__name__, {}).items():
            if isinstance(value, str) and value != DEFAULT and "__" not in path:
                continue  # a sub-estimator, set by _fill
            fixed[prefix + path] = _default(sub, path) if value == DEFAULT else value
    return estimator.set_params(**fixed) if fixed else estimator


def labels_for(estimator, y):
    """Labels ``estimator`` can be fitted on: ``y`` itself, or two classes (``y % 2``) for a
    binary-only classifier (whose ``classifier_tags.multi_class`` is False).

    Parameters
    ----------
    estimator : estimator instance
    y : ndarray of shape (n_samples,)
        Integer class labels.

    Returns
    -------
    y : ndarray of shape (n_samples,)

    Examples
    --------
    >>> import numpy as np
    >>> from skdistill import MLPStudent, RankingDistiller
    >>> from skdistill._testing import labels_for
    >>> y = np.array([0, 1, 2, 3])
    >>> labels_for(MLPStudent(), y), labels_for(RankingDistiller(), y)
    (array([0, 1, 2, 3]), array([0, 1, 0, 1]))
    """
    tags = estimator.__sklearn_tags__().classifier_tags
    return y if tags is None or tags.multi_class else y % 2


def fast_instances(type_filter=None, **params):
    """Build the test instance of every skdistill estimator of some kinds.

    Parameters
    ----------
    type_filter : {"teacher", "student", "distiller"}, list of them or None, default=None
        As for :func:`skdistill.discovery.all_estimators`.
    **params
        As for :func:`fast_instance`.

    Returns
    -------
    estimators : list of estimator instances
        One per class, in the order of ``all_estimators``.

    Examples
    --------
    >>> from skdistill._testing import fast_instances
    >>> [type(e).__name__ for e in fast_instances("teacher")]  # doctest: +NORMALIZE_WHITESPACE
    ['DeepEnsembleTeacher', 'LaplaceTeacher', 'MCDropoutTeacher', 'SGLDTeacher',
     'SWAGTeacher', 'VITeacher']
    """
    return [fast_instance(cls, **params) for _, cls in all_estimators(type_filter)]
