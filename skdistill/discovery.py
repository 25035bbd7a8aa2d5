"""Discovery of skdistill's estimators: every teacher, student and distiller, by kind.

:func:`all_estimators` is the one list of the estimators: ``skdistill``'s own exports, the
test suite's common checks, ONNX registration and the API reference all come from it. An
estimator's kind is the subpackage that exports it (:data:`KINDS`), so adding an estimator
means writing its module and naming it in its subpackage's ``__all__``.
"""
import inspect
from importlib import import_module

from sklearn.base import BaseEstimator

from ._validation import param_error

#: The kinds of estimator, each with the subpackage whose ``__all__`` exports its estimators.
KINDS = {
    "teacher": "skdistill.teachers",
    "student": "skdistill.students",
    "distiller": "skdistill.distillers",
}


def _is_estimator(name, obj):
    # The subpackages also export the ``Base*`` classes their estimators are built on (for
    # extenders, see doc/extending.md): bases, like abstract classes, are not estimators.
    return (inspect.isclass(obj) and issubclass(obj, BaseEstimator)
            and not name.startswith("Base") and not inspect.isabstract(obj))


def _kinds(type_filter):
    if type_filter is None:
        return list(KINDS)
    kinds = [type_filter] if isinstance(type_filter, str) else type_filter
    if (not isinstance(kinds, (list, tuple)) or not kinds
            or any(not isinstance(kind, str) or kind not in KINDS for kind in kinds)):
        raise param_error("all_estimators", "type_filter", type_filter,
                          f"None, one of {sorted(KINDS)} or a non-empty list of them")
    return kinds


def all_estimators(type_filter=None):
    """Get the list of skdistill's public estimators, by kind.

    An estimator's kind is the subpackage that exports it: the estimators named in the
    ``__all__`` of ``skdistill.teachers`` are teachers, of ``skdistill.students`` students
    and of ``skdistill.distillers`` distillers. The ``Base*`` classes those subpackages also
    export, to build estimators on, are not estimators. Every estimator is importable from
    ``skdistill`` itself.

    Parameters
    ----------
    type_filter : {"teacher", "student", "distiller"}, list of them or None, default=None
        The kinds of estimator to list: one, several (those of any of them) or, with ``None``,
        all.

    Returns
    -------
    estimators : list of (str, type)
        ``(name, class)`` of every estimator of those kinds, sorted by name.

    Raises
    ------
    ValueError
        If ``type_filter`` names a kind other than those above.

    Examples
    --------
    >>> from skdistill.discovery import all_estimators
    >>> [name for name, cls in all_estimators(type_filter="student")]
    ['CNNStudent', 'LatentBECNNStudent', 'LatentBEStudent', 'MLPStudent']
    >>> names = [name for name, cls in all_estimators(["teacher", "distiller"])]
    >>> "SGLDTeacher" in names, "GPEDDistiller" in names, "MLPStudent" in names
    (True, True, False)
    >>> all_estimators()[0]
    ('CNNStudent', <class 'skdistill.students.cnn.CNNStudent'>)
    """
    found = {}
    for kind in _kinds(type_filter):
        module = import_module(KINDS[kind])
        for name in module.__all__:
            obj = getattr(module, name)
            if _is_estimator(name, obj):
                found[name] = obj
    return sorted(found.items())


__all__ = ["KINDS", "all_estimators"]
