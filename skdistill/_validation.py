"""Input checks shared by the estimators: errors name the estimator, parameter and value."""
import numbers

import numpy as np


def param_error(estimator, name, value, expected, cls=ValueError):
    """Build the standard error for a bad parameter or argument value."""
    owner = estimator if isinstance(estimator, str) else type(estimator).__name__
    return cls(f"{owner}: parameter {name}={_short(value)} is invalid; expected {expected}.")


def _short(value):
    text = repr(value)
    if len(text) > 80:
        shape = getattr(value, "shape", None)
        text = f"<{type(value).__name__} shape={shape}>" if shape is not None else text[:77] + "..."
    return text


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
    if not all(isinstance(s, numbers.Integral) and s >= 1 for s in layers):
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


def named_errors(owner, check, /, *args, **kwargs):
    """Run a scikit-learn validation function; prefix its ValueError with the estimator's name.

    scikit-learn's messages for inf or a wrong dtype do not always say which estimator
    refused the data; ours always do.
    """
    name = type(owner).__name__
    try:
        return check(*args, **kwargs)
    except ValueError as exc:
        if str(exc).startswith(name) or f" {name} " in str(exc):
            raise
        raise type(exc)(f"{name}: {exc}") from None


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


__all__ = ["param_error", "named_errors", "check_soft_targets", "check_two_classes",
           "check_layer_sizes", "align_proba"]
