"""partial_fit: students trained one block at a time, through the one engine."""
import os
import pickle
import signal
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from sklearn.base import clone
from sklearn.datasets import load_breast_cancer, make_classification
from sklearn.exceptions import NotFittedError
from sklearn.preprocessing import StandardScaler
from sklearn.utils.validation import check_is_fitted
from skorch.callbacks import Callback

from skdistill import MLPStudent
from skdistill._testing import fast_instance
from skdistill.discovery import all_estimators

CLASSES = [0, 1, 2]


@pytest.fixture(scope="module")
def data():
    X, y = make_classification(n_samples=240, n_features=16, n_informative=8, n_classes=3,
                               random_state=0)
    return StandardScaler().fit_transform(X).astype(np.float32), y


def blocks(n, k=4):
    return np.array_split(np.arange(n), k)


def student(**kwargs):
    return MLPStudent(**{**dict(hidden_layer_sizes=(16,), lr=1e-2, batch_size=32,
                                random_state=0), **kwargs})


def stream(clf, X, y, k=4, **kwargs):
    for rows in blocks(len(X), k):
        clf.partial_fit(X[rows], y[rows], classes=CLASSES, **kwargs)
    return clf


# -- classes and labels -------------------------------------------------------------------
def test_classes_are_required_on_the_first_call(data):
    X, y = data
    clf = student()
    with pytest.raises(ValueError, match=r"^MLPStudent: classes must be passed on the first "
                                         r"call to partial_fit\.$"):
        clf.partial_fit(X, y)
    with pytest.raises(NotFittedError):
        check_is_fitted(clf)
    assert not hasattr(clf, "n_features_in_")
    clf.partial_fit(X, y, classes=[2, 0, 1, 0])  # sorted and unique, as fit's classes_
    np.testing.assert_array_equal(clf.classes_, CLASSES)
    clf.partial_fit(X, y)  # later calls need not repeat them


def test_classes_of_a_later_call_must_be_the_first_calls(data):
    X, y = data
    clf = student().partial_fit(X, y, classes=CLASSES)
    proba = clf.predict_proba(X)
    with pytest.raises(ValueError, match=r"MLPStudent: parameter classes=\[0, 1, 2, 3\] is "
                                         r"invalid; expected the classes_ .*\[0, 1, 2\]"):
        clf.partial_fit(X, y, classes=[0, 1, 2, 3])
    with pytest.raises(ValueError, match="parameter classes=.*at least two class labels"):
        student().partial_fit(X, y, classes=[1])
    # the refused call changed nothing
    assert len(clf.history_) == 1
    np.testing.assert_array_equal(clf.predict_proba(X), proba)


def test_labels_outside_classes_are_named(data):
    X, y = data
    with pytest.raises(ValueError, match=r"MLPStudent: parameter y='<labels 7, 9 not in "
                                         r"classes_>' is invalid; expected labels among "
                                         r"classes_ \[0, 1, 2\]"):
        student().partial_fit(X[:4], np.array([0, 7, 9, 7]), classes=CLASSES)
    clf = student().partial_fit(X, y, classes=CLASSES)
    with pytest.raises(ValueError, match="labels 3 not in classes_"):
        clf.partial_fit(X[:2], [0, 3])
    # a block may hold fewer classes than the stream
    clf.partial_fit(X[y == 0], y[y == 0])
    assert len(clf.history_) == 2


def test_string_labels(data):
    X, y = data
    names = np.array(["ant", "bee", "cat"])
    clf = stream(MLPStudent(hidden_layer_sizes=(8,), random_state=0), X, y)
    named = MLPStudent(hidden_layer_sizes=(8,), random_state=0)
    for rows in blocks(len(X)):
        named.partial_fit(X[rows], names[y[rows]], classes=names[::-1])
    np.testing.assert_array_equal(named.classes_, names)
    np.testing.assert_array_equal(named.predict_proba(X), clf.predict_proba(X))


def test_feature_count_is_checked_after_the_first_call(data):
    X, y = data
    clf = student().partial_fit(X, y, classes=CLASSES)
    assert clf.n_features_in_ == 16
    with pytest.raises(ValueError, match="X has 15 features, but MLPStudent is expecting 16"):
        clf.partial_fit(X[:, :-1], y)
    assert len(clf.history_) == 1


# -- what a call trains ---------------------------------------------------------------------
def test_each_call_adds_one_epoch_to_the_history(data):
    X, y = data
    clf = student()
    for calls, rows in enumerate(blocks(len(X)), start=1):
        clf.partial_fit(X[rows], y[rows], classes=CLASSES)
        assert len(clf.history_) == calls
        assert clf.history_[-1]["train_batch_count"] == 2  # 60 rows in batches of 32
        assert np.isfinite(clf.history_[-1, "train_loss"])
        assert "valid_loss" not in clf.history_[-1]
    assert clf.history_ is clf.net_.history


def test_validation_fraction_is_not_used(data):
    X, y = data
    plain = student().partial_fit(X, y, classes=CLASSES)
    held_out = student(validation_fraction=0.2).partial_fit(X, y, classes=CLASSES)
    assert held_out.history_[-1]["train_batch_count"] == 8  # all 240 rows
    np.testing.assert_array_equal(held_out.predict_proba(X), plain.predict_proba(X))


def test_same_random_state_same_calls_same_network(data):
    X, y = data
    a = stream(student(dropout=0.2), X, y)
    b = stream(student(dropout=0.2), X, y)
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))
    other = stream(student(dropout=0.2, random_state=1), X, y)
    assert not np.array_equal(other.predict_proba(X), a.predict_proba(X))
    # each call has a seed of its own: the same block twice is shuffled in two orders
    orders = [order_of_calls(student(random_state=0), X[:64], y[:64]) for _ in range(2)]
    assert orders[0] == orders[1]
    first, second, third = orders[0]
    assert sorted(first) == sorted(second) == sorted(third)
    assert first != second and second != third


class RecordOrder(Callback):
    """Record the first feature of every training row, in the order the batches give them."""

    def __init__(self):
        self.rows = []

    def on_batch_begin(self, net, batch=None, training=None, **kwargs):
        if training:
            self.rows[-1] += batch[0][:, 0].tolist()

    def on_epoch_begin(self, net, **kwargs):
        self.rows.append([])


def order_of_calls(clf, X, y, calls=3):
    """The order of the rows in each of ``calls`` calls on the same block."""
    clf.set_params(callbacks=[("order", RecordOrder())])
    for _ in range(calls):
        clf.partial_fit(X, y, classes=CLASSES)
    return dict(clf.net_.callbacks_)["order"].rows


def test_a_pickled_student_continues_its_stream(data):
    X, y = data
    whole = stream(student(dropout=0.2), X, y)
    parts = blocks(len(X))
    clf = student(dropout=0.2)
    for rows in parts[:2]:
        clf.partial_fit(X[rows], y[rows], classes=CLASSES)
    clf = pickle.loads(pickle.dumps(clf))
    for rows in parts[2:]:
        clf.partial_fit(X[rows], y[rows])
    np.testing.assert_array_equal(clf.predict_proba(X), whole.predict_proba(X))
    assert len(clf.history_) == 4


def test_one_call_on_an_unfitted_student_is_fit_for_one_epoch(data):
    X, y = data
    fitted = student(max_epochs=1, dropout=0.2).fit(X, y)
    called = student(max_epochs=5, dropout=0.2).partial_fit(X, y, classes=CLASSES)
    np.testing.assert_array_equal(called.predict_proba(X), fitted.predict_proba(X))


def test_after_fit_a_call_continues_the_fitted_network_and_optimizer(data):
    X, y = data
    clf = student(max_epochs=3).fit(X, y)
    assert clf.net_.history[-1]["train_batch_count"] == 8
    before = [p.detach().clone() for p in clf.module_.parameters()]
    clf.partial_fit(X[:64], y[:64])  # classes_ from fit
    assert len(clf.history_) == 4 and clf.history_[:3, "train_loss"] is not None
    assert not all(torch.equal(p, q) for p, q in zip(clf.module_.parameters(), before))
    # Adam's state went on from fit's 3 x 8 steps
    state = clf.net_.optimizer_.state[next(clf.module_.parameters())]
    assert int(state["step"]) == 3 * 8 + 2
    # a pickled fitted student continues the same way
    again = pickle.loads(pickle.dumps(student(max_epochs=3).fit(X, y)))
    again.partial_fit(X[:64], y[:64])
    np.testing.assert_array_equal(again.predict_proba(X), clf.predict_proba(X))
    # a new fit starts afresh, and so does the stream after it
    clf.fit(X, y)
    assert len(clf.history_) == 3


def test_blocks_of_a_dataset_reach_a_good_accuracy():
    X, y = load_breast_cancer(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    order = np.random.RandomState(0).permutation(len(X))
    clf = MLPStudent(hidden_layer_sizes=(32,), lr=1e-2, batch_size=32, random_state=0)
    for rows in np.array_split(order, 20):
        clf.partial_fit(X[rows], y[rows], classes=[0, 1])
    assert len(clf.history_) == 20
    assert clf.score(X, y) > 0.95


def test_sample_weight_as_in_fit(data):
    X, y = data
    uniform = stream(student(), X, y, sample_weight=None)
    clf = student()
    for rows in blocks(len(X)):
        clf.partial_fit(X[rows], y[rows], classes=CLASSES, sample_weight=np.full(len(rows), 3.0))
    np.testing.assert_allclose(clf.predict_proba(X), uniform.predict_proba(X), atol=1e-5)
    # only class 0's rows weigh: the network learns to predict class 0
    only_zero = student()
    for _ in range(5):
        for rows in blocks(len(X)):
            only_zero.partial_fit(X[rows], y[rows], classes=CLASSES,
                                  sample_weight=(y[rows] == 0).astype(float))
    assert (only_zero.predict(X) == 0).mean() > 0.9
    with pytest.raises(ValueError, match="MLPStudent"):
        student().partial_fit(X, y, classes=CLASSES, sample_weight=np.ones(3))


def test_sparse_blocks_train_as_dense_ones(data):
    X, y = data
    dense = stream(student(), X, y)
    clf = student()
    for rows in blocks(len(X)):
        clf.partial_fit(sp.csr_matrix(X[rows]), y[rows], classes=CLASSES)
    np.testing.assert_allclose(clf.predict_proba(X), dense.predict_proba(X), atol=1e-6)


def test_the_blocks_of_a_dask_array(data):
    da = pytest.importorskip("dask.array")
    X, y = data
    dX, dy = da.from_array(X, chunks=(60, -1)), da.from_array(y, chunks=60)
    clf = student()
    for i in range(dX.numblocks[0]):  # the loop of dask-ml's Incremental
        clf.partial_fit(dX.blocks[i].compute(), dy.blocks[i].compute(), classes=CLASSES)
    np.testing.assert_array_equal(clf.predict_proba(X), stream(student(), X, y).predict_proba(X))


# -- pruning, errors and Ctrl-C -------------------------------------------------------------
def test_a_pruning_student_has_no_partial_fit(data):
    X, y = data
    pruning = student(group_lasso=0.05, max_epochs=20)
    assert not hasattr(pruning, "partial_fit")
    with pytest.raises(AttributeError) as info:
        pruning.partial_fit(X, y, classes=CLASSES)
    assert "MLPStudent: parameter group_lasso=0.05 is invalid; expected 0 for partial_fit" in \
        str(info.value.__cause__)
    # a pruned network trains on once pruning is off
    pruning.fit(X, y)
    widths = pruning.hidden_layer_sizes_
    assert pruning.n_pruned_units_ > 0
    pruning.set_params(group_lasso=0.0).partial_fit(X, y)
    assert pruning.hidden_layer_sizes_ == widths and pruning.n_pruned_units_ > 0
    assert len(pruning.history_) == 21


def test_a_diverged_call_raises_and_changes_nothing(data):
    X, y = data
    parts = blocks(len(X))
    clf = student(lr=1.0, optimizer="sgd")
    clf.partial_fit(X[parts[0]], y[parts[0]], classes=CLASSES)
    proba = clf.predict_proba(X)
    # the first batch's step is applied, the second's loss is NaN
    with pytest.raises(ValueError, match=r"MLPStudent: training diverged: the loss became nan "
                                         r"at epoch 2 \(this partial_fit call\), batch 2"):
        clf.partial_fit(X[parts[1]] * 1e18, y[parts[1]])
    np.testing.assert_array_equal(clf.predict_proba(X), proba)
    assert len(clf.history_) == 1
    # the stream goes on as if the failed call had not been made
    clf.partial_fit(X[parts[1]], y[parts[1]])
    same = student(lr=1.0, optimizer="sgd")
    for rows in parts[:2]:
        same.partial_fit(X[rows], y[rows], classes=CLASSES)
    np.testing.assert_array_equal(clf.predict_proba(X), same.predict_proba(X))


class CtrlCInCall(Callback):
    """Press Ctrl-C in the ``call``-th partial_fit call (1-based), after its first batch."""

    calls = 0

    def __init__(self, call):
        self.call = call

    def on_train_begin(self, net, **kwargs):
        type(self).calls += 1

    def on_batch_end(self, net, **kwargs):
        if type(self).calls == self.call:
            os.kill(os.getpid(), signal.SIGINT)


@pytest.fixture
def count_calls():
    CtrlCInCall.calls = 0
    yield
    CtrlCInCall.calls = 0


def test_ctrl_c_in_a_call_keeps_the_last_complete_call_and_stops(data, count_calls):
    X, y = data
    parts = blocks(len(X))
    clf = student(callbacks=[CtrlCInCall(call=3)])
    for rows in parts[:2]:
        clf.partial_fit(X[rows], y[rows], classes=CLASSES)
    proba = clf.predict_proba(X)
    with pytest.warns(RuntimeWarning, match=r"MLPStudent: partial_fit interrupted; keeping "
                                            r"the network as it was before this call "
                                            r"\(2 epochs trained\)"):
        with pytest.raises(KeyboardInterrupt):
            clf.partial_fit(X[parts[2]], y[parts[2]])
    assert len(clf.history_) == 2
    np.testing.assert_array_equal(clf.predict_proba(X), proba)
    for rows in parts[2:]:
        clf.partial_fit(X[rows], y[rows])
    np.testing.assert_array_equal(clf.predict_proba(X), stream(student(), X, y).predict_proba(X))


def test_ctrl_c_in_the_first_call_leaves_the_student_unfitted(data, count_calls):
    X, y = data
    clf = student(callbacks=[CtrlCInCall(call=1)])
    with pytest.warns(RuntimeWarning, match="MLPStudent is left unfitted"):
        with pytest.raises(KeyboardInterrupt):
            clf.partial_fit(X, y, classes=CLASSES)
    with pytest.raises(NotFittedError):
        check_is_fitted(clf)
    assert not hasattr(clf, "classes_") and not hasattr(clf, "n_features_in_")


# -- every student ----------------------------------------------------------------------------
STUDENTS = [fast_instance(cls, random_state=0) for _, cls in all_estimators("student")]


@pytest.mark.parametrize("estimator", STUDENTS, ids=lambda e: type(e).__name__)
def test_every_student_trains_block_by_block(estimator, data):
    X, y = data
    X, y = X[:96], y[:96]
    streams = []
    for _ in range(2):
        clf = clone(estimator)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            stream(clf, X, y, k=3)
        streams.append(clf)
    a, b = streams
    assert len(a.history_) == 3
    proba = a.predict_proba(X)
    assert proba.shape == (len(X), 3)
    np.testing.assert_array_equal(proba, b.predict_proba(X))
    with pytest.raises(ValueError, match="features"):
        a.partial_fit(X[:, :-1], y)
