"""VITeacher: the ELBO, the variational posterior against the MAP, samples, GPED and errors."""
import pickle

import numpy as np
import pytest
import torch
from sklearn.datasets import make_classification
from sklearn.utils._param_validation import InvalidParameterError

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
                        ("kl_annealing", 1.5), ("n_samples", 0), ("batch_size", 0)]:
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
