"""RankingDistiller: distilled bipartite ranking (Menon, Rawat, Reddi, Kim, Kumar 2021)."""
import numbers

import numpy as np
import torch
from scipy.optimize import minimize
from scipy.special import expit
from sklearn.frozen import FrozenEstimator
from sklearn.isotonic import IsotonicRegression
from sklearn.utils import _safe_indexing
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import _check_method_params, _num_samples
from torch import nn

from .._interrupt import fit_policy
from .._random import draw_seed
from .._validation import param_error
from ..engine import Objective
from ..losses import PAIRWISE_SURROGATES, DistilledPairwiseLoss
from ..students._base import BaseStudent
from ._base import TEACHER_CALIBRATION, BaseDistiller, final_step

# Mixed with the seed drawn from random_state: the held-out calibration rows are not drawn
# from the stream of the folds' or the clones' seeds.
_CALIBRATION_STREAM = 0x72616E6B

# Probabilities of the isotonic calibration map are clipped to [EPS, 1 - EPS], so that the
# log-odds of RankingDistiller.decision_function stay finite.
EPS = 1e-6


class ScoreLogits(nn.Module):
    """Two-class logits ``[0, a * s + b]`` from the one output ``s`` of a scoring network.

    ``(a, b)`` is the buffer ``calibration``: ``(1, 0)`` until a calibration map is fitted,
    so that ``softmax`` of the logits is ``sigmoid(a * s + b)`` for the second class.

    Parameters
    ----------
    scorer : torch.nn.Module
        Maps a batch of rows to scores of shape ``(B, 1)``.

    Examples
    --------
    >>> import torch
    >>> net = ScoreLogits(torch.nn.Linear(3, 1))
    >>> net(torch.zeros(2, 3)).shape
    torch.Size([2, 2])
    """

    def __init__(self, scorer):
        super().__init__()
        self.scorer = scorer
        device = next(scorer.parameters()).device
        self.register_buffer("calibration", torch.tensor([1.0, 0.0], device=device))

    def forward(self, x):
        s = self.scorer(x)
        s = s.reshape(s.shape[0], -1)[:, :1]
        z = self.calibration[0] * s + self.calibration[1]
        return torch.cat([torch.zeros_like(z), z], dim=1)


class _RankingObjective(Objective):
    """Targets ``[label, p, w]`` per row (:class:`DistilledPairwiseLoss`'s); the network
    outputs one score, deployed as the logits of :class:`ScoreLogits`."""

    def deploy(self, module):
        return ScoreLogits(module)

    def target_proba(self, rows, y, n_classes):
        p = np.asarray(self.targets)[rows, 1].astype(np.float64)
        return np.column_stack([1.0 - p, p])


def platt(scores, y, sample_weight=None):
    """Platt's increasing sigmoid map ``P(y = 1 | s) = sigmoid(a s + b)``, ``a > 0``.

    Fitted by weighted maximum likelihood on Platt's smoothed targets (``(N+ + 1) / (N+ + 2)``
    for positives, ``1 / (N- + 2)`` for negatives, which keep ``a`` finite on separable
    scores), with the slope kept positive so that the map keeps the scores' order.

    Parameters
    ----------
    scores : ndarray of shape (n,)
    y : ndarray of shape (n,)
        0/1 labels.
    sample_weight : ndarray of shape (n,), default=None

    Returns
    -------
    a, b : float

    Examples
    --------
    >>> import numpy as np
    >>> a, b = platt(np.array([-2.0, -1.0, 1.0, 2.0]), np.array([0, 1, 0, 1]))
    >>> bool(a > 0)
    True
    """
    scores = np.asarray(scores, dtype=np.float64)
    y = np.asarray(y)
    w = np.ones(len(y)) if sample_weight is None else np.asarray(sample_weight, float)
    n_pos, n_neg = w[y == 1].sum(), w[y == 0].sum()
    t = np.where(y == 1, (n_pos + 1) / (n_pos + 2), 1 / (n_neg + 2))
    mean, std = np.average(scores, weights=w), scores.std()
    std = std if std > 0 else 1.0
    u = (scores - mean) / std

    def objective(theta):
        z = theta[0] * u + theta[1]
        loss = np.logaddexp(0, z) - t * z
        grad_z = expit(z) - t
        return (w @ loss) / w.sum(), np.array([w @ (grad_z * u), w @ grad_z]) / w.sum()

    res = minimize(objective, np.array([1.0, 0.0]), jac=True, method="L-BFGS-B",
                   bounds=[(1e-6, None), (None, None)])
    a_u, b_u = res.x
    return float(a_u / std), float(b_u - a_u * mean / std)


class RankingDistiller(BaseDistiller):
    """Distil a teacher into a student that ranks: distilled bipartite ranking.

    The goal is a score ``s(x)`` that ranks positives above negatives (the area under the
    ROC curve). The empirical pairwise risk learns from labelled (positive, negative) pairs
    only. Menon et al. (2021) weigh every ordered pair of rows ``(i, j)`` by the teacher's
    belief that ``i`` is positive and ``j`` negative, the teacher's probabilities standing
    in for the Bayes probabilities ``p*``:

    ``PD~(s) = sum_{i != j} W_ij l(s_i - s_j) / sum_{i != j} W_ij``, with
    ``W_ij = w_i w_j p_i (1 - p_j)``,

    with ``p`` the teacher's probability of the positive class ``classes_[1]``, ``w`` the
    sample weights and ``l`` a convex surrogate of ``1[s_i < s_j]`` (``loss``). Every row takes
    part in pairs, rows without labels (``X_unlabeled``) too, and with ``p = p*`` the risk
    has a lower variance than the empirical one (their Lemma 1). The student is trained on

    ``alpha * PD~(s) + (1 - alpha) * (labelled pairwise risk)``

    where the labelled term takes the pairs of a labelled positive and a labelled negative,
    weighted ``w_i w_j`` and normalised by their total weight; rows of ``X_unlabeled`` take
    part in the distilled term only. ``alpha=0`` is the labels-only pairwise student.

    Pairs are formed within each minibatch of the student (of ``batch_size`` rows): all of its
    ordered pairs, or ``n_pairs`` of them drawn at random. A step costs ``batch_size ** 2``
    (or ``n_pairs``) pairs, whatever the size of the data; each batch's risk is normalised by
    its own pairs' total weight.

    The student is any skdistill student (or a Pipeline ending in one), trained with one
    output, its score. Scores carry no probabilities, so a ``calibration_fraction`` of the
    labelled rows (stratified, drawn with ``random_state``) is held out: neither the teacher
    nor the student learns from them, and an increasing calibration map of the score is
    fitted on them. ``calibration="sigmoid"`` fits Platt's map ``sigmoid(a s + b)``, ``a >
    0``, written into the student's network: ``student_`` is then an ordinary two-class
    skdistill student whose ``predict_proba`` is the calibrated probability (and its ONNX
    export too). ``"isotonic"`` fits an isotonic regression (``calibrator_``), applied by
    the distiller's own predictions; it ties scores within its steps, which lowers the AUC
    of the calibrated probabilities, and the distiller is then not exported to ONNX. Either
    way the map is increasing, so :meth:`decision_function`, the log-odds of
    ``predict_proba[:, 1]``, ranks as the student's score does.

    The teacher's probabilities for the training rows can be cross-fitted (``n_folds``, as
    in :class:`CrossFitDistiller`: each row's from a clone of the teacher that did not see
    it; ``teacher_``, fitted on all of them, gives those of ``X_unlabeled``) and
    recalibrated (``teacher_calibration``, as in :class:`KnowledgeDistiller`: the map is
    fitted on the out-of-fold probabilities with ``n_folds``, else cross-fitted with
    ``teacher_calibration_cv`` folds; on a frozen teacher's own probabilities for a
    ``FrozenEstimator``). ``X`` may be a DataFrame, as for :class:`KnowledgeDistiller`.
    Binary classification only.

    Parameters
    ----------
    teacher : classifier with predict_proba, default=None
        ``None`` means ``RandomForestClassifier(n_estimators=100)``. A fitted teacher wrapped
        in :class:`sklearn.frozen.FrozenEstimator` is used as it is.
    student : skdistill student or Pipeline ending in one, default=None
        ``None`` means ``MLPStudent()``. Its network is built with one output, the score.
    loss : {"logistic", "hinge"}, default="logistic"
        The surrogate ``l(u)`` of ``1[u < 0]``: ``log(1 + e^-u)`` or ``max(0, 1 - u)``.
    n_pairs : int, default=None
        Ordered pairs per minibatch, drawn uniformly with replacement; ``None`` takes all
        ``B (B - 1)`` pairs of a batch of ``B`` rows.
    alpha : float, default=1.0
        Weight of the distilled risk; ``1 - alpha`` weighs the labelled pairwise risk.
    n_folds : int, default=None
        Cross-fit the teacher's probabilities of the training rows over that many folds
        (>= 2, at most the size of the smallest class): that many extra teacher fits.
        ``None`` uses ``teacher_``'s own probabilities. Not with a frozen teacher.
    teacher_calibration : {None, "temperature", "isotonic"}, default=None
        Recalibrate the teacher's probabilities before distilling them (see
        :class:`KnowledgeDistiller`).
    teacher_calibration_cv : int, default=5
        Cross-fitting folds for that map without ``n_folds``. Unused without
        ``teacher_calibration``, with ``n_folds`` or with a frozen teacher.
    calibration : {"sigmoid", "isotonic"}, default="sigmoid"
        The map from the student's score to a probability, fitted on the held-out rows.
    calibration_fraction : float, default=0.2
        Fraction of the labelled rows of each class held out for the calibration map (in
        (0, 1), rounded, at least one row of each class, and at least one left to train on).
    keep_teachers : bool, default=True
        Keep ``teacher_``, ``fold_teachers_`` and ``oof_proba_`` after ``fit``.
    verbose : int, default=0
        When positive, the student prints its per-epoch table.
    random_state : int, RandomState instance or None, default=None
        Draws the held-out rows and the folds, and seeds a teacher or student whose own
        ``random_state`` is ``None``.

    Attributes
    ----------
    teacher_ : classifier
        The teacher fitted on the training rows (the frozen one itself when frozen).
    fold_teachers_ : list of classifiers
        With ``n_folds``: ``fold_teachers_[k]`` was fitted on all folds but fold ``k``.
    oof_proba_ : ndarray of shape (n_train, 2)
        With ``n_folds``: the out-of-fold probabilities of the training rows.
    teacher_calibrator_ : TemperatureCalibrator, IsotonicCalibrator or None
        The teacher's calibration map; None without ``teacher_calibration``.
    student_ : student estimator
        The fitted student; with ``calibration="sigmoid"`` its probabilities are the
        distiller's.
    calibrator_ : IsotonicRegression or None
        With ``calibration="isotonic"``, the map from the student's score to the
        probability of ``classes_[1]``; None with ``"sigmoid"`` (the map is in ``student_``).
    calibration_rows_ : ndarray of int
        The rows of ``X`` held out for the calibration map.
    history_ : skorch.History
        The student's per-epoch history.
    classes_ : ndarray of shape (2,)
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        The column names of a DataFrame ``X`` (absent for arrays).

    References
    ----------
    Menon, Rawat, Reddi, Kim, Kumar. A Statistical Perspective on Distillation. ICML 2021.

    Examples
    --------
    >>> from sklearn.datasets import load_breast_cancer
    >>> from sklearn.ensemble import RandomForestClassifier
    >>> from sklearn.metrics import roc_auc_score
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> from skdistill import MLPStudent, RankingDistiller
    >>> X, y = load_breast_cancer(return_X_y=True)
    >>> ranker = make_pipeline(StandardScaler(), RankingDistiller(
    ...     RandomForestClassifier(n_estimators=50, random_state=0),
    ...     MLPStudent(hidden_layer_sizes=(16,), max_epochs=20, random_state=0),
    ...     random_state=0))
    >>> ranker.fit(X, y).predict_proba(X[:2]).shape
    (2, 2)
    >>> roc_auc_score(y, ranker.decision_function(X)) > 0.95
    True
    """

    _takes_tables = True

    _parameter_constraints = {
        **BaseDistiller._parameter_constraints,
        "loss": [StrOptions(set(PAIRWISE_SURROGATES))],
        "n_pairs": [Interval(numbers.Integral, 1, None, closed="left"), None],
        "alpha": [Interval(numbers.Real, 0, 1, closed="both")],
        "n_folds": [Interval(numbers.Integral, 2, None, closed="left"), None],
        "teacher_calibration": TEACHER_CALIBRATION,
        "teacher_calibration_cv": [Interval(numbers.Integral, 2, None, closed="left")],
        "calibration": [StrOptions({"sigmoid", "isotonic"})],
        "calibration_fraction": [Interval(numbers.Real, 0, 1, closed="neither")],
        "keep_teachers": ["boolean"],
    }

    def __init__(self, teacher=None, student=None, *, loss="logistic", n_pairs=None,
                 alpha=1.0, n_folds=None, teacher_calibration=None, teacher_calibration_cv=5,
                 calibration="sigmoid", calibration_fraction=0.2, keep_teachers=True,
                 verbose=0, random_state=None):
        self.teacher = teacher
        self.student = student
        self.loss = loss
        self.n_pairs = n_pairs
        self.alpha = alpha
        self.n_folds = n_folds
        self.teacher_calibration = teacher_calibration
        self.teacher_calibration_cv = teacher_calibration_cv
        self.calibration = calibration
        self.calibration_fraction = calibration_fraction
        self.keep_teachers = keep_teachers
        self.verbose = verbose
        self.random_state = random_state

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = False
        return tags

    # -- fitting ----------------------------------------------------------------------------
    @fit_policy
    def fit(self, X, y, sample_weight=None, X_unlabeled=None, **fit_params):
        """Fit the teacher, the student's score, then the calibration map.

        The student's score is trained on the distilled pairwise risk, the calibration map
        fitted on the held-out rows.

        Parameters
        ----------
        X : array-like, sparse matrix or DataFrame of shape (n_samples, ...)
            A numeric array is validated and converted once, as scikit-learn does; a
            DataFrame or an array of strings goes to the teacher and the student as it is.
        y : array-like of shape (n_samples,)
            Labels of two classes; ``classes_[1]`` is the positive one.
        sample_weight : array-like of shape (n_samples,), default=None
            Row weights: a pair weighs the product of its rows' weights. They also go to
            the teacher's ``fit`` where it accepts them (else it is fitted unweighted, with a
            warning) and to the calibration maps.
        X_unlabeled : array-like, sparse matrix or DataFrame of shape (n_unlabeled, ...), \
default=None
            Rows without labels that take part in the distilled risk's pairs, with
            ``teacher_``'s probabilities; they weigh 1. The teacher is not fitted on them.
        **fit_params : dict
            Metadata routed to the teacher and to a student Pipeline's transformers, only
            with ``sklearn.set_config(enable_metadata_routing=True)``.

        Returns
        -------
        self
        """
        X, y, y_enc, sample_weight = self._check_fit_data(X, y, sample_weight)
        if len(self.classes_) != 2:
            # scikit-learn's wording for a binary-only classifier, then the classes found
            raise ValueError(f"{type(self).__name__}: Only binary classification is "
                             f"supported. The type of the target is multiclass: parameter y "
                             f"has {len(self.classes_)} classes {self.classes_.tolist()}; "
                             "bipartite ranking needs two (use KnowledgeDistiller for more).")
        routed = self._route_fit(sample_weight, fit_params)
        X_unlabeled = self._check_unlabeled(X_unlabeled, X)
        student = self._student()
        last = final_step(student)
        if type(last).deployed_module is not BaseStudent.deployed_module:
            raise param_error(self, "student", student,
                              "a student that predicts with the network it trains, such as "
                              f"MLPStudent or CNNStudent ({type(last).__name__} predicts with "
                              "another network built from it, which a one-output score "
                              "network cannot give)", TypeError)
        held, train = self._calibration_split(y_enc)
        self.calibration_rows_ = held
        n_train = len(train)
        self._check_student_rows(student, np.empty(n_train), X_unlabeled)
        frozen = isinstance(self._teacher(), FrozenEstimator)
        if self.n_folds is not None:
            if frozen:
                raise param_error(self, "n_folds", self.n_folds,
                                  "None with a FrozenEstimator teacher (a frozen teacher "
                                  "cannot be refitted on folds)")
            self._check_n_folds("n_folds", self.n_folds, y_enc[train])
        cross_fit = self.teacher_calibration is not None and not frozen and self.n_folds is None
        if cross_fit:
            self._check_n_folds("teacher_calibration_cv", self.teacher_calibration_cv,
                                y_enc[train])

        X_cal, X_fit = _safe_indexing(X, held), _safe_indexing(X, train)
        y_fit, y_fit_enc = y[train], y_enc[train]
        w_cal = None if sample_weight is None else sample_weight[held]
        w_fit = None if sample_weight is None else sample_weight[train]
        routed = _subset_routed(routed, X, train, w_fit)
        teacher_params = self._teacher_params(self._teacher(), w_fit, routed)
        self.teacher_ = self._fit_teacher(X_fit, y_fit, params=teacher_params)
        if self.n_folds is not None:
            self.fold_teachers_, proba = self._cross_fitted_proba(
                X_fit, y_fit, y_fit_enc, teacher_params, self.n_folds)
            self.oof_proba_ = proba
        else:
            proba = self._teacher_proba(self.teacher_, X_fit)
        n_unlabeled = 0 if X_unlabeled is None else _num_samples(X_unlabeled)
        unlabeled = (None if X_unlabeled is None
                     else self._teacher_proba(self.teacher_, X_unlabeled))
        self.teacher_calibrator_ = None
        if self.teacher_calibration is not None:
            held_out = (self._cross_fitted_proba(X_fit, y_fit, y_fit_enc, teacher_params,
                                                 self.teacher_calibration_cv)[1]
                        if cross_fit else proba)
            proba = self._calibrate_teacher(held_out, y_fit_enc, w_fit, proba)
            if unlabeled is not None:
                unlabeled = self.teacher_calibrator_.transform(unlabeled)

        student_params = self._student_params(routed, n_train, n_unlabeled)
        labels = y_fit_enc
        weight = self._student_weight(student, w_fit)
        if X_unlabeled is not None:
            X_fit, y_fit, weight = self._with_unlabeled(X_fit, y_fit, weight, X_unlabeled,
                                                        unlabeled.argmax(axis=1))
            proba = np.concatenate([proba, unlabeled])
            labels = np.concatenate([labels, np.full(n_unlabeled, -1)])
        weight = np.ones(len(labels)) if weight is None else weight
        targets = np.column_stack([labels, proba[:, 1], weight]).astype(np.float32)
        objective = _RankingObjective(
            DistilledPairwiseLoss(self.alpha, self.loss, self.n_pairs), targets,
            n_outputs=1, fields=("target",))
        self._train_student(
            self._student_verbose(self._seeded_clone(student, offset=1)), X_fit, y_fit,
            objective, None, student_params)
        self._fit_calibration(X_cal, y_enc[held], w_cal)
        self._drop_teachers()
        return self

    def _calibration_split(self, y_enc):
        """``(held-out rows, training rows)``: of each class, ``calibration_fraction`` of
        its rows (rounded, at least one) held out, at least one left; drawn with a seed from
        ``random_state`` on a stream of its own."""
        seed = np.random.SeedSequence([draw_seed(self.random_state), _CALIBRATION_STREAM])
        rng = np.random.default_rng(seed)
        held = []
        for k, label in enumerate(self.classes_):
            label = label.item() if hasattr(label, "item") else label
            rows = np.flatnonzero(y_enc == k)
            if len(rows) < 2:
                raise param_error(self, "y", f"<labels with {len(rows)} row of class "
                                  f"{label!r}>", "at least 2 rows of each class (one held "
                                  "out for the calibration map, one to train on)")
            n_held = min(max(1, int(round(self.calibration_fraction * len(rows)))),
                         len(rows) - 1)
            held.append(rng.choice(rows, n_held, replace=False))
        held = np.sort(np.concatenate(held))
        train = np.setdiff1d(np.arange(len(y_enc)), held)
        return held, train

    def _fit_calibration(self, X_cal, y_cal, w_cal):
        """Fit the map from the student's score to the probability of ``classes_[1]`` on
        the held-out rows: Platt's, into the student's network, or an isotonic one."""
        scores = self._log_odds(X_cal)
        self.calibrator_ = None
        if self.calibration == "sigmoid":
            a, b = platt(scores, y_cal, w_cal)
            network = final_step(self.student_).module_
            network.calibration.copy_(torch.tensor([a, b], dtype=network.calibration.dtype))
        else:
            self.calibrator_ = IsotonicRegression(y_min=0.0, y_max=1.0, increasing=True,
                                                  out_of_bounds="clip").fit(
                scores, y_cal, sample_weight=w_cal)

    def _log_odds(self, X):
        """The student's log-odds ``a s + b`` for rows ``X`` as the student takes them."""
        log_proba = self._student_says("predict_log_proba", X)
        return log_proba[:, 1] - log_proba[:, 0]

    # -- prediction -------------------------------------------------------------------------
    def _isotonic_proba(self, X):
        q = np.clip(self.calibrator_.predict(self._log_odds(X)), EPS, 1 - EPS)
        return np.column_stack([1.0 - q, q])

    def decision_function(self, X):
        """The log-odds of ``predict_proba(X)[:, 1]``.

        An increasing function of the student's score, positive where ``predict`` gives
        ``classes_[1]``.

        Parameters
        ----------
        X : array-like, sparse matrix or DataFrame
            Rows as at ``fit``.

        Returns
        -------
        scores : ndarray of shape (n_samples,)
        """
        X = self._check_predict_X(X, "predict_log_proba")
        if getattr(self, "calibrator_", None) is not None:
            proba = self._isotonic_proba(X)
            return np.log(proba[:, 1]) - np.log(proba[:, 0])
        return self._log_odds(X)

    def predict_proba(self, X):
        """Calibrated probabilities of the two classes, columns in ``classes_`` order.

        Parameters
        ----------
        X : array-like, sparse matrix or DataFrame
            Rows as at ``fit``.

        Returns
        -------
        proba : ndarray of shape (n_samples, 2)
            The student's ``predict_proba`` (the sigmoid map is in its network), or the
            isotonic map of its score.
        """
        if getattr(self, "calibrator_", None) is None:
            return super().predict_proba(X)
        return self._isotonic_proba(self._check_predict_X(X, "predict_log_proba"))

    def predict_log_proba(self, X):
        """Log of :meth:`predict_proba`."""
        if getattr(self, "calibrator_", None) is None:
            return super().predict_log_proba(X)
        return np.log(self.predict_proba(X))

    def predict(self, X):
        """``classes_[1]`` where :meth:`decision_function` is positive, else ``classes_[0]``."""
        if getattr(self, "calibrator_", None) is None:
            return super().predict(X)
        return self.classes_[(self.decision_function(X) > 0).astype(int)]


def _subset_routed(routed, X, rows, sample_weight):
    """Routed ``fit`` metadata (see :meth:`BaseDistiller._route_fit`) of the rows ``rows``;
    ``sample_weight`` stands for the distiller's weights wherever they were routed."""
    if routed is None:
        return None
    full = routed["sample_weight"]

    def subset(params):
        return {key: (sample_weight if value is full and full is not None else
                      _check_method_params(X, params={key: value}, indices=rows)[key])
                for key, value in params.items()}

    return {"teacher": subset(routed["teacher"]), "student": subset(routed["student"]),
            "sample_weight": sample_weight}


__all__ = ["RankingDistiller"]
