"""Inspect teachers before distilling them: a calibration report, a test, reliability diagrams.

Menon et al. (2021) view a teacher as a stand-in for the Bayes class probabilities: what it
hands a student is its probabilities, so their calibration on held-out data matters more
than its accuracy, and a teacher that is far more confident on its training rows than on new
ones should be cross-fitted (:class:`~skdistill.CrossFitDistiller`).
"""
import numpy as np
import pandas as pd
from scipy.stats import norm
from sklearn.utils import Bunch
from sklearn.utils.validation import _num_samples, check_is_fitted

from ._validation import named_errors, param_error
from .metrics import (_calibration_bins, _check_n_bins, _check_proba, _ece, brier_score,
                      expected_calibration_error, negative_log_likelihood)


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


def plot_reliability(models, X, y, *, n_bins=15, ax=None):
    """Reliability diagrams and confidence histograms of several classifiers in one figure.

    Left: for each model, accuracy against mean top-label confidence in each non-empty bin of
    :func:`~skdistill.metrics.calibration_bins` (points on the dotted diagonal are
    calibrated; below it over-confident, above it under-confident), labelled with the ECE.
    Right: the fraction of rows in each confidence bin, one bar per model and bin.

    Parameters
    ----------
    models : fitted classifier, dict of str to fitted classifier, or list of them
        As in :func:`teacher_report`.
    X, y : array-like
        Held-out data.
    n_bins : int, default=15
        Equal-width confidence bins.
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
    try:
        import matplotlib.pyplot as plt
        from matplotlib.axes import Axes
    except ImportError as exc:
        raise ImportError("plot_reliability needs matplotlib: pip install matplotlib "
                          "(or skdistill[plot]).") from exc
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
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    width = (edges[1] - edges[0]) / len(named)
    ax_curve.plot([0, 1], [0, 1], "k:", label="perfectly calibrated")
    for j, (name, model) in enumerate(named):
        labels = getattr(model, "classes_", None)
        bins = _calibration_bins(func, y, model.predict_proba(X), n_bins, labels, y_name="y",
                                 proba_name=f"{name}.predict_proba(X)")
        ece = _ece(bins)
        filled = bins.count > 0
        (line,) = ax_curve.plot(bins.confidence[filled], bins.accuracy[filled], "o-",
                                label=f"{name} (ECE {ece:.3f})")
        ax_hist.bar(edges[:-1] + j * width, bins.count / bins.count.sum(), width=width,
                    align="edge", color=line.get_color(), alpha=0.8, label=name)
    ax_curve.set(xlim=(0, 1), ylim=(0, 1), xlabel="confidence (top-label probability)",
                 ylabel="accuracy", title="Reliability diagram")
    # Below the panel: curves of under- and over-confident models fill either corner.
    ax_curve.legend(loc="upper left", bbox_to_anchor=(0.0, -0.15), fontsize="small",
                    frameon=False)
    ax_hist.set(xlim=(0, 1), xlabel="confidence (top-label probability)",
                ylabel="fraction of samples", title="Confidence histogram")
    return fig


__all__ = ["teacher_report", "spiegelhalter_test", "plot_reliability"]
