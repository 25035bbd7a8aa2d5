"""Model size and cost: parameter counts, forward-pass FLOPs and prediction time."""
import math
import time

import numpy as np
import torch
from sklearn.utils.validation import check_is_fitted
from torch.utils.flop_counter import FlopCounterMode

from ._validation import param_error
from .nets.utils import eval_mode

_ACCEPTED = ("a torch nn.Module, a fitted estimator with merged_module_, module_ or student_, "
             "a fitted scikit-learn tree or tree ensemble, MLP or linear model")


def _resolve_module(func, name, obj):
    """The torch module behind ``obj``: itself, its merged deployed network, or its module."""
    if isinstance(obj, torch.nn.Module):
        return obj
    if not hasattr(obj, "fit"):
        raise param_error(func, name, obj, _ACCEPTED, TypeError)
    check_is_fitted(obj)
    # A merged BatchEnsemble student deploys merged_module_, not the ensemble it trained.
    for attr in ("merged_module_", "module_"):
        module = getattr(obj, attr, None)
        if isinstance(module, torch.nn.Module):
            return module
    student = getattr(obj, "student_", None)
    if student is not None:
        return _resolve_module(func, name, student)
    return None


def _tree_nodes(estimator):
    trees = getattr(estimator, "estimators_", None)
    if hasattr(estimator, "tree_"):
        return int(estimator.tree_.node_count)
    if trees is None:
        return None
    nodes = [_tree_nodes(t) for t in np.ravel(np.asarray(trees, dtype=object))]
    return None if not nodes or None in nodes else int(sum(nodes))


def count_parameters(estimator_or_module, trainable_only=False):
    """Number of parameters of a network, a fitted student or distiller, or a fitted model.

    Parameters
    ----------
    estimator_or_module : object
        One of:

        - a ``torch.nn.Module``: the sum of ``numel`` over its parameters;
        - a fitted estimator with ``merged_module_`` (a merged BatchEnsemble student: the
          network it deploys), else ``module_`` (a skorch-backed student), else
          ``student_`` (a distiller: its student, by these same rules);
        - a fitted scikit-learn decision tree or tree ensemble (random forest, gradient
          boosting): the **total number of tree nodes**, the usual size measure of a forest
          student, not a parameter count;
        - a fitted ``MLPClassifier``/``MLPRegressor`` (``coefs_``, ``intercepts_``) or linear
          model (``coef_``, ``intercept_``): the number of weights and biases.
    trainable_only : bool, default=False
        Count only parameters with ``requires_grad`` (torch modules only).

    Returns
    -------
    n_parameters : int

    Raises
    ------
    sklearn.exceptions.NotFittedError
        For an estimator that is not fitted.
    TypeError
        For anything else.

    Examples
    --------
    >>> import torch
    >>> from skdistill.complexity import count_parameters
    >>> count_parameters(torch.nn.Linear(10, 5))  # 10 * 5 weights + 5 biases
    55
    """
    func = "count_parameters"
    module = _resolve_module(func, "estimator_or_module", estimator_or_module)
    if module is not None:
        return int(sum(p.numel() for p in module.parameters()
                       if p.requires_grad or not trainable_only))
    est = estimator_or_module
    nodes = _tree_nodes(est)
    if nodes is not None:
        return nodes
    if hasattr(est, "coefs_") and hasattr(est, "intercepts_"):
        return int(sum(np.size(a) for a in (*est.coefs_, *est.intercepts_)))
    if hasattr(est, "coef_"):
        return int(np.size(est.coef_) + np.size(getattr(est, "intercept_", 0)))
    raise param_error(func, "estimator_or_module", est, _ACCEPTED, TypeError)


def _triangular_solve_flops(a_shape, b_shape, *args, out_shape=None, **kwargs):
    # substitution with an n x n triangle: n^2 / 2 multiply-adds per right-hand side
    return a_shape[-1] * math.prod(out_shape)


# torch has no formula for it; the Laplace teacher's probit solves one per row and class
_FORMULAS = {torch.ops.aten.linalg_solve_triangular: _triangular_solve_flops}


def count_flops(estimator_or_module, input_shape):
    """Floating-point operations of a network's forward pass or an estimator's ``predict_proba``.

    torch's ``FlopCounterMode`` counts them.

    A network runs once, in eval mode and without gradients, on a zero tensor of
    ``input_shape``. A fitted estimator's ``predict_proba`` runs on zero rows of
    ``input_shape``, so that everything it does counts: a student's one pass of its deployed
    network, but every posterior sample a teacher averages over (``n_samples`` passes of a
    ``VITeacher``, one per kept sample of an ``SGLDTeacher``; a ``LaplaceTeacher`` runs its
    trunk once and ``n_samples`` products of its last layer, or a Jacobian-vector product per
    draw for all weights, or for ``link_approx="probit"`` each row's Jacobian and its
    triangular solves). Work done once per call, such as drawing a Laplace posterior's
    samples, is counted too.

    A multiply-add counts as 2 FLOPs (a ``Linear(d_in, d_out)`` at batch ``b`` is
    ``2 * b * d_in * d_out``; a triangular solve with an ``n x n`` matrix ``n^2`` per
    right-hand side); bias additions, activations, pooling and normalisation are not counted,
    following ``torch.utils.flop_counter``.

    Parameters
    ----------
    estimator_or_module : torch.nn.Module or fitted estimator
        A network, or a fitted student, distiller or teacher backed by a torch network
        (found as in :func:`count_parameters`), with ``predict_proba``. Tree ensembles and
        scikit-learn models are not accepted.
    input_shape : tuple of int
        Shape of the input including the batch dimension, e.g. ``(1, 784)``.

    Returns
    -------
    flops : int

    Examples
    --------
    >>> import torch
    >>> from skdistill.complexity import count_flops
    >>> count_flops(torch.nn.Linear(10, 5), (1, 10))  # 2 * 10 * 5
    100
    """
    func = "count_flops"
    module = _resolve_module(func, "estimator_or_module", estimator_or_module)
    if module is None:
        raise param_error(func, "estimator_or_module", estimator_or_module,
                          "a torch nn.Module or a fitted estimator with merged_module_, "
                          "module_ or student_", TypeError)
    shape = tuple(input_shape) if isinstance(input_shape, (tuple, list)) else None
    if (not shape or not all(isinstance(s, (int, np.integer)) and not isinstance(s, bool)
                             and s > 0 for s in shape)):
        raise param_error(func, "input_shape", input_shape,
                          "a tuple of positive ints including the batch dimension, e.g. (1, 784)")
    counter = FlopCounterMode(display=False, custom_mapping=_FORMULAS)
    if module is not estimator_or_module:
        if not hasattr(estimator_or_module, "predict_proba"):
            raise param_error(func, "estimator_or_module", estimator_or_module,
                              "a fitted estimator with predict_proba, or a torch nn.Module",
                              TypeError)
        with counter:
            estimator_or_module.predict_proba(np.zeros(shape, dtype=np.float32))
        return int(counter.get_total_flops())
    first = next(module.parameters(), None)
    dtype = first.dtype if first is not None and first.is_floating_point() else torch.float32
    device = first.device if first is not None else "cpu"
    x = torch.zeros(shape, dtype=dtype, device=device)
    with eval_mode(module), torch.no_grad(), counter:
        module(x)
    return int(counter.get_total_flops())


def inference_time(estimator, X, n_repeats=5, per=1000):
    """Median wall-clock seconds of ``predict_proba`` per ``per`` rows of ``X``.

    One untimed call warms caches first; then ``predict_proba(X)`` runs ``n_repeats`` times.

    Parameters
    ----------
    estimator : fitted classifier
        Anything with ``predict_proba``.
    X : array-like of shape (n_samples, ...)
        Inputs; the time is rescaled to ``per`` rows.
    n_repeats : int, default=5
        Timed calls.
    per : int, default=1000
        Rows the reported time refers to.

    Returns
    -------
    seconds : float

    Examples
    --------
    >>> from sklearn.datasets import make_classification
    >>> from sklearn.linear_model import LogisticRegression
    >>> from skdistill.complexity import inference_time
    >>> X, y = make_classification(random_state=0)
    >>> inference_time(LogisticRegression().fit(X, y), X) > 0
    True
    """
    func = "inference_time"
    if not hasattr(estimator, "predict_proba"):
        raise param_error(func, "estimator", estimator, "a fitted classifier with predict_proba",
                          TypeError)
    for name, value in (("n_repeats", n_repeats), ("per", per)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise param_error(func, name, value, "an integer >= 1")
    n = len(X)
    if n == 0:
        raise param_error(func, "X", "<empty>", "at least one row")
    estimator.predict_proba(X)
    times = []
    for _ in range(n_repeats):
        start = time.perf_counter()
        estimator.predict_proba(X)
        times.append(time.perf_counter() - start)
    return float(np.median(times)) * per / n


__all__ = ["count_parameters", "count_flops", "inference_time"]
