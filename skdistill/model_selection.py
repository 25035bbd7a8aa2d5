"""Choosing a student: cost scorers for a search, its Pareto frontier, and a plot of it.

A student is chosen on two axes, how good it is and what it costs. :func:`cost_scorers` gives
scikit-learn scorers for the cost of a fitted estimator (``predict_proba``'s FLOPs per row,
parameter count, measured ``predict_proba`` time per row), to put next to a quality metric in a
multi-metric search::

    search = GridSearchCV(student, grid, refit="neg_log_loss",
                          scoring={"neg_log_loss": "neg_log_loss", **cost_scorers()})

Following scikit-learn, a scorer is "greater is better", so a cost is reported negated
(``neg_flops``...). :func:`pareto_front` keeps the searched settings that no other setting
beats on both axes (lower cost and higher score), and :class:`ParetoDisplay` (or its
shortcut :func:`plot_pareto`) draws the score against the cost with that frontier, as Figure 2
of Vadera et al. (2020), each in its natural sign: ``neg_log_loss`` as the log loss.
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


# Axis label and scale of each cost of :func:`cost_scorers` (latency in ms, not seconds).
_COST_UNITS = {"flops": ("FLOPs per row", 1.0), "parameters": ("parameters", 1.0),
               "latency": ("latency per row (ms)", 1e3)}
# Names of scikit-learn scores that ``str.replace("_", " ")`` would spell badly.
_SCORE_NAMES = {"log_loss": "log loss", "brier_score": "Brier score", "roc_auc": "ROC AUC",
                "roc_auc_ovr": "ROC AUC (one-vs-rest)", "roc_auc_ovo": "ROC AUC (one-vs-one)",
                "nll": "NLL", "ece": "ECE"}


def _bare(name):
    return name[len("mean_test_"):] if name.startswith("mean_test_") else name


def _natural(func, frame, cost, score):
    """What :class:`ParetoDisplay` draws: ``(cost, score, front, cost_label, score_label)``,
    each value in its natural sign and unit."""
    c, cost_name, s, score_name, front = _front(func, frame, cost, score)
    c, s = c.to_numpy(), s.to_numpy()
    bare_cost, bare_score = _bare(cost), _bare(score)
    if bare_cost.startswith("neg_") and cost_name in _COST_UNITS:  # a cost scorer's column
        cost_label, scale = _COST_UNITS[cost_name]
        c = c * scale
    else:
        cost_label = cost_name
    if bare_score.startswith("neg_"):  # minus a loss: the loss, lower is better
        name = bare_score[len("neg_"):]
        s = -s
        score_label = f"{_SCORE_NAMES.get(name, name.replace('_', ' '))} (lower is better)"
    else:
        score_label = (f"{_SCORE_NAMES.get(score_name, score_name.replace('_', ' '))} "
                       "(higher is better)")
    return c, s, front, cost_label, score_label


class ParetoDisplay:
    """Score against cost of searched models, with the Pareto frontier, in natural units.

    Every model is a faint point and the frontier (:func:`pareto_front`'s rows) a step line.
    Each axis reads as the quantity itself, not scikit-learn's greater-is-better scorer: a
    ``neg_log_loss`` column is drawn as the log loss (positive, "lower is better"), any other
    ``neg_...`` score likewise negated back, and the costs of :func:`cost_scorers` as FLOPs
    per row, parameters and milliseconds per row. Build it with :meth:`from_cv_results`; all
    parameters are stored as attributes. Call it once per method on the same ``ax`` to
    compare searches (Figure 2 of Vadera et al.).

    Parameters
    ----------
    cost : ndarray of shape (n_models,)
        Cost of each model, in its natural sign and unit (NaN for a failed fit).
    score : ndarray of shape (n_models,)
        Score or loss of each model, in its natural sign (NaN for a failed fit).
    front : ndarray of shape (n_front,)
        Positions in ``cost`` and ``score`` of the frontier, by increasing cost.
    cost_label : str, default=None
        Label of the cost axis.
    score_label : str, default=None
        Label of the score axis, saying which direction is better.
    front_text : list of str, default=None
        Text written next to each frontier point; ``None`` writes none.
    name : str, default=None
        Legend entry of this method; ``None`` shows no legend entry.

    Attributes
    ----------
    line_ : matplotlib Line2D
        The frontier.
    scatter_ : matplotlib PathCollection
        Every model's point.
    annotations_ : list of matplotlib Annotation
        The texts of ``front_text``.
    ax_ : matplotlib Axes
        Axes of the plot.
    figure_ : matplotlib Figure
        Figure of the plot.

    See Also
    --------
    pareto_front : The frontier's rows.
    plot_pareto : The same plot, returning the Axes.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import matplotlib.pyplot as plt
    >>> from skdistill.model_selection import ParetoDisplay
    >>> cv_results = {"mean_test_neg_flops": [-100.0, -400.0, -250.0],
    ...               "mean_test_neg_log_loss": [-0.5, -0.2, -0.6],
    ...               "param_width": [1, 4, 2]}
    >>> display = ParetoDisplay.from_cv_results(cv_results, "neg_flops", "neg_log_loss",
    ...                                         annotate="param_width", name="width")
    >>> display.front_text  # width 2 costs more than width 1 and is worse
    ['1', '4']
    >>> display.line_.get_ydata().tolist()  # the log loss itself
    [0.5, 0.2]
    >>> display.ax_.get_xlabel(), display.ax_.get_ylabel()
    ('FLOPs per row', 'log loss (lower is better)')
    >>> plt.close(display.figure_)
    """

    def __init__(self, cost, score, front, *, cost_label=None, score_label=None,
                 front_text=None, name=None):
        self.cost = cost
        self.score = score
        self.front = front
        self.cost_label = cost_label
        self.score_label = score_label
        self.front_text = front_text
        self.name = name

    def plot(self, ax=None, *, name=None, color=None, logx=True, **kwargs):
        """Draw every model as a point and the frontier as a step line.

        Parameters
        ----------
        ax : matplotlib Axes, default=None
            ``None`` draws on a new figure.
        name : str, default=None
            Legend entry; ``None`` uses the ``name`` attribute.
        color : matplotlib colour, default=None
            Of the points and the frontier; ``None``: the axes' next colour.
        logx : bool, default=True
            Logarithmic cost axis; a cost of 0 or less is then an error (pass
            ``logx=False``).
        **kwargs : dict
            Passed to :meth:`matplotlib.axes.Axes.plot` for the frontier.

        Returns
        -------
        display : ParetoDisplay
            ``self``, with ``line_``, ``scatter_``, ``annotations_``, ``ax_`` and ``figure_``.
        """
        return self._plot("ParetoDisplay.plot", ax=ax, name=name, color=color, logx=logx,
                          rows=np.arange(len(self.cost)), cost_value=self.cost, **kwargs)

    def _plot(self, func, *, ax, name, color, logx, rows, cost_value, **kwargs):
        try:
            import matplotlib.pyplot as plt
            from matplotlib.axes import Axes
            from matplotlib.colors import is_color_like
            from matplotlib.ticker import LogLocator
        except ImportError:  # pragma: no cover - the plot extra is not installed
            raise ImportError(f"{func} needs matplotlib: pip install skdistill[plot]") from None
        if ax is not None and not isinstance(ax, Axes):
            raise param_error(func, "ax", ax, "None or a matplotlib Axes", TypeError)
        if color is not None and not is_color_like(color):
            raise param_error(func, "color", color, "None or a matplotlib colour (a name such "
                              "as 'tab:blue', a hex string '#1f77b4', or an RGB(A) tuple)")
        cost = np.asarray(self.cost, dtype=float)
        score = np.asarray(self.score, dtype=float)
        front = np.asarray(self.front, dtype=int)
        # matplotlib drops a cost <= 0 from a log axis without a word, front points included
        unplottable = np.isfinite(score) & (cost <= 0)
        if logx and unplottable.any():
            i = int(np.flatnonzero(unplottable)[0])
            row = rows[i].item() if isinstance(rows[i], np.generic) else rows[i]
            raise param_error(func, "cost", cost_value, "positive costs on the logarithmic "
                              f"cost axis, but row {row!r} costs {cost[i]:g}; pass "
                              "logx=False for a linear axis")
        name = self.name if name is None else name
        if ax is None:
            _, ax = plt.subplots(figsize=(5, 3.5))
        self.scatter_ = ax.scatter(cost, score, s=18, alpha=0.35, color=color)
        color = self.scatter_.get_facecolor()[0][:3]
        style = {"marker": "o", "linestyle": "-", "drawstyle": "steps-post", "color": color,
                 "markersize": 5, **({} if name is None else {"label": name})}
        style.update(kwargs)
        (self.line_,) = ax.plot(cost[front], score[front], **style)
        self.annotations_ = [
            ax.annotate(str(text), (x, y), fontsize=7, textcoords="offset points",
                        xytext=(3, 3))
            for text, x, y in zip(self.front_text or (), cost[front], score[front])]
        if logx:
            ax.set_xscale("log")
            # minor ticks at 2 and 5 per decade: within about one decade matplotlib labels
            # every minor tick, and its default 2..9 crowds the labels into each other
            ax.xaxis.set_minor_locator(LogLocator(subs=(2.0, 5.0)))
        if self.cost_label is not None:
            ax.set_xlabel(self.cost_label)
        if self.score_label is not None:
            ax.set_ylabel(self.score_label)
        if name is not None:
            ax.legend()
        self.ax_, self.figure_ = ax, ax.figure
        return self

    @classmethod
    def from_cv_results(cls, cv_results, cost, score, *, annotate=None, name=None, ax=None,
                        color=None, logx=True, **kwargs):
        """Plot a search's models and their frontier from ``cv_results_`` (or a DataFrame).

        Parameters
        ----------
        cv_results : dict or pandas.DataFrame
            ``search.cv_results_`` of a multi-metric search, or any table with one row per
            model (e.g. several searches' results concatenated).
        cost : str
            The cost column, or a scorer name of a search (``"neg_flops"`` reads
            ``mean_test_neg_flops``). ``neg_flops``, ``neg_parameters`` and ``neg_latency``
            (:func:`cost_scorers`) are drawn as FLOPs per row, parameters and milliseconds
            per row; another ``neg_...`` column is negated back, any other drawn as it is.
        score : str
            The quality column (higher is better), or a scorer name. A ``neg_...`` score
            (``"neg_log_loss"``) is drawn negated back: the loss, with "lower is better" on
            its axis.
        annotate : str, default=None
            A column whose value is written next to each frontier point (e.g.
            ``"param_student__width_multiplier"``).
        name : str, default=None
            Legend entry of this method.
        ax : matplotlib Axes, default=None
            ``None`` draws on a new figure.
        color : matplotlib colour, default=None
            Of the points and the frontier.
        logx : bool, default=True
            Logarithmic cost axis; a cost of 0 or less is then an error (pass
            ``logx=False``).
        **kwargs : dict
            Passed to :meth:`matplotlib.axes.Axes.plot` for the frontier.

        Returns
        -------
        display : ParetoDisplay

        Examples
        --------
        >>> import matplotlib
        >>> matplotlib.use("Agg")
        >>> import matplotlib.pyplot as plt
        >>> import pandas as pd
        >>> from skdistill.model_selection import ParetoDisplay
        >>> runs = pd.DataFrame({"flops": [10, 20, 30, 25], "accuracy": [.8, .9, .95, .85]})
        >>> display = ParetoDisplay.from_cv_results(runs, "flops", "accuracy")
        >>> display.line_.get_xdata().tolist(), display.ax_.get_ylabel()
        ([10.0, 20.0, 30.0], 'accuracy (higher is better)')
        >>> plt.close(display.figure_)
        """
        return cls._from_results("ParetoDisplay.from_cv_results", cv_results, cost, score,
                                 annotate=annotate, name=name, ax=ax, color=color, logx=logx,
                                 **kwargs)

    @classmethod
    def _from_results(cls, func, results, cost, score, *, annotate, name, ax, color, logx,
                      **kwargs):
        frame = _as_frame(func, results)
        c, s, front, cost_label, score_label = _natural(func, frame, cost, score)
        if annotate is not None and annotate not in frame.columns:
            raise param_error(func, "annotate", annotate,
                              f"None or a column of the results: {list(frame.columns)}")
        text = None if annotate is None else [str(v) for v in frame[annotate].iloc[front]]
        display = cls(c, s, front, cost_label=cost_label, score_label=score_label,
                      front_text=text, name=name)
        return display._plot(func, ax=ax, name=None, color=color, logx=logx,
                             rows=frame.index, cost_value=cost, **kwargs)


def plot_pareto(results, cost, score, *, ax=None, label=None, color=None, annotate=None,
                logx=True):
    """Draw score against cost: every row as a point, the Pareto frontier as a line.

    Call it once per method on the same ``ax`` to compare searches, e.g. width search
    against pruning (Figure 2 of Vadera et al.). It draws a :class:`ParetoDisplay`
    (:meth:`ParetoDisplay.from_cv_results`): a ``neg_...`` score such as ``neg_log_loss`` is
    drawn as the loss itself, lower is better, and the costs of :func:`cost_scorers` in
    their units.

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
    return ParetoDisplay._from_results("plot_pareto", results, cost, score, annotate=annotate,
                                       name=label, ax=ax, color=color, logx=logx).ax_


__all__ = ["make_cost_scorer", "cost_scorers", "pareto_front", "ParetoDisplay",
           "plot_pareto", "deployed_network", "COSTS"]
