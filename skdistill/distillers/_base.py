"""What every distiller shares: teacher fitting, label handling, delegation to the student."""
import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, ClassifierMixin, MetaEstimatorMixin, clone
from sklearn.ensemble import RandomForestClassifier
from sklearn.model_selection import KFold, StratifiedKFold
from sklearn.utils._param_validation import HasMethods, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from .._devices import DeviceFallbackMixin
from .._interrupt import FitPolicyMixin
from ..engine import completed_epochs
from .._meta import fit_weighted, is_fitted
from .._random import draw_seed
from .._validation import (StrictParamsMixin, check_float32_range, check_input,
                           check_sample_weight, check_teacher_proba, check_validation_fraction,
                           encode_labels, param_error, validate_params, warn_class_mismatch)


#: Constraint of the ``teacher_calibration`` parameter of the distillers that take it.
TEACHER_CALIBRATION = [StrOptions({"temperature", "isotonic"}), None]


class BaseDistiller(StrictParamsMixin, DeviceFallbackMixin, FitPolicyMixin, ClassifierMixin,
                    MetaEstimatorMixin, BaseEstimator):
    """Base class for ``(teacher, student)`` meta-estimators.

    After ``fit``: ``teacher_``, ``student_``, ``history_`` (the student's), ``classes_``,
    ``n_features_in_``; prediction is the student's. The student is trained by the one engine
    through its public ``fit_objective`` (see :mod:`skdistill.engine`).
    """

    _parameter_constraints = {
        "teacher": [HasMethods(["fit", "predict_proba"]), None],
        "student": [HasMethods(["fit", "predict_proba"]), None],
        "verbose": ["verbose"],
        "random_state": ["random_state"],
    }

    def _default_teacher(self):
        return RandomForestClassifier(n_estimators=100)

    def _default_student(self):
        from ..students import MLPStudent

        return MLPStudent()

    def _check_fit_data(self, X, y, sample_weight=None):
        """Validate parameters (the sub-estimators' too), ``X, y`` and ``sample_weight`` once,
        before any fit.

        Sets ``classes_`` and returns ``X, y, y_encoded, sample_weight`` (X may be a sparse
        CSR matrix; the weights are None when absent or all ones).
        """
        validate_params(self)
        X, y = check_input(self, X, y, allow_nd=True, accept_sparse="csr")
        self.classes_, y_enc = encode_labels(self, y)
        return X, y, y_enc, check_sample_weight(self, sample_weight, X.shape[0])

    def _student_verbose(self, student):
        """The distiller's ``verbose`` shows the student's epochs too."""
        if getattr(self, "verbose", 0) and "verbose" in student.get_params():
            student.set_params(verbose=max(int(self.verbose), int(student.verbose)))
        return student

    def _train_student(self, student, X, y, objective, sample_weight=None):
        """Train ``student`` on ``objective`` through its public ``fit_objective``.

        ``student_`` is set first, so that a Ctrl-C keeps what the student learnt (see
        :meth:`_salvage`); ``history_`` is the student's once fitted.
        """
        self.student_ = student
        student.fit_objective(X, y, objective, sample_weight=sample_weight)
        return self._fitted_student(student)

    def _fitted_student(self, student):
        """Install the fitted student; ``history_`` is its per-epoch history."""
        self.student_ = student
        self.history_ = getattr(student, "history_", None)
        return self

    def _check_student_rows(self, student, X, X_unlabeled=None):
        """Checks on the student that need the data size, done before any teacher is fitted.

        The student learns from the rows of ``X`` and of ``X_unlabeled`` (when given).
        """
        n_rows = X.shape[0] + (0 if X_unlabeled is None else X_unlabeled.shape[0])
        check_validation_fraction(student, getattr(student, "validation_fraction", None), n_rows)

    def _salvage(self):
        """Ctrl-C: keep the fit if this fit's student has learnt something (see _interrupt).

        ``student_`` is set only once a student is being trained by this fit: a skdistill
        student salvages itself (fitted, or unfitted), a scikit-learn one is assigned after its
        ``fit`` returns.
        """
        student = getattr(self, "student_", None)
        if student is None or not is_fitted(student):
            return None
        self.history_ = history = getattr(student, "history_", None)
        epochs = completed_epochs(history)
        if epochs and getattr(student, "net_", None) is not None:
            return (f"the student trained for {epochs} of {student.net_.max_epochs} epochs "
                    f"({type(student).__name__})")
        return f"the student trained so far ({type(student).__name__})"

    def _seeded_clone(self, estimator, offset=0):
        """Clone ``estimator``; give it a seed derived from ``random_state`` if it has none."""
        est = clone(estimator)
        if self.random_state is not None and "random_state" in est.get_params():
            if est.get_params()["random_state"] is None:
                seed = draw_seed(self.random_state) + offset
                est.set_params(random_state=int(seed % (2**31 - 1)))
        return est

    def _teacher(self):
        return self._default_teacher() if self.teacher is None else self.teacher

    def _student(self):
        student = self._default_student() if self.student is None else self.student
        if not hasattr(student, "fit_objective"):
            raise param_error(self, "student", student,
                              "a skdistill student (MLPStudent, CNNStudent, ...) with "
                              "fit_objective", TypeError)
        return student

    def _fit_teacher(self, X, y, sample_weight=None):
        """Clone and fit the teacher; a ``FrozenEstimator`` is kept as it is (no refit)."""
        teacher = fit_weighted(self, self._seeded_clone(self._teacher()), X, y, sample_weight)
        warn_class_mismatch(self, [teacher], self.classes_,
                            f"teacher {type(teacher).__name__}")
        return teacher

    def _check_n_folds(self, name, n_folds, y_enc):
        """Each fold must be able to hold a row of every class."""
        min_count = int(np.bincount(y_enc).min())
        if n_folds > min_count:
            raise param_error(self, name, n_folds,
                              f"at most {min_count}, the number of samples in the smallest class")

    def _folds(self, X, y_enc, n_folds, stratify=True):
        """Shuffled (stratified) ``(train, test)`` folds, seeded from ``random_state``."""
        cls = StratifiedKFold if stratify else KFold
        return list(cls(n_folds, shuffle=True, random_state=draw_seed(self.random_state))
                    .split(X, y_enc))

    def _fold_jobs(self, teacher, X, y, folds, weight):
        """``(clone, X, y, weights)`` to fit per fold: clone ``k`` (seeded with offset
        ``2 + k``) learns from every fold but ``k``."""
        return [(self._seeded_clone(teacher, offset=2 + k), X[train], y[train],
                 None if weight is None else weight[train])
                for k, (train, _) in enumerate(folds)]

    def _out_of_fold_proba(self, fold_teachers, X, folds):
        """Each row's probabilities from the fold teacher that did not see it."""
        oof = np.empty((X.shape[0], len(self.classes_)))
        for fold_teacher, (_, test) in zip(fold_teachers, folds):
            oof[test] = self._teacher_proba(fold_teacher, X[test])
        return oof

    def _calibrate_teacher(self, held_out, y_enc, sample_weight, proba):
        """Fit ``teacher_calibrator_`` on held-out teacher probabilities; apply it to ``proba``.

        ``teacher_calibration`` names the map (:class:`~skdistill.calibration.TemperatureCalibrator`
        or :class:`~skdistill.calibration.IsotonicCalibrator`); it is fitted on ``held_out``
        (rows the teacher did not see) against the labels, with the rows' weights.
        """
        from ..calibration import IsotonicCalibrator, TemperatureCalibrator

        calibrator = (TemperatureCalibrator() if self.teacher_calibration == "temperature"
                      else IsotonicCalibrator())
        self.teacher_calibrator_ = calibrator.fit(held_out, y_enc,
                                                  labels=np.arange(len(self.classes_)),
                                                  sample_weight=sample_weight)
        return calibrator.transform(proba)

    def _teacher_proba(self, teacher, X):
        """Teacher probabilities, validated, with columns in ``classes_`` order."""
        return check_teacher_proba(self, teacher.predict_proba(X),
                                   getattr(teacher, "classes_", self.classes_), self.classes_,
                                   teacher)

    def _check_unlabeled(self, X_unlabeled, X):
        """Validate the rows a student learns from without labels, like ``X`` at predict,
        and shaped as the rows of the validated ``X`` (the same dimensions after the first).

        ``None`` (no such rows) is returned as it is.
        """
        if X_unlabeled is None:
            return None
        try:
            X_unlabeled = validate_data(self, X_unlabeled, reset=False, allow_nd=True,
                                        accept_sparse="csr")
        except (ValueError, TypeError) as exc:
            raise type(exc)(f"{type(self).__name__}: parameter X_unlabeled is invalid: "
                            f"{exc}") from None
        # scikit-learn compares the second dimension only: an (n, 4, 2) array passes beside an
        # (n, 4) X, to be refused later by the teacher's own check, which names no X_unlabeled
        if X_unlabeled.shape[1:] != X.shape[1:]:
            row = ", ".join(str(d) for d in X.shape[1:])
            raise param_error(self, "X_unlabeled", f"<array of shape {X_unlabeled.shape}>",
                              f"rows shaped as those of X: shape (n_unlabeled, {row})")
        return check_float32_range(self, X_unlabeled, "X_unlabeled")

    def _with_unlabeled(self, X, y, sample_weight, X_unlabeled, proba_unlabeled):
        """The student's rows: ``X`` then ``X_unlabeled``; returns ``(X, y, sample_weight)``.

        Unlabeled rows get the teacher's most probable class as ``y``: the student needs
        labels for ``classes_`` (and a stratified validation split), its loss on those rows
        uses the teacher alone. They weigh 1 where ``sample_weight`` is given.
        """
        stack = sp.vstack if sp.issparse(X) or sp.issparse(X_unlabeled) else np.concatenate
        X_all = stack([X, X_unlabeled])
        if sp.issparse(X_all):
            X_all = X_all.tocsr()
        y_all = np.concatenate([y, self.classes_[np.argmax(proba_unlabeled, axis=1)]])
        if sample_weight is not None:
            sample_weight = np.concatenate([sample_weight, np.ones(X_unlabeled.shape[0])])
        return X_all, y_all, sample_weight

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True  # densified per minibatch by the student's engine
        return tags

    # -- prediction: the student's ------------------------------------------------------------
    def _check_predict_X(self, X):
        check_is_fitted(self, "student_")
        return check_input(self, X, reset=False, allow_nd=True, accept_sparse="csr")

    def predict_proba(self, X):
        """Class probabilities of the distilled student, columns in ``classes_`` order."""
        X = self._check_predict_X(X)
        return self.student_.predict_proba(X)

    def predict_log_proba(self, X):
        """Log of :meth:`predict_proba`."""
        X = self._check_predict_X(X)
        return self.student_.predict_log_proba(X)

    def predict(self, X):
        """Most probable class according to the student."""
        X = self._check_predict_X(X)
        return self.student_.predict(X)
