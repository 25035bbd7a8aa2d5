"""One Ctrl-C policy for every estimator (skdistill._interrupt).

An interrupt stops the whole fit, keeps what was learnt where that is usable, warns once, and
leaves the estimator fitted-and-usable or unfitted -- never half-fitted. The tests press Ctrl-C
for real: a SIGINT sent to this process at a chosen point of training.
"""
import os
import signal
import warnings

import numpy as np
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.datasets import make_classification
from sklearn.ensemble import RandomForestClassifier
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted
from skorch.callbacks import Callback, EarlyStopping

from skdistill.losses import EnsembleDistillationLoss
from skdistill import (CrossFitDistiller, DeepEnsembleTeacher, EnsembleDistiller,
                       KnowledgeDistiller, LatentBEStudent, MLPStudent)


def ctrl_c():
    os.kill(os.getpid(), signal.SIGINT)


class CtrlCAt(Callback):
    """Press Ctrl-C in the ``fit_no``-th network fit (1-based), in epoch ``epoch``.

    Counts fits in a class attribute: skorch deep-copies callbacks for every fit.
    """

    fits = 0

    def __init__(self, fit_no=1, epoch=1):
        self.fit_no = fit_no
        self.epoch = epoch

    def on_train_begin(self, net, **kwargs):
        type(self).fits += 1

    def on_batch_end(self, net, **kwargs):
        if type(self).fits == self.fit_no and len(net.history) == self.epoch:
            ctrl_c()


@pytest.fixture(autouse=True)
def reset_counter():
    CtrlCAt.fits = 0


@pytest.fixture(scope="module")
def data():
    X, y = make_classification(n_samples=120, n_features=6, random_state=0)
    return X.astype(np.float32), y


def student(**kwargs):
    return MLPStudent(**{**dict(hidden_layer_sizes=(8,), max_epochs=10, random_state=0),
                         **kwargs})


def interrupt_warnings(record):
    return [w for w in record if issubclass(w.category, RuntimeWarning)
            and "interrupted" in str(w.message)]


def test_student_keeps_the_epochs_trained_before_ctrl_c(data):
    X, y = data
    with pytest.warns(RuntimeWarning) as record:
        clf = student(callbacks=[CtrlCAt(epoch=4)]).fit(X, y)
    (warning,) = interrupt_warnings(record)
    assert "MLPStudent: fit interrupted; keeping the network trained for 3 of 10 epochs" in \
        str(warning.message)
    assert len(clf.history_) == 4 and "train_loss" not in clf.history_[-1]
    assert clf.predict_proba(X).shape == (len(X), 2)


def test_student_interrupted_in_its_first_epoch_is_left_unfitted(data):
    X, y = data
    clf = student(callbacks=[CtrlCAt(epoch=1)])
    with pytest.warns(RuntimeWarning, match="left unfitted"):
        with pytest.raises(KeyboardInterrupt):
            clf.fit(X, y)
    with pytest.raises(NotFittedError):
        clf.predict(X)


def test_a_refit_interrupted_early_does_not_keep_the_old_fit(data):
    X, y = data
    clf = student().fit(X, y)
    clf.set_params(callbacks=[CtrlCAt(epoch=1)])
    CtrlCAt.fits = 0
    with pytest.warns(RuntimeWarning, match="left unfitted"), pytest.raises(KeyboardInterrupt):
        clf.fit(X, y)
    assert not hasattr(clf, "module_") and not hasattr(clf, "classes_")


def test_early_stopping_is_not_an_interrupt(data):
    X, y = data
    es = EarlyStopping(monitor="train_loss", patience=1, threshold=10.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        clf = student(callbacks=[es], max_epochs=30).fit(X, y)
    assert len(clf.history_) < 30


def test_deep_ensemble_stops_at_the_interrupted_member(data):
    X, y = data
    teacher = DeepEnsembleTeacher(student(callbacks=[CtrlCAt(fit_no=3, epoch=2)]),
                                  n_members=4, random_state=0)
    with pytest.warns(RuntimeWarning) as record:
        teacher.fit(X, y)
    (warning,) = interrupt_warnings(record)
    assert "keeping the 2 of 4 members fitted so far" in str(warning.message)
    assert CtrlCAt.fits == 3, "members after the interrupted one must not be trained"
    assert len(teacher.members_) == len(teacher.modules_) == 2
    assert teacher.sample_proba(X).shape == (2, len(X), 2)


class CtrlCTeacher(ClassifierMixin, BaseEstimator):
    """A teacher whose ``fit_no``-th fit (counted per class) is interrupted."""

    fits = 0

    def __init__(self, fit_no=2):
        self.fit_no = fit_no

    def fit(self, X, y):
        type(self).fits += 1
        if type(self).fits == self.fit_no:
            ctrl_c()
        self.classes_ = np.unique(y)
        return self

    def predict_proba(self, X):
        return np.full((len(X), len(self.classes_)), 1.0 / len(self.classes_))


def test_crossfit_stops_at_the_interrupted_fold_and_is_unfitted(data):
    X, y = data
    CtrlCTeacher.fits = 0
    model = CrossFitDistiller(CtrlCTeacher(fit_no=2), student(), n_folds=4)
    with pytest.warns(RuntimeWarning, match="CrossFitDistiller: fit interrupted before "
                                            "anything usable"):
        with pytest.raises(KeyboardInterrupt):
            model.fit(X, y)
    assert CtrlCTeacher.fits == 2, "later fold teachers must not be fitted"
    with pytest.raises(NotFittedError):
        check_is_fitted(model)


def test_crossfit_with_network_teachers_stops_at_the_interrupted_fold(data):
    X, y = data
    model = CrossFitDistiller(student(callbacks=[CtrlCAt(fit_no=2, epoch=3)]), student(),
                              n_folds=3)
    with pytest.warns(RuntimeWarning, match="left unfitted"), pytest.raises(KeyboardInterrupt):
        model.fit(X, y)
    assert CtrlCAt.fits == 2


@pytest.mark.parametrize("make", [
    lambda s: KnowledgeDistiller(RandomForestClassifier(10, random_state=0), s),
    lambda s: CrossFitDistiller(RandomForestClassifier(10, random_state=0), s, n_folds=2),
], ids=["KnowledgeDistiller", "CrossFitDistiller"])
def test_distiller_interrupted_while_training_the_student_keeps_it(make, data):
    X, y = data
    model = make(student(callbacks=[CtrlCAt(epoch=3)]))
    with pytest.warns(RuntimeWarning) as record:
        model.fit(X, y)
    (warning,) = interrupt_warnings(record)  # once: the student's salvage is silent
    assert f"{type(model).__name__}: fit interrupted; keeping the student" in \
        str(warning.message)
    assert len(model.student_.history_) == 3
    assert model.predict_proba(X).shape == (len(X), 2)


@pytest.mark.parametrize("make", [
    lambda s: KnowledgeDistiller(RandomForestClassifier(10, random_state=0), s),
    lambda s: CrossFitDistiller(RandomForestClassifier(10, random_state=0), s, n_folds=2),
], ids=["KnowledgeDistiller", "CrossFitDistiller"])
def test_distiller_interrupted_keeps_a_student_pipeline(make, data):
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = data
    model = make(make_pipeline(StandardScaler(), student(callbacks=[CtrlCAt(epoch=3)])))
    with pytest.warns(RuntimeWarning) as record:
        model.fit(X, y)
    (warning,) = interrupt_warnings(record)
    assert "keeping the student trained for 2 of 10 epochs (MLPStudent)" in \
        str(warning.message)
    assert len(model.history_) == 3 and model.student_[-1].history_ is model.history_
    assert model.predict_proba(X).shape == (len(X), 2)


def test_ensemble_distiller_keeps_the_student_trained_so_far(data, monkeypatch):
    X, y = data
    calls = {"n": 0}
    original = EnsembleDistillationLoss._soft

    def soft_loss(self, z, p, *args):
        calls["n"] += 1
        if calls["n"] == 3 * 4 + 2:  # epoch 4, second batch (4 batches of 32 rows)
            ctrl_c()
        return original(self, z, p, *args)

    monkeypatch.setattr(EnsembleDistillationLoss, "_soft", soft_loss)
    teacher = DeepEnsembleTeacher(student(max_epochs=3), n_members=2, random_state=0)
    model = EnsembleDistiller(teacher, LatentBEStudent(n_members=2, hidden_layer_sizes=(8,),
                                                       max_epochs=10, batch_size=32),
                              random_state=0)
    with pytest.warns(RuntimeWarning) as record:
        model.fit(X, y)
    (warning,) = interrupt_warnings(record)
    assert "keeping the student trained for 3 of 10 epochs" in str(warning.message)
    assert len(model.student_.history_) == 3
    assert model.predict_proba(X).shape == (len(X), 2)


def test_ensemble_distiller_interrupted_in_its_teacher_is_unfitted(data):
    X, y = data
    teacher = DeepEnsembleTeacher(student(callbacks=[CtrlCAt(fit_no=2, epoch=2)]),
                                  n_members=3, random_state=0)
    model = EnsembleDistiller(teacher, LatentBEStudent(n_members=3, hidden_layer_sizes=(8,)))
    with pytest.warns(RuntimeWarning) as record, pytest.raises(KeyboardInterrupt):
        model.fit(X, y)
    (warning,) = interrupt_warnings(record)
    assert "EnsembleDistiller: fit interrupted before anything usable" in str(warning.message)
    with pytest.raises(NotFittedError):
        check_is_fitted(model)


def _ctrl_c_at(iteration, step=1e-3):
    """An SGLD step-size schedule that presses Ctrl-C when the chain reaches ``iteration``."""
    def schedule(t):
        if t == iteration:
            ctrl_c()
        return step
    return schedule


def test_sgld_interrupted_before_its_first_sample_is_left_unfitted(data):
    from skdistill import SGLDTeacher

    X, y = data
    teacher = SGLDTeacher(hidden_layer_sizes=(8,), step_size=_ctrl_c_at(50), n_iter=400,
                          burn_in=200, thinning=20, random_state=0)
    with pytest.warns(RuntimeWarning, match="SGLDTeacher: fit interrupted before anything "
                                            "usable"), pytest.raises(KeyboardInterrupt):
        teacher.fit(X, y)
    with pytest.raises(NotFittedError):
        teacher.predict_proba(X)


def test_gped_interrupted_in_the_chain_keeps_the_student_and_the_samples(data):
    from skdistill import GPEDDistiller, SGLDTeacher

    X, y = data
    model = GPEDDistiller(SGLDTeacher(hidden_layer_sizes=(8,), step_size=_ctrl_c_at(300),
                                      prior_precision=1.0, thinning=20),
                          # a chain decides the student's steps: max_epochs at its default
                          MLPStudent(hidden_layer_sizes=(8,), random_state=0), n_iter=2000,
                          burn_in=100, thinning=1, random_state=0)
    with pytest.warns(RuntimeWarning) as record:
        model.fit(X, y)
    (warning,) = interrupt_warnings(record)
    assert "GPEDDistiller: fit interrupted; keeping the student after 200 steps" in \
        str(warning.message)
    assert model.teacher_.n_iter_ == 300 and len(model.teacher_.samples_) == 10
    assert model.predict_proba(X).shape == (len(X), 2)


def test_fit_leaves_the_sigint_handler_as_it_found_it(data, monkeypatch):
    X, y = data
    before = signal.getsignal(signal.SIGINT)
    student(max_epochs=1).fit(X, y)
    assert signal.getsignal(signal.SIGINT) is before
    # A process that ignores SIGINT keeps ignoring it during fit.
    monkeypatch.setattr(signal, "signal", lambda *a: pytest.fail("handler replaced"))
    monkeypatch.setattr(signal, "getsignal", lambda s: signal.SIG_IGN)
    student(max_epochs=1).fit(X, y)


def test_refit_interrupted_in_its_teacher_does_not_keep_the_old_student(data):
    X, y = data
    model = KnowledgeDistiller(RandomForestClassifier(5, random_state=0), student()).fit(X, y)
    CtrlCTeacher.fits = 0
    model.set_params(teacher=CtrlCTeacher(fit_no=1))
    with pytest.warns(RuntimeWarning, match="left unfitted"), pytest.raises(KeyboardInterrupt):
        model.fit(X[:, :3], y)
    assert not hasattr(model, "student_") and not hasattr(model, "classes_")


class CtrlCRegressor(BaseEstimator):
    """A scikit-learn regressor interrupted in the middle of its fit (half-built)."""

    def fit(self, X, y):
        self.estimators_ = []  # what a forest has before its trees exist
        ctrl_c()
        return self

    def predict(self, X):
        raise AssertionError("an interrupted regressor must never predict")


def test_crossfit_with_a_regressor_interrupted_in_its_fit_is_unfitted(data):
    from sklearn.base import RegressorMixin

    X, y = data
    regressor = type("Regressor", (RegressorMixin, CtrlCRegressor), {})()
    model = CrossFitDistiller(RandomForestClassifier(5, random_state=0), regressor, n_folds=2)
    with pytest.warns(RuntimeWarning, match="left unfitted"), pytest.raises(KeyboardInterrupt):
        model.fit(X, y)
    with pytest.raises(NotFittedError):
        check_is_fitted(model)


def test_a_failed_refit_leaves_the_estimator_unfitted_not_mixed(data):
    X, y = data
    clf = student().fit(X, y)
    clf.set_params(lr=1e12, optimizer="sgd")
    y3 = np.arange(len(y)) % 3
    with pytest.raises(ValueError, match="training diverged"):
        clf.fit(X, y3)
    with pytest.raises(NotFittedError):
        clf.predict(X)


def _ctrl_c_at_adam_step(monkeypatch, step):
    """Press Ctrl-C at the ``step``-th Adam step (1-based) of the test."""
    import torch

    original, calls = torch.optim.Adam.step, []

    def pressed(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == step:
            ctrl_c()
        return original(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.Adam, "step", pressed)


def test_vi_teacher_keeps_the_posterior_of_its_complete_epochs(data, monkeypatch):
    from skdistill import VITeacher

    X, y = data
    _ctrl_c_at_adam_step(monkeypatch, 10)  # 3 steps an epoch: in the 4th epoch
    teacher = VITeacher(hidden_layer_sizes=(8,), max_epochs=20, batch_size=40, n_samples=5,
                        random_state=0)
    with pytest.warns(RuntimeWarning) as record:
        teacher.fit(X, y)
    (warning,) = interrupt_warnings(record)
    assert "VITeacher: fit interrupted; keeping the posterior after 3 of 20 epochs" in \
        str(warning.message)
    assert len(teacher.elbo_history_) == 3 and not teacher.module_.training
    assert teacher.predict_proba(X).shape == (len(X), 2)


def test_vi_teacher_interrupted_in_its_first_epoch_is_left_unfitted(data, monkeypatch):
    from skdistill import VITeacher

    X, y = data
    _ctrl_c_at_adam_step(monkeypatch, 2)
    teacher = VITeacher(hidden_layer_sizes=(8,), max_epochs=20, batch_size=40, random_state=0)
    with pytest.warns(RuntimeWarning, match="VITeacher: fit interrupted before anything "
                                            "usable"), pytest.raises(KeyboardInterrupt):
        teacher.fit(X, y)
    with pytest.raises(NotFittedError):
        teacher.predict_proba(X)


def test_laplace_teacher_interrupted_in_its_map_fit_is_left_unfitted(data):
    from skdistill import LaplaceTeacher

    X, y = data
    # a Laplace approximation is taken at the MAP, which an interrupted fit has not reached
    teacher = LaplaceTeacher(student(callbacks=[CtrlCAt(epoch=3)]), random_state=0)
    with pytest.warns(RuntimeWarning, match="LaplaceTeacher: fit interrupted before anything "
                                            "usable"), pytest.raises(KeyboardInterrupt):
        teacher.fit(X, y)
    with pytest.raises(NotFittedError):
        teacher.predict_proba(X)
