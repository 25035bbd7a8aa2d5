"""SWAGTeacher: the moments against the SGD iterates, the draws' covariance, seeded draws, the
learning-rate schedules, BatchNorm statistics, GPED and errors."""
import pickle

import numpy as np
import pytest
import torch
from sklearn.datasets import make_classification
from sklearn.frozen import FrozenEstimator
from sklearn.utils._param_validation import InvalidParameterError
from skorch.callbacks import Callback
from torch.nn.utils import parameters_to_vector

from skdistill import GPEDDistiller, LatentBEStudent, MLPStudent, SWAGTeacher
from skdistill.teachers.swag import SWAGSample, refresh_batchnorm


@pytest.fixture(scope="module")
def data():
    X, y = make_classification(n_samples=200, n_features=5, random_state=0)
    return X.astype(np.float32), y


class Record(Callback):
    """The parameters at the end of each epoch and the learning rate of each step."""

    def initialize(self):
        self.thetas, self.lrs = [], []
        return self

    def on_batch_end(self, net, training=False, **kwargs):
        if training:
            self.lrs.append(net.optimizer_.param_groups[0]["lr"])

    def on_epoch_end(self, net, **kwargs):
        self.thetas.append(parameters_to_vector(net.module_.parameters()).detach().double())


def linear_student(**kwargs):
    params = dict(hidden_layer_sizes=(), max_epochs=12, lr=0.1, optimizer="momentum",
                  batch_size=50, random_state=0)
    return MLPStudent(**{**params, **kwargs})


def fitted(data, student=None, **kwargs):
    X, y = data
    params = dict(swa_start=4, max_rank=3, n_samples=10, random_state=0)
    return SWAGTeacher(student or linear_student(), **{**params, **kwargs}).fit(X, y)


def recorded(teacher):
    return dict(teacher.estimator_.net_.callbacks_)["record"]


def test_moments_are_those_of_the_collected_sgd_iterates(data):
    teacher = fitted(data, linear_student(callbacks=[("record", Record())]), swa_lr=0.05)
    thetas = torch.stack(recorded(teacher).thetas)  # one per epoch
    assert len(thetas) == 12 and teacher.n_models_ == 8 and teacher.n_params_ == 12
    collected = thetas[4:]  # epochs 5..12, after swa_start=4
    np.testing.assert_allclose(teacher.mean_, collected.mean(0), rtol=0, atol=1e-12)
    np.testing.assert_allclose(teacher.sq_mean_, collected.square().mean(0), rtol=0, atol=1e-12)
    running = [collected[:i + 1].mean(0) for i in range(len(collected))]
    deviations = torch.stack([collected[i] - running[i] for i in range(len(collected))])[-3:]
    np.testing.assert_allclose(teacher.deviations_, deviations, rtol=0, atol=1e-12)
    # the SWA network predicts with the mean; the student is the last iterate
    np.testing.assert_allclose(parameters_to_vector(teacher.module_.parameters()),
                               teacher.mean_.float(), rtol=0, atol=0)
    assert torch.equal(parameters_to_vector(teacher.estimator_.module_.parameters()).double(),
                       thetas[-1])
    assert teacher.estimator_.callbacks[0][0] == "record"  # the user's callbacks, as given
    assert len(teacher.estimator_.callbacks) == 1


def test_draws_have_the_papers_covariance(data):
    teacher = fitted(data, swa_lr=0.05)
    X, y = data
    thetas = torch.stack([teacher._theta(s) for s in range(4000)])
    # the samples' networks hold these draws
    for s, sample in enumerate(teacher.iter_samples(X, y)):
        np.testing.assert_array_equal(parameters_to_vector(sample.module.parameters()),
                                      thetas[s].float())
    K = len(teacher.deviations_)
    var = (teacher.sq_mean_ - teacher.mean_.square()).clamp_min(0)
    D = teacher.deviations_.T
    expected = 0.5 * torch.diag(var) + D @ D.T / (2 * (K - 1))
    empirical = torch.cov(thetas.T)
    scale = expected.diagonal().max()
    assert (empirical - expected).abs().max() < 0.08 * scale
    assert (thetas.mean(0) - teacher.mean_).abs().max() < 0.1 * scale.sqrt()
    # scale multiplies the covariance
    teacher.set_params(scale=4.0)
    wide = torch.stack([teacher._theta(s) for s in range(50)])
    np.testing.assert_allclose(wide - teacher.mean_, 2 * (thetas[:50] - teacher.mean_),
                               rtol=1e-12, atol=1e-15)


def test_draws_are_seeded_and_independent_of_which_are_asked(data):
    X, _ = data
    teacher = fitted(data)
    P = teacher.sample_proba(X[:7])
    np.testing.assert_array_equal(P, fitted(data).sample_proba(X[:7]))
    np.testing.assert_allclose(teacher.predict_proba(X[:7]), P.mean(0), atol=1e-12)
    teacher.set_params(n_samples=15)
    np.testing.assert_array_equal(teacher.sample_proba(X[:7])[:10], P)
    samples = list(teacher.iter_samples(X, None))  # fitted: not refitted
    for s in range(10):
        np.testing.assert_allclose(samples[s](torch.as_tensor(X[:7])).numpy(), P[s], atol=1e-6)
    assert not np.array_equal(fitted(data, random_state=1).sample_proba(X[:7]), P)
    assert np.ptp(P, axis=0).max() > 1e-3  # the draws differ


def test_learning_rates_follow_the_constant_and_the_cyclical_schedules(data):
    steps = 4  # 200 rows in batches of 50
    teacher = fitted(data, linear_student(callbacks=[("record", Record())]), swa_lr=0.02)
    assert recorded(teacher).lrs == [0.1] * 4 * steps + [0.02] * 8 * steps
    teacher = fitted(data, linear_student(callbacks=[("record", Record())]), swa_lr=0.02,
                     lr_schedule="cyclical", collect_every=2)
    record = recorded(teacher)
    cycle = 2 * steps
    t = [((i - 1) % cycle + 1) / cycle for i in range(1, 8 * steps + 1)]
    np.testing.assert_allclose(record.lrs, [0.1] * 4 * steps
                               + [(1 - ti) * 0.1 + ti * 0.02 for ti in t], rtol=1e-12)
    assert record.lrs[4 * steps + cycle - 1] == pytest.approx(0.02)  # a cycle's last step
    # collected at the end of each cycle (epochs 6, 8, 10, 12), where the rate is swa_lr
    assert teacher.n_models_ == 4
    ends = torch.stack(record.thetas)[[5, 7, 9, 11]]
    np.testing.assert_allclose(teacher.mean_, ends.mean(0), rtol=0, atol=1e-12)


def test_batchnorm_statistics_are_recomputed_on_the_training_rows():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4, momentum=0.3))
    net.eval()
    X = torch.randn(90, 3) * 3 + 1
    refresh_batchnorm(net, [X[:30], X[30:60], X[60:]])
    bn = net[1]
    with torch.no_grad():
        h = net[0](X)
        batch_vars = torch.stack([h[i:i + 30].var(0) for i in (0, 30, 60)])
    np.testing.assert_allclose(bn.running_mean, h.mean(0), atol=1e-5)
    np.testing.assert_allclose(bn.running_var, batch_vars.mean(0), rtol=1e-5)
    assert bn.momentum == 0.3 and not net.training and not bn.training
    assert int(bn.num_batches_tracked) == 3


class BatchNormStudent(MLPStudent):
    """An MLP student whose hidden layer is batch-normalised."""

    def build_module(self, n_outputs):
        return torch.nn.Sequential(torch.nn.Linear(self.n_features_in_, 8),
                                   torch.nn.BatchNorm1d(8), torch.nn.ReLU(),
                                   torch.nn.Linear(8, n_outputs))


def test_each_draw_has_the_batchnorm_statistics_of_its_own_parameters(data):
    X, y = data
    student = BatchNormStudent(max_epochs=6, lr=0.05, optimizer="momentum", batch_size=50,
                               random_state=0)
    teacher = SWAGTeacher(student, max_rank=2, n_samples=3, random_state=0).fit(X, y)
    rows = torch.as_tensor(X)
    means = []
    for sample in [SWAGSample(teacher.module_)] + list(teacher.iter_samples(X, y)):
        linear, bn = sample.module[0], sample.module[1]
        with torch.no_grad():
            expected = linear(rows).mean(0)  # 4 batches of 50: their means average to it
        np.testing.assert_allclose(bn.running_mean, expected, atol=1e-5)
        assert not sample.module.training
        means.append(bn.running_mean)
    assert not torch.equal(means[1], means[2])
    P = teacher.sample_proba(X[:5])
    for s, sample in enumerate(teacher.iter_samples(X, y)):
        np.testing.assert_allclose(sample(torch.as_tensor(X[:5])).numpy(), P[s], atol=1e-6)


def test_gped_distils_it_and_pickling_keeps_predictions(data):
    X, y = data
    teacher = SWAGTeacher(MLPStudent(hidden_layer_sizes=(16,), max_epochs=20, lr=0.05,
                                     optimizer="momentum", batch_size=50),
                          max_rank=5, n_samples=10)
    model = GPEDDistiller(teacher, MLPStudent(hidden_layer_sizes=(16,), lr=1e-2, max_epochs=15,
                                              batch_size=20),
                          target=["predictive", "entropy"], random_state=0).fit(X, y)
    assert isinstance(model.teacher_, SWAGTeacher) and model.teacher_.n_models_ == 10
    assert model.n_student_steps_ == 150 and model.score(X, y) > 0.85
    reference = model.teacher_.predict_proba(X)
    assert np.abs(model.predict_proba(X) - reference).mean() < 0.1
    clone = pickle.loads(pickle.dumps(model.teacher_))
    np.testing.assert_array_equal(clone.predict_proba(X), reference)
    u = model.predict_uncertainty(X[:5])
    assert np.array_equal(u.total, u.aleatoric + u.epistemic)


@pytest.mark.parametrize("params, error, message", [
    (dict(max_rank=1), InvalidParameterError, "'max_rank' parameter of SWAGTeacher.*Got 1"),
    (dict(swa_lr=0.0), InvalidParameterError, "'swa_lr' parameter of SWAGTeacher.*Got 0.0"),
    (dict(swa_lr=float("inf")), InvalidParameterError, "'swa_lr' parameter.*Got inf"),
    (dict(swa_start=12), ValueError, "SWAGTeacher: parameter swa_start=12 .*at most 10"),
    (dict(swa_start=11, collect_every=1), ValueError, "swa_start=11 .*max_epochs=12"),
    (dict(estimator=linear_student(optimizer="adam")), ValueError,
     "(?s)SWAGTeacher: parameter estimator=MLPStudent.*optimizer='sgd'"),
    (dict(estimator=LatentBEStudent()), TypeError, "SWAGTeacher: parameter estimator=.*LatentBE"),
    (dict(estimator=FrozenEstimator(linear_student())), TypeError,
     "(?s)SWAGTeacher: parameter estimator=FrozenEstimator.*an unfitted MLPStudent.*fitted "
     "already"),
    (dict(lr_schedule="cosine"), InvalidParameterError, "'lr_schedule' parameter"),
    (dict(lr_schedule="cyclical"), ValueError,
     "SWAGTeacher: parameter swa_lr=None is invalid; expected a float below the estimator's lr"),
])
def test_bad_parameters_are_named(data, params, error, message):
    X, y = data
    teacher = SWAGTeacher(**{"estimator": linear_student(), **params})
    with pytest.raises(error, match=message):
        teacher.fit(X, y)
    assert not hasattr(teacher, "mean_")


def test_the_batchnorm_refresh_weighs_rows_and_draws_no_random_numbers():
    from skdistill.teachers.swag import refresh_batchnorm

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Dropout(0.5),
                              torch.nn.BatchNorm1d(4))
    X = torch.randn(100, 3)
    state = torch.get_rng_state()
    refresh_batchnorm(net, [X[:90], X[90:]])  # uneven batches
    assert torch.equal(torch.get_rng_state(), state)  # dropout stayed in eval mode
    with torch.no_grad():
        expected = net[0](X).mean(0)
    np.testing.assert_allclose(net[2].running_mean, expected, atol=1e-6)
    first = net[2].running_mean.clone()
    refresh_batchnorm(net, [X[:90], X[90:]])
    assert torch.equal(net[2].running_mean, first)
