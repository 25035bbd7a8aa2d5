"""VITeacher: the ELBO, the variational posterior against the MAP, samples, GPED, training
on the engine (callbacks, validation, schedules, weights, Ctrl-C) and errors."""
import os
import pickle
import signal
import warnings

import numpy as np
import pytest
import torch
from sklearn.datasets import make_classification
from sklearn.exceptions import NotFittedError
from sklearn.utils._param_validation import InvalidParameterError
from skorch.callbacks import Callback, EarlyStopping, LRScheduler

from posterior_checks import assert_uncertainty_decomposes
from skdistill import GPEDDistiller, MLPStudent, VITeacher
from skdistill.nets import BayesLinear


@pytest.fixture(scope="module")
def data():
    X, y = make_classification(n_samples=200, n_features=5, random_state=0)
    return X.astype(np.float32), y


def small_teacher(**kwargs):
    params = dict(hidden_layer_sizes=(16,), max_epochs=40, lr=1e-2, batch_size=50,
                  n_samples=30, random_state=0)
    return VITeacher(**{**params, **kwargs})


def softmax_regression_map(X, y, precision):
    """MAP of a 2-class softmax regression under N(0, 1/precision), by L-BFGS in float64."""
    Xt, yt = torch.as_tensor(X, dtype=torch.float64), torch.as_tensor(y)
    W = torch.zeros(2, X.shape[1], dtype=torch.float64, requires_grad=True)
    b = torch.zeros(2, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([W, b], max_iter=200, tolerance_grad=1e-10)

    def closure():
        opt.zero_grad()
        loss = (torch.nn.functional.cross_entropy(Xt @ W.T + b, yt, reduction="sum")
                + 0.5 * precision * (W.square().sum() + b.square().sum()))
        loss.backward()
        return loss

    opt.step(closure)
    return torch.cat([W.detach().reshape(-1), b.detach()]).numpy()


def test_elbo_rises_over_training(data):
    X, y = data
    teacher = small_teacher(max_epochs=60).fit(X, y)
    elbo = np.asarray(teacher.elbo_history_)
    assert len(elbo) == 60 and teacher.n_iter_ == 60 * 4
    assert elbo[-5:].mean() > elbo[:5].mean() + 100
    assert teacher.score(X, y) > 0.9


def test_posterior_concentrates_on_the_map_as_the_data_grow():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(2000, 2))
    y = (X @ [1.5, -1.0] + rng.normal(size=2000) > 0).astype(int)
    distance, std = {}, {}
    for n in (50, 2000):
        teacher = VITeacher(hidden_layer_sizes=(), max_epochs=1500, batch_size=n, lr=0.02,
                            random_state=0).fit(X[:n], y[:n])
        layer = teacher.module_.layers[0]
        mean = torch.cat([layer.weight_mu.reshape(-1), layer.bias_mu]).detach().numpy()
        distance[n] = np.linalg.norm(mean - softmax_regression_map(X[:n], y[:n], 1.0))
        std[n] = torch.cat([s.reshape(-1) for s in layer.stds()]).detach().numpy()
    assert distance[2000] < distance[50] / 2
    assert std[2000].max() < std[50].min() / 2
    # with 50 rows the posterior is wide, but narrower than the prior N(0, 1)
    assert 0.2 < std[50].min() and std[50].max() < 1


def test_kl_is_the_closed_form_and_an_annealed_fit_still_learns(data):
    layer = BayesLinear(3, 2, init_std=0.5)
    with torch.no_grad():
        layer.weight_mu.fill_(0.3)
    mu = torch.cat([layer.weight_mu.reshape(-1), layer.bias_mu]).detach()
    var = torch.full_like(mu, 0.25)
    lam = 2.0
    expected = 0.5 * (lam * (var + mu**2) - 1 - torch.log(lam * var)).sum()
    assert torch.isclose(layer.kl(lam), expected)
    # KL(N(0, 1/lam) || N(0, 1/lam)) = 0
    prior = BayesLinear(3, 2, init_std=float(np.sqrt(1 / lam)))
    with torch.no_grad():
        prior.weight_mu.zero_()
        prior.bias_mu.zero_()
    assert abs(prior.kl(lam).item()) < 1e-5
    X, y = data
    annealed = small_teacher(max_epochs=10, kl_annealing=5).fit(X, y)
    plain = small_teacher(max_epochs=10).fit(X, y)
    assert annealed.score(X, y) >= plain.score(X, y) - 0.02


def test_samples_are_seeded_and_iter_samples_gives_those_of_predict_proba(data):
    X, y = data
    teacher = small_teacher(n_samples=5).fit(X, y)
    P = teacher.sample_proba(X[:7])
    assert P.shape == (5, 7, 2) and P.std(axis=0).max() > 1e-3
    np.testing.assert_array_equal(P, teacher.sample_proba(X[:7]))
    np.testing.assert_allclose(P[:, 3:4], teacher.sample_proba(X[3:4]), rtol=1e-5)
    np.testing.assert_allclose(teacher.predict_proba(X[:7]), P.mean(0), rtol=1e-12)
    again = small_teacher(n_samples=5).fit(X, y)
    np.testing.assert_array_equal(again.sample_proba(X[:7]), P)
    samples = list(teacher.iter_samples(X, y))  # fitted: not refitted
    assert len(samples) == 5 and teacher.n_iter_ == 40 * 4
    for s, sample in enumerate(samples):
        np.testing.assert_allclose(sample(torch.as_tensor(X[:7])).numpy(), P[s], atol=1e-6)


def test_uncertainty_decomposes_into_expected_entropy_and_mutual_information(data):
    X, y = data
    teacher = small_teacher().fit(X, y)
    assert_uncertainty_decomposes(teacher, X[:20])


def test_gped_distils_it_and_pickling_keeps_predictions(data):
    X, y = data
    model = GPEDDistiller(small_teacher(random_state=None),
                          MLPStudent(hidden_layer_sizes=(16,), lr=1e-2, max_epochs=15,
                                     batch_size=20),
                          target=["predictive", "entropy"], random_state=0).fit(X, y)
    assert model.n_student_steps_ == 150
    assert isinstance(model.teacher_, VITeacher) and model.score(X, y) > 0.85
    reference = model.teacher_.predict_proba(X)
    assert np.abs(model.predict_proba(X) - reference).mean() < 0.1
    clone = pickle.loads(pickle.dumps(model.teacher_))
    np.testing.assert_array_equal(clone.predict_proba(X), reference)
    u = model.predict_uncertainty(X[:5])
    assert np.array_equal(u.total, u.aleatoric + u.epistemic)


def test_zero_weight_rows_have_no_influence(data):
    X, y = data
    flipped = np.r_[y[:100], 1 - y[100:]]
    weight = np.r_[np.ones(100), np.zeros(100)]
    teacher = small_teacher(batch_size=200, max_epochs=80).fit(X, flipped, weight)
    assert teacher.score(X[:100], y[:100]) > 0.9
    # all-ones weights are exactly no weights
    np.testing.assert_array_equal(small_teacher(max_epochs=3).fit(X, y, np.ones(200))
                                  .predict_proba(X[:5]),
                                  small_teacher(max_epochs=3).fit(X, y).predict_proba(X[:5]))


def test_diverging_training_names_the_learning_rate(data):
    X, y = data
    with pytest.raises(ValueError, match=r"VITeacher: training diverged: .*lr=1e\+30"):
        small_teacher(lr=1e30, max_epochs=5).fit(X * 1e6, y)
    assert not hasattr(VITeacher(), "module_")


def test_bad_parameters_get_clear_errors(data):
    X, y = data
    for name, value in [("prior_precision", 0.0), ("lr", -1.0), ("kl_weight", -1.0),
                        ("kl_annealing", 1.5), ("n_samples", 0), ("batch_size", 0),
                        ("validation_fraction", 1.5), ("callbacks", "EarlyStopping")]:
        with pytest.raises(InvalidParameterError, match=f"'{name}' parameter of VITeacher"):
            small_teacher(**{name: value}).fit(X, y)
    with pytest.raises(ValueError, match=r"VITeacher: parameter hidden_layer_sizes=\(16, -2\)"):
        small_teacher(hidden_layer_sizes=(16, -2)).fit(X, y)
    with pytest.raises(ValueError, match="VITeacher: parameter device='tpu'"):
        small_teacher(device="tpu").fit(X, y)
    with pytest.raises(ValueError, match="VITeacher: parameter target='mode'"):
        small_teacher(max_epochs=1).fit(X, y).predict_expectation(X, "mode")
    with pytest.raises(ValueError, match="VITeacher: y has only one class"):
        small_teacher().fit(X, np.zeros(len(X)))
    with pytest.raises(TypeError, match=r"VITeacher: parameter callbacks=\[1\]"):
        small_teacher(callbacks=[1]).fit(X, y)
    with pytest.raises(ValueError, match="VITeacher: parameter validation_fraction=0.999"):
        small_teacher(validation_fraction=0.999).fit(X, y)
    weight = np.r_[1.0, np.zeros(len(X) - 1)]  # the one weighted row among 198 validation rows
    with pytest.raises(ValueError, match="VITeacher: parameter sample_weight=.*training rows"):
        small_teacher(validation_fraction=0.99).fit(X, y, weight)


# -- training on the engine ---------------------------------------------------------------------

def test_callbacks_validation_split_and_lr_schedule_are_honoured(data):
    X, y = data
    callbacks = [LRScheduler(policy="StepLR", step_size=1, gamma=0.5),
                 EarlyStopping(patience=3)]
    teacher = small_teacher(max_epochs=200, validation_fraction=0.25,
                            callbacks=callbacks).fit(X, y)
    epochs = len(teacher.history_)
    assert epochs < 200 and len(teacher.elbo_history_) == epochs
    assert teacher.n_iter_ == epochs * 3  # 150 training rows in batches of 50
    assert all(np.isfinite(row["valid_loss"]) for row in teacher.history_)
    # StepLR halved the learning rate after every epoch (skorch steps before each epoch)
    np.testing.assert_allclose(teacher.history_[:, "event_lr"],
                               1e-2 * 0.5 ** np.arange(epochs))
    assert callbacks[1].dynamic_threshold_ is None  # the parameter itself is untouched
    assert teacher.score(X, y) > 0.85


def test_early_stopping_on_the_elbo_and_the_printed_table(data, capsys):
    X, y = data
    stop = EarlyStopping(monitor="elbo", lower_is_better=False, patience=2, threshold=0.5,
                         threshold_mode="abs")
    teacher = small_teacher(max_epochs=200, callbacks=[stop], verbose=1).fit(X, y)
    assert len(teacher.history_) < 200
    header = capsys.readouterr().out.splitlines()[0].split()
    assert {"epoch", "elbo", "kl_weight", "train_loss"} <= set(header)


def test_kl_annealing_reaches_the_full_kl_and_n_is_the_training_rows(data):
    X, y = data
    # 160 training rows in batches of 40: 4 steps an epoch, annealed over 3 epochs (12 steps)
    teacher = small_teacher(max_epochs=5, batch_size=40, kl_annealing=3, kl_weight=0.5,
                            validation_fraction=0.2).fit(X, y)
    history = teacher.history_
    np.testing.assert_allclose(history[:, "kl_weight"], 0.5 * np.array([4 / 12, 8 / 12, 1, 1, 1]))
    # train_loss is the epoch's mean of mean NLL + weight * KL / N; elbo the mean of
    # -N * mean NLL - kl_weight * KL: the same with the full KL weight, N = 160 rows
    elbo = np.asarray(teacher.elbo_history_)
    loss = np.asarray(history[:, "train_loss"])
    np.testing.assert_allclose(loss[3:], -elbo[3:] / 160, rtol=1e-5)
    assert np.all(loss[:3] < -elbo[:3] / 160 - 0.1)  # the KL not yet in full


def test_weight_two_is_a_duplicated_row(data):
    X, y = data
    rows = np.flatnonzero(y == 1)[::2]
    weight = np.ones(len(X))
    weight[rows] = 2.0
    params = dict(hidden_layer_sizes=(8,), max_epochs=30, batch_size=400, lr=2e-2)
    weighted = small_teacher(**params).fit(X, y, weight).predict_proba(X)
    duplicated = small_teacher(**params).fit(np.r_[X, X[rows]], np.r_[y, y[rows]])
    unweighted = small_teacher(**params).fit(X, y).predict_proba(X)
    # one batch of all rows: the same weighted mean and N, only the training noise differs
    difference = np.abs(weighted - duplicated.predict_proba(X)).mean()
    assert difference < np.abs(weighted - unweighted).mean() / 4


class CtrlCAt(Callback):
    """Press Ctrl-C (a real SIGINT) at the end of the first batch of epoch ``epoch``."""

    def __init__(self, epoch):
        self.epoch = epoch

    def on_batch_end(self, net, training=False, **kwargs):
        if training and len(net.history) == self.epoch and len(net.history[-1]["batches"]) == 1:
            os.kill(os.getpid(), signal.SIGINT)


def test_ctrl_c_in_a_callback_keeps_the_complete_epochs(data):
    X, y = data
    teacher = small_teacher(callbacks=[CtrlCAt(epoch=4)])
    with pytest.warns(RuntimeWarning, match="VITeacher: fit interrupted; keeping the "
                                            "posterior after 3 of 40 epochs"):
        teacher.fit(X, y)
    assert len(teacher.history_) == len(teacher.elbo_history_) == 3
    assert teacher.n_iter_ == 3 * 4 + 1
    assert teacher.predict_proba(X).shape == (len(X), 2)
    with pytest.warns(RuntimeWarning, match="VITeacher: fit interrupted before anything "
                                            "usable"), pytest.raises(KeyboardInterrupt):
        teacher.set_params(callbacks=[CtrlCAt(epoch=1)]).fit(X, y)
    with pytest.raises(NotFittedError):
        teacher.predict_proba(X)
    # early stopping is the end of training, not an interrupt
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        stop = EarlyStopping(monitor="train_loss", patience=1, threshold=10.0)
        assert len(teacher.set_params(callbacks=[stop]).fit(X, y).history_) < 40
