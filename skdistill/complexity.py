"""Model size and cost: parameter counts, forward-pass FLOPs and prediction time."""
import math
import time

import numpy as np
import torch
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import FeatureUnion, Pipeline
from sklearn.preprocessing import (FunctionTransformer, MaxAbsScaler, MinMaxScaler,
                                   OneHotEncoder, OrdinalEncoder, RobustScaler, StandardScaler)
from sklearn.utils.validation import check_is_fitted
from torch.utils.flop_counter import FlopCounterMode

from ._validation import param_error
from .nets.utils import eval_mode

_ACCEPTED = ("a torch nn.Module, a fitted estimator with merged_module_, module_ or student_, "
             "a fitted scikit-learn tree or tree ensemble (HistGradientBoosting included), MLP "
             "or linear model, or a fitted Pipeline of these and the transformers listed in "
             "the count_parameters documentation")
_ACCEPTED_FLOPS = ("a torch nn.Module, a fitted estimator with merged_module_, module_ or "
                   "student_, a fitted scikit-learn tree or tree ensemble (HistGradientBoosting "
                   "included), or a fitted Pipeline of these and the transformers listed in the "
                   "count_flops documentation")


def _deployed(func, name, obj):
    """What ``obj`` predicts with: a torch module (itself, its merged deployed network or its
    module), else the fitted estimator counted by its structure (``obj``, or a distiller's
    ``student_`` by these same rules, such as a student Pipeline)."""
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
        return _deployed(func, name, student)
    return obj


# -- tree models ---------------------------------------------------------------------------------
def _hgb_trees(estimator):
    """The node arrays of a fitted HistGradientBoosting model's trees (one per iteration and
    class), or None for any other estimator."""
    predictors = getattr(estimator, "_predictors", None)
    if predictors is None or not hasattr(estimator, "n_trees_per_iteration_"):
        return None
    return [tree.nodes for iteration in predictors for tree in iteration]


def _tree_nodes(estimator):
    hgb = _hgb_trees(estimator)
    if hgb is not None:
        return int(sum(len(nodes) for nodes in hgb))
    trees = getattr(estimator, "estimators_", None)
    if hasattr(estimator, "tree_"):
        return int(estimator.tree_.node_count)
    if trees is None:
        return None
    nodes = [_tree_nodes(t) for t in np.ravel(np.asarray(trees, dtype=object))]
    return None if not nodes or None in nodes else int(sum(nodes))


def _tree_flops_per_row(estimator):
    """Comparisons on each tree's longest root-to-leaf path plus the values the trees add
    into the ensemble's sum, per row; None for anything but a tree model."""
    hgb = _hgb_trees(estimator)
    if hgb is not None:
        # one split test per level of the deepest leaf, one leaf value added per tree
        flops = sum(int(nodes["depth"].max()) + 1 for nodes in hgb)
        # categories_from_dtype: the raw categories are looked up among the fitted ones
        preprocessor = getattr(estimator, "_preprocessor", None)
        for _, step, _ in getattr(preprocessor, "transformers_", ()):
            if isinstance(step, OrdinalEncoder):
                flops += _n_categories(step)
        return flops
    if hasattr(estimator, "tree_"):
        return int(estimator.tree_.max_depth)
    trees = getattr(estimator, "estimators_", None)
    if trees is None:
        return None
    trees = np.ravel(np.asarray(trees, dtype=object))
    if not len(trees) or not all(hasattr(t, "tree_") for t in trees):
        return None
    # a forest adds each tree's class probabilities, a boosted ensemble each tree's one value
    return int(sum(t.tree_.max_depth + math.prod(t.tree_.value.shape[1:]) for t in trees))


# -- pipeline steps ------------------------------------------------------------------------------
def _n_categories(encoder):
    return int(sum(len(c) for c in encoder.categories_))


def _n_in(step):
    return int(step.n_features_in_)


def _scaler(step):
    # StandardScaler: subtract mean_, divide by scale_, each only when enabled
    return _n_in(step) * (bool(step.with_mean) + bool(step.with_std))


def _robust(step):
    return _n_in(step) * (bool(step.with_centering) + bool(step.with_scaling))


def _minmax_flops(step):
    # a multiply-add per feature, and two comparisons per feature when clipping
    return 2 * _n_in(step) * (1 + bool(step.clip))


def _identity(step):
    if step.func is not None or step.inverse_func is not None:
        return None
    return 0


# The transformers a Pipeline, ColumnTransformer or FeatureUnion may hold, each with
# (parameters, FLOPs per row) as functions of the fitted step. Numbers stored for the
# transform count as parameters; an arithmetic operation or a comparison is one FLOP.
_STEPS = {
    StandardScaler: (_scaler, _scaler),
    MinMaxScaler: (lambda s: 2 * _n_in(s), _minmax_flops),
    MaxAbsScaler: (_n_in, _n_in),
    RobustScaler: (_robust, _robust),
    # the fill values; each value is tested for being missing
    SimpleImputer: (lambda s: len(s.statistics_), _n_in),
    # the categories; each is an equality test against the column's value
    OneHotEncoder: (_n_categories, _n_categories),
    OrdinalEncoder: (_n_categories, _n_categories),
    # identity only (ColumnTransformer's remainder="passthrough")
    FunctionTransformer: (_identity, _identity),
}
_COMPOSITES = "Pipeline, ColumnTransformer, FeatureUnion"


def _parts(estimator):
    """``(name, step)`` of a Pipeline, ColumnTransformer or FeatureUnion, else None."""
    if isinstance(estimator, Pipeline):
        return list(estimator.steps)
    if isinstance(estimator, ColumnTransformer):
        return [(name, step) for name, step, _ in estimator.transformers_]
    if isinstance(estimator, FeatureUnion):
        return list(estimator.transformer_list)
    return None


def _step_rule(step, which):
    for cls in type(step).__mro__:
        if cls in _STEPS:
            return _STEPS[cls][which](step)
    return None


def _skipped(step):
    return step is None or (isinstance(step, str) and step in ("passthrough", "drop"))


def _step_error(func, step, path, last):
    names = ", ".join(cls.__name__ for cls in _STEPS if cls is not FunctionTransformer)
    return TypeError(
        f"{func}: parameter estimator_or_module has a step {path!r} ({type(step).__name__}) "
        f"that {func} cannot count; expected one of {names}, an identity "
        f"FunctionTransformer, {_COMPOSITES}, 'passthrough' or 'drop', before a last step "
        f"that is {last}.")


_LAST = {"count_parameters": "a torch-backed estimator, a scikit-learn tree or tree ensemble, "
                             "MLP or linear model",
         "count_flops": "a torch-backed estimator or a scikit-learn tree or tree ensemble"}


def _join(path, name):
    return f"{path}__{name}" if path else name


def _count_params(func, obj, trainable_only, path=""):
    if _skipped(obj):
        return 0
    if path and not isinstance(obj, torch.nn.Module) and not hasattr(obj, "fit"):
        raise _step_error(func, obj, path, _LAST[func])
    est = _deployed(func, "estimator_or_module", obj)
    if isinstance(est, torch.nn.Module):
        return int(sum(p.numel() for p in est.parameters()
                       if p.requires_grad or not trainable_only))
    parts = _parts(est)
    if parts is not None:
        return sum(_count_params(func, step, trainable_only, _join(path, name))
                   for name, step in parts)
    count = _step_rule(est, 0)
    if count is None:
        count = _tree_nodes(est)
    if count is None and hasattr(est, "coefs_") and hasattr(est, "intercepts_"):
        count = sum(np.size(a) for a in (*est.coefs_, *est.intercepts_))
    if count is None and hasattr(est, "coef_"):
        count = np.size(est.coef_) + np.size(getattr(est, "intercept_", 0))
    if count is None:
        if path:
            raise _step_error(func, est, path, _LAST[func])
        raise param_error(func, "estimator_or_module", est, _ACCEPTED, TypeError)
    return int(count)


def _count_flops(func, obj, n_rows, path=""):
    """FLOPs of ``obj`` on ``n_rows`` rows, a torch-backed step by running it, the others by
    their structure."""
    if _skipped(obj):
        return 0
    if path and not hasattr(obj, "fit"):
        raise _step_error(func, obj, path, _LAST[func])
    est = _deployed(func, "estimator_or_module", obj)
    if isinstance(est, torch.nn.Module):
        n_features = getattr(obj, "n_features_in_", None)
        if n_features is None or not hasattr(obj, "predict_proba"):
            raise _step_error(func, obj, path, _LAST[func])
        return count_flops(obj, (n_rows, int(n_features)))
    parts = _parts(est)
    if parts is not None:
        return sum(_count_flops(func, step, n_rows, _join(path, name)) for name, step in parts)
    per_row = _step_rule(est, 1)
    if per_row is None:
        per_row = _tree_flops_per_row(est)
    if per_row is None:
        if path:
            raise _step_error(func, est, path, _LAST[func])
        raise param_error(func, "estimator_or_module", est, _ACCEPTED_FLOPS, TypeError)
    return n_rows * int(per_row)


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
        - a fitted ``HistGradientBoostingClassifier``/``Regressor``: likewise the total number
          of nodes, leaves included, of its trees (one per iteration, and per class beyond
          two); its baseline, category bitsets and binning thresholds are not counted;
        - a fitted ``MLPClassifier``/``MLPRegressor`` (``coefs_``, ``intercepts_``) or linear
          model (``coef_``, ``intercept_``): the number of weights and biases;
        - a fitted ``Pipeline`` (also a distiller's student Pipeline): the sum over its steps.
          A last step counts as above; a transformer counts the numbers its ``transform``
          uses: ``StandardScaler`` one mean and one scale per feature (each when enabled),
          ``MinMaxScaler`` two per feature, ``MaxAbsScaler`` one, ``RobustScaler`` up to two,
          ``SimpleImputer`` one fill value per feature, ``OneHotEncoder`` and
          ``OrdinalEncoder`` their categories; a ``ColumnTransformer``, ``FeatureUnion`` or
          nested ``Pipeline`` the sum of its parts; ``"passthrough"``, ``"drop"`` and an
          identity ``FunctionTransformer`` nothing. With a tree last step the sum adds
          nodes to stored numbers: read it as a size, not a parameter count.
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
        For anything else; for a Pipeline, the error names the step it cannot count (its
        name, joined with ``__`` inside a ``ColumnTransformer``, and its type).

    Examples
    --------
    >>> import torch
    >>> from skdistill.complexity import count_parameters
    >>> count_parameters(torch.nn.Linear(10, 5))  # 10 * 5 weights + 5 biases
    55

    A boosted teacher counts the nodes of its trees, a pipeline its steps:

    >>> from sklearn.datasets import make_classification
    >>> from sklearn.ensemble import HistGradientBoostingClassifier
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> X, y = make_classification(random_state=0)
    >>> hgb = HistGradientBoostingClassifier(max_iter=10, max_depth=1).fit(X, y)
    >>> count_parameters(hgb)  # 10 stumps of 3 nodes
    30
    >>> count_parameters(make_pipeline(StandardScaler(), hgb).fit(X, y))  # + 2 * 20 features
    70
    """
    return _count_params("count_parameters", estimator_or_module, trainable_only)


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

    Tree models and pipelines are counted from their fitted structure, without running them,
    ``input_shape[0]`` times one row's count. A tree's row costs one comparison per split on
    its **longest** root-to-leaf path (its depth), whatever the split tests (a threshold, a
    category set, a missing value), and an ensemble adds one FLOP per value a tree adds into
    its sum: one per tree of a gradient boosting or ``HistGradientBoosting`` model, one per
    class and tree of a forest. The longest path is an upper bound on what a row costs
    (most rows stop at shallower leaves): like a network's count it is exact, the same for
    every row and needs no data, and it is what a latency budget must allow for. As for a
    network's activations and biases, the baseline, the learning rate, a forest's division
    by its size and the sigmoid or softmax are not counted. A ``HistGradientBoosting`` model
    fitted with categories from the DataFrame's dtypes also looks each value up among its
    column's categories (one comparison per category).

    A ``Pipeline``'s count is the sum of its steps' on the rows (for a distiller, that of its
    student Pipeline): a last step as described here (a torch-backed student runs on zero
    rows of its ``n_features_in_`` columns), and per row ``StandardScaler`` and
    ``RobustScaler`` one subtraction and one division per feature (each when enabled),
    ``MinMaxScaler`` a multiply-add per feature (and two comparisons when clipping),
    ``MaxAbsScaler`` a division, ``SimpleImputer`` a missing-value test per feature,
    ``OneHotEncoder`` and ``OrdinalEncoder`` one equality test per category of each column;
    a ``ColumnTransformer``, ``FeatureUnion`` or nested ``Pipeline`` the sum of its parts;
    ``"passthrough"``, ``"drop"`` and an identity ``FunctionTransformer`` nothing.

    Parameters
    ----------
    estimator_or_module : torch.nn.Module or fitted estimator
        A network; a fitted student, distiller or teacher backed by a torch network (found
        as in :func:`count_parameters`), with ``predict_proba``; a fitted scikit-learn
        decision tree, tree ensemble or ``HistGradientBoosting`` model; or a fitted
        ``Pipeline`` of the steps above. Other scikit-learn models (linear, MLP) are not
        accepted.
    input_shape : tuple of int
        Shape of the input including the batch dimension, e.g. ``(1, 784)``; for a tree
        model or a pipeline ``(n_rows, n_features_in_)``, the columns of the raw table
        (strings included) for a pipeline.

    Returns
    -------
    flops : int

    Raises
    ------
    sklearn.exceptions.NotFittedError
        For an estimator that is not fitted.
    TypeError
        For anything else; for a Pipeline, the error names the step it cannot count.

    Examples
    --------
    >>> import torch
    >>> from skdistill.complexity import count_flops
    >>> count_flops(torch.nn.Linear(10, 5), (1, 10))  # 2 * 10 * 5
    100

    A boosted teacher of stumps tests one split and adds one value per tree and row:

    >>> from sklearn.datasets import make_classification
    >>> from sklearn.ensemble import HistGradientBoostingClassifier
    >>> X, y = make_classification(random_state=0)
    >>> hgb = HistGradientBoostingClassifier(max_iter=10, max_depth=1).fit(X, y)
    >>> count_flops(hgb, (1, 20))  # 10 trees * (1 comparison + 1 addition)
    20
    """
    func = "count_flops"
    if not isinstance(estimator_or_module, torch.nn.Module) and not hasattr(estimator_or_module,
                                                                            "fit"):
        raise param_error(func, "estimator_or_module", estimator_or_module, _ACCEPTED_FLOPS,
                          TypeError)
    target = _deployed(func, "estimator_or_module", estimator_or_module)
    shape = tuple(input_shape) if isinstance(input_shape, (tuple, list)) else None
    if (not shape or not all(isinstance(s, (int, np.integer)) and not isinstance(s, bool)
                             and s > 0 for s in shape)):
        raise param_error(func, "input_shape", input_shape,
                          "a tuple of positive ints including the batch dimension, e.g. (1, 784)")
    if not isinstance(target, torch.nn.Module):
        n_features = getattr(target, "n_features_in_", None)
        if n_features is not None and shape[1:] != (n_features,):
            raise param_error(func, "input_shape", input_shape,
                              f"(n_rows, {n_features}): the {type(target).__name__} was "
                              f"fitted on {n_features} columns")
        return _count_flops(func, target, int(shape[0]))
    module = target
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
        Anything with ``predict_proba``: a student, a distiller, a teacher, a Pipeline.
    X : array-like or DataFrame of shape (n_samples, ...)
        Inputs, passed to ``predict_proba`` as they are (a DataFrame with string columns for
        a Pipeline that encodes them); the time is rescaled to ``per`` rows.
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
