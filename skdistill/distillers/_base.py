"""What every distiller shares: teacher fitting, label handling, delegation to the student."""
import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, MetaEstimatorMixin, clone
from sklearn.ensemble import RandomForestClassifier
from sklearn.utils._param_validation import HasMethods
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from ..students._base import draw_seed
from .._validation import align_proba, check_two_classes, named_errors, param_error


class BaseDistiller(ClassifierMixin, MetaEstimatorMixin, BaseEstimator):
    """Base class for ``(teacher, student)`` meta-estimators.

    After ``fit``: ``teacher_``, ``student_``, ``classes_``, ``n_features_in_``; prediction
    is the student's.
    """

    _parameter_constraints = {
        "teacher": [HasMethods(["fit", "predict_proba"]), None],
        "student": [HasMethods(["fit", "predict_proba"]), None],
        "random_state": ["random_state"],
    }

    def _default_teacher(self):
        return RandomForestClassifier(n_estimators=100)

    def _default_student(self):
        from ..students import MLPStudent

        return MLPStudent()

    def _check_fit_data(self, X, y):
        """Validate ``X, y`` once; set ``classes_`` and return the encoded labels."""
        self._validate_params()
        X, y = named_errors(self, validate_data, self, X, y, allow_nd=True)
        check_classification_targets(y)
        self.classes_, y_enc = np.unique(y, return_inverse=True)
        check_two_classes(self, self.classes_)
        return X, y, y_enc

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
        if not hasattr(student, "_fit_targets"):
            raise param_error(self, "student", student,
                              "a skdistill student (MLPStudent, CNNStudent, ...)", TypeError)
        return student

    def _fit_teacher(self, X, y):
        """Clone and fit the teacher; a ``FrozenEstimator`` is kept as it is (no refit)."""
        return self._seeded_clone(self._teacher()).fit(X, y)

    def _teacher_proba(self, teacher, X):
        """Teacher probabilities with columns in ``classes_`` order, rows summing to one."""
        proba = np.asarray(teacher.predict_proba(X), dtype=np.float64)
        proba = align_proba(proba, getattr(teacher, "classes_", self.classes_), self.classes_)
        sums = proba.sum(axis=1, keepdims=True)
        if not np.all(np.isfinite(proba)) or np.any(sums <= 0):
            raise ValueError(
                f"{type(self).__name__}: the teacher {teacher!r} returned probabilities that "
                "are not finite or give no mass to the classes of y."
            )
        return proba / sums

    # -- prediction: the student's ------------------------------------------------------------
    def _check_predict_X(self, X):
        check_is_fitted(self, "student_")
        return named_errors(self, validate_data, self, X, reset=False, allow_nd=True)

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
