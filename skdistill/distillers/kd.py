"""KnowledgeDistiller: vanilla knowledge distillation (Hinton, Vinyals, Dean 2015) and decoupled
knowledge distillation (Zhao, Cui, Song, Qiu, Liang 2022)."""
import numbers

import numpy as np
from sklearn.frozen import FrozenEstimator
from sklearn.utils._param_validation import Interval, StrOptions

from sklearn.utils.validation import _num_samples

from .._interrupt import fit_policy
from ..engine import Objective
from .._validation import param_error
from ..losses import DistillationLoss, DKDLoss, soften
from ._base import AUGMENT, STREAMING, TEACHER_CALIBRATION, BaseDistiller


class KnowledgeDistiller(BaseDistiller):
    """Distil any probabilistic classifier into a student network.

    The teacher (any scikit-learn classifier with ``predict_proba``) is cloned and fitted on
    ``X, y``; a fitted teacher wrapped in :class:`sklearn.frozen.FrozenEstimator` is used as it
    is. The student is then trained with

    ``(1 - alpha) * CE(y, softmax(z)) + alpha * T^2 * CE(softmax(log p / T), softmax(z / T))``

    where ``p`` are the teacher's probabilities, ``z`` the student's logits and ``T`` the
    ``temperature``.

    ``loss="dkd"`` replaces the teacher term by decoupled KD (Zhao et al. 2022):

    ``(1 - alpha) * CE(y, softmax(z)) + alpha * (dkd_alpha * TCKD + dkd_beta * NCKD)``

    where, with ``q = softmax(log p / T)``, ``s = softmax(z / T)`` and ``t`` the target class,
    TCKD is ``T^2 KL`` between the binary distributions ``(q_t, 1 - q_t)`` and
    ``(s_t, 1 - s_t)``, and NCKD ``T^2 KL`` between ``q`` and ``s`` over the other classes,
    renormalised (see :func:`skdistill.losses.dkd_terms`). KD's term is
    ``TCKD + (1 - q_t) NCKD`` (plus the teacher's entropy, a constant): a confident teacher
    (``q_t`` near 1) all but silences what it says about the other classes, which
    ``dkd_beta`` restores. ``alpha`` keeps its meaning (the teacher's share against the
    labels'); ``dkd_alpha`` and ``dkd_beta`` are Zhao et al.'s ``alpha`` and ``beta``. Their
    recipe, ``CE + TCKD + 8 NCKD`` at ``T = 4``, is ``alpha=0.5, dkd_alpha=1, dkd_beta=8,
    temperature=4`` up to a factor 2. The target class ``t`` is the label; on rows without
    one (``X_unlabeled``, augmented rows, streamed chunks) it is the teacher's most probable
    class, and the loss is the DKD term alone. DKD needs at least three classes: with two, the
    non-target distribution has a single class, so a binary ``y`` is refused.

    With ``teacher_calibration`` set, ``p`` is first recalibrated (Menon et al. 2021: the
    teacher stands in for the Bayes class probabilities, so its calibration matters more than
    its accuracy). The map cannot be fitted on the teacher's probabilities for its own
    training rows, which are over-confident, so it is cross-fitted as in
    ``CalibratedClassifierCV(ensemble=False)``: ``teacher_calibration_cv`` clones of the
    teacher are fitted on all folds but one, the map is fitted on their out-of-fold
    probabilities against the labels, and it is applied to the probabilities of ``teacher_``
    (fitted on all the data) on ``X``. A frozen teacher is not refitted: the map is fitted on
    its own probabilities on ``X``, which are held out if it was fitted on other data. The
    calibrated ``p`` then goes through the temperature and ``alpha`` above, unchanged.

    ``X`` may be a pandas DataFrame with numeric, string, ``category`` and bool columns (and
    NaN where the teacher handles it): it goes to the teacher as it is, and to the student,
    which may be a :class:`~sklearn.pipeline.Pipeline` with its own preprocessing ending in
    a skdistill student (``MLPStudent``, ``CNNStudent``, ...). The Pipeline's transformers
    are fitted on the student's rows (``X`` and ``X_unlabeled``), its last step is trained
    through ``fit_objective``; ``student_`` is the fitted Pipeline. A sub-estimator that
    refuses ``X`` is named in the error.

    Transfer sets beyond memory: ``X_unlabeled`` may be chunked, a :class:`dask.array.Array`,
    a :class:`dask.dataframe.DataFrame`, a :class:`~skdistill.streaming.Chunks` or an iterator
    of arrays or DataFrames (see :mod:`skdistill.streaming`). ``X`` stays in memory (the
    teacher is fitted on it). ``teacher_`` (through the calibration map and a student
    Pipeline's transformers, fitted on ``X``) labels the chunks a few at a time, on the active
    ``dask.distributed`` client if there is one, on local threads otherwise, while the
    student trains on them mixed with the rows of ``X`` in a buffer of ``shuffle_buffer``
    rows; each of the student's ``max_epochs`` is a pass over them. Its validation rows
    (``validation_fraction``) are drawn from ``X`` alone. Memory is bounded by the chunks in
    flight and the buffer, not by the transfer set. Predictions on a dask collection are a
    lazy dask array; on a ``Chunks`` or an iterator, an iterator of arrays, one per chunk.

    Metadata routing (``sklearn.set_config(enable_metadata_routing=True)``): the distiller
    consumes ``sample_weight`` itself (the student's loss and the calibration map) and routes
    ``fit`` metadata to the teacher (every fit of it, each getting the rows it is fitted on)
    and to the transformers of a student Pipeline, each getting what it
    requested (``set_fit_request``). The skdistill student, alone or last in a Pipeline, is
    not fitted through ``fit``: its loss is weighted by the distiller's ``sample_weight``,
    unless it was told ``set_fit_request(sample_weight=False)``. With routing off,
    ``sample_weight`` goes to every ``fit`` that accepts it, as before.

    Parameters
    ----------
    teacher : classifier with predict_proba, default=None
        ``None`` means ``RandomForestClassifier(n_estimators=100)``.
    student : skdistill student or Pipeline ending in one, default=None
        ``None`` means ``MLPStudent()``.
    temperature : float, default=1.0
        Softening temperature ``T`` (> 0).
    alpha : float, default=1.0
        Weight of the teacher term; ``1`` trains on the teacher alone, ``0`` on labels alone.
    loss : {"kd", "dkd"}, default="kd"
        The teacher term: ``"kd"``, Hinton et al.'s soft cross-entropy; ``"dkd"``, decoupled
        KD (Zhao et al. 2022), for three classes or more (see above).
    dkd_alpha : float, default=1.0
        Weight of DKD's target-class term TCKD (>= 0; Zhao et al.'s ``alpha``). Unused with
        ``loss="kd"``.
    dkd_beta : float, default=8.0
        Weight of DKD's non-target term NCKD (>= 0; Zhao et al.'s ``beta``). Unused with
        ``loss="kd"``.
    teacher_calibration : {None, "temperature", "isotonic"}, default=None
        Recalibrate the teacher's probabilities before distilling them: ``"temperature"``
        fits one temperature (:class:`~skdistill.calibration.TemperatureCalibrator`, which
        keeps the teacher's predicted classes), ``"isotonic"`` one-vs-rest isotonic maps
        (:class:`~skdistill.calibration.IsotonicCalibrator`, more flexible, wants more
        rows). ``None`` distils the teacher as it is.
    teacher_calibration_cv : int, default=5
        Number of cross-fitting folds for the calibration map (>= 2, at most the size of the
        smallest class): that many extra teacher fits. Unused without ``teacher_calibration``
        or with a frozen teacher.
    augment : {None, "munge", "gaussian"} or augmenter, default=None
        Grow the transfer set with synthetic rows drawn from ``X`` (Bucilă et al. 2006),
        which the student learns from as from ``X_unlabeled``: on ``teacher_``'s
        probabilities (through the calibration map) alone. ``"munge"`` is
        :class:`~skdistill.augment.Munge` (each row mixed with its nearest neighbour),
        ``"gaussian"`` :class:`~skdistill.augment.GaussianNoise` (jittered copies), both
        with their default settings; pass one of them (``Munge(p=0.3)``) to set them, or any
        object with ``sample(X, n_samples, random_state)``. The rows are drawn from ``X``
        as given (a DataFrame with its strings and NaN: the teacher and the student bring
        their own preprocessing), seeded from ``random_state``, and come after the rows of
        ``X_unlabeled``. ``None`` adds none. Sparse ``X`` is refused.
    augment_size : float, default=1.0
        Number of synthetic rows as a multiple of the rows of ``X`` (> 0), rounded, at least
        one. Unused without ``augment``.
    shuffle_buffer : int, default=100_000
        Rows mixed at a time when ``X_unlabeled`` is chunked (see "Transfer sets beyond
        memory" below): the chunks and the rows of ``X`` fill a buffer of this many rows,
        which is shuffled and cut into the student's minibatches. More rows mix the data
        better and cost ``shuffle_buffer`` x the bytes of a row. Unused otherwise.
    teacher_cache : str or path, default=None
        A directory where, when ``X_unlabeled`` is chunked, the first pass writes each
        chunk's student rows and targets (``.npy`` files, in a new sub-directory of it
        removed at the end of ``fit``), which later passes read instead of running the
        teacher and the source again. None runs them at every pass. Unused otherwise.
    keep_teachers : bool, default=True
        Keep the fitted teachers and the per-row training arrays (``teacher_``) after ``fit``.
        ``False`` keeps only what predicts (``student_``, ``classes_``, ``history_``,
        ``teacher_calibrator_`` and the feature names): the model to ship, whose pickle is
        about the student's size.
    verbose : int, default=0
        When positive, the student prints its per-epoch table (as its own ``verbose``).
    random_state : int, RandomState instance or None, default=None
        Seeds a teacher or student whose own ``random_state`` is ``None``.

    Attributes
    ----------
    teacher_ : classifier
        The fitted teacher (the frozen one itself when frozen).
    student_ : student estimator
        The fitted student; predictions are its own. Its ``callbacks``,
        ``validation_fraction``, ``max_epochs``, ``batch_size`` and ``verbose`` all apply.
    history_ : skorch.History
        The student's per-epoch history.
    teacher_calibrator_ : TemperatureCalibrator, IsotonicCalibrator or None
        The fitted calibration map (``temperature_``, or ``isotonic_``);
        ``teacher_calibrator_.transform(teacher_.predict_proba(X))`` are the probabilities
        the student learnt from (before the temperature ``T``). None without
        ``teacher_calibration``.
    n_augmented_ : int
        Number of synthetic rows the student learnt from (0 without ``augment``).
    transfer_stats_ : dict or None
        After a fit on a chunked ``X_unlabeled``: ``rows`` and ``chunks`` per pass,
        ``passes``, ``labelled_chunks`` (chunks the teacher labelled, over all passes),
        ``label_seconds`` (the teacher's time, summed over the threads or workers that ran
        it), ``wait_seconds`` (the student's time waiting for a labelled chunk),
        ``fit_seconds`` (the student's whole training) and ``cache``. None otherwise.
    classes_ : ndarray of shape (n_classes,)
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        The column names of a DataFrame ``X`` (absent for arrays).

    References
    ----------
    Hinton, Vinyals, Dean. Distilling the Knowledge in a Neural Network. 2015.

    Menon, Rawat, Reddi, Kim, Kumar. A Statistical Perspective on Distillation. ICML 2021.

    Zhao, Cui, Song, Qiu, Liang. Decoupled Knowledge Distillation. CVPR 2022.

    Examples
    --------
    >>> from sklearn.datasets import load_breast_cancer
    >>> from sklearn.ensemble import RandomForestClassifier
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> from skdistill import KnowledgeDistiller, MLPStudent
    >>> X, y = load_breast_cancer(return_X_y=True)
    >>> kd = make_pipeline(StandardScaler(), KnowledgeDistiller(
    ...     RandomForestClassifier(n_estimators=50, random_state=0),
    ...     MLPStudent(hidden_layer_sizes=(16,), max_epochs=30, random_state=0)))
    >>> kd.fit(X, y).predict_proba(X[:2]).shape
    (2, 2)
    >>> kd.score(X, y) > 0.9
    True
    """

    _takes_tables = True
    _streams = True

    _parameter_constraints = {
        **BaseDistiller._parameter_constraints,
        **STREAMING,
        "keep_teachers": ["boolean"],
        "temperature": [Interval(numbers.Real, 0, None, closed="neither")],
        "alpha": [Interval(numbers.Real, 0, 1, closed="both")],
        "loss": [StrOptions({"kd", "dkd"})],
        "dkd_alpha": [Interval(numbers.Real, 0, None, closed="left")],
        "dkd_beta": [Interval(numbers.Real, 0, None, closed="left")],
        "teacher_calibration": TEACHER_CALIBRATION,
        **AUGMENT,
        "teacher_calibration_cv": [Interval(numbers.Integral, 2, None, closed="left")],
    }

    def __init__(self, teacher=None, student=None, temperature=1.0, alpha=1.0, loss="kd",
                 dkd_alpha=1.0, dkd_beta=8.0, teacher_calibration=None,
                 teacher_calibration_cv=5, augment=None, augment_size=1.0,
                 shuffle_buffer=100_000, teacher_cache=None, keep_teachers=True, verbose=0,
                 random_state=None):
        self.teacher = teacher
        self.student = student
        self.temperature = temperature
        self.alpha = alpha
        self.loss = loss
        self.dkd_alpha = dkd_alpha
        self.dkd_beta = dkd_beta
        self.teacher_calibration = teacher_calibration
        self.teacher_calibration_cv = teacher_calibration_cv
        self.augment = augment
        self.augment_size = augment_size
        self.shuffle_buffer = shuffle_buffer
        self.teacher_cache = teacher_cache
        self.keep_teachers = keep_teachers
        self.verbose = verbose
        self.random_state = random_state

    @fit_policy
    def fit(self, X, y, sample_weight=None, X_unlabeled=None, **fit_params):
        """Fit the teacher on ``X, y``, then the student on the teacher's probabilities.

        Parameters
        ----------
        X : array-like, sparse matrix or DataFrame of shape (n_samples, ...)
            A numeric array is validated and converted once, as scikit-learn does; a
            DataFrame (numeric, string, ``category`` and bool columns, NaN where the teacher
            and the student's preprocessing handle it) or an array of strings goes to the
            teacher and the student as it is.
        y : array-like of shape (n_samples,)
        sample_weight : array-like of shape (n_samples,), default=None
            Row weights of the student's loss, also passed to the teacher's ``fit`` where it
            accepts them (else the teacher is fitted unweighted, with a warning), and to the
            calibration map's fit. With metadata routing on, the teacher (and a student
            Pipeline's transformers) get them only where they request them.
        X_unlabeled : array-like, sparse matrix or DataFrame of shape (n_unlabeled, ...), \
default=None
            Extra rows without labels (a transfer set) that the student also learns from, on
            the teacher's probabilities alone (the loss's teacher term, whatever ``alpha``);
            the teacher is not fitted on them. They weigh 1 in the student's loss. Each row is
            shaped as a row of ``X`` (a DataFrame with the columns of ``X``, in order).
            With ``augment`` set, the synthetic rows are added to them. A chunked source
            (a dask Array or DataFrame, a :class:`~skdistill.streaming.Chunks`, an
            iterator) is streamed, never held in memory whole (see "Transfer sets beyond
            memory" above); a bad chunk is named in the error.
        **fit_params : dict
            Metadata routed to the teacher and to a student Pipeline's transformers, only with
            ``sklearn.set_config(enable_metadata_routing=True)`` (see "Metadata routing"
            above); with routing off, passing any is an error.

        Returns
        -------
        self
        """
        X, y, y_enc, sample_weight = self._check_fit_data(X, y, sample_weight)
        if self.loss == "dkd" and len(self.classes_) < 3:
            raise param_error(self, "loss", self.loss,
                              f"'kd' with {len(self.classes_)} classes (decoupled KD's "
                              "non-target term needs three classes or more)")
        routed = self._route_fit(sample_weight, fit_params)
        student = self._student()
        X_unlabeled, chunked = self._split_unlabeled(X_unlabeled, X, student)
        X_unlabeled = self._augmented(X, X_unlabeled)
        self._check_student_rows(student, X, X_unlabeled)
        cross_fit = (self.teacher_calibration is not None
                     and not isinstance(self._teacher(), FrozenEstimator))
        if cross_fit:
            self._check_n_folds("teacher_calibration_cv", self.teacher_calibration_cv, y_enc)
        teacher_params = self._teacher_params(self._teacher(), sample_weight, routed)
        self.teacher_ = self._fit_teacher(X, y, params=teacher_params)
        proba = self._teacher_proba(self.teacher_, X)
        labels = y_enc
        n_rows = _num_samples(X)
        n_unlabeled = 0 if X_unlabeled is None else _num_samples(X_unlabeled)
        if X_unlabeled is not None:
            unlabeled = self._teacher_proba(self.teacher_, X_unlabeled)
            # -1: no label, the loss uses the teacher term alone (see DistillationLoss).
            labels = np.concatenate([y_enc, np.full(n_unlabeled, -1)])
        self.teacher_calibrator_ = None
        if self.teacher_calibration is not None:
            held_out = (self._cross_fitted_proba(X, y, y_enc, teacher_params,
                                                 self.teacher_calibration_cv)[1]
                        if cross_fit else proba)
            proba = self._calibrate_teacher(held_out, y_enc, sample_weight, proba)
            if X_unlabeled is not None:
                unlabeled = self.teacher_calibrator_.transform(unlabeled)
        student_params = self._student_params(routed, n_rows, n_unlabeled)
        if X_unlabeled is not None:
            X, y, sample_weight = self._with_unlabeled(X, y, sample_weight, X_unlabeled,
                                                       unlabeled.argmax(axis=1))
            proba = np.concatenate([proba, unlabeled])
        soft = soften(proba, self.temperature)
        targets = np.column_stack([labels, soft]).astype(np.float32)
        if self.loss == "dkd":
            criterion = DKDLoss(self.temperature, self.alpha, self.dkd_alpha, self.dkd_beta,
                                reduction="none")
        else:
            criterion = DistillationLoss(self.temperature, self.alpha, reduction="none")
        objective = _DistillationObjective(criterion, targets, fields=("target",))
        transfer = None
        if chunked is not None:
            def to_fields(proba):  # a chunk's rows: no label, the teacher's term alone
                return {"target": np.column_stack([np.full(len(proba), -1.0),
                                                   soften(proba, self.temperature)])
                        .astype(np.float32), "y": proba.argmax(axis=1)}
            transfer = self._transfer(chunked, X, [self.teacher_], to_fields)
        self._train_student(
            self._student_verbose(self._seeded_clone(student, offset=1)), X, y, objective,
            sample_weight, student_params, transfer)
        self._drop_teachers()
        return self


class _DistillationObjective(Objective):
    """Targets ``[label, teacher probabilities...]`` per row (:class:`DistillationLoss`'s and
    :class:`DKDLoss`'s);
    the student learns to predict the teacher's."""

    def target_proba(self, rows, y, n_classes):
        return self.targets[rows, 1:]
