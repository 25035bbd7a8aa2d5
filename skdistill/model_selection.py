"""Choosing a student: cost scorers for a search, its Pareto frontier, and a plot of it.

A student is chosen on two axes, how good it is and what it costs. :func:`cost_scorers` gives
scikit-learn scorers for the cost of a fitted estimator (``predict_proba``'s FLOPs per row,
parameter count, measured ``predict_proba`` time per row), to put next to a quality metric in a
multi-metric search::

    search = GridSearchCV(student, grid, refit="neg_log_loss",
                          scoring={"neg_log_loss": "neg_log_loss", **cost_scorers()})

Following scikit-learn, a scorer is "greater is better", so a cost is reported negated
(``neg_flops``...). :func:`pareto_front` keeps the searched settings that no other setting
beats on both axes (lower cost and higher score), and :func:`plot_pareto` draws the score
against the cost with that frontier, as Figure 2 of Vadera et al. (2020).
"""
import numbers

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

from ._validation import param_error
from .complexity import count_flops, count_parameters, inference_time

COSTS = ("flops", "parameters", "latency")


def deployed_network(estimator, X):
    """``(estimator, input shape)``: what ``predict_proba`` runs, and the shape of one row.

    The last step of a pipeline (``X`` transformed by the steps before it), and of a
    distiller its student (the network behind ``predict_proba``; a GPED distiller's other
    heads are not counted). The shape is the student's ``input_shape_`` when it has one (a
    CNN fed flat rows), else that of one transformed row, batch dimension included.
    """
    head = X[:1]
    if isinstance(estimator, Pipeline):
        for _, step in estimator.steps[:-1]:
            if step is not None and step != "passthrough":
                head = step.transform(head)
        estimator = estimator.steps[-1][1]
    while getattr(estimator, "student_", None) is not None:
        estimator = estimator.student_
    shape = getattr(estimator, "input_shape_", None)
    if shape is None:
        shape = np.asarray(head.toarray() if hasattr(head, "toarray") else head).shape[1:]
    return estimator, (1,) + tuple(int(s) for s in shape)


class _CostScorer:
    """``scorer(estimator, X, y) = -cost`` (picklable, so parallel searches can send it)."""

    def __init__(self, cost, n_repeats=3):
        self.cost, self.n_repeats = cost, n_repeats

    def __call__(self, estimator, X, y=None):
        if self.cost == "latency":
            return -inference_time(estimator, X, n_repeats=self.n_repeats, per=1)
        network, shape = deployed_network(estimator, X)
        if self.cost == "parameters":
            return -float(count_parameters(network))
        # two rows less one: work done once per call (drawing a Laplace posterior's
        # samples) is not a row's
        return -float(count_flops(network, (2,) + shape[1:]) - count_flops(network, shape))

    def __repr__(self):
        return f"make_cost_scorer({self.cost!r})"


def make_cost_scorer(cost, *, n_repeats=3):
    """A scorer returning minus the cost of a fitted estimator (greater is better).

    Parameters
    ----------
    cost : {"flops", "parameters", "latency"}
        ``"flops"``: FLOPs per row of ``predict_proba`` (:func:`~skdistill.complexity.
        count_flops`: one forward pass of a student, every posterior sample of a teacher;
        those of two rows less those of one, so that work done once per call is left
        out); ``"parameters"``: :func:`~skdistill.complexity.count_parameters`
        (tree ensembles: their node count); both of the network behind ``predict_proba``
        (:func:`deployed_network`: the last step of a pipeline, a distiller's student).
        ``"latency"``: median seconds per row of ``predict_proba`` on the scored rows
        (:func:`~skdistill.complexity.inference_time`), measured, so it varies from run to
        run and with the machine's load.
    n_repeats : int, default=3
        Timed calls for ``"latency"``.

    Returns
    -------
    scorer : callable ``(estimator, X, y) -> float``

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from skdistill import MLPStudent
    >>> from skdistill.model_selection import make_cost_scorer
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = MLPStudent(hidden_layer_sizes=(8,), max_epochs=2, random_state=0).fit(X, y)
    >>> make_cost_scorer("flops")(clf, X, y)  # 2 * (4 * 8 + 8 * 3)
    -112.0
    """
    if cost not in COSTS:
        raise param_error("make_cost_scorer", "cost", cost, f"one of {list(COSTS)}")
    if (isinstance(n_repeats, bool) or not isinstance(n_repeats, numbers.Integral)
            or n_repeats < 1):
        raise param_error("make_cost_scorer", "n_repeats", n_repeats, "an integer >= 1")
    return _CostScorer(cost, int(n_repeats))


def cost_scorers(costs=COSTS, *, n_repeats=3):
    """``{"neg_<cost>": scorer}`` for a multi-metric search's ``scoring``.

    Examples
    --------
    >>> from skdistill.model_selection import cost_scorers
    >>> sorted(cost_scorers())
    ['neg_flops', 'neg_latency', 'neg_parameters']
    """
    if isinstance(costs, str):
        costs = (costs,)
    return {f"neg_{c}": make_cost_scorer(c, n_repeats=n_repeats) for c in costs}


def _column(func, frame, name, what):
    """``(values, label)`` of column ``name`` (or ``mean_test_<name>``); a ``neg_`` column
    is negated when it is the cost."""
    if not isinstance(name, str):
        raise param_error(func, what, name, "a column name", TypeError)
    for column in (name, f"mean_test_{name}"):
        if column in frame.columns:
            values = pd.to_numeric(frame[column], errors="coerce").astype(float)
            # a missing value is a failed fit (error_score=nan) and its row is left out; a
            # value that is not a number is a wrong column, not a failed fit
            bad = values.isna() & frame[column].notna()
            if bad.any():
                raise param_error(func, what, name,
                                  f"a numeric column; {column!r} holds "
                                  f"{frame[column][bad].iloc[0]!r} at row {bad.idxmax()!r}")
            bare = column[len("mean_test_"):] if column.startswith("mean_test_") else column
            if what == "cost" and bare.startswith("neg_"):
                return -values, bare[len("neg_"):]
            return values, bare
    raise param_error(func, what, name, "a column of the results (or, for a search's "
                      f"cv_results_, a scorer name); the columns are {list(frame.columns)}")


def _as_frame(func, results):
    if isinstance(results, pd.DataFrame):
        return results
    if isinstance(results, dict):
        try:
            return pd.DataFrame(results)
        except ValueError as exc:
            raise param_error(func, "results", "<dict>", f"a search's cv_results_ ({exc})")
    raise param_error(func, "results", results, "a DataFrame or a search's cv_results_ dict",
                      TypeError)


def pareto_front(results, cost, score):
    """The rows that no other row beats on both cost (lower) and score (higher).

    Parameters
    ----------
    results : pandas.DataFrame or dict
        One row per model, e.g. ``search.cv_results_`` of a multi-metric search.
    cost : str
        The cost column, or a scorer name of a search (``"neg_flops"`` reads
        ``mean_test_neg_flops``). A column named ``neg_...`` holds minus the cost
        (scikit-learn's greater-is-better convention) and is negated back.
    score : str
        The quality column (higher is better), or a scorer name (``"neg_log_loss"``).

    Returns
    -------
    front : pandas.DataFrame
        The non-dominated rows of ``results``, its index and columns kept, sorted by
        increasing cost. Rows with a missing cost or score (a failed fit) are left out; two
        rows with equal cost and score are both kept. A value that is not a number (a cost
        of ``"20 MFLOPs"``), or no row with both a finite cost and score, is a ``ValueError``.

    Examples
    --------
    >>> import pandas as pd
    >>> from skdistill.model_selection import pareto_front
    >>> runs = pd.DataFrame({"flops": [10, 20, 30, 25], "accuracy": [.8, .9, .95, .85]},
    ...                     index=list("abcd"))
    >>> list(pareto_front(runs, cost="flops", score="accuracy").index)  # d: b is cheaper and better
    ['a', 'b', 'c']
    """
    frame = _as_frame("pareto_front", results)
    return frame.iloc[_front("pareto_front", frame, cost, score)[-1]]


def _front(func, frame, cost, score):
    """``(cost values, cost label, score values, score label, front)``: ``front`` the row
    positions of :func:`pareto_front`'s rows, by increasing cost."""
    c, cost_name = _column(func, frame, cost, "cost")
    s, score_name = _column(func, frame, score, "score")
    finite_c, finite_s = np.isfinite(c.to_numpy()), np.isfinite(s.to_numpy())
    ok = finite_c & finite_s
    if not ok.any():  # nothing to compare: an empty front would look like a result
        what, name, other = (("cost", cost, "score") if not finite_c.any()
                             else ("score", score, "cost"))
        raise param_error(func, what, name, f"a finite value on at least one row with a finite "
                          f"{other}; there is none (a failed fit leaves NaN: did every fit "
                          "fail?)")
    position = np.flatnonzero(ok)
    cv, sv = c.to_numpy()[ok], s.to_numpy()[ok]
    # sort by cost, then by score (best first); a row is on the front when its score beats
    # every cheaper row's (ties in both: kept together)
    order = np.lexsort((-sv, cv))
    keep, best, last = [], -np.inf, None
    for i in order:
        if sv[i] > best or (last is not None and cv[i] == cv[last] and sv[i] == sv[last]):
            keep.append(i)
            if sv[i] > best:
                best, last = sv[i], i
    return c, cost_name, s, score_name, position[keep]


def plot_pareto(results, cost, score, *, ax=None, label=None, color=None, annotate=None,
                logx=True):
    """Draw score against cost: every row as a point, the Pareto frontier as a line.

    Call it once per method on the same ``ax`` to compare searches, e.g. width search
    against pruning (Figure 2 of Vadera et al.).

    Parameters
    ----------
    results, cost, score
        As in :func:`pareto_front`.
    ax : matplotlib Axes, default=None
        ``None`` draws on a new figure.
    label : str, default=None
        Legend entry of this method.
    color : matplotlib colour, default=None
    annotate : str, default=None
        A column whose value is written next to each frontier point (e.g. a parameter).
    logx : bool, default=True
        Logarithmic cost axis; a cost of 0 or less is then an error (pass ``logx=False``).

    Returns
    -------
    ax : matplotlib Axes

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import pandas as pd
    >>> from skdistill.model_selection import plot_pareto
    >>> runs = pd.DataFrame({"flops": [10, 20, 30, 25], "accuracy": [.8, .9, .95, .85]})
    >>> ax = plot_pareto(runs, "flops", "accuracy", label="width search")
    >>> len(ax.lines)  # the frontier
    1
    """
    try:
        import matplotlib.pyplot as plt
        from matplotlib.axes import Axes
        from matplotlib.colors import is_color_like
        from matplotlib.ticker import LogLocator
    except ImportError:  # pragma: no cover - the plot extra is not installed
        raise ImportError("plot_pareto needs matplotlib: pip install skdistill[plot]") from None
    func = "plot_pareto"
    frame = _as_frame(func, results)
    c, cost_name, s, score_name, front = _front(func, frame, cost, score)
    if ax is not None and not isinstance(ax, Axes):
        raise param_error(func, "ax", ax, "None or a matplotlib Axes", TypeError)
    if color is not None and not is_color_like(color):
        raise param_error(func, "color", color, "None or a matplotlib colour (a name such as "
                          "'tab:blue', a hex string '#1f77b4', or an RGB(A) tuple)")
    if annotate is not None and annotate not in frame.columns:
        raise param_error(func, "annotate", annotate,
                          f"None or a column of the results: {list(frame.columns)}")
    # matplotlib drops a cost <= 0 from a log axis without a word, front points included
    unplottable = np.isfinite(s.to_numpy()) & (c.to_numpy() <= 0)
    if logx and unplottable.any():
        i = int(np.flatnonzero(unplottable)[0])
        raise param_error(func, "cost", cost, "positive costs on the logarithmic cost axis, "
                          f"but row {frame.index[i]!r} costs {c.iloc[i]:g}; pass logx=False "
                          "for a linear axis")
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 3.5))
    points = ax.scatter(c, s, s=18, alpha=0.35, color=color)
    color = points.get_facecolor()[0][:3]
    fc, fs = c.iloc[front], s.iloc[front]
    ax.plot(fc.to_numpy(), fs.to_numpy(), "o-", drawstyle="steps-post", color=color,
            label=label, markersize=5)
    if annotate is not None:
        for text, x, y in zip(frame[annotate].iloc[front], fc, fs):
            ax.annotate(str(text), (x, y), fontsize=7, textcoords="offset points",
                        xytext=(3, 3))
    if logx:
        ax.set_xscale("log")
        # minor ticks at 2 and 5 per decade: within about one decade matplotlib labels every
        # minor tick, and its default 2..9 crowds the labels into each other
        ax.xaxis.set_minor_locator(LogLocator(subs=(2.0, 5.0)))
    ax.set_xlabel(cost_name)
    ax.set_ylabel(score_name)
    if label is not None:
        ax.legend()
    return ax


__all__ = ["make_cost_scorer", "cost_scorers", "pareto_front", "plot_pareto",
           "deployed_network", "COSTS"]
