"""What every distiller shares: teacher fitting, label handling, delegation to the student.

Input: a numeric array (dense, sparse CSR, or n-d images) is validated and converted once, as
a scikit-learn estimator does; a table (a pandas DataFrame, or an array of strings or
objects) reaches the teacher and the student as it is, the distiller checking only what it
needs itself (rows, labels, weights, feature names and their number). Rows are taken with
scikit-learn's ``_safe_indexing``. The student may be a :class:`~sklearn.pipeline.Pipeline`
ending in a skdistill student: its transformers are fitted on the student's rows, its last
step is trained through ``fit_objective``.
"""
import numbers
import os
import time

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, ClassifierMixin, MetaEstimatorMixin, clone, is_regressor
from sklearn.ensemble import RandomForestClassifier
from sklearn.frozen import FrozenEstimator
from sklearn.model_selection import KFold, StratifiedKFold
from sklearn.pipeline import Pipeline, _fit_transform_one
from sklearn.utils import _safe_indexing
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.metadata_routing import (MetadataRouter, MethodMapping, _raise_for_params,
                                            _routing_enabled, process_routing)
from sklearn.utils.validation import (_check_method_params, _get_feature_names, _num_samples,
                                      check_consistent_length, check_is_fitted,
                                      column_or_1d, validate_data)

from .._devices import DeviceFallbackMixin
from ..base import Student, Teacher
from .._interrupt import FitPolicyMixin
from ..engine import completed_epochs
from ..engine.objective import Streamed
from .._meta import is_fitted, weights_for
from .._random import draw_seed
from .._validation import (Implements, StrictParamsMixin, check_float32_range, check_input,
                           check_sample_weight, check_teacher_proba, check_validation_fraction,
                           encode_labels, missing_members, named_errors, param_error,
                           refused_by, validate_params, warn_class_mismatch)
from .._validation import CheckedRows, is_plain_float_array
from ..streaming import Feed, Labeler, Source, is_chunked, predict_chunks, source_error
from ..students._base import BaseStudent


#: Constraint of the ``teacher_calibration`` parameter of the distillers that take it.
TEACHER_CALIBRATION = [StrOptions({"temperature", "isotonic"}), None]

#: Constraints of the ``augment`` and ``augment_size`` parameters of the distillers that take
#: them: a name of :mod:`skdistill.augment`'s classes, or an object with ``sample``.
AUGMENT = {
    "augment": [StrOptions({"munge", "gaussian"}), HasMethods(["sample"]), None],
    "augment_size": [Interval(numbers.Real, 0, None, closed="neither")],
}

#: Constraints of the ``shuffle_buffer`` and ``teacher_cache`` parameters of the distillers
#: that take a chunked ``X_unlabeled`` (see :mod:`skdistill.streaming`).
STREAMING = {
    "shuffle_buffer": [Interval(numbers.Integral, 1, None, closed="left")],
    "teacher_cache": [str, os.PathLike, None],
}

#: Fitted attributes that ``keep_teachers=False`` drops once the student is trained.
TEACHER_ATTRIBUTES = ("teacher_", "fold_teachers_", "oof_proba_")


def is_table(X):
    """Whether ``X`` goes to the teacher and the student as it is: a DataFrame (anything with
    ``columns`` and a 2-d ``shape``), or a NumPy array of strings or Python objects."""
    if hasattr(X, "columns") and len(getattr(X, "shape", ())) == 2:
        return True
    return isinstance(X, np.ndarray) and X.dtype.kind in "OUS"


def final_step(estimator):
    """The estimator that predicts: the last step of a Pipeline, else ``estimator`` itself."""
    return estimator[-1] if isinstance(estimator, Pipeline) else estimator


def is_student_pipeline(estimator):
    """A Pipeline whose last step is a student (:class:`skdistill.base.Student`)."""
    return isinstance(estimator, Pipeline) and isinstance(final_step(estimator), Student)


def stack_rows(X, X_more):
    """The rows of ``X`` then those of ``X_more``: frames concatenated with a fresh index
    (categorical columns keep a categorical dtype over both sets of categories), sparse
    matrices stacked as CSR, arrays concatenated."""
    if hasattr(X, "iloc"):
        import pandas as pd

        both = pd.concat([X, X_more], ignore_index=True)
        for name in X.columns:
            a, b = X[name].dtype, X_more[name].dtype
            if isinstance(a, pd.CategoricalDtype) and not isinstance(both[name].dtype,
                                                                     pd.CategoricalDtype):
                cats = list(a.categories)
                more = b.categories if isinstance(b, pd.CategoricalDtype) else \
                    pd.unique(X_more[name].dropna())
                cats += [c for c in more if c not in set(cats)]
                both[name] = both[name].astype(pd.CategoricalDtype(cats, ordered=a.ordered))
        return both
    if sp.issparse(X) or sp.issparse(X_more):
        return sp.vstack([X, X_more]).tocsr()
    return np.concatenate([X, X_more])


def _fit_refusing(owner, label, estimator, X, y, params):
    """``estimator.fit(X, y, **params)``, a refusal of ``X`` naming ``label`` (and, for a
    Pipeline, the step that refused it); a module function, so that joblib can send it to a
    worker."""
    with refused_by(owner, lambda exc: _refusing_step(label, estimator, exc)):
        return estimator.fit(X, y, **params)


def _refusing_step(label, estimator, exc):
    """``label``, and for a Pipeline, its step that raised ``exc``: the outermost method
    call on one of its steps in the traceback."""
    if not isinstance(estimator, Pipeline):
        return label
    steps = {id(step): name for name, step in estimator.steps}
    tb = exc.__traceback__
    while tb is not None:
        owner = tb.tb_frame.f_locals.get("self")
        if owner is not None and id(owner) in steps:
            return f"{label}'s step {steps[id(owner)]!r} ({type(owner).__name__})"
        tb = tb.tb_next
    return label


class BaseDistiller(StrictParamsMixin, DeviceFallbackMixin, FitPolicyMixin, ClassifierMixin,
                    MetaEstimatorMixin, BaseEstimator):
    """Base class for ``(teacher, student)`` meta-estimators.

    After ``fit``: ``teacher_``, ``student_``, ``history_`` (the student's), ``classes_``,
    ``n_features_in_`` (and ``feature_names_in_`` for a DataFrame); prediction is the
    student's. The student is trained by the one engine through its public ``fit_objective``
    (see :mod:`skdistill.engine`).

    Metadata routing (``sklearn.set_config(enable_metadata_routing=True)``): the distiller
    consumes ``sample_weight`` itself (the student's loss, the calibration map) and routes
    ``fit`` metadata to ``teacher`` (every fit of it: ``teacher_``, fold teachers) and to the
    transformers of a student Pipeline (or to a scikit-learn regressor student). The
    skdistill student, alone or last in a Pipeline, is trained through ``fit_objective`` on
    the distiller's loss, weighted by the distiller's ``sample_weight``, unless it was told
    ``set_fit_request(sample_weight=False)`` (then its loss is unweighted); no other metadata
    reaches it.
    """

    # Whether a table (DataFrame, array of strings) goes to the teacher and the student as
    # it is; False: X must be numeric, validated and converted once by the distiller.
    _takes_tables = False
    # Whether the student may be a Pipeline ending in a skdistill student; False where the
    # teacher's networks or samples run on the student's own inputs (GPED, ensembles).
    _pipeline_students = True

    _parameter_constraints = {
        "teacher": [Implements(Teacher, ["fit", "predict_proba"]), None],
        "student": [HasMethods(["fit", "predict_proba"]), None],
        "verbose": ["verbose"],
        "random_state": ["random_state"],
    }

    def __getattr__(self, name):
        # only called when the attribute is missing: say why a dropped one is
        if name in TEACHER_ATTRIBUTES and self.__dict__.get("_teachers_dropped", False):
            raise AttributeError(
                f"{type(self).__name__}: {name} was not kept (keep_teachers=False): the "
                "fitted model keeps only what predicts (student_, classes_, history_, "
                "teacher_calibrator_); fit with keep_teachers=True to inspect the teachers.")
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def _drop_teachers(self):
        """``keep_teachers=False``: remove the teachers and per-row arrays after ``fit``."""
        if getattr(self, "keep_teachers", True):
            return
        for name in TEACHER_ATTRIBUTES:
            self.__dict__.pop(name, None)
        self._teachers_dropped = True

    # -- metadata routing -----------------------------------------------------------------
    def get_metadata_routing(self):
        """Get the metadata routing of this object.

        Returns
        -------
        routing : MetadataRouter
            ``sample_weight`` is consumed by the distiller itself; ``fit`` metadata is routed
            to ``teacher`` (``fit``) and to the transformers of a student Pipeline
            (``fit_transform``), or to a scikit-learn regressor student (``fit``).
        """
        router = MetadataRouter(owner=self).add_self_request(self).add(
            teacher=self._teacher(), method_mapping=MethodMapping().add(caller="fit",
                                                                        callee="fit"))
        student = self._default_student() if self.student is None else self.student
        if is_student_pipeline(student):
            if len(student) > 1:
                router.add(student=student[:-1],
                           method_mapping=MethodMapping().add(caller="fit",
                                                              callee="fit_transform"))
        elif not isinstance(student, Student):
            router.add(student=student, method_mapping=MethodMapping().add(caller="fit",
                                                                           callee="fit"))
        return router

    def _route_fit(self, sample_weight, fit_params):
        """Routed ``fit`` metadata: ``{"teacher": {...}, "student": {...}}`` with routing on,
        None with routing off (then extra ``fit_params`` are an error, as in scikit-learn)."""
        if not _routing_enabled():
            _raise_for_params(fit_params, self, "fit")
            return None
        routed = process_routing(self, "fit", sample_weight=sample_weight, **fit_params)
        student = routed.get("student")
        return {"teacher": dict(routed["teacher"]["fit"]),
                "student": {} if student is None else
                dict(student.get("fit_transform") or student.get("fit") or {}),
                "sample_weight": sample_weight}

    def _teacher_params(self, teacher, sample_weight, routed, what="teacher"):
        """Keyword arguments of every fit of ``teacher``: with routing off, ``sample_weight``
        where its ``fit`` accepts it (else a warning, see
        :func:`~skdistill._meta.weights_for`); with routing on, what it requested."""
        if isinstance(teacher, FrozenEstimator):
            return {}
        if routed is None:
            weight = weights_for(self, teacher, sample_weight, what)
            return {} if weight is None else {"sample_weight": weight}
        return routed["teacher"]

    def _student_weight(self, student, sample_weight):
        """The weights of a skdistill student's loss: the distiller's, unless routing is on
        and the student was told ``set_fit_request(sample_weight=False)``."""
        last = final_step(student)
        if sample_weight is None or not _routing_enabled() or not isinstance(last, Student):
            return sample_weight
        requests = last.get_metadata_routing().fit.requests
        request = requests.get("sample_weight")
        if request is False:
            return None
        if isinstance(request, str):
            raise param_error(self, "student", student,
                              "a student whose fit request for sample_weight is True, False "
                              f"or unset (its loss uses {type(self).__name__}'s "
                              f"sample_weight), not the alias {request!r}")
        return sample_weight

    def _student_params(self, routed, n_rows, n_unlabeled):
        """Routed metadata of a student Pipeline's transformers (or a regressor student),
        extended to the unlabeled rows: the weights ``sample_weight`` routed there weigh 1."""
        if routed is None:
            return {}
        params = dict(routed["student"])
        if not n_unlabeled:
            return params
        for key, value in params.items():
            if value is routed["sample_weight"]:
                params[key] = np.concatenate([np.asarray(value, dtype=np.float64),
                                              np.ones(n_unlabeled)])
            elif _num_samples_or_none(value) == n_rows:
                raise param_error(self, key, f"<{type(value).__name__} of {n_rows} rows>",
                                  "metadata without one value per row of X when X_unlabeled "
                                  "or augment is given (the student also learns from those "
                                  "rows); only sample_weight is extended to them")
        return params

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
        student = self.student
        if isinstance(student, Pipeline) and hasattr(final_step(student), "get_params"):
            validate_params(final_step(student))
        self._teachers_dropped = False
        if is_chunked(X):
            where = ("as X_unlabeled" if self._streams else
                     "to KnowledgeDistiller or CrossFitDistiller as X_unlabeled")
            raise source_error(self, "X", X,
                               "rows in memory (an array, sparse matrix or DataFrame): the "
                               f"teacher is fitted on X; give a transfer set beyond memory {where}"
                               ", or train a student block by block with its partial_fit")
        if is_table(X) and not self._takes_tables:
            X, y = self._numeric_only(X, y)
        elif is_table(X):
            # as it is: the teacher and the student check what they need themselves
            X, y = named_errors(self, validate_data, self, X, y, skip_check_array=True)
            y = named_errors(self, column_or_1d, y, warn=True)
            named_errors(self, check_consistent_length, X, y)
            if _num_samples(X) < 1:
                raise param_error(self, "X", "<table with 0 rows>", "at least one row")
        else:
            X, y = check_input(self, X, y, allow_nd=True, accept_sparse="csr")
        self.classes_, y_enc = encode_labels(self, y)
        return X, y, y_enc, check_sample_weight(self, sample_weight, _num_samples(X))

    def _numeric_only(self, X, y=None):
        """Validate a table for a distiller that needs numbers; say so where it has others."""
        try:
            if y is None:
                return check_input(self, X, reset=False, allow_nd=True, accept_sparse="csr")
            return check_input(self, X, y, allow_nd=True, accept_sparse="csr")
        except ValueError as exc:
            if "convert" not in str(exc):
                raise
            raise ValueError(
                f"{exc} ({type(self).__name__} needs numeric X: encode the string and "
                "categorical columns first, e.g. with a ColumnTransformer in a Pipeline before "
                "it; KnowledgeDistiller and CrossFitDistiller take such tables as they "
                "are).") from None

    def _student_verbose(self, student):
        """The distiller's ``verbose`` shows the student's epochs too (a Pipeline's last
        step's)."""
        last = final_step(student)
        if getattr(self, "verbose", 0) and "verbose" in last.get_params():
            last.set_params(verbose=max(int(self.verbose), int(last.verbose)))
        return student

    def _train_student(self, student, X, y, objective, sample_weight=None, params=None,
                       transfer=None):
        """Train ``student`` on ``objective`` through its public ``fit_objective``.

        A student Pipeline's transformers are first fitted on ``X`` (with ``fit_transform``
        and the metadata in ``params``, routed to its steps), and its last step is trained on
        their output. ``student_`` is set first, so that a Ctrl-C keeps what the student
        learnt (see :meth:`_salvage`); ``history_`` is the student's once fitted.

        ``transfer`` (see :meth:`_transfer`) adds a chunked transfer set: its chunks, labelled
        as the student trains (through the Pipeline's fitted transformers), are mixed with
        the rows of ``X``; ``transfer_stats_`` then says what the stream cost.
        """
        self.student_ = student
        last = final_step(student)
        if last is not student:
            X = self._fit_student_head(student, X, y, params or {})
        if is_table(X) and hasattr(last, "check_X"):
            # a table the student may refuse (strings): its own check of X, named by the
            # distiller. An array is not checked twice: the student's check in fit_objective
            # names the student in its errors already.
            with refused_by(self, f"student {type(last).__name__}"):
                clone(last).check_X(X, reset=True)
        weight = self._student_weight(student, sample_weight)
        if transfer is None:
            last.fit_objective(X, y, objective, sample_weight=weight)
            return self._fitted_student(student)
        feed = transfer(None if last is student else student[:-1])
        tic = time.perf_counter()
        try:
            last.fit_objective(X, y, Streamed(objective, feed, self.shuffle_buffer),
                               sample_weight=weight)
        finally:
            feed.close()
            self.transfer_stats_ = dict(feed.stats, fit_seconds=time.perf_counter() - tic)
        return self._fitted_student(student)

    def _fit_student_head(self, pipe, X, y, params):
        """Fit the transformers of the student Pipeline ``pipe`` on ``X`` (in place), each
        refusal naming its step; returns their output, the last step's input."""
        routed = process_routing(pipe[:-1], "fit_transform", **params) if params else None
        for i, (name, step) in enumerate(pipe.steps[:-1]):
            if step is None or (isinstance(step, str) and step == "passthrough"):
                continue
            with refused_by(self, f"student step {name!r} ({type(step).__name__})"):
                X, fitted = _fit_transform_one(step, X, y, None,
                                               params=None if routed is None else routed[name])
            pipe.steps[i] = (name, fitted)
        return X

    def _fit_regressor_student(self, student, X, targets, sample_weight, params, routed):
        """Fit a scikit-learn regressor student (or Pipeline ending in one) on ``targets``:
        with routing off, ``sample_weight`` where its ``fit`` accepts it (else a warning);
        with routing on, the metadata it requested. Assigned once fitted: an interrupted
        scikit-learn regressor is not usable."""
        if routed is None:
            weight = weights_for(self, student, sample_weight, "student")
            params = {} if weight is None else {"sample_weight": weight}
        fitted = _fit_refusing(self, f"student {type(student).__name__}", student, X,
                               targets, params)
        return self._fitted_student(fitted)

    def _fitted_student(self, student):
        """Install the fitted student; ``history_`` is its per-epoch history."""
        self.student_ = student
        self.history_ = getattr(final_step(student), "history_", None)
        return self

    def _check_student_rows(self, student, X, X_unlabeled=None):
        """Checks on the student that need the data size, done before any teacher is fitted.

        The student learns from the rows of ``X`` and of ``X_unlabeled`` (when given).
        """
        n_rows = _num_samples(X) + (0 if X_unlabeled is None else _num_samples(X_unlabeled))
        last = final_step(student)
        check_validation_fraction(last, getattr(last, "validation_fraction", None), n_rows)

    def _salvage(self):
        """Ctrl-C: keep the fit if this fit's student has learnt something (see _interrupt).

        ``student_`` is set only once a student is being trained by this fit: a skdistill
        student salvages itself (fitted, or unfitted), a scikit-learn one is assigned after its
        ``fit`` returns.
        """
        student = getattr(self, "student_", None)
        if student is None or not is_fitted(student):
            return None
        last = final_step(student)
        self.history_ = history = getattr(last, "history_", None)
        self._drop_teachers()
        epochs = completed_epochs(history)
        if epochs and getattr(last, "net_", None) is not None:
            return (f"the student trained for {epochs} of {last.net_.max_epochs} epochs "
                    f"({type(last).__name__})")
        return f"the student trained so far ({type(last).__name__})"

    def _seeded_clone(self, estimator, offset=0):
        """Clone ``estimator``; give it (a Pipeline's last step) a seed derived from
        ``random_state`` if it has none."""
        est = clone(estimator)
        target = final_step(est)
        if (self.random_state is not None and hasattr(target, "get_params")
                and "random_state" in target.get_params()):
            if target.get_params()["random_state"] is None:
                seed = draw_seed(self.random_state) + offset
                target.set_params(random_state=int(seed % (2**31 - 1)))
        return est

    def _teacher(self):
        if self.teacher is not None:
            return self.teacher
        teacher = self._default_teacher()
        if _routing_enabled():  # as CalibratedClassifierCV's default estimator
            teacher.set_fit_request(sample_weight=True)
        return teacher

    def _student(self):
        student = self._default_student() if self.student is None else self.student
        self._check_student_contract(student, "a student")
        if not self._pipeline_students and isinstance(student, Pipeline):
            name = type(self).__name__
            raise param_error(self, "student", student,
                              f"a skdistill student, not a Pipeline: {name} feeds the "
                              "teacher and the student the same rows, batch by batch; put "
                              f"the preprocessing in a Pipeline before the {name} instead",
                              TypeError)
        return student

    def _check_student_contract(self, student, expected):
        """Refuse a student (a Pipeline's last step) that is not a
        :class:`skdistill.base.Student`, naming what it lacks; ``expected`` says what the
        parameter takes besides."""
        last = final_step(student)
        missing = missing_members(last, Student)
        if missing:
            where = "its last step " if last is not student else ""
            raise param_error(self, "student", student,
                              f"{expected} (skdistill.base.Student: a skdistill student such "
                              f"as MLPStudent or CNNStudent, or a subclass of "
                              f"skdistill.students.BaseStudent), or a Pipeline ending in one; "
                              f"{where}{type(last).__name__} has no {', '.join(missing)}",
                              TypeError)

    def _fit_teacher(self, X, y, sample_weight=None, params=None):
        """Clone and fit the teacher with ``params`` (see :meth:`_teacher_params`), by
        default ``sample_weight`` where its ``fit`` accepts it; a ``FrozenEstimator`` is kept
        as it is (no refit)."""
        teacher = self._seeded_clone(self._teacher())
        if params is None:
            params = self._teacher_params(teacher, sample_weight, None)
        teacher = _fit_refusing(type(self).__name__, f"teacher {type(teacher).__name__}",
                                teacher, X, y, params)
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

    def _fold_jobs(self, teacher, X, y, folds, params):
        """Arguments of :func:`_fit_refusing` per fold: clone ``k`` (seeded with offset
        ``2 + k``) learns from every fold but ``k``, with the rows of ``params`` (the
        teacher's fit metadata) that belong to them."""
        label = f"fold teacher {type(teacher).__name__}"
        return [(type(self).__name__, label, self._seeded_clone(teacher, offset=2 + k),
                 _safe_indexing(X, train), y[train],
                 _check_method_params(X, params=params or {}, indices=train))
                for k, (train, _) in enumerate(folds)]

    def _cross_fitted_proba(self, X, y, y_enc, teacher_params, n_folds):
        """Probabilities of each row from a clone of the teacher fitted without its fold.

        Folds are stratified and shuffled with a seed drawn from ``random_state``; the fold
        teachers are seeded and fitted as :class:`CrossFitDistiller`'s, with the metadata
        ``teacher_``'s fit got (the rows of their fold). Returns ``(fold teachers, the
        out-of-fold probabilities)``.
        """
        teacher = self._teacher()
        folds = self._folds(X, y_enc, n_folds)
        fitted = [_fit_refusing(*job)
                  for job in self._fold_jobs(teacher, X, y, folds, teacher_params)]
        return fitted, self._out_of_fold_proba(fitted, X, folds)

    def _out_of_fold_proba(self, fold_teachers, X, folds):
        """Each row's probabilities from the fold teacher that did not see it."""
        oof = np.empty((_num_samples(X), len(self.classes_)))
        for fold_teacher, (_, test) in zip(fold_teachers, folds):
            oof[test] = self._teacher_proba(fold_teacher, _safe_indexing(X, test),
                                            "fold teacher")
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

    def _teacher_proba(self, teacher, X, what="teacher"):
        """Teacher probabilities, validated, with columns in ``classes_`` order."""
        with refused_by(self, f"{what} {type(teacher).__name__}"):
            proba = teacher.predict_proba(X)
        return self._checked_proba(teacher, proba)

    def _checked_proba(self, teacher, proba):
        """``teacher``'s ``proba`` validated, with columns in ``classes_`` order."""
        return check_teacher_proba(self, proba, getattr(teacher, "classes_", self.classes_),
                                   self.classes_, teacher)

    def _check_unlabeled(self, X_unlabeled, X):
        """Validate the rows a student learns from without labels, like ``X`` at predict,
        and shaped as the rows of the validated ``X`` (the same dimensions after the first).

        ``None`` (no such rows) is returned as it is.
        """
        if X_unlabeled is None:
            return None
        if is_chunked(X_unlabeled):
            raise source_error(self, "X_unlabeled", X_unlabeled,
                               f"rows in memory: {type(self).__name__} does not stream a "
                               "transfer set (KnowledgeDistiller and CrossFitDistiller do)")
        if is_table(X):
            return self._check_unlabeled_table(X_unlabeled, X)
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

    def _check_unlabeled_table(self, X_unlabeled, X):
        """``X_unlabeled`` beside a table ``X``: the same columns, in the same order (a
        DataFrame beside a DataFrame), or rows of the same shape."""
        names = getattr(self, "feature_names_in_", None)
        if names is not None:
            try:
                got = _get_feature_names(X_unlabeled)
            except TypeError:
                got = None
            if (got is None or not hasattr(X_unlabeled, "iloc")
                    or list(got) != list(names)):
                shown = (f"<{type(X_unlabeled).__name__} with columns {list(got)}>"
                         if got is not None else f"<{type(X_unlabeled).__name__}>")
                raise param_error(self, "X_unlabeled", shown,
                                  f"a DataFrame with the columns of X, in the same order "
                                  f"({list(names)})")
            return X_unlabeled
        shape = getattr(X_unlabeled, "shape", None)
        if shape is None or tuple(shape[1:]) != tuple(X.shape[1:]) or sp.issparse(X_unlabeled):
            raise param_error(self, "X_unlabeled", f"<{type(X_unlabeled).__name__} of shape "
                              f"{shape}>", f"an array of rows shaped as those of X "
                              f"(n_unlabeled, {', '.join(str(d) for d in X.shape[1:])})")
        return X_unlabeled

    # -- transfer sets beyond memory ------------------------------------------------------------
    # Whether X_unlabeled may be chunked (see skdistill.streaming): the distillers that
    # stream set it, with the shuffle_buffer and teacher_cache parameters (STREAMING).
    _streams = False

    def _split_unlabeled(self, X_unlabeled, X, student):
        """``(rows in memory or None, chunked source or None)`` of ``X_unlabeled``: an
        in-memory one checked (:meth:`_check_unlabeled`), a chunked one checked as far as it
        can be without reading it (its shape, columns, first chunk, how often it can be
        read), before any fit."""
        self.transfer_stats_ = None
        if not is_chunked(X_unlabeled):
            return self._check_unlabeled(X_unlabeled, X), None
        source = Source(X_unlabeled, type(self).__name__)
        last = final_step(student)
        if getattr(last, "max_epochs", 1) > 1 and source.one_shot and \
                self.teacher_cache is None:
            raise source_error(self, "X_unlabeled", X_unlabeled,
                               f"a source that can be read {last.max_epochs} times, once per "
                               f"epoch of the student (max_epochs={last.max_epochs}): Chunks("
                               "a list, or a function giving a new iterator), a dask "
                               "collection; or set teacher_cache to a directory, where the "
                               "first pass keeps what later ones read (an iterator is read "
                               "once)")
        labeler = self._labeler(X, [], None)
        columns = labeler.columns
        if source.kind == "array":
            if columns is not None or tuple(X_unlabeled.shape[1:]) != labeler.row_shape:
                expected = ("a dask DataFrame with the columns of X" if columns is not None
                            else f"rows shaped as those of X: shape (n_unlabeled, "
                                 f"{', '.join(str(d) for d in labeler.row_shape)})")
                raise source_error(self, "X_unlabeled", X_unlabeled, expected)
        elif source.kind == "frame":
            if columns is None or list(X_unlabeled.columns) != columns:
                raise source_error(self, "X_unlabeled", X_unlabeled,
                                   "a dask DataFrame with the columns of X, in the same order "
                                   f"({columns})" if columns is not None else
                                   "a dask array (X is an array)")
        first = source.peek()
        if first is not None:
            labeler.check(first, 0, 0)
        return None, source

    def _labeler(self, X, teachers, transform):
        """The :class:`~skdistill.streaming.Labeler` of chunks shaped as the rows of ``X``."""
        names = getattr(self, "feature_names_in_", None)
        return Labeler(type(self).__name__, teachers, getattr(X, "shape", (0,))[1:],
                       None if names is None else list(names), not is_table(X), transform)

    def _transfer(self, source, X, teachers, to_fields):
        """The chunked transfer set ``source`` for :meth:`_train_student`: a function of a
        student Pipeline's fitted transformers (or None) giving the
        :class:`~skdistill.streaming.Feed` of its labelled chunks.

        ``teachers`` (fitted) label each chunk, their probabilities averaged, checked and
        put through ``teacher_calibrator_``; ``to_fields(proba)`` gives the chunk's per-row
        fields (``"target"``, ``"y"``), as those of the unlabelled rows in memory.
        """
        def feed(transform):
            labeler = self._labeler(X, teachers, transform)

            def finish(result, number, start):
                try:
                    probas = [self._checked_proba(t, p)
                              for p, t in zip(result["proba"], teachers)]
                except ValueError as exc:
                    where = labeler.where(number, start, len(result["rows"]))
                    raise ValueError(f"{exc} (on {where})") from None
                proba = probas[0] if len(probas) == 1 else np.mean(probas, axis=0)
                if self.teacher_calibrator_ is not None:
                    proba = self.teacher_calibrator_.transform(proba)
                return result["rows"], to_fields(proba)

            return Feed(source, labeler, finish, cache=self.teacher_cache)

        return feed

    def _predict_chunks(self, method, X):
        """``method`` on chunked ``X`` (see :func:`skdistill.streaming.predict_chunks`)."""
        check_is_fitted(self, "student_")
        return predict_chunks(self, method, X,
                              None if method == "predict" else len(self.classes_))

    def _augmented(self, X, X_unlabeled):
        """The rows without labels: ``X_unlabeled`` (None when not given) and then, with
        ``augment`` set, ``round(augment_size * n_samples)`` (at least one) synthetic rows
        drawn from the validated ``X`` as it is (a table with its strings and NaN).

        Sets ``n_augmented_``, their number (0 without ``augment``). The draw is seeded by
        a seed drawn from ``random_state``, on a stream of its own.
        """
        augment = self.augment
        self.n_augmented_ = 0
        if augment is None:
            return X_unlabeled
        if sp.issparse(X) or getattr(X, "ndim", 2) != 2:
            kind = "sparse X" if sp.issparse(X) else f"X of shape {X.shape}"
            raise param_error(self, "augment", augment,
                              f"None with {kind}: synthetic rows are drawn from dense "
                              "2-d rows (a table, or a numeric array); pass a transfer set "
                              "as X_unlabeled instead")
        from ..augment import _AUGMENTERS

        augmenter = _AUGMENTERS[augment]() if isinstance(augment, str) else augment
        n_rows = _num_samples(X)
        n_new = max(1, int(round(self.augment_size * n_rows)))
        seed = int(np.random.SeedSequence([draw_seed(self.random_state), _AUGMENT_STREAM])
                   .generate_state(1)[0])
        with refused_by(self, f"augment {type(augmenter).__name__}"):
            rows = augmenter.sample(X, n_new, random_state=seed)
        if _num_samples_or_none(rows) != n_new or tuple(getattr(rows, "shape", ())[1:]) != \
                tuple(X.shape[1:]):
            raise param_error(self, "augment", augment,
                              f"an object whose sample(X, n_samples, random_state) returns "
                              f"n_samples rows shaped as those of X (asked for {n_new})")
        self.n_augmented_ = n_new
        return rows if X_unlabeled is None else stack_rows(X_unlabeled, rows)

    def _with_unlabeled(self, X, y, sample_weight, X_unlabeled, most_probable):
        """The student's rows: ``X`` then ``X_unlabeled``; returns ``(X, y, sample_weight)``.

        Unlabeled rows get the teacher's most probable class as ``y`` (``most_probable``:
        its position in ``classes_``, per row): the student needs labels for ``classes_``
        (and a stratified validation split), its loss on those rows uses the teacher alone.
        They weigh 1 where ``sample_weight`` is given.
        """
        X_all = stack_rows(X, X_unlabeled)
        y_all = np.concatenate([y, self.classes_[most_probable]])
        if sample_weight is not None:
            sample_weight = np.concatenate([sample_weight,
                                            np.ones(_num_samples(X_unlabeled))])
        return X_all, y_all, sample_weight

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True  # densified per minibatch by the student's engine
        return tags

    # -- prediction: the student's ------------------------------------------------------------
    def _fast_student_rows(self, X, method):
        """``X`` checked once for the fitted student's ``method``, as
        :class:`~skdistill._validation.CheckedRows`, when both checks would pass it untouched:
        a plain float array in the fitted shape, finite, for a distiller fitted without
        feature names whose ``student_`` is a skdistill student (not a Pipeline) with
        ``method`` of its own (not overridden). None otherwise: the checked path."""
        student = getattr(self, "student_", None)
        if (method is None or not isinstance(student, BaseStudent)
                or getattr(type(student), method) is not getattr(BaseStudent, method)
                or not is_plain_float_array(self, X)
                or X.shape[1] != getattr(self, "n_features_in_", None)):
            return None
        rows = student._fast_X(X)
        return None if rows is None else CheckedRows(rows)

    def _check_predict_X(self, X, method=None):
        """``X`` as the student takes it: a table as it is, once its feature names and their
        number are checked as scikit-learn does; an array validated as at ``fit``.

        Given the student's ``method`` that will take it, a plain float array goes through
        the student's fast path once (:meth:`_fast_student_rows`) where it applies.
        """
        rows = self._fast_student_rows(X, method)
        if rows is not None:
            return rows
        check_is_fitted(self, "student_")
        if is_table(X) and not self._takes_tables:
            return self._numeric_only(X)
        if is_table(X):
            return named_errors(self, validate_data, self, X, reset=False,
                                skip_check_array=True)
        return check_input(self, X, reset=False, allow_nd=True, accept_sparse="csr")

    def _student_says(self, method, X):
        """``student_.<method>(X)``, a refusal of ``X`` naming the student (rows the fast
        path checked cannot be refused: no context to enter)."""
        if type(X) is CheckedRows:
            return getattr(self.student_, method)(X)
        with refused_by(self, f"student {type(self.student_).__name__}"):
            return getattr(self.student_, method)(X)

    def predict_proba(self, X):
        """Class probabilities of the distilled student, columns in ``classes_`` order.

        Parameters
        ----------
        X : array-like, sparse matrix or DataFrame
            Rows as at ``fit``. A plain NumPy float32 or float64 array in the fitted shape,
            given to a distiller fitted without feature names whose ``student_`` is a
            skdistill student, is checked once, by the student's fast path, with the same
            result, errors and warnings as the full checks (see "Serving predictions from
            Python" in the deployment guide). A chunked source (a dask Array or DataFrame,
            a :class:`~skdistill.streaming.Chunks`, an iterator) is predicted chunk by chunk.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            The student's ``predict_proba``: for a dask collection, a lazy dask array (one
            block per chunk of rows); for a ``Chunks`` or an iterator, an iterator of arrays.
        """
        if is_chunked(X):
            return self._predict_chunks("predict_proba", X)
        X = self._check_predict_X(X, "predict_proba")
        return self._student_says("predict_proba", X)

    def predict_log_proba(self, X):
        """Log of :meth:`predict_proba`."""
        if is_chunked(X):
            return self._predict_chunks("predict_log_proba", X)
        X = self._check_predict_X(X, "predict_log_proba")
        return self._student_says("predict_log_proba", X)

    def predict(self, X):
        """Most probable class according to the student."""
        if is_chunked(X):
            return self._predict_chunks("predict", X)
        X = self._check_predict_X(X, "predict")
        return self._student_says("predict", X)


# Mixed with the seed drawn from random_state: the synthetic rows' draws are not those of the
# folds' or the clones' seeds drawn from the same random_state.
_AUGMENT_STREAM = 0x6D756E67


def _num_samples_or_none(value):
    """The number of rows of an array-like, None for anything else."""
    if isinstance(value, str) or not hasattr(value, "__len__"):
        return None
    try:
        return _num_samples(value)
    except TypeError:
        return None
