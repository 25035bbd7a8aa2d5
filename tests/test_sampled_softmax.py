"""SampledSoftmaxDistiller and its loss: Menon et al.'s teacher-corrected sampled softmax."""
import pickle

import numpy as np
import pytest
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from torch.utils.flop_counter import FlopCounterMode

from skdistill import LatentBEStudent, MLPStudent, SampledSoftmaxDistiller
from skdistill.distillers import sampled_softmax
from skdistill.distillers.sampled_softmax import _SampledSoftmaxObjective
from skdistill.losses import negative_weights, teacher_corrected_sampled_softmax
from skdistill.nets import MLP


def clusters(n, n_classes=50, n_features=8, noise=0.3, seed=0):
    """Rows around one centre per class (the centres fixed, the draws seeded)."""
    centres = np.random.default_rng(123).normal(size=(n_classes, n_features))
    rng = np.random.default_rng(seed)
    y = rng.integers(0, n_classes, n)
    return (centres[y] + noise * rng.normal(size=(n, n_features))).astype(np.float32), y


def student(**kw):
    return MLPStudent(**{"hidden_layer_sizes": (32,), "max_epochs": 8, "lr": 1e-2,
                         "random_state": 0, **kw})


@pytest.fixture(scope="module")
def data():
    return clusters(1500)


@pytest.fixture(scope="module")
def teacher(data):
    X, y = data
    return FrozenEstimator(LogisticRegression(max_iter=300).fit(X, y))


def objective(n_classes, labels, index=None, proba=None, frequency=None, **params):
    """The distiller's training objective for ``n_classes`` classes, without a fit."""
    distiller = SampledSoftmaxDistiller(**params)
    distiller.classes_ = np.arange(n_classes)
    if frequency is None:
        frequency = np.full(n_classes, 1.0 / n_classes)
    return _SampledSoftmaxObjective(distiller, labels, index, proba, frequency)


def random_topk(n, n_classes, k, seed=0):
    """Rows of ``k`` distinct classes in increasing order, with probabilities summing to 1."""
    rng = np.random.default_rng(seed)
    index = np.sort(np.stack([rng.choice(n_classes, k, replace=False) for _ in range(n)]), 1)
    proba = rng.dirichlet(np.ones(k), n).astype(np.float32)
    return index, proba


# -- the loss -------------------------------------------------------------------------------

def test_every_class_as_a_negative_without_correction_is_the_full_softmax_cross_entropy():
    torch.manual_seed(0)
    n_classes = 7
    h, W, b = torch.randn(16, 5), torch.randn(n_classes, 5), torch.randn(n_classes)
    y = torch.randint(n_classes, (16,))
    # the objective's negatives when n_negatives >= L - 1: every class, no log-q correction
    target = objective(n_classes, y.numpy(), n_negatives=n_classes - 1,
                       correction=None).batch_targets(h, {"index": torch.arange(16)}, True)
    assert torch.equal(target["negatives"], torch.arange(n_classes))
    loss = teacher_corrected_sampled_softmax(h, W, b, target["y"], target["negatives"],
                                             target["log_q"], correction=None,
                                             reduction="none")
    torch.testing.assert_close(loss, F.cross_entropy(h @ W.T + b, y, reduction="none"))


def test_distillation_term_over_every_class_is_the_soft_target_cross_entropy():
    # the top-k classes are positives and must not be counted again among the negatives
    torch.manual_seed(0)
    n_classes, k = 9, 4
    h, W, b = torch.randn(6, 5), torch.randn(n_classes, 5), torch.randn(n_classes)
    index, proba = random_topk(6, n_classes, k)
    index, proba = torch.as_tensor(index), torch.as_tensor(proba)
    loss = teacher_corrected_sampled_softmax(
        h, W, b, torch.full((6,), -1), torch.arange(n_classes), torch.zeros(n_classes),
        index, proba, reduction="none")
    dense = torch.zeros(6, n_classes).scatter_(1, index, proba)
    expected = -(dense * F.log_softmax(h @ W.T + b, 1)).sum(1)
    torch.testing.assert_close(loss, expected)
    # alpha mixes the two terms for labelled rows
    y = torch.tensor([0, 1, 2, 3, 4, 5])
    mixed = teacher_corrected_sampled_softmax(
        h, W, b, y, torch.arange(n_classes), torch.zeros(n_classes), index, proba,
        correction=None, alpha=0.25, reduction="none")
    hard = F.cross_entropy(h @ W.T + b, y, reduction="none")
    torch.testing.assert_close(mixed, 0.75 * hard + 0.25 * expected)


def test_negative_weights_on_hand_computed_cases():
    labels = torch.tensor([0, 2, 3])
    negatives = torch.tensor([1, 0, 2, 3])
    # row 3 holds one class only: -1 pads its top-k, first
    index = torch.tensor([[0, 1], [1, 2], [-1, 1]])
    proba = torch.tensor([[0.7, 0.3], [0.4, 0.6], [0.0, 1.0]])
    alpha = negative_weights(labels, negatives, index, proba)
    expected = torch.tensor([
        [0.7, 0.0, 1.0, 1.0],  # 1 - p(1); label 0 sampled (a hit); classes 2, 3 missed
        [0.6, 1.0, 0.0, 1.0],  # 1 - p(1); class 0 missed; label 2 sampled (a hit)
        [0.0, 1.0, 1.0, 0.0],  # the teacher is sure of class 1; label 3 sampled
    ])
    torch.testing.assert_close(alpha, expected)
    plain = negative_weights(labels, negatives, index, proba, correction=None)
    torch.testing.assert_close(plain, (expected > 0).float() + (expected == 0) * (
        negatives[None, :] != labels[:, None]).float())


def test_corrected_loss_on_a_hand_computed_row():
    # one row, label 0; logits f = [1, 2, 0.5, -1] from a head on the identity features
    W, h = torch.eye(4), torch.tensor([[1.0, 2.0, 0.5, -1.0]])
    negatives, log_q = torch.tensor([1, 2, 1]), torch.log(torch.tensor([0.6, 0.3, 0.6]))
    index, proba = torch.tensor([[0, 1]]), torch.tensor([[0.75, 0.25]])
    loss = teacher_corrected_sampled_softmax(h, W, None, torch.tensor([0]), negatives, log_q,
                                             index, proba)
    z = np.log(np.e + 2 * 0.75 * np.exp(2.0) / 0.6 + np.exp(0.5) / 0.3)
    assert loss.item() == pytest.approx(z - 1.0, rel=1e-6)


@pytest.mark.parametrize("sampler", ["uniform", "frequency", "teacher"])
def test_log_q_correction_makes_the_sampled_partition_function_unbiased(sampler):
    # E[sum_{j in N} e^{f_j - log(m q_j)}] = sum_j e^{f_j}, over the draws of N from q
    n_classes, m, draws = 40, 5, 20000
    rng = np.random.default_rng(0)
    f = torch.as_tensor(rng.normal(size=n_classes), dtype=torch.float32)
    index, proba = random_topk(8, n_classes, 6)
    frequency = rng.dirichlet(np.ones(n_classes))
    obj = objective(n_classes, np.zeros(8, dtype=int), index, proba, frequency,
                    n_negatives=m, sampler=sampler)
    X, rows = torch.zeros(8, 1), {"index": torch.arange(8)}
    torch.manual_seed(0)
    estimates = []
    for _ in range(draws):
        target = obj.batch_targets(X, rows, True)
        estimates.append(torch.exp(f[target["negatives"]] - target["log_q"]).sum())
    estimates = torch.stack(estimates)
    sem = estimates.std() / draws ** 0.5
    assert abs(estimates.mean() - f.exp().sum()) < 4 * sem
    assert sem < 0.02 * f.exp().sum()


def test_teacher_sampler_draws_plausible_classes_more_often():
    n_classes = 100
    index = np.tile(np.array([[3, 7]]), (4, 1))
    proba = np.tile(np.array([[0.5, 0.5]], dtype=np.float32), (4, 1))
    obj = objective(n_classes, np.zeros(4, dtype=int), index, proba, n_negatives=50,
                    sampler="teacher")
    torch.manual_seed(0)
    target = obj.batch_targets(torch.zeros(4, 1), {"index": torch.arange(4)}, True)
    # q = 0.5 * 0.5 + 0.5 / 100 for classes 3 and 7, 0.5 / 100 for the others
    q = torch.exp(target["log_q"]) / 50
    plausible = torch.isin(target["negatives"], torch.tensor([3, 7]))
    torch.testing.assert_close(q[plausible], torch.full((int(plausible.sum()),), 0.255))
    torch.testing.assert_close(q[~plausible], torch.full((int((~plausible).sum()),), 0.005))
    assert plausible.float().mean() > 0.3  # expected 0.51


def one_step_flops(n_classes, batch=32, m=16, k=8, full=False):
    """FLOPs of one training step (forward, loss, backward) of a one-hidden-layer student."""
    labels = np.random.default_rng(0).integers(0, n_classes, batch)
    index, proba = random_topk(batch, n_classes, k)
    obj = objective(n_classes, labels, index, proba, n_negatives=m, alpha=0.5, top_k=k)
    net = obj.build(MLP(10, n_classes, hidden_sizes=(16,)))
    X = torch.randn(batch, 10)
    with FlopCounterMode(display=False) as counter:
        if full:
            loss = F.cross_entropy(obj.deploy(net)(X), torch.as_tensor(labels))
        else:
            loss = obj.loss(net(X), obj.batch_targets(X, {"index": torch.arange(batch)},
                                                      True)).mean()
        loss.backward()
    return counter.get_total_flops()


def test_counted_work_of_a_step_is_flat_in_the_number_of_classes():
    small, large = one_step_flops(1000), one_step_flops(20000)
    assert small == large
    # the counter does see the head: the full softmax's step grows with L
    full = one_step_flops(20000, full=True)
    assert full >= 2 * 32 * 20000 * 16
    assert large < full / 50


# -- the teacher's top-k ----------------------------------------------------------------------

class _Recording(ClassifierMixin, BaseEstimator):
    """A fitted logistic regression's probabilities, recording the rows of each call; as a
    scipy sparse matrix of each row's ``keep`` largest with ``sparse=True``."""

    calls = []

    def __init__(self, sparse=False, keep=3):
        self.sparse = sparse
        self.keep = keep

    def fit(self, X, y):
        self.model_ = LogisticRegression(max_iter=300).fit(X, y)
        self.classes_ = self.model_.classes_
        return self

    def predict_proba(self, X):
        type(self).calls.append(len(X))
        proba = self.model_.predict_proba(X)
        if not self.sparse:
            return proba
        cut = -np.sort(-proba, axis=1)[:, self.keep - 1:self.keep]
        return sp.csr_matrix(np.where(proba >= cut, proba, 0.0))


def test_teacher_probabilities_are_collected_in_chunks(data, monkeypatch):
    X, y = data
    monkeypatch.setattr(sampled_softmax, "TEACHER_CHUNK", 400)
    _Recording.calls = []
    model = SampledSoftmaxDistiller(_Recording(), student(max_epochs=1), top_k=5,
                                    random_state=0).fit(X, y)
    assert _Recording.calls == [400, 400, 400, 300]
    index, proba = model._teacher_topk(X[:50], model.teacher_)
    full = model.teacher_.predict_proba(X[:50])
    expected = np.sort(np.argsort(-full, axis=1)[:, :5], axis=1)
    np.testing.assert_array_equal(index, expected)
    np.testing.assert_allclose(proba, np.take_along_axis(full, expected, 1), rtol=1e-6)


def test_sparse_teacher_probabilities_are_taken_as_they_are(data):
    X, y = data
    teacher = _Recording(sparse=True, keep=3).fit(X, y)
    model = SampledSoftmaxDistiller(FrozenEstimator(teacher), top_k=5)
    model.classes_ = np.unique(y)
    index, proba = model._teacher_topk(X[:20], teacher)
    # 3 stored values per row: two -1 paddings first, then the classes in order
    assert (index[:, :2] == -1).all() and (proba[:, :2] == 0).all()
    dense = teacher.model_.predict_proba(X[:20])
    np.testing.assert_array_equal(index[:, 2:], np.sort(np.argsort(-dense, 1)[:, :3], 1))
    fitted = SampledSoftmaxDistiller(FrozenEstimator(teacher), student(), n_negatives=8,
                                     top_k=5, alpha=0.5, random_state=0).fit(X, y)
    assert fitted.score(X, y) > 0.8


def test_sparse_rows_that_are_not_probabilities_are_refused(data):
    X, y = data

    class TooMuch(_Recording):
        def predict_proba(self, X):
            return sp.csr_matrix(2 * self.model_.predict_proba(X))

    with pytest.raises(ValueError, match=r"^SampledSoftmaxDistiller: the teacher TooMuch "
                                         r"returned a sparse predict_proba that holds no"):
        SampledSoftmaxDistiller(TooMuch(), student(max_epochs=1)).fit(X, y)


# -- the estimator ------------------------------------------------------------------------------

@pytest.mark.parametrize("params", [dict(), dict(correction=None), dict(alpha=0.5),
                                    dict(sampler="frequency"), dict(sampler="teacher")])
def test_sampled_student_learns_many_classes(data, teacher, params):
    X, y = data
    X_test, y_test = clusters(500, seed=1)
    model = SampledSoftmaxDistiller(teacher, student(), n_negatives=8, top_k=5,
                                    random_state=0, **params).fit(X, y)
    assert model.score(X_test, y_test) > 0.8  # chance: 0.02
    proba = model.predict_proba(X_test[:40])
    assert proba.shape == (40, 50)
    top = model.predict_topk(X_test[:40], k=3)
    np.testing.assert_array_equal(top, model.classes_[np.argsort(-proba, axis=1)[:, :3]])
    np.testing.assert_array_equal(top[:, 0], model.predict(X_test[:40]))


def test_unlabeled_rows_teach_the_student(teacher):
    X_all, y_all = clusters(3000, seed=2)
    # two labelled rows per class, the rest without labels
    first = np.concatenate([np.flatnonzero(y_all == c)[:2] for c in range(50)])
    rest = np.setdiff1d(np.arange(3000), first)
    X_test, y_test = clusters(500, seed=1)
    make = lambda: SampledSoftmaxDistiller(teacher, student(max_epochs=10), n_negatives=8,
                                           top_k=5, random_state=0)
    labelled_only = make().fit(X_all[first], y_all[first]).score(X_test, y_test)
    with_unlabeled = make().fit(X_all[first], y_all[first],
                                X_unlabeled=X_all[rest]).score(X_test, y_test)
    assert with_unlabeled > labelled_only + 0.2, (labelled_only, with_unlabeled)


def test_rows_of_weight_zero_have_no_influence(data, teacher):
    X, y = data
    weight = np.ones(len(y))
    weight[::3] = 0
    X_junk, y_junk = X.copy(), y.copy()
    rng = np.random.default_rng(0)
    X_junk[::3] = rng.normal(size=X_junk[::3].shape) * 5
    y_junk[::3] = rng.permutation(y_junk[::3])
    make = lambda: SampledSoftmaxDistiller(teacher, student(max_epochs=3), n_negatives=8,
                                           top_k=5, alpha=0.3, random_state=0)
    a = make().fit(X, y, sample_weight=weight).predict_proba(X[:50])
    b = make().fit(X_junk, y_junk, sample_weight=weight).predict_proba(X[:50])
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
    # and weights do matter
    c = make().fit(X, y).predict_proba(X[:50])
    assert np.abs(a - c).max() > 1e-3


def test_pickle_and_grid_search(data, teacher):
    X, y = data
    model = SampledSoftmaxDistiller(teacher, student(max_epochs=2), n_negatives=8, top_k=5,
                                    random_state=0).fit(X, y)
    again = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(again.predict_proba(X[:20]), model.predict_proba(X[:20]))
    search = GridSearchCV(model, {"n_negatives": [4, 16]}, cv=2).fit(X[:600], y[:600])
    assert search.best_params_["n_negatives"] in (4, 16)
    assert search.best_estimator_.predict_topk(X[:5], k=2).shape == (5, 2)


def test_student_without_a_linear_head_is_refused(data):
    X, y = data
    with pytest.raises(TypeError, match=r"^SampledSoftmaxDistiller: parameter student="
                                        r".*torch.nn.Linear head"):
        SampledSoftmaxDistiller(LogisticRegression(max_iter=50),
                                LatentBEStudent(max_epochs=1)).fit(X[:200], y[:200])


def test_predict_topk_refuses_a_bad_k(data, teacher):
    X, y = data
    model = SampledSoftmaxDistiller(teacher, student(max_epochs=1), random_state=0).fit(X, y)
    for k in (0, 51, 2.5, True):
        with pytest.raises(ValueError, match=rf"^SampledSoftmaxDistiller: parameter k="
                                             rf"{k!r} is invalid; expected an int in \[1, 50\]"):
            model.predict_topk(X[:3], k=k)
