"""Inspect teachers before distilling them: a calibration report, a test, reliability diagrams.

Menon et al. (2021) view a teacher as a stand-in for the Bayes class probabilities: what it
hands a student is its probabilities, so their calibration on held-out data matters more
than its accuracy, and a teacher that is far more confident on its training rows than on new
ones should be cross-fitted (:class:`~skdistill.CrossFitDistiller`).
"""
import numbers

import numpy as np
import pandas as pd
from scipy.stats import norm
from sklearn.utils import Bunch
from sklearn.utils.validation import _num_samples, check_is_fitted

from ._validation import is_number, named_errors, param_error
from .metrics import (_bin_means, _check_n_bins, _check_proba, _ece, _top_label_bins,
                      brier_score, expected_calibration_error, negative_log_likelihood)


def spiegelhalter_test(y_true, y_prob, *, labels=None):
    """Spiegelhalter's z test: are the labels plausible draws from the probabilities?

    Under the null hypothesis that each label is drawn from its row of probabilities
    (perfect calibration), the per-row multiclass Brier score
    ``B_i = sum_k (p_ik - [y_i = k])^2`` has mean ``E_i = 1 - sum_k p_ik^2`` and variance
    ``V_i = 4 (sum_k p_ik^3 - (sum_k p_ik^2)^2)``, so

    ``z = sum_i (B_i - E_i) / sqrt(sum_i V_i)``

    is approximately standard normal over many rows; the p-value is two-sided,
    ``2 (1 - Phi(|z|))``. For two classes this is exactly Spiegelhalter's statistic
    ``sum_i (y_i - p_i)(1 - 2 p_i) / sqrt(sum_i (1 - 2 p_i)^2 p_i (1 - p_i))``, ``p_i`` the
    positive-class probability (both numerator and denominator are twice those above). The
    summed one-vs-rest terms of a row are not independent; ``V_i`` is the exact variance of
    their sum under the multinomial draw. ``z > 0``: the Brier score is worse than the
    probabilities promise (typically over-confidence); ``z < 0``: better than promised
    (typically under-confidence).

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True labels.
    y_prob : array-like of shape (n_samples, n_classes) or (n_samples,)
        Predicted probabilities, columns in ``labels`` order (a 1-d input is the
        probability of the second label of a binary problem).
    labels : array-like of shape (n_classes,), default=None
        The label of each column; needed when ``y_true`` misses a class.

    Returns
    -------
    result : :class:`~sklearn.utils.Bunch`
        ``statistic`` (z) and ``pvalue``. Where every row is certain (all ``V_i = 0``), z is
        0 if every label is the predicted one and infinite otherwise.

    References
    ----------
    Spiegelhalter. Probabilistic Prediction in Patient Management and Clinical Trials.
    Statistics in Medicine 5(5), 1986.

    Examples
    --------
    >>> from skdistill.inspection import spiegelhalter_test
    >>> # sum (y - p)(1 - 2p) = 2 * 0.2 * (-0.6) + 0.8 * 0.6 = 0.24;
    >>> # sum (1 - 2p)^2 p (1 - p) = 3 * 0.36 * 0.16 = 0.1728; z = 0.24 / sqrt(0.1728)
    >>> result = spiegelhalter_test([1, 1, 0], [0.8, 0.8, 0.8])
    >>> round(result.statistic, 4), round(result.pvalue, 4)
    (0.5774, 0.5637)
    """
    idx, P, _ = _check_proba("spiegelhalter_test", y_true, y_prob, labels)
    sum_sq = np.sum(P**2, axis=1)
    brier = sum_sq - 2 * P[np.arange(len(P)), idx] + 1
    excess = float(np.sum(brier - (1 - sum_sq)))
    variance = float(np.sum(4 * (np.sum(P**3, axis=1) - sum_sq**2)))
    if variance > 0:
        z = excess / np.sqrt(variance)
    else:  # certain predictions: calibrated only if all of them are right
        z = 0.0 if np.isclose(excess, 0.0) else np.copysign(np.inf, excess)
    return Bunch(statistic=float(z), pvalue=float(2 * norm.sf(abs(z))))


def _named_models(func, models, name="model"):
    """``[(name, fitted model)]`` from one model, a dict name -> model or a list of models."""
    if isinstance(models, dict):
        pairs = [(str(name), model) for name, model in models.items()]
    elif isinstance(models, (list, tuple)):
        names = [type(model).__name__ for model in models]
        pairs = [(name if names.count(name) == 1 else f"{name} ({names[:i + 1].count(name)})",
                  model) for i, (name, model) in enumerate(zip(names, models))]
    else:
        pairs = [(type(models).__name__, models)]
    if not pairs:
        raise param_error(func, name, models, "a fitted classifier, or a non-empty dict or "
                          "list of them")
    for key, model in pairs:
        if not hasattr(model, "predict_proba"):
            raise param_error(func, name, model, f"fitted classifiers with predict_proba "
                              f"({key!r} has none)", TypeError)
        check_is_fitted(model)
    return pairs


def _check_labelled_rows(func, X, y, x_name="X", y_name="y"):
    """One label per row of ``X``, checked before any model predicts: the errors name the
    arguments, not the metrics' ``y_true`` and ``y_prob`` they are passed on as."""
    y = np.asarray(y)
    if y.ndim != 1:
        raise param_error(func, y_name, f"<array of shape {y.shape}>", "a 1-d array of labels")
    n_rows = named_errors(func, _num_samples, X)
    if len(y) != n_rows:
        raise param_error(func, y_name, f"<array of {len(y)} labels>",
                          f"one label per row of {x_name} ({n_rows} rows)")


def _scores(y, P, labels, n_bins, y_name, proba_name):
    """The held-out columns of :func:`teacher_report` for probabilities ``P``."""
    idx, P_checked, _ = _check_proba("teacher_report", y, P, labels, y_name, proba_name)
    test = spiegelhalter_test(y, P, labels=labels)
    return {
        "accuracy": float(np.mean(P_checked.argmax(axis=1) == idx)),
        "nll": negative_log_likelihood(y, P, labels=labels),
        "brier": brier_score(y, P, labels=labels),
        "ece": expected_calibration_error(y, P, n_bins=n_bins, labels=labels),
        "confidence": float(np.mean(P_checked.max(axis=1))),
        "spiegelhalter_z": test.statistic,
        "spiegelhalter_p": test.pvalue,
    }


def teacher_report(model, X, y, *, X_train=None, y_train=None, n_bins=15):
    """Accuracy, calibration and over-confidence of fitted classifiers on held-out data.

    Run it on a candidate teacher (or several) before distilling it: a student learns the
    teacher's probabilities, so a well-calibrated teacher (low ECE, Spiegelhalter's p-value
    not small) is the one to copy, and a teacher far more confident on its training rows
    than on held-out ones hands its training-set over-confidence to a vanilla
    :class:`~skdistill.KnowledgeDistiller`: cross-fit it (:class:`~skdistill.CrossFitDistiller`)
    or calibrate it (``teacher_calibration``).

    Parameters
    ----------
    model : fitted classifier, dict of str to fitted classifier, or list of them
        Anything with ``predict_proba`` (and ``classes_``, which names the columns). A dict's
        keys name the rows; a list's rows are named after the models' classes.
    X, y : array-like
        Held-out data (not seen by the models' fit).
    X_train, y_train : array-like, default=None
        The models' training data; when given, the in-sample columns are added.
    n_bins : int, default=15
        Equal-width bins of the ECE.

    Returns
    -------
    report : pandas.DataFrame
        One row per model, indexed by name, with columns

        - ``accuracy``: fraction of rows whose most probable class is the label;
        - ``nll``, ``brier``, ``ece``: :func:`~skdistill.metrics.negative_log_likelihood`,
          :func:`~skdistill.metrics.brier_score` (summed over classes) and
          :func:`~skdistill.metrics.expected_calibration_error` (top label, ``n_bins``);
        - ``confidence``: mean top-label probability (above ``accuracy``: over-confident);
        - ``spiegelhalter_z``, ``spiegelhalter_p``: :func:`spiegelhalter_test`;

        and with training data ``train_accuracy``, ``train_nll``, ``train_confidence``,
        ``confidence_gap`` (``train_confidence - confidence``) and ``nll_gap``
        (``nll - train_nll``): large gaps mean the in-sample probabilities are over-confident.

    References
    ----------
    Menon, Rawat, Reddi, Kim, Kumar. A Statistical Perspective on Distillation. ICML 2021.

    Examples
    --------
    >>> from sklearn.datasets import load_breast_cancer
    >>> from sklearn.ensemble import RandomForestClassifier
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.model_selection import train_test_split
    >>> from skdistill.inspection import teacher_report
    >>> X, y = load_breast_cancer(return_X_y=True)
    >>> X_tr, X_te, y_tr, y_te = train_test_split(X, y, random_state=0)
    >>> models = {"forest": RandomForestClassifier(n_estimators=30, random_state=0),
    ...           "logistic": LogisticRegression(max_iter=5000)}
    >>> report = teacher_report({k: m.fit(X_tr, y_tr) for k, m in models.items()},
    ...                         X_te, y_te, X_train=X_tr, y_train=y_tr)
    >>> list(report.index), report.shape
    (['forest', 'logistic'], (2, 12))
    >>> bool(report.loc["forest", "confidence_gap"] > 0)  # more confident in-sample
    True
    """
    func = "teacher_report"
    _check_n_bins(func, n_bins)
    if (X_train is None) != (y_train is None):
        missing = "y_train" if y_train is None else "X_train"
        raise param_error(func, missing, None, "given together with "
                          f"{'X_train' if missing == 'y_train' else 'y_train'}")
    _check_labelled_rows(func, X, y)
    if X_train is not None:
        _check_labelled_rows(func, X_train, y_train, "X_train", "y_train")
    rows = {}
    for name, fitted in _named_models(func, model):
        labels = getattr(fitted, "classes_", None)
        row = _scores(y, fitted.predict_proba(X), labels, n_bins, "y",
                      f"{name}.predict_proba(X)")
        if X_train is not None:
            train = _scores(y_train, fitted.predict_proba(X_train), labels, n_bins, "y_train",
                            f"{name}.predict_proba(X_train)")
            row.update(train_accuracy=train["accuracy"], train_nll=train["nll"],
                       train_confidence=train["confidence"],
                       confidence_gap=train["confidence"] - row["confidence"],
                       nll_gap=row["nll"] - train["nll"])
        rows[name] = row
    return pd.DataFrame.from_dict(rows, orient="index")


_REF_LABEL = "perfectly calibrated"
_STRATEGIES = ("uniform", "quantile")


def _matplotlib(func):
    """pyplot and the Axes class, or an ImportError naming ``func``."""
    try:
        import matplotlib.pyplot as plt
        from matplotlib.axes import Axes
    except ImportError as exc:
        raise ImportError(f"{func} needs matplotlib: pip install matplotlib "
                          "(or skdistill[plot]).") from exc
    return plt, Axes


def _reliability_bins(func, y, P, labels, n_bins, strategy, pos_label, names):
    """``ReliabilityDisplay``'s arguments from labels ``y`` and probabilities ``P``."""
    _check_n_bins(func, n_bins)
    if strategy not in _STRATEGIES:
        raise param_error(func, "strategy", strategy, f"one of {list(_STRATEGIES)}")
    idx, P, classes = _check_proba(func, y, P, labels, **names)
    if pos_label is None and P.shape[1] == 2:
        pos_label = classes[1]
    if pos_label is None:  # the top label: confidence against accuracy
        x, hit = P.max(axis=1), P.argmax(axis=1) == idx
    else:
        column = np.flatnonzero(classes == pos_label) if np.ndim(pos_label) == 0 else []
        if len(column) != 1:
            raise param_error(func, "pos_label", pos_label,
                              f"None or one of the classes {classes.tolist()}")
        pos_label = classes[column[0]]
        x, hit = P[:, column[0]], idx == column[0]
    if strategy == "uniform":
        edges = np.linspace(0.0, 1.0, n_bins + 1)
    else:
        edges = np.quantile(x, np.linspace(0.0, 1.0, n_bins + 1))
    count, prob_true, prob_pred = _bin_means(x, hit, edges)  # as calibration_bins bins
    ece = _ece(_top_label_bins(idx, P, n_bins))
    return dict(prob_true=prob_true, prob_pred=prob_pred, count=count, edges=edges, ece=ece,
                pos_label=None if pos_label is None else pos_label.item()
                if isinstance(pos_label, np.generic) else pos_label)


def _check_estimator(func, estimator, name="estimator"):
    if not hasattr(estimator, "predict_proba"):
        raise param_error(func, name, estimator, "a fitted classifier with predict_proba",
                          TypeError)
    check_is_fitted(estimator)


class ReliabilityDisplay:
    """Reliability diagram: how often an event happens against how probable it was said to be.

    For a binary problem (or any ``pos_label``), the curve is the fraction of rows of the
    positive class against the mean predicted probability of that class in each bin, the
    whole ``[0, 1]`` axis, as :class:`sklearn.calibration.CalibrationDisplay` draws it. For more
    classes it is the accuracy of the most probable class against the mean top-label
    confidence (bins of :func:`~skdistill.metrics.calibration_bins`). Points on the dotted
    diagonal are calibrated; below it the model is over-confident about the plotted event,
    above it under-confident. The legend gives the model's
    :func:`~skdistill.metrics.expected_calibration_error` (top label, ``n_bins`` equal-width
    bins, whatever the curve's ``strategy``), the number :func:`teacher_report` prints.

    Build it with :meth:`from_estimator` (a fitted classifier) or :meth:`from_predictions`
    (probabilities computed elsewhere: an ONNX session, a saved run); all parameters are
    stored as attributes. Call either with the same ``ax`` to compare several models.

    Parameters
    ----------
    prob_true : ndarray of shape (n_bins,)
        Per bin, the fraction of rows of class ``pos_label`` (or, for the top label, of rows
        whose most probable class is right); NaN for an empty bin.
    prob_pred : ndarray of shape (n_bins,)
        Per bin, the mean predicted probability of ``pos_label`` (or the mean top-label
        confidence); NaN for an empty bin.
    count : ndarray of shape (n_bins,)
        Rows per bin.
    edges : ndarray of shape (n_bins + 1,)
        Bin edges.
    ece : float, default=None
        Expected calibration error shown in the legend; ``None`` shows none.
    estimator_name : str, default=None
        Name of the curve in the legend; ``None`` shows no name.
    pos_label : int, float, bool or str, default=None
        The class whose probability is on the x axis; ``None``: the top label.

    Attributes
    ----------
    line_ : matplotlib Line2D
        The reliability curve (the non-empty bins).
    ax_ : matplotlib Axes
        Axes of the curve.
    figure_ : matplotlib Figure
        Figure of the curve.
    bars_ : matplotlib BarContainer or None
        The histogram's bars, one per bin, when :meth:`plot` was given ``hist_ax``.

    See Also
    --------
    plot_reliability : Curves and histograms of several models in one call.
    skdistill.metrics.calibration_bins : The top-label bins.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import matplotlib.pyplot as plt
    >>> from skdistill.inspection import ReliabilityDisplay
    >>> display = ReliabilityDisplay.from_predictions(
    ...     [0, 0, 1, 1], [0.1, 0.3, 0.6, 0.9], n_bins=2, name="model")
    >>> display.prob_pred.tolist(), display.prob_true.tolist()  # [0, .5): .1, .3; [.5, 1]: .6, .9
    ([0.2, 0.75], [0.0, 1.0])
    >>> display.line_.get_label()  # ECE: every row's top label is right at confidence .775
    'model (ECE 0.225)'
    >>> plt.close(display.figure_)
    """

    def __init__(self, prob_true, prob_pred, count, edges, *, ece=None, estimator_name=None,
                 pos_label=None):
        self.prob_true = prob_true
        self.prob_pred = prob_pred
        self.count = count
        self.edges = edges
        self.ece = ece
        self.estimator_name = estimator_name
        self.pos_label = pos_label

    def _labels(self):
        if self.pos_label is None:
            return "confidence (top-label probability)", "accuracy"
        return (f"mean predicted probability (positive class: {self.pos_label})",
                f"fraction of positives (positive class: {self.pos_label})")

    def plot(self, *, ax=None, name=None, ref_line=True, hist_ax=None, hist_slot=(0, 1),
             **kwargs):
        """Draw the curve (and, on ``hist_ax``, the histogram of rows per bin).

        Parameters
        ----------
        ax : matplotlib Axes, default=None
            Axes of the curve; ``None`` draws on a new figure.
        name : str, default=None
            Name in the legend; ``None`` uses ``estimator_name``.
        ref_line : bool, default=True
            Draw the diagonal of perfect calibration (once per axes).
        hist_ax : matplotlib Axes, default=None
            Where to draw the fraction of rows in each bin as bars; ``None`` draws none.
        hist_slot : tuple of (int, int), default=(0, 1)
            ``(i, n)``: the bars fill the ``i``-th of ``n`` side-by-side slots of each bin,
            so that ``n`` models' bars stand next to each other.
        **kwargs : dict
            Passed to :meth:`matplotlib.axes.Axes.plot` for the curve.

        Returns
        -------
        display : ReliabilityDisplay
            ``self``, with ``line_``, ``ax_``, ``figure_`` and ``bars_`` set.
        """
        return self._plot("ReliabilityDisplay.plot", ax=ax, name=name, ref_line=ref_line,
                          hist_ax=hist_ax, hist_slot=hist_slot, **kwargs)

    def _plot(self, func, *, ax, name, ref_line, hist_ax, hist_slot, **kwargs):
        plt, Axes = _matplotlib(func)
        for key, value in (("ax", ax), ("hist_ax", hist_ax)):
            if value is not None and not isinstance(value, Axes):
                raise param_error(func, key, value, "None or a matplotlib Axes", TypeError)
        if (not isinstance(hist_slot, tuple) or len(hist_slot) != 2
                or not all(is_number(v, numbers.Integral) for v in hist_slot)
                or not 0 <= hist_slot[0] < hist_slot[1]):
            raise param_error(func, "hist_slot", hist_slot,
                              "a pair of integers (i, n) with 0 <= i < n")
        if ax is None:
            _, ax = plt.subplots()
        name = self.estimator_name if name is None else name
        if self.ece is None:
            label = name
        else:
            label = f"ECE {self.ece:.3f}" if name is None else f"{name} (ECE {self.ece:.3f})"
        if ref_line and _REF_LABEL not in ax.get_legend_handles_labels()[1]:
            ax.plot([0, 1], [0, 1], "k:", label=_REF_LABEL)
        count = np.asarray(self.count)
        filled = count > 0
        style = {"marker": "o", "linestyle": "-", **({} if label is None else {"label": label})}
        style.update(kwargs)
        (self.line_,) = ax.plot(np.asarray(self.prob_pred)[filled],
                                np.asarray(self.prob_true)[filled], **style)
        xlabel, ylabel = self._labels()
        ax.set(xlim=(0, 1), ylim=(0, 1), xlabel=xlabel, ylabel=ylabel)
        ax.legend(loc="best")
        self.bars_ = None
        if hist_ax is not None:
            edges = np.asarray(self.edges, dtype=float)
            i, n = hist_slot
            width = np.diff(edges) / n
            self.bars_ = hist_ax.bar(edges[:-1] + i * width, count / count.sum(), width=width,
                                     align="edge", color=self.line_.get_color(), alpha=0.8,
                                     label=name)
            hist_ax.set(xlim=(0, 1), xlabel=xlabel, ylabel="fraction of samples")
        self.ax_, self.figure_ = ax, ax.figure
        return self

    @classmethod
    def from_estimator(cls, estimator, X, y, *, n_bins=15, strategy="uniform", pos_label=None,
                       name=None, ax=None, ref_line=True, hist_ax=None, hist_slot=(0, 1),
                       **kwargs):
        """Reliability diagram of a fitted classifier's ``predict_proba`` on ``X``.

        Parameters
        ----------
        estimator : fitted classifier
            Anything with ``predict_proba``; ``classes_`` names its columns (without it, the
            sorted labels of ``y``).
        X : array-like of shape (n_samples, ...)
            Held-out inputs.
        y : array-like of shape (n_samples,)
            Their labels.
        n_bins : int, default=15
            Number of bins.
        strategy : {"uniform", "quantile"}, default="uniform"
            Equal-width bins over ``[0, 1]``, or bins holding equally many rows (quantiles
            of the plotted probability). The ECE always uses ``n_bins`` equal-width bins.
        pos_label : int, float, bool or str, default=None
            The class whose probability is plotted. ``None``: the second class of
            ``classes_`` for a binary problem, the top label for more classes.
        name : str, default=None
            Name in the legend; ``None``: the estimator's class name.
        ax : matplotlib Axes, default=None
            Axes of the curve; ``None`` draws on a new figure.
        ref_line : bool, default=True
            Draw the diagonal of perfect calibration (once per axes).
        hist_ax : matplotlib Axes, default=None
            Where to draw the fraction of rows per bin; ``None`` draws none.
        hist_slot : tuple of (int, int), default=(0, 1)
            As in :meth:`plot`.
        **kwargs : dict
            Passed to :meth:`matplotlib.axes.Axes.plot` for the curve.

        Returns
        -------
        display : ReliabilityDisplay

        Examples
        --------
        >>> import matplotlib
        >>> matplotlib.use("Agg")
        >>> import matplotlib.pyplot as plt
        >>> from sklearn.datasets import load_breast_cancer
        >>> from sklearn.naive_bayes import GaussianNB
        >>> from skdistill.inspection import ReliabilityDisplay
        >>> X, y = load_breast_cancer(return_X_y=True)
        >>> model = GaussianNB().fit(X[::2], y[::2])
        >>> display = ReliabilityDisplay.from_estimator(model, X[1::2], y[1::2], n_bins=10)
        >>> display.pos_label, display.ax_.get_xlabel()
        (1, 'mean predicted probability (positive class: 1)')
        >>> plt.close(display.figure_)
        """
        func = "ReliabilityDisplay.from_estimator"
        _matplotlib(func)
        _check_estimator(func, estimator)
        _check_labelled_rows(func, X, y)
        name = type(estimator).__name__ if name is None else name
        values = _reliability_bins(func, y, estimator.predict_proba(X),
                                   getattr(estimator, "classes_", None), n_bins, strategy,
                                   pos_label, dict(y_name="y",
                                                   proba_name=f"{name}.predict_proba(X)"))
        return cls(**values, estimator_name=name)._plot(
            func, ax=ax, name=None, ref_line=ref_line, hist_ax=hist_ax, hist_slot=hist_slot,
            **kwargs)

    @classmethod
    def from_predictions(cls, y_true, y_prob, *, labels=None, n_bins=15, strategy="uniform",
                         pos_label=None, name=None, ax=None, ref_line=True, hist_ax=None,
                         hist_slot=(0, 1), **kwargs):
        """Reliability diagram of probabilities computed elsewhere (ONNX, a saved run).

        Parameters
        ----------
        y_true : array-like of shape (n_samples,)
            True labels.
        y_prob : array-like of shape (n_samples,) or (n_samples, n_classes)
            A binary problem's probabilities of ``pos_label``, or a matrix of every class's
            probabilities (columns in ``labels`` order), as an ONNX session returns them.
        labels : array-like of shape (n_classes,), default=None
            The label of each column of a 2-d ``y_prob`` (e.g. the model's ``classes_``):
            required with a matrix, whose column order the labels alone cannot tell. For a
            1-d ``y_prob``, the two classes (default: the sorted labels of ``y_true``).
        n_bins : int, default=15
            Number of bins.
        strategy : {"uniform", "quantile"}, default="uniform"
            As in :meth:`from_estimator`.
        pos_label : int, float, bool or str, default=None
            The class whose probability is plotted (and, for a 1-d ``y_prob``, given).
            ``None``: the second of two classes, the top label for more.
        name : str, default=None
            Name in the legend.
        ax : matplotlib Axes, default=None
            Axes of the curve; ``None`` draws on a new figure.
        ref_line : bool, default=True
            Draw the diagonal of perfect calibration (once per axes).
        hist_ax : matplotlib Axes, default=None
            Where to draw the fraction of rows per bin; ``None`` draws none.
        hist_slot : tuple of (int, int), default=(0, 1)
            As in :meth:`plot`.
        **kwargs : dict
            Passed to :meth:`matplotlib.axes.Axes.plot` for the curve.

        Returns
        -------
        display : ReliabilityDisplay

        Examples
        --------
        >>> import matplotlib
        >>> matplotlib.use("Agg")
        >>> import matplotlib.pyplot as plt
        >>> import numpy as np
        >>> from skdistill.inspection import ReliabilityDisplay
        >>> proba = np.array([[.8, .1, .1], [.2, .7, .1], [.1, .1, .8], [.6, .3, .1]])
        >>> display = ReliabilityDisplay.from_predictions(
        ...     ["a", "b", "c", "b"], proba, labels=["a", "b", "c"], n_bins=2)
        >>> display.prob_pred.tolist(), display.prob_true.tolist()  # top label
        ([nan, 0.725], [nan, 0.75])
        >>> plt.close(display.figure_)
        """
        func = "ReliabilityDisplay.from_predictions"
        _matplotlib(func)
        ndim = np.ndim(y_prob)
        if ndim == 2 and labels is None:
            raise param_error(func, "labels", None,
                              f"the label of each of y_prob's {np.shape(y_prob)[1]} columns "
                              "(e.g. the model's classes_) when y_prob is a matrix")
        P = y_prob
        if ndim == 1 and pos_label is not None:
            # the probability of pos_label: the first of the two classes takes 1 - p's place
            classes = np.unique(y_true) if labels is None else np.asarray(labels)
            if len(classes) == 2 and np.ndim(pos_label) == 0 and pos_label == classes[0]:
                labels = classes[::-1]
        values = _reliability_bins(func, y_true, P, labels, n_bins, strategy, pos_label,
                                   dict(y_name="y_true", proba_name="y_prob"))
        return cls(**values, estimator_name=name)._plot(
            func, ax=ax, name=None, ref_line=ref_line, hist_ax=hist_ax, hist_slot=hist_slot,
            **kwargs)


def plot_reliability(models, X, y, *, n_bins=15, ax=None):
    """Reliability diagrams and confidence histograms of several classifiers in one figure.

    Left: for each model, its :class:`ReliabilityDisplay` curve (a binary problem's
    fraction of positives against the mean predicted probability of the second class; for
    more classes, accuracy against mean top-label confidence in each non-empty bin of
    :func:`~skdistill.metrics.calibration_bins`), labelled with the ECE. Points on the dotted
    diagonal are calibrated. Right: the fraction of rows in each bin, one bar per model and
    bin.

    Parameters
    ----------
    models : fitted classifier, dict of str to fitted classifier, or list of them
        As in :func:`teacher_report`.
    X, y : array-like
        Held-out data.
    n_bins : int, default=15
        Equal-width bins.
    ax : pair of matplotlib Axes, default=None
        ``(reliability_ax, histogram_ax)`` to draw on; by default a new figure with two
        panels side by side.

    Returns
    -------
    fig : matplotlib.figure.Figure
        The figure (it is not shown: call ``fig.savefig`` or display it).

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import matplotlib.pyplot as plt
    >>> from sklearn.datasets import load_breast_cancer
    >>> from sklearn.naive_bayes import GaussianNB
    >>> from skdistill.inspection import plot_reliability
    >>> X, y = load_breast_cancer(return_X_y=True)
    >>> fig = plot_reliability({"naive Bayes": GaussianNB().fit(X[::2], y[::2])},
    ...                        X[1::2], y[1::2], n_bins=10)
    >>> curves, histogram = fig.axes
    >>> len(curves.lines), len(histogram.patches)  # the diagonal and one curve; 10 bars
    (2, 10)
    >>> plt.close(fig)
    """
    func = "plot_reliability"
    plt, Axes = _matplotlib(func)
    _check_n_bins(func, n_bins)
    named = _named_models(func, models, "models")
    _check_labelled_rows(func, X, y)
    if ax is None:
        fig, (ax_curve, ax_hist) = plt.subplots(1, 2, figsize=(10, 4 + 0.25 * len(named)),
                                                layout="constrained")
    else:
        axes = list(np.ravel(np.asarray(ax, dtype=object)))
        if len(axes) != 2 or not all(isinstance(a, Axes) for a in axes):
            raise param_error(func, "ax", ax, "None or a pair of matplotlib Axes "
                              "(reliability curves, confidence histogram)", TypeError)
        ax_curve, ax_hist = axes
        fig = ax_curve.figure
    for j, (name, model) in enumerate(named):
        values = _reliability_bins(func, y, model.predict_proba(X),
                                   getattr(model, "classes_", None), n_bins, "uniform", None,
                                   dict(y_name="y", proba_name=f"{name}.predict_proba(X)"))
        display = ReliabilityDisplay(**values, estimator_name=name)._plot(
            func, ax=ax_curve, name=None, ref_line=True, hist_ax=ax_hist,
            hist_slot=(j, len(named)))
    ax_curve.set_title("Reliability diagram")
    # Below the panel: curves of under- and over-confident models fill either corner.
    ax_curve.legend(loc="upper left", bbox_to_anchor=(0.0, -0.15), fontsize="small",
                    frameon=False)
    ax_hist.set_title("Confidence histogram" if display.pos_label is None
                      else "Histogram of predicted probabilities")
    return fig


__all__ = ["teacher_report", "spiegelhalter_test", "ReliabilityDisplay", "plot_reliability"]
