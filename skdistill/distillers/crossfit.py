"""CrossFitDistiller: cross-fitted, gamma-corrected distillation (Dao, Kamath, Syrgkanis, Mackey 2021)."""
import numbers

import numpy as np
from joblib import Parallel, delayed
from scipy.special import softmax
from sklearn.base import is_regressor
from sklearn.frozen import FrozenEstimator
from sklearn.utils._param_validation import HasMethods, Interval, Options, StrOptions

from .._interrupt import fit_policy
from sklearn.utils.validation import _num_samples

from .._validation import param_error, warn_class_mismatch
from ..engine import Objective
from ..losses import (SoftTargetCrossEntropy, SquaredErrorLogits,
                      SquaredErrorProba, corrected_targets, soften)
from ..streaming import is_chunked
from ._base import AUGMENT, STREAMING, TEACHER_CALIBRATION, BaseDistiller, _fit_refusing

#: loss name -> (scale of the targets, per-row criterion factory taking the temperature)
LOSSES = {
    "ce": ("p", lambda temperature: SoftTargetCrossEntropy(temperature, reduction="none")),
    "sel": ("logp", lambda temperature: SquaredErrorLogits(reduction="none")),
    "mse": ("p", lambda temperature: SquaredErrorProba(reduction="none")),
}




class CrossFitDistiller(BaseDistiller):
    """Distil a teacher through cross-fitting and gamma loss correction.

    Vanilla distillation trains the student on teacher probabilities for the very points the
    teacher was fitted on, so an overfitting teacher hands over its training-set
    overconfidence. Cross-fitting splits the data into ``n_folds`` folds, fits a clone of the
    teacher on all folds but one and predicts the held-out fold, so every training point gets
    a probability ``p`` from a teacher that never saw it (``oof_proba_``). Loss correction then
    moves each target towards the label ``y`` (one-hot) to offset a biased, underfitting
    teacher:

    - probability scale (``loss="ce"`` or ``"mse"``): target ``p + gamma * (y - p)``;
    - log scale (``loss="sel"``): target ``log max(p, 1/500) + gamma * (y - p)``;

    with, per example and class, ``gamma = argmin_g g^2 (y - p)^2 + alpha (g0 - g)^2
    = alpha g0 / (alpha + (y - p)^2)``, ``g0 = 1`` on the probability scale and ``1 / p`` on the
    log scale, ``alpha = gamma_alpha``. ``gamma_alpha=0`` is plain (cross-fitted) distillation,
    ``np.inf`` the Neyman-orthogonal loss (``gamma = g0``); values in between trade the
    teacher's bias against the variance of the labels.

    With ``teacher_calibration`` set, a calibration map is first fitted on the out-of-fold
    probabilities against the labels (they are held out, so no extra teacher fit is needed)
    and applied to them: the student learns from calibrated probabilities (Menon et al. 2021:
    a teacher stands in for the Bayes class probabilities, and its calibration matters more
    than its accuracy). The order is calibration, then softening by ``temperature``, then the
    gamma correction. The map is fitted and applied on the same rows; it is low-capacity (one
    temperature, or monotone step functions) and the floor of the isotonic map keeps any
    target from being exactly 0, but on small data prefer ``"temperature"``.

    The student is either a skdistill student, trained on the targets with the chosen loss, or
    any scikit-learn regressor fitted to them (one column, the second class, for binary
    problems; one column per class otherwise), whose outputs are mapped back to probabilities:
    clipped to [0, 1] and renormalised on the probability scale, ``exp`` (binary, clipped at 1)
    or softmax (multiclass) on the log scale.

    ``X`` may be a pandas DataFrame with numeric, string, ``category`` and bool columns (and
    NaN where the teacher handles it): it goes to the teacher as it is, and to the student,
    which may be a :class:`~sklearn.pipeline.Pipeline` with its own preprocessing ending in
    a skdistill student (or in a scikit-learn regressor). The Pipeline's transformers are
    fitted on the student's rows (``X`` and ``X_unlabeled``), its last step is trained
    through ``fit_objective``; ``student_`` is the fitted Pipeline. A sub-estimator that
    refuses ``X`` is named in the error.

    Metadata routing (``sklearn.set_config(enable_metadata_routing=True)``): the distiller
    consumes ``sample_weight`` itself (the student's loss and the calibration map) and
    routes ``fit`` metadata to the teacher (every fit of it, each getting the rows it is
    fitted on) and to the transformers of a student Pipeline (or to a scikit-learn regressor
    student, fitted through its ``fit``), each getting what it requested
    (``set_fit_request``). The skdistill student, alone or last in a Pipeline, is not fitted
    through ``fit``: its loss is weighted by the distiller's ``sample_weight``, unless it
    was told ``set_fit_request(sample_weight=False)``. With routing off, ``sample_weight``
    goes to every ``fit`` that accepts it, as before.

    Parameters
    ----------
    teacher : classifier with predict_proba, default=None
        Cloned for each fold (and for ``teacher_``). ``None`` means
        ``RandomForestClassifier(n_estimators=100)``. A ``FrozenEstimator`` cannot be
        cross-fitted and is rejected.
    student : skdistill student, scikit-learn regressor, or Pipeline ending in either, \
default=None
        ``None`` means ``MLPStudent()``.
    n_folds : int, default=5
        Number of cross-fitting folds (>= 2, and at most the size of the smallest class).
    gamma_alpha : float, default=0.0
        The correction strength ``alpha`` (>= 0, ``np.inf`` allowed); see above.
    loss : {"ce", "sel", "mse"}, default="ce"
        ``"ce"``: soft-target cross-entropy at ``temperature`` (probability scale). ``"sel"``:
        squared error between the student's logits and the log-scale targets (Ba & Caruana).
        ``"mse"``: squared error between the student's probabilities and the targets. For a
        regressor student only the scale matters (log scale for ``"sel"``).
    temperature : float, default=1.0
        With ``loss="ce"`` and a skdistill (network) student, teacher probabilities are
        softened to ``softmax(log p / T)`` before the correction and the student's logits are
        divided by ``T`` in the loss, so its ``predict_proba`` (at ``T = 1``) estimates the
        unsoftened probabilities. A scikit-learn regressor student has no such loss to undo the
        softening, so it ignores ``temperature``: it is fitted to the corrected targets of the
        unsoftened ``oof_proba_`` and ``predict_proba`` returns them, for any ``T``.
    teacher_calibration : {None, "temperature", "isotonic"}, default=None
        Recalibrate the out-of-fold probabilities before the correction: ``"temperature"``
        (:class:`~skdistill.calibration.TemperatureCalibrator`, one scalar, keeps the
        predicted classes) or ``"isotonic"`` (:class:`~skdistill.calibration.IsotonicCalibrator`,
        one-vs-rest, more flexible, wants more rows). ``None`` distils them as they are.
    stratify : bool, default=True
        Stratify the folds by class.
    refit_teacher : bool, default=True
        Also fit ``teacher_`` on all the data (in the same parallel batch as the fold teachers).
    augment : {None, "munge", "gaussian"} or augmenter, default=None
        Grow the transfer set with synthetic rows drawn from ``X`` (Bucilă et al. 2006),
        labelled as ``X_unlabeled`` is: by ``teacher_``, fitted on all the rows (the mean of
        ``fold_teachers_`` when ``refit_teacher=False``), through the calibration map, without
        gamma correction. ``"munge"`` is :class:`~skdistill.augment.Munge` (each row mixed
        with its nearest neighbour), ``"gaussian"``
        :class:`~skdistill.augment.GaussianNoise` (jittered copies), both with their default
        settings; pass one of them (``Munge(p=0.3)``) to set them, or any
        object with ``sample(X, n_samples, random_state)``. The rows are drawn from ``X``
        as given (a DataFrame with its strings and NaN: the teacher and the student bring
        their own preprocessing), seeded from ``random_state``, and come after the rows of
        ``X_unlabeled``. ``None`` adds none. Sparse ``X`` is refused.
    augment_size : float, default=1.0
        Number of synthetic rows as a multiple of the rows of ``X`` (> 0), rounded, at least
        one. Unused without ``augment``.
    shuffle_buffer : int, default=100_000
        Rows mixed at a time when ``X_unlabeled`` is chunked: the chunks and the rows of
        ``X`` fill a buffer of this many rows, which is shuffled and cut into the student's
        minibatches (as in :class:`~skdistill.KnowledgeDistiller`). Unused otherwise.
    teacher_cache : str or path, default=None
        A directory where, when ``X_unlabeled`` is chunked, the first pass writes each
        chunk's student rows and targets (``.npy``, in a new sub-directory removed at the
        end of ``fit``), which later passes read instead of running the teacher again.
        Unused otherwise.
    keep_teachers : bool, default=True
        Keep the fitted teachers and the per-row training arrays (``teacher_``,
        ``fold_teachers_``, ``oof_proba_``) after ``fit``. ``False`` keeps only what
        predicts (``student_``, ``classes_``, ``history_``, ``teacher_calibrator_`` and the
        feature names): the model to ship, whose pickle is about the student's size.
    n_jobs : int, default=None
        Parallel jobs for the teacher fits, through :class:`joblib.Parallel`, so a
        ``joblib.parallel_config(backend="dask")`` block sends them to a dask cluster.
    verbose : int, default=0
        When positive, joblib reports the fold-teacher fits and a network student prints its
        per-epoch table.
    random_state : int, RandomState instance or None, default=None
        Seeds the folds, and each teacher or student whose own ``random_state`` is ``None``.

    Attributes
    ----------
    oof_proba_ : ndarray of shape (n_samples, n_classes)
        Out-of-fold teacher probabilities, columns in ``classes_`` order (as predicted,
        before any calibration).
    teacher_calibrator_ : TemperatureCalibrator, IsotonicCalibrator or None
        The calibration map fitted on ``oof_proba_`` (``temperature_``, or ``isotonic_``);
        ``teacher_calibrator_.transform(oof_proba_)`` are the probabilities the targets are
        built from. None without ``teacher_calibration``.
    fold_teachers_ : list of classifiers
        ``fold_teachers_[k]`` was fitted on all folds but fold ``k``.
    teacher_ : classifier
        The teacher fitted on all the data (only when ``refit_teacher=True``).
    student_ : student or regressor
        The fitted student; predictions are its own. A network student's ``callbacks``,
        ``validation_fraction``, ``max_epochs``, ``batch_size`` and ``verbose`` all apply.
    history_ : skorch.History or None
        The network student's per-epoch history (None for a scikit-learn regressor).
    targets_scale_ : {"p", "logp"}
        Scale of the targets the student was trained on.
    n_augmented_ : int
        Number of synthetic rows the student learnt from (0 without ``augment``).
    transfer_stats_ : dict or None
        After a fit on a chunked ``X_unlabeled``, what the stream cost (as
        :class:`~skdistill.KnowledgeDistiller`'s). None otherwise.
    classes_ : ndarray of shape (n_classes,)
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        The column names of a DataFrame ``X`` (absent for arrays).

    References
    ----------
    Dao, Kamath, Syrgkanis, Mackey. Knowledge Distillation as Semiparametric Inference.
    ICLR 2021.

    Ba, Caruana. Do Deep Nets Really Need to be Deep? NeurIPS 2014.

    Menon, Rawat, Reddi, Kim, Kumar. A Statistical Perspective on Distillation. ICML 2021.

    Examples
    --------
    >>> from sklearn.datasets import load_breast_cancer
    >>> from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
    >>> from skdistill import CrossFitDistiller
    >>> X, y = load_breast_cancer(return_X_y=True)
    >>> model = CrossFitDistiller(RandomForestClassifier(n_estimators=50),
    ...                           RandomForestRegressor(n_estimators=5), n_folds=3,
    ...                           gamma_alpha=0.01, random_state=0).fit(X, y)
    >>> model.oof_proba_.shape, len(model.fold_teachers_)
    ((569, 2), 3)
    >>> model.score(X, y) > 0.9
    True
    """

    _takes_tables = True
    _streams = True

    _parameter_constraints = {
        **BaseDistiller._parameter_constraints,
        **STREAMING,
        "keep_teachers": ["boolean"],
        "student": [HasMethods(["fit", "predict"]), None],
        "n_folds": [Interval(numbers.Integral, 2, None, closed="left")],
        "gamma_alpha": [Interval(numbers.Real, 0, None, closed="left"),
                        Options(numbers.Real, {np.inf})],
        "loss": [StrOptions(set(LOSSES))],
        "temperature": [Interval(numbers.Real, 0, None, closed="neither")],
        "teacher_calibration": TEACHER_CALIBRATION,
        **AUGMENT,
        "stratify": ["boolean"],
        "refit_teacher": ["boolean"],
        "n_jobs": [Interval(numbers.Integral, None, -1, closed="right"),
                   Interval(numbers.Integral, 1, None, closed="left"), None],
    }

    def __init__(self, teacher=None, student=None, n_folds=5, gamma_alpha=0.0, loss="ce",
                 temperature=1.0, teacher_calibration=None, stratify=True, refit_teacher=True,
                 augment=None, augment_size=1.0, shuffle_buffer=100_000, teacher_cache=None,
                 keep_teachers=True, n_jobs=None, verbose=0, random_state=None):
        self.teacher = teacher
        self.student = student
        self.n_folds = n_folds
        self.gamma_alpha = gamma_alpha
        self.loss = loss
        self.temperature = temperature
        self.teacher_calibration = teacher_calibration
        self.stratify = stratify
        self.refit_teacher = refit_teacher
        self.augment = augment
        self.augment_size = augment_size
        self.shuffle_buffer = shuffle_buffer
        self.teacher_cache = teacher_cache
        self.keep_teachers = keep_teachers
        self.n_jobs = n_jobs
        self.verbose = verbose
        self.random_state = random_state

    # -- checks ---------------------------------------------------------------------------------
    def _crossfit_teacher(self):
        teacher = self._teacher()
        if isinstance(teacher, FrozenEstimator):
            raise param_error(
                self, "teacher", teacher,
                "an unfitted classifier that can be cloned and refitted on each fold; a "
                "FrozenEstimator cannot be cross-fitted (use KnowledgeDistiller for a fixed "
                "teacher)", TypeError)
        return teacher

    def _crossfit_student(self):
        student = self._default_student() if self.student is None else self.student
        if not is_regressor(student):
            self._check_student_contract(student, "a scikit-learn regressor, or a student")
        return student

    # -- fitting --------------------------------------------------------------------------------
    @fit_policy
    def fit(self, X, y, sample_weight=None, X_unlabeled=None, **fit_params):
        """Cross-fit the teachers, correct their out-of-fold probabilities, fit the student.

        Parameters
        ----------
        X : array-like, sparse matrix or DataFrame of shape (n_samples, ...)
            Training inputs (2-d for tabular students and regressors, images for a CNN
            student). A numeric array is validated and converted once, as scikit-learn does;
            a DataFrame (numeric, string, ``category`` and bool columns, NaN where the teacher
            and the student's preprocessing handle it) or an array of strings goes to the
            teachers and the student as it is.
        y : array-like of shape (n_samples,)
            Class labels.
        sample_weight : array-like of shape (n_samples,), default=None
            Row weights: each fold teacher gets those of its training rows (where its ``fit``
            accepts them, else it is fitted unweighted with a warning), and the student's
            loss and the calibration map are weighted by them. With metadata routing on, the
            teachers (and a student Pipeline's transformers, or a regressor student) get them
            only where they request them.
        X_unlabeled : array-like, sparse matrix or DataFrame of shape (n_unlabeled, ...), \
default=None
            Extra rows without labels (a transfer set) that the student also learns from. No
            teacher saw them, so their targets are the probabilities of ``teacher_`` (of the
            mean of ``fold_teachers_`` when ``refit_teacher=False``), through the calibration
            map when ``teacher_calibration`` is set and softened by ``temperature``, without
            gamma correction (there is no label); they weigh 1 in the student's loss. Each row is
            shaped as a row of ``X`` (a DataFrame with the columns of ``X``, in order).
            With ``augment`` set, the synthetic rows are added to them. A chunked source
            (a dask Array or DataFrame, a :class:`~skdistill.streaming.Chunks`, an
            iterator) is streamed as by :class:`~skdistill.KnowledgeDistiller`: labelled
            chunk by chunk by ``teacher_`` (the fold teachers' mean when
            ``refit_teacher=False``), mixed with ``X`` in ``shuffle_buffer`` rows, one pass
            per epoch of the student, which must be a skdistill student (or a Pipeline ending
            in one).
        **fit_params : dict
            Metadata routed to the teachers and to a student Pipeline's transformers (or a
            regressor student), only with ``sklearn.set_config(enable_metadata_routing=True)``
            (see "Metadata routing" above); with routing off, passing any is an error.

        Returns
        -------
        self
        """
        X, y, y_enc, sample_weight = self._check_fit_data(X, y, sample_weight)
        routed = self._route_fit(sample_weight, fit_params)
        teacher = self._crossfit_teacher()
        student = self._crossfit_student()
        X_unlabeled, chunked = self._split_unlabeled(X_unlabeled, X, student)
        if chunked is not None and is_regressor(student):
            raise param_error(self, "student", student,
                              "a skdistill student (or a Pipeline ending in one) when "
                              "X_unlabeled is chunked: a scikit-learn regressor is fitted on "
                              "its rows in memory", TypeError)
        X_unlabeled = self._augmented(X, X_unlabeled)
        self._check_student_rows(student, X, X_unlabeled)
        self._check_n_folds("n_folds", self.n_folds, y_enc)
        folds = self._folds(X, y_enc, self.n_folds, self.stratify)
        self._fit(X, y, y_enc, sample_weight, teacher, student, folds, X_unlabeled, routed,
                  chunked)
        self._drop_teachers()
        return self

    def _unlabeled_proba(self, X_unlabeled):
        """Probabilities for rows no teacher saw: ``teacher_``'s, else the fold teachers' mean."""
        if self.refit_teacher:
            return self._teacher_proba(self.teacher_, X_unlabeled)
        return np.mean([self._teacher_proba(t, X_unlabeled, "fold teacher")
                        for t in self.fold_teachers_], axis=0)

    def _fit(self, X, y, y_enc, sample_weight, teacher, student, folds, X_unlabeled=None,
             routed=None, chunked=None):
        teacher_params = self._teacher_params(teacher, sample_weight, routed,
                                              "fold teachers' estimator")

        jobs = self._fold_jobs(teacher, X, y, folds, teacher_params)
        if self.refit_teacher:
            jobs.append((type(self).__name__, f"teacher {type(teacher).__name__}",
                         self._seeded_clone(teacher), X, y, teacher_params))
        fitted = Parallel(n_jobs=self.n_jobs, verbose=10 * int(self.verbose))(
            delayed(_fit_refusing)(*job) for job in jobs)
        self.fold_teachers_ = fitted[:len(folds)]
        if self.refit_teacher:
            self.teacher_ = fitted[-1]
        warn_class_mismatch(self, fitted, self.classes_, "fold teachers")

        self.oof_proba_ = oof = self._out_of_fold_proba(self.fold_teachers_, X, folds)
        unlabeled = None if X_unlabeled is None else self._unlabeled_proba(X_unlabeled)
        self.teacher_calibrator_ = None
        if self.teacher_calibration is not None:
            oof = self._calibrate_teacher(oof, y_enc, sample_weight, oof)
            if unlabeled is not None:
                unlabeled = self.teacher_calibrator_.transform(unlabeled)

        scale, make_criterion = LOSSES[self.loss]
        # Temperature is part of the soft-target cross-entropy of a network student (targets
        # softened here, logits divided by T in the loss, so its predict_proba is unsoftened).
        # A regressor has no such loss to undo the softening: it ignores the temperature.
        regressor = is_regressor(student)
        soften_targets = self.loss == "ce" and not regressor
        proba = soften(oof, self.temperature) if soften_targets else oof
        onehot = np.eye(len(self.classes_))[y_enc]
        targets = corrected_targets(onehot, proba, self.gamma_alpha, scale)
        self.targets_scale_ = scale
        n_unlabeled = 0 if X_unlabeled is None else _num_samples(X_unlabeled)
        student_params = self._student_params(routed, _num_samples(X), n_unlabeled)

        def unlabeled_targets(proba):
            # No label to correct towards: alpha 0 gives the (softened) probabilities' targets.
            soft = soften(proba, self.temperature) if soften_targets else proba
            return corrected_targets(np.zeros_like(soft), soft, 0.0, scale)

        if unlabeled is not None:
            targets = np.concatenate([targets, unlabeled_targets(unlabeled)])
            X, y, sample_weight = self._with_unlabeled(X, y, sample_weight, X_unlabeled,
                                                       unlabeled.argmax(axis=1))

        if regressor:
            self._fit_regressor_student(
                self._seeded_clone(student, offset=1), X,
                targets[:, 1] if len(self.classes_) == 2 else targets, sample_weight,
                student_params, routed)
        else:
            transfer = None
            if chunked is not None:
                def to_fields(proba):  # as the rows of X_unlabeled in memory
                    return {"target": unlabeled_targets(proba).astype(np.float32),
                            "y": proba.argmax(axis=1)}
                teachers = [self.teacher_] if self.refit_teacher else self.fold_teachers_
                transfer = self._transfer(chunked, X, teachers, to_fields)
            self._train_student(self._student_verbose(self._seeded_clone(student, offset=1)),
                                X, y, Objective(make_criterion(self.temperature),
                                                targets.astype(np.float32), fields=("target",)),
                                sample_weight, student_params, transfer)

    # -- prediction -----------------------------------------------------------------------------
    def _regressor_proba(self, X):
        out = np.asarray(self._student_says("predict", X), dtype=np.float64)
        out = out.reshape(len(out), -1)
        if len(self.classes_) == 2:
            q = out[:, 0] if self.targets_scale_ == "p" else np.exp(out[:, 0])
            q = np.clip(q, 0.0, 1.0)
            return np.column_stack([1.0 - q, q])
        if self.targets_scale_ == "logp":
            return softmax(out, axis=1)
        out = np.clip(out, 0.0, None)
        sums = out.sum(axis=1, keepdims=True)
        out[sums[:, 0] == 0] = 1.0  # a row with no mass at all: uniform
        return out / out.sum(axis=1, keepdims=True)

    def predict_proba(self, X):
        """Class probabilities of the distilled student, columns in ``classes_`` order."""
        if is_chunked(X):
            return self._predict_chunks("predict_proba", X)
        X = self._check_predict_X(X, "predict_proba")
        if is_regressor(self.student_):
            return self._regressor_proba(X)
        return self._student_says("predict_proba", X)

    def predict_log_proba(self, X):
        """Log of :meth:`predict_proba` (``-inf`` where a regressor student gives 0)."""
        if is_chunked(X):
            return self._predict_chunks("predict_log_proba", X)
        X = self._check_predict_X(X, "predict_log_proba")
        if is_regressor(self.student_):
            with np.errstate(divide="ignore"):
                return np.log(self._regressor_proba(X))
        return self._student_says("predict_log_proba", X)

    def predict(self, X):
        """Most probable class according to the student."""
        if is_chunked(X):
            return self._predict_chunks("predict", X)
        X = self._check_predict_X(X, "predict")
        if is_regressor(self.student_):
            return self.classes_[np.argmax(self._regressor_proba(X), axis=1)]
        return self._student_says("predict", X)


__all__ = ["CrossFitDistiller"]
