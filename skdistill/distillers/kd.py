"""KnowledgeDistiller: vanilla knowledge distillation (Hinton, Vinyals, Dean 2015)."""
import numbers

import numpy as np
from sklearn.utils._param_validation import Interval

from .._interrupt import fit_policy
from ..engine import Objective
from ..losses import DistillationLoss, soften
from ._base import BaseDistiller


class KnowledgeDistiller(BaseDistiller):
    """Distil any probabilistic classifier into a student network.

    The teacher (any scikit-learn classifier with ``predict_proba``) is cloned and fitted on
    ``X, y``; a fitted teacher wrapped in :class:`sklearn.frozen.FrozenEstimator` is used as it
    is. The student is then trained with

    ``(1 - alpha) * CE(y, softmax(z)) + alpha * T^2 * CE(softmax(log p / T), softmax(z / T))``

    where ``p`` are the teacher's probabilities, ``z`` the student's logits and ``T`` the
    ``temperature``.

    Parameters
    ----------
    teacher : classifier with predict_proba, default=None
        ``None`` means ``RandomForestClassifier(n_estimators=100)``.
    student : skdistill student, default=None
        ``None`` means ``MLPStudent()``.
    temperature : float, default=1.0
        Softening temperature ``T`` (> 0).
    alpha : float, default=1.0
        Weight of the teacher term; ``1`` trains on the teacher alone, ``0`` on labels alone.
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
    classes_ : ndarray of shape (n_classes,)
    n_features_in_ : int

    References
    ----------
    Hinton, Vinyals, Dean. Distilling the Knowledge in a Neural Network. 2015.

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

    _parameter_constraints = {
        **BaseDistiller._parameter_constraints,
        "temperature": [Interval(numbers.Real, 0, None, closed="neither")],
        "alpha": [Interval(numbers.Real, 0, 1, closed="both")],
    }

    def __init__(self, teacher=None, student=None, temperature=1.0, alpha=1.0, verbose=0,
                 random_state=None):
        self.teacher = teacher
        self.student = student
        self.temperature = temperature
        self.alpha = alpha
        self.verbose = verbose
        self.random_state = random_state

    @fit_policy
    def fit(self, X, y, sample_weight=None):
        """Fit the teacher on ``X, y``, then the student on the teacher's probabilities.

        Parameters
        ----------
        X : array-like or sparse matrix of shape (n_samples, ...)
        y : array-like of shape (n_samples,)
        sample_weight : array-like of shape (n_samples,), default=None
            Row weights of the student's loss, also passed to the teacher's ``fit`` where it
            accepts them (else the teacher is fitted unweighted, with a warning).

        Returns
        -------
        self
        """
        X, y, y_enc, sample_weight = self._check_fit_data(X, y, sample_weight)
        student = self._student()
        self._check_student_rows(student, X.shape[0])
        self.teacher_ = self._fit_teacher(X, y, sample_weight)
        soft = soften(self._teacher_proba(self.teacher_, X), self.temperature)
        targets = np.column_stack([y_enc, soft]).astype(np.float32)
        objective = Objective(DistillationLoss(self.temperature, self.alpha, reduction="none"),
                              targets, fields=("target",))
        return self._train_student(
            self._student_verbose(self._seeded_clone(student, offset=1)), X, y, objective,
            sample_weight)
