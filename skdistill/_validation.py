"""Input checks shared by the estimators: errors name the estimator, parameter and value."""
import inspect
import numbers
from contextlib import contextmanager

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.exceptions import NotFittedError
from sklearn.utils._param_validation import (HasMethods, InvalidParameterError, Interval,
                                            make_constraint)
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import check_is_fitted, column_or_1d, validate_data

from ._devices import device_problem
from ._interrupt import warn_user

#: Largest finite float32: inputs beyond it become inf inside every torch network.
FLOAT32_MAX = float(np.finfo(np.float32).max)


def param_error(estimator, name, value, expected, cls=ValueError):
    """Build the standard error for a bad parameter or argument value."""
    return cls(f"{_owner_name(estimator)}: parameter {name}={_short(value)} is invalid; "
               f"expected {expected}.")


class Shown(str):
    """A description shown as is in an error (``X=<DataFrame with column 'a'>``), unquoted."""

    def __repr__(self):
        return str(self)


def _short(value):
    text = repr(value)
    if len(text) > 80:
        shape = getattr(value, "shape", None)
        text = f"<{type(value).__name__} shape={shape}>" if shape is not None else text[:77] + "..."
    return text


def is_number(value, kind=numbers.Real):
    """Whether ``value`` is a number of ``kind`` (``numbers.Real``, ``numbers.Integral``) and
    not a bool: Python counts ``True`` as the int 1, which no numeric setting means."""
    return isinstance(value, kind) and not isinstance(value, (bool, np.bool_))


def check_numbers_not_bools(estimator):
    """Refuse a bool for a parameter that scikit-learn's constraints accept only as a number.

    scikit-learn's ``Interval(numbers.Integral, ...)`` and ``Interval(numbers.Real, ...)``
    accept ``True`` and ``False`` (bools are ints), so ``n_samples=True`` would silently be
    one sample. A parameter that also accepts bools by another constraint (``"verbose"``,
    ``"boolean"``) keeps them.
    """
    params = estimator.get_params(deep=False)
    for name, constraints in estimator._parameter_constraints.items():
        value = params.get(name)
        if not isinstance(value, bool):
            continue
        made = [make_constraint(c) for c in constraints]
        if any(c.is_satisfied_by(value) for c in made if not isinstance(c, Interval)):
            continue
        if any(isinstance(c, Interval) for c in made):
            shown = " or ".join(str(c) for c in made if not c.hidden)
            raise param_error(estimator, name, value, f"{shown}, not a bool",
                              InvalidParameterError)


def missing_members(obj, contract):
    """The members of the protocol ``contract`` (of :mod:`skdistill.base`) that ``obj`` lacks,
    in the order the protocol and its bases define them: methods, and annotated attributes."""
    names = []
    for cls in reversed(contract.__mro__):
        if cls.__module__ == contract.__module__:
            names += [name for name, value in vars(cls).items() if inspect.isfunction(value)]
            names += list(vars(cls).get("__annotations__", {}))
    return [name for name in dict.fromkeys(names)
            if not name.startswith("__") and not hasattr(obj, name)]


class Implements(HasMethods):
    """Parameter constraint: an object with the ``methods`` of ``contract`` (a protocol of
    :mod:`skdistill.base`) that the estimator calls; scikit-learn's ``HasMethods``, naming the
    contract. :func:`check_contracts` names the methods a refused value lacks."""

    def __init__(self, contract, methods):
        super().__init__(list(methods))
        self.contract = contract

    def missing(self, value):
        """The methods of :attr:`methods` that ``value`` lacks (not callable there)."""
        return [m for m in self.methods if not callable(getattr(value, m, None))]

    def __str__(self):
        return f"a {self.contract.__module__}.{self.contract.__name__} ({super().__str__()})"


def check_contracts(estimator):
    """Refuse a parameter value that fails its :class:`Implements` constraint, naming the
    methods it lacks, in scikit-learn's words for an invalid parameter."""
    params = estimator.get_params(deep=False)
    for name, constraints in estimator._parameter_constraints.items():
        if isinstance(constraints, str) or not any(isinstance(c, Implements)
                                                   for c in constraints):
            continue
        value = params.get(name)
        made = [make_constraint(c) for c in constraints]
        if any(c.is_satisfied_by(value) for c in made):
            continue
        contract = next(c for c in made if isinstance(c, Implements))
        missing = contract.missing(value)
        shown = " or ".join(str(c) for c in made if not c.hidden)
        raise InvalidParameterError(
            f"The {name!r} parameter of {type(estimator).__name__} must be {shown}. Got "
            f"{_short(value)} instead: {type(value).__name__} has no "
            f"{'method' if len(missing) == 1 else 'methods'} {_listed(missing)}.")


def _listed(names):
    """``"a"``, ``"a and b"``, ``"a, b and c"``."""
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


class StrictParamsMixin:
    """scikit-learn's parameter validation, where a bool is not a number
    (:func:`check_numbers_not_bools`) and an object lacking a method of its contract is named
    (:func:`check_contracts`): every skdistill estimator has it."""

    def _validate_params(self):
        # first: scikit-learn refuses some bools by range (dropout=True), in its own words
        check_numbers_not_bools(self)
        check_contracts(self)
        super()._validate_params()


def check_soft_targets(estimator, soft_targets, n_samples, n_classes, name="soft_targets",
                       atol=1e-3):
    """Validate a probability matrix ``(n_samples, n_classes)`` whose rows sum to one."""
    try:
        P = np.asarray(soft_targets, dtype=np.float64)
    except (TypeError, ValueError):
        raise param_error(estimator, name, soft_targets, "a numeric array", TypeError) from None
    if P.shape != (n_samples, n_classes):
        raise param_error(
            estimator, name, f"<array of shape {P.shape}>",
            f"shape {(n_samples, n_classes)} (n_samples, n_classes in classes_ order)",
        )
    if not np.isfinite(P).all():
        raise param_error(estimator, name, "<array with NaN or inf>", "finite probabilities")
    if (P < 0).any():
        raise param_error(estimator, name, f"<array with min {P.min():.3g}>",
                          "non-negative probabilities")
    sums = P.sum(axis=1)
    bad = np.abs(sums - 1.0) > atol
    if bad.any():
        i = int(np.argmax(bad))
        raise param_error(estimator, name, f"<array whose row {i} sums to {sums[i]:.6g}>",
                          f"rows that sum to 1 (within {atol})")
    return P / sums[:, None]


def check_layer_sizes(estimator, sizes, name="hidden_layer_sizes"):
    """Hidden layer widths as a tuple of positive ints (one int is one layer)."""
    layers = (sizes,) if isinstance(sizes, numbers.Integral) else tuple(sizes)
    if not all(is_number(s, numbers.Integral) and s >= 1 for s in layers):
        raise param_error(estimator, name, sizes, "positive integers")
    return layers


def check_two_classes(estimator, classes):
    """Classifiers need at least two classes in ``y``."""
    if len(classes) < 2:
        only = classes[0].item() if hasattr(classes[0], "item") else classes[0]
        raise ValueError(
            f"{type(estimator).__name__}: y has only one class ({only!r}); "
            "a classifier needs samples of at least 2 classes."
        )


def _owner_name(owner):
    return owner if isinstance(owner, str) else type(owner).__name__


def named_errors(owner, check, /, *args, **kwargs):
    """Run a scikit-learn validation function; prefix its error with the estimator's name.

    scikit-learn's messages for inf, sparse input or a wrong dtype do not always say which
    estimator refused the data; ours always do.
    """
    name = _owner_name(owner)
    try:
        return check(*args, **kwargs)
    except (ValueError, TypeError) as exc:
        if str(exc).startswith(name) or f" {name} " in str(exc):
            raise
        raise type(exc)(f"{name}: {exc}") from None


@contextmanager
def refused_by(owner, label):
    """Name the sub-estimator that refused ``X``: its ``ValueError`` or ``TypeError`` is
    re-raised, same type, as ``"<owner>: the <label> refused X: <its message>"``.

    ``label`` says which one, e.g. ``"teacher HistGradientBoostingClassifier"`` or
    ``"student step 'onehot' (OneHotEncoder)"`` (or is a function giving it, called only
    when there is an error). Parameter errors (scikit-learn's
    ``InvalidParameterError``), ``NotFittedError`` and a diverged training run are
    re-raised as they are: they are not about ``X``.
    """
    try:
        yield
    except (ValueError, TypeError) as exc:
        if (isinstance(exc, (InvalidParameterError, NotFittedError))
                or "training diverged" in str(exc)):
            raise
        try:
            who = label(exc) if callable(label) else label
            named = type(exc)(f"{_owner_name(owner)}: the {who} refused X: {exc}")
        except Exception:  # an exception type that wants other arguments: as it is
            raise exc from None
        raise named from None


def check_float32_range(owner, X, name="X"):
    """Reject finite values that overflow float32, the precision every network computes in.

    scikit-learn's checks accept 1e300 in float64; cast to float32 it becomes inf and the
    network's outputs NaN, so the error belongs at the door.
    """
    top = float32_overflow(X.data if sp.issparse(X) else X)
    if top is not None:
        raise param_error(owner, name, f"<array with max |value| {top:.3g}>",
                          f"values within float32's range (|x| <= {FLOAT32_MAX:.3g}); "
                          "rescale the data, e.g. with StandardScaler")
    return X


def float32_overflow(values):
    """The largest ``|value|`` of a float64 array when it is beyond float32's range, else
    None (float32 and non-float arrays never are)."""
    if values.dtype.kind == "f" and values.dtype.itemsize > 4 and values.size:
        top = float(np.max(np.abs(values)))
        if top > FLOAT32_MAX:
            return top
    return None


def check_input(owner, X, y="no_validation", **kwargs):
    """Validate ``X`` (and ``y``) as scikit-learn's ``validate_data`` does, for an estimator.

    The errors name ``owner``, and finite values beyond float32's range are refused (see
    :func:`check_float32_range`). Returns what ``validate_data`` returns: ``X`` or ``(X, y)``.
    """
    if isinstance(y, str) and y == "no_validation":  # validate_data's own default
        return check_float32_range(owner, named_errors(owner, validate_data, owner, X, **kwargs))
    X, y = named_errors(owner, validate_data, owner, X, y, **kwargs)
    return check_float32_range(owner, X), y


# the dtypes a fitted network takes as they are on the fast path (native byte order only)
_FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


class CheckedRows:
    """Rows that passed :func:`fast_float_rows` for a fitted student, as its network takes
    them (float32): a distiller hands them to its student, which does not check them again.

    Internal: only skdistill's own estimators make and take these.
    """

    __slots__ = ("array",)

    def __init__(self, array):
        self.array = array


def is_plain_float_array(estimator, X):
    """Whether ``X`` is a plain NumPy float array (float32 or float64, native byte order) of
    at least two dimensions and one row, and ``estimator`` was fitted without feature names:
    an input on which scikit-learn's ``validate_data`` has nothing to convert or warn about,
    once its shape and values are checked (:func:`fast_float_rows`)."""
    return (type(X) is np.ndarray and X.dtype in _FLOAT_DTYPES and X.ndim >= 2
            and X.shape[0] > 0 and getattr(estimator, "feature_names_in_", None) is None)


_SUM_CHECK_MAX = 4096


def fast_float_rows(X):
    """``X`` as float32, as the networks take it, when every value is finite and within
    float32's range; None otherwise.

    The fast path of a fitted estimator's prediction, for an ``X`` that
    :func:`is_plain_float_array` accepted in the fitted shape: the values are those
    :func:`check_input` accepts (no NaN or inf, ``|x| <= FLOAT32_MAX``), checked on ``X``
    itself, and the conversion is the one the checked path makes (a float32 array, copied
    only when ``X`` is float64 or read-only, its memory layout kept). None sends the caller
    to the checked path, which raises the error (or does what it does with an array torch
    cannot take as it is: one with negative strides).
    """
    # float32 values are within float32's range unless infinite: on a few rows, a finite sum
    # proves every value finite in one ufunc call; a sum that is not (a NaN, an inf, or large
    # values that overflow together) goes on to the exact test. From _SUM_CHECK_MAX values
    # on, min and max (vectorised where float32 sums are not) are the quicker of the two
    # (5 against 8 us on 1,000 x 23). The ufuncs' reductions themselves are a few
    # microseconds less than X.sum(), X.min(), X.max(); a NaN fails both comparisons.
    if (X.dtype != np.float32 or X.size >= _SUM_CHECK_MAX
            or not np.isfinite(np.add.reduce(X, axis=None))):
        low, high = np.minimum.reduce(X, axis=None), np.maximum.reduce(X, axis=None)
        if not (-FLOAT32_MAX <= low and high <= FLOAT32_MAX):
            return None
    if X.dtype != np.float32 or not X.flags.writeable:  # else np.require returns X itself
        X = np.require(X, dtype=np.float32, requirements="W")
    # negative strides (X[::-1]) are what torch refuses: the checked path copies them
    return X if min(X.strides) >= 0 else None


def check_fitted(estimator, attribute):
    """scikit-learn's ``check_is_fitted(estimator, attribute)``, its error included, with the
    attribute looked up first: a fitted estimator's prediction pays one ``hasattr``."""
    if not hasattr(estimator, attribute):
        check_is_fitted(estimator, attribute)


def check_labels_present(owner, y, name="y"):
    """Refuse missing labels (NaN, or None in an object array), naming the first row."""
    y = np.asarray(y)
    if y.dtype.kind == "f":
        missing = np.isnan(y)
    elif y.dtype == object:
        missing = np.array([v is None or (isinstance(v, float) and v != v) for v in y.ravel()])
    else:
        return
    if missing.any():
        raise param_error(owner, name, f"<array with NaN or None at row "
                                       f"{int(np.flatnonzero(missing)[0])}>",
                          "class labels without missing values")


def encode_labels(owner, y):
    """Validate classification labels; return ``(classes_, y_encoded)``.

    One place for every estimator: a 1-d array, no NaN, labels of one kind (all strings or
    all numbers), discrete (not a regression target), at least two classes.
    """
    name = _owner_name(owner)
    y = named_errors(owner, column_or_1d, y, warn=True)
    check_labels_present(owner, y, "y")
    if y.dtype == object:
        kinds = {str if isinstance(v, str) else type(v).__name__ for v in y}
        if str in kinds and len(kinds) > 1:
            raise param_error(owner, "y", "<labels mixing strings and numbers>",
                              "labels of one type (all strings or all numbers)", TypeError)
    try:
        check_classification_targets(y)
    except ValueError:
        kind = type_of_target(y)
        raise ValueError(
            f"{name}: Unknown label type: {kind} (y begins {y[:3].tolist()}); {name} is a "
            "classifier and needs discrete class labels: bin a continuous target first, or "
            "use a regressor.") from None
    classes, y_enc = np.unique(y, return_inverse=True)
    check_two_classes(owner, classes)
    return classes, y_enc


def check_device(owner, device, name="device"):
    """A torch device that exists on this machine (:func:`skdistill._devices.device_problem`,
    ``"meta"`` refused), checked before any work starts."""
    problem = device_problem(device, training=True)
    if problem is not None:
        raise param_error(owner, name, device, problem.expected)
    return torch.device(device)


def callback_objects(callbacks):
    """``(item, callback)`` for each entry of a skorch ``callbacks`` list: the callback of a
    ``(name, callback)`` pair, any other entry as it is."""
    for item in callbacks or []:
        named = isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str)
        yield item, item[1] if named else item


def check_callbacks(owner, callbacks, name="callbacks"):
    """skorch callbacks: ``Callback`` instances or ``(name, Callback)`` pairs."""
    from skorch.callbacks import Callback

    for item, cb in callback_objects(callbacks):
        if not (isinstance(cb, Callback) or (isinstance(cb, type) and issubclass(cb, Callback))):
            raise param_error(owner, name, callbacks,
                              "a list of skorch callbacks (skorch.callbacks.Callback instances "
                              f"or (name, callback) pairs); item {item!r} is not one",
                              TypeError)


def check_sample_weight(owner, sample_weight, n_rows, name="sample_weight"):
    """Row weights as float64, or None where they are absent or all ones (then exactly as
    unweighted: same arithmetic, same result).

    Refuses a wrong length, negative, NaN or infinite weights, and weights that sum to zero.
    """
    if sample_weight is None:
        return None
    from sklearn.utils.validation import _check_sample_weight

    sw = named_errors(owner, _check_sample_weight, sample_weight, np.empty((n_rows, 0)),
                      dtype=np.float64, ensure_non_negative=True)
    if not np.isfinite(sw).all():
        raise param_error(owner, name, "<array with NaN or inf>", "finite weights")
    if not sw.sum() > 0:
        raise param_error(owner, name, "<weights summing to 0>",
                          "non-negative weights with a positive sum")
    return None if np.all(sw == 1.0) else sw


def check_validation_fraction(owner, fraction, n_rows):
    """``validation_fraction`` must leave a training row and a validation row of ``n_rows``."""
    if fraction is None:
        return
    n_valid = int(np.ceil(fraction * n_rows))
    if n_valid < 1 or n_rows - n_valid < 1:
        largest = (n_rows - 1) / n_rows if n_rows > 1 else 0.0
        raise param_error(owner, "validation_fraction", fraction,
                          f"a fraction that leaves at least one of the {n_rows} rows for "
                          f"training and one for validation (at most {largest:.3g}), or None")


def validate_params(estimator):
    """Run an estimator's own parameter validation (scikit-learn's), and its sub-estimators'.

    Meta-estimators call this before fitting anything, so a bad student parameter (an
    unavailable ``device``, say) is reported before minutes of teacher training, not after.
    """
    validate = getattr(estimator, "_validate_params", None)
    if callable(validate) and hasattr(estimator, "_parameter_constraints"):
        validate()
    get_params = getattr(estimator, "get_params", None)
    if callable(get_params) and not isinstance(estimator, type):
        for value in get_params(deep=False).values():
            if hasattr(value, "get_params") and not isinstance(value, type):
                validate_params(value)


def check_teacher_proba(owner, proba, teacher_classes, classes, teacher=None, atol=1e-3):
    """Teacher probabilities in ``classes`` column order, validated and renormalised.

    The one check every distiller and ensemble applies to what a teacher returns: shape
    ``(n, len(teacher_classes))``, finite, non-negative, rows summing to one within ``atol``
    (tiny drift is renormalised away; anything else, e.g. scores or logits, is rejected).
    Columns are then aligned to ``classes``: zero for a class the teacher never saw; the
    probability of a class that ``y`` lacks is dropped and the row renormalised (a row with
    all its mass there is an error). :func:`warn_class_mismatch` says so once per fit.
    """
    what = "teacher" if teacher is None else f"teacher {type(teacher).__name__}"
    P = np.asarray(proba, dtype=np.float64)
    n_cols = len(teacher_classes)
    if P.ndim != 2 or P.shape[1] != n_cols:
        raise ValueError(
            f"{_owner_name(owner)}: the {what} returned predict_proba of shape {P.shape}; "
            f"expected (n_samples, {n_cols}), one column per class in its classes_.")
    P = check_soft_targets(owner, P, len(P), n_cols, name=f"{what}.predict_proba(X)",
                           atol=atol)
    aligned = align_proba(P, teacher_classes, classes)
    if aligned is P:
        return P
    mass = aligned.sum(axis=1, keepdims=True)
    if (mass <= 0).any():
        row = int(np.flatnonzero(mass[:, 0] <= 0)[0])
        raise ValueError(
            f"{_owner_name(owner)}: the {what} puts all the probability of row {row} on "
            f"classes that y lacks ({sorted(set(teacher_classes) - set(classes))}); it cannot "
            "teach the classes of y there.")
    return aligned / mass


def warn_class_mismatch(owner, fitted, classes, what="teacher"):
    """Warn once when fitted teachers (members, fold teachers) do not match the classes of y.

    A class of ``y`` a teacher was not fitted on gets zero probability from it; a class it
    was fitted on that ``y`` lacks has its probability dropped and the rows renormalised.
    """
    known = [set(np.asarray(getattr(t, "classes_", classes)).tolist()) for t in fitted]
    ours = set(np.asarray(classes).tolist())
    missing = sorted(set().union(*(ours - k for k in known)))
    extra = sorted(set().union(*(k - ours for k in known)))
    name = _owner_name(owner)
    if missing:
        warn_user(f"{name}: the {what} gives no probability to classes {missing} of y, which "
                  "it was not fitted on; they get probability 0 from it.")
    if extra:
        warn_user(f"{name}: the {what} was fitted on classes {extra} that y lacks; their "
                  "probability is dropped and each row renormalised.")


def align_proba(proba, source_classes, target_classes):
    """Reorder (and zero-fill) probability columns from ``source_classes`` to ``target_classes``."""
    source_classes = list(source_classes)
    if list(target_classes) == source_classes:
        return proba
    out = np.zeros((proba.shape[0], len(target_classes)), dtype=proba.dtype)
    index = {c: i for i, c in enumerate(source_classes)}
    for j, c in enumerate(target_classes):
        if c in index:
            out[:, j] = proba[:, index[c]]
    return out


__all__ = ["param_error", "is_number", "check_numbers_not_bools", "StrictParamsMixin",
           "named_errors", "check_soft_targets", "check_two_classes",
           "check_layer_sizes", "align_proba", "check_float32_range", "encode_labels",
           "check_device", "check_callbacks", "check_input", "check_labels_present",
           "check_validation_fraction", "validate_params", "check_teacher_proba",
           "warn_class_mismatch", "check_sample_weight", "refused_by", "CheckedRows",
           "is_plain_float_array", "fast_float_rows", "check_fitted"]
