"""DeepEnsembleTeacher, ensemble-distillation losses, perturbations and EnsembleDistiller."""
import warnings

import numpy as np
import pytest
import torch
from scipy.special import digamma, gammaln
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.datasets import make_classification
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.utils._param_validation import InvalidParameterError

from skdistill import (DeepEnsembleTeacher, EnsembleDistiller, LatentBEStudent, MLPStudent)
from skdistill.engine.divergence import TrainingFailureWarning
from skdistill.losses import (ae_kd_weights, dirichlet_kl, dirichlet_uncertainty, end2_loss,
                              project_capped_simplex, proxy_dirichlet_target, proxy_end2_loss)
from skdistill.metrics import entropy, negative_log_likelihood
from skdistill.nets import MLP, BatchEnsemble
from skdistill.perturbations import (confods, default_size, gaussian, ods, tdiv_sdiv,
                                     tdiv_sdiv_objective)

FAST = dict(hidden_layer_sizes=(16,), max_epochs=30, lr=1e-2)


@pytest.fixture(scope="module")
def data():
    X, y = make_classification(n_samples=240, n_features=6, n_informative=4, n_classes=3,
                               n_clusters_per_class=1, random_state=0)
    return X.astype(np.float32), y


@pytest.fixture(scope="module")
def teacher(data):
    X, y = data
    return DeepEnsembleTeacher(MLPStudent(**FAST), n_members=3, random_state=0).fit(X, y)


# -- DeepEnsembleTeacher ----------------------------------------------------------------------
def test_deep_ensemble_mean_of_distinct_members_with_differentiable_modules(data, teacher):
    X, y = data
    samples = teacher.sample_proba(X)
    assert samples.shape == (3, len(X), 3)
    np.testing.assert_allclose(teacher.predict_proba(X), samples.mean(0))
    assert np.abs(samples[0] - samples[1]).max() > 1e-3  # different seeds, different members
    assert len({m.random_state for m in teacher.members_}) == 3
    x = torch.as_tensor(X[:4]).requires_grad_(True)
    teacher.modules_[0](x).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    again = DeepEnsembleTeacher(MLPStudent(**FAST), n_members=3, random_state=0).fit(X, y)
    np.testing.assert_allclose(again.predict_proba(X), teacher.predict_proba(X), atol=1e-6)
    assert teacher.score(X, y) > 0.8


def test_deep_ensemble_rejects_zero_members(data):
    with pytest.raises(InvalidParameterError, match="n_members.*DeepEnsembleTeacher"):
        DeepEnsembleTeacher(n_members=0).fit(*data)


# -- losses -----------------------------------------------------------------------------------
def test_ae_kd_weights_lie_on_the_simplex_under_the_bound():
    gen = torch.Generator().manual_seed(0)
    for cap in (1.0, 0.5, 0.3):
        grads = torch.randn(4, 20, generator=gen) + 2.0
        w = ae_kd_weights(grads, cap=cap)
        assert w.sum().item() == pytest.approx(1.0, abs=1e-5)
        assert (w >= -1e-7).all() and (w <= cap + 1e-6).all()
    # parallel gradients: all weight on the smaller one, up to the bound
    grads = torch.tensor([[1.0, 0.0], [3.0, 0.0], [2.0, 0.0]])
    np.testing.assert_allclose(ae_kd_weights(grads), [1, 0, 0], atol=1e-4)
    np.testing.assert_allclose(ae_kd_weights(grads, cap=0.6), [0.6, 0, 0.4], atol=1e-4)


def test_ae_kd_weights_minimise_the_combined_gradient_norm():
    gen = torch.Generator().manual_seed(1)
    grads = torch.randn(3, 5, generator=gen)
    w = ae_kd_weights(grads, n_iter=500).double()
    best = (w @ grads.double()).norm()
    for _ in range(200):
        other = torch.distributions.Dirichlet(torch.ones(3)).sample().double()
        assert best <= (other @ grads.double()).norm() + 1e-6


def test_capped_simplex_needs_a_feasible_bound():
    with pytest.raises(ValueError, match="cap=0.2"):
        project_capped_simplex(torch.zeros(4), cap=0.2)


def test_dirichlet_kl_matches_the_closed_form_by_hand():
    a, b = np.array([2.0, 3.5, 0.7]), np.array([1.2, 1.0, 4.0])
    by_hand = (gammaln(a.sum()) - gammaln(a).sum() - gammaln(b.sum()) + gammaln(b).sum()
               + ((a - b) * (digamma(a) - digamma(a.sum()))).sum())
    got = dirichlet_kl(torch.tensor(a), torch.tensor(b)).item()
    assert got == pytest.approx(by_hand, rel=1e-10)
    assert dirichlet_kl(torch.tensor(a), torch.tensor(a)).item() == pytest.approx(0, abs=1e-12)


def test_proxy_end2_loss_is_the_kl_to_the_proxy_dirichlet_by_hand():
    p = torch.tensor([[[0.7, 0.2, 0.1]], [[0.5, 0.3, 0.2]]], dtype=torch.float64)  # (2, 1, 3)
    mean = p.mean(0)[0].numpy()
    mean_log = np.log(p.numpy()).mean(0)[0]
    precision = 2 / (2 * (mean * (np.log(mean) - mean_log)).sum())
    beta = mean * precision + 1
    assert precision < 100  # below the default cap
    np.testing.assert_allclose(proxy_dirichlet_target(p)[0].numpy(), beta, rtol=1e-10)
    capped = proxy_dirichlet_target(p, max_precision=5.0)[0].numpy()
    np.testing.assert_allclose(capped, mean * 5.0 + 1, rtol=1e-10)
    z = torch.tensor([[0.3, -0.2, 1.0]], dtype=torch.float64)
    alpha = np.exp(z.numpy()[0])
    by_hand = (gammaln(alpha.sum()) - gammaln(alpha).sum() - gammaln(beta.sum())
               + gammaln(beta).sum()
               + ((alpha - beta) * (digamma(alpha) - digamma(alpha.sum()))).sum())
    assert proxy_end2_loss(z, p).item() == pytest.approx(by_hand, rel=1e-8)


def _members(n_members, n_rows, n_classes, seed):
    return np.random.default_rng(seed).dirichlet(np.ones(n_classes), (n_members, n_rows))


@pytest.mark.parametrize("temperature", [1.0, 2.5])
def test_end2_loss_is_the_dirichlet_negative_log_likelihood_of_scipy(temperature):
    from scipy.stats import dirichlet

    rng = np.random.default_rng(0)
    z = rng.normal(size=(5, 4)) * 2
    p = _members(3, 5, 4, 1)
    eps = 1e-3
    want = []
    for i in range(5):
        alpha = np.exp(z[i] / temperature)
        lls = []
        for m in range(3):
            soft = np.exp(np.log(p[m, i]) / temperature)
            soft = (1 - eps) * soft / soft.sum() + eps / 4
            lls.append(dirichlet.logpdf(soft, alpha))
        want.append(-np.mean(lls))
    z_t = torch.tensor(z, requires_grad=True)
    got = end2_loss(z_t, torch.tensor(p), temperature, reduction="none")
    np.testing.assert_allclose(got.detach().numpy(), want, rtol=1e-9)
    assert end2_loss(z_t, torch.tensor(p), temperature).item() == pytest.approx(np.mean(want))
    got.sum().backward()
    assert torch.isfinite(z_t.grad).all() and z_t.grad.abs().sum() > 0
    # extreme logits and one-hot members: finite loss and gradient (clamp, smoothing)
    z_big = torch.tensor([[200.0, -200.0, 0.0]], requires_grad=True)
    one_hot = torch.tensor([[[1.0, 0.0, 0.0]], [[0.0, 1.0, 0.0]]])
    loss = end2_loss(z_big, one_hot, temperature)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(z_big.grad).all()


def test_dirichlet_uncertainty_matches_a_monte_carlo_estimate():
    rng = np.random.default_rng(0)
    z = np.array([[0.0, 0.0, 0.0], [2.0, -1.0, 0.5], [-1.5, -1.0, -2.0], [4.0, 4.0, 1.0]])
    total, aleatoric, epistemic = (v.numpy() for v in dirichlet_uncertainty(torch.tensor(z)))
    for i, alpha in enumerate(np.exp(z)):
        draws = rng.dirichlet(alpha, 100_000)
        h = -(draws * np.log(np.clip(draws, 1e-300, None))).sum(1)
        assert abs(h.mean() - aleatoric[i]) < 4 * h.std() / np.sqrt(len(h))
        mean = alpha / alpha.sum()
        assert total[i] == pytest.approx(-(mean * np.log(mean)).sum(), rel=1e-12)
    np.testing.assert_array_equal(total, aleatoric + epistemic)
    assert (epistemic >= 0).all() and (epistemic[1:3] > 0.05).all()
    # the sharper the Dirichlet around the same mean, the smaller the epistemic part
    sharp = dirichlet_uncertainty(torch.tensor(z[1:2] + 5.0))[2].item()
    assert sharp < 0.05 * epistemic[1]


class _DisagreeingTeacher(ClassifierMixin, BaseEstimator):
    """Three members that agree (on the label, confidently) where ``x0 < 0`` and each
    predict a different class where ``x0 > 0``."""

    def fit(self, X, y):
        self.classes_ = np.unique(y)
        return self

    def sample_proba(self, X):
        X = np.asarray(X)
        out = np.full((3, len(X), 3), 0.05)
        agree = X[:, 0] < 0
        label = (X[:, 1] > 0).astype(int)
        for m in range(3):
            out[m, agree, 0] = np.where(label[agree] == 0, 0.9, 0.05)
            out[m, agree, 1] = np.where(label[agree] == 1, 0.9, 0.05)
            out[m, ~agree, m] = 0.9
        return out

    def predict_proba(self, X):
        return self.sample_proba(X).mean(0)


@pytest.fixture(scope="module")
def disagreement():
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, (300, 2)).astype(np.float32)
    y = np.where(X[:, 0] < 0, (X[:, 1] > 0).astype(int), 2)
    return X, y


def test_end2_student_is_epistemically_uncertain_where_the_members_disagree(disagreement):
    X, y = disagreement
    model = EnsembleDistiller(_DisagreeingTeacher(), MLPStudent(**{**FAST, "max_epochs": 60}),
                              method="end2", random_state=0).fit(X, y)
    u = model.predict_uncertainty(X)
    agree = X[:, 0] < -0.3
    disagree = X[:, 0] > 0.3
    assert u.epistemic[disagree].mean() > 3 * u.epistemic[agree].mean()
    np.testing.assert_array_equal(u.total, u.aleatoric + u.epistemic)
    assert (u.epistemic >= 0).all() and (u.aleatoric >= 0).all()
    # predict_proba is the Dirichlet mean alpha / alpha0 = softmax(z)
    alpha = np.exp(model.student_._logits(X).double().numpy())
    np.testing.assert_allclose(model.predict_proba(X), alpha / alpha.sum(1, keepdims=True),
                               rtol=1e-5)
    assert u.total == pytest.approx(entropy(model.predict_proba(X)), rel=1e-5, abs=1e-7)


def test_end2_anneals_the_temperature_to_one_over_the_first_half(disagreement, monkeypatch):
    from skdistill.distillers import ensemble
    from skdistill.losses import EnsembleDistillationLoss

    seen = []

    class Recording(EnsembleDistillationLoss):
        def forward(self, logits, target):
            seen.append((torch.is_grad_enabled(), target["temperature"]))
            return super().forward(logits, target)

    monkeypatch.setattr(ensemble, "EnsembleDistillationLoss", Recording)
    X, y = disagreement
    student = MLPStudent(**{**FAST, "max_epochs": 5, "batch_size": 100})
    EnsembleDistiller(_DisagreeingTeacher(), student, method="end2", temperature=5.0,
                      random_state=0).fit(X, y)
    train = [t for grad, t in seen if grad]
    valid = {t for grad, t in seen if not grad}
    n_batches = len(train) // 5
    assert len(train) == 5 * n_batches and n_batches >= 2
    # 5 epochs: annealed over the first 2 (5 -> 3), then 1
    assert train == [t for t in (5.0, 3.0, 1.0, 1.0, 1.0) for _ in range(n_batches)]
    assert valid <= {1.0}


def test_end2_and_predict_uncertainty_refuse_what_they_cannot_do(data, teacher):
    from sklearn.exceptions import NotFittedError
    from sklearn.frozen import FrozenEstimator

    X, y = data
    one = DeepEnsembleTeacher(LogisticRegression(), n_members=1)
    with pytest.raises(ValueError, match="EnsembleDistiller: parameter method='end2'.*at "
                                         "least 2 members"):
        EnsembleDistiller(one, MLPStudent(max_epochs=1), method="end2").fit(X, y)
    with pytest.raises(NotFittedError):
        EnsembleDistiller(method="end2").predict_uncertainty(X)
    kd = EnsembleDistiller(FrozenEstimator(teacher), MLPStudent(**{**FAST, "max_epochs": 2}),
                           method="kd").fit(X, y)
    with pytest.raises(ValueError, match="parameter method='kd'.*'end2' or 'proxy-end2'"):
        kd.predict_uncertainty(X)


def test_proxy_end2_student_has_a_dirichlet_uncertainty_too(data, teacher):
    from sklearn.frozen import FrozenEstimator

    X, y = data
    student = LatentBEStudent(n_members=2, **{**FAST, "max_epochs": 5})
    model = EnsembleDistiller(FrozenEstimator(teacher), student, method="proxy-end2",
                              random_state=0).fit(X, y)
    u = model.predict_uncertainty(X[:20])
    np.testing.assert_array_equal(u.total, u.aleatoric + u.epistemic)
    assert (u.epistemic > 0).all()
    assert u.total == pytest.approx(entropy(model.predict_proba(X[:20])), rel=1e-5)


# -- perturbations ----------------------------------------------------------------------------
def _smooth_nets(n, seed):
    torch.manual_seed(seed)
    return [MLP(5, 4, (12,), activation="tanh").double().eval() for _ in range(n)]


def _kl(logits_i, logits_j):
    log_p, log_q = torch.log_softmax(logits_i, -1), torch.log_softmax(logits_j, -1)
    return (log_p.exp() * (log_p - log_q)).sum(-1)


def test_tdiv_sdiv_step_raises_tdiv_minus_sdiv_to_first_order():
    teachers = _smooth_nets(3, 0)
    student = BatchEnsemble(MLP(5, 4, (12,), activation="tanh").double(), n_members=3)
    with torch.no_grad():
        for layer in student.be_layers():
            layer.r.uniform_(0.5, 1.5)
            layer.s.uniform_(0.5, 1.5)
    x = torch.randn(8, 5, dtype=torch.float64)
    i, j = pair = (0, 2)
    with torch.no_grad():
        t_j, s_j = teachers[j](x), student(x)[j]

    def objective(xv):  # TDiv - SDiv with the stop-gradient side held at its value at x
        return _kl(teachers[i](xv), t_j) - _kl(student(xv)[i], s_j)

    with torch.no_grad():
        torch.testing.assert_close(objective(x), tdiv_sdiv_objective(x, teachers, student, pair))
    xg = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(objective(xg).sum(), xg)
    size = 1e-5
    with torch.no_grad():
        step = tdiv_sdiv(x, teachers, student, size, pair=pair)
        gain = objective(step) - objective(x)
    assert (gain > 0).all()
    # first order: a step of norm `size` along the gradient gains size * ||grad|| per row
    np.testing.assert_allclose(gain.numpy(), size * grad.norm(dim=1).numpy(), rtol=1e-3)
    # a random step of the same size gains no more
    noise = gaussian(x, size)
    with torch.no_grad():
        assert (objective(noise) - objective(x) <= gain + 1e-15).all()


def test_perturbations_have_the_requested_norm_and_respect_the_clip():
    teachers = [n.float() for n in _smooth_nets(2, 1)]
    x = torch.rand(6, 5) * 0.8 + 0.1
    for step in (gaussian(x, 0.05), ods(x, teachers, 0.05), confods(x, teachers, 0.05),
                 tdiv_sdiv(x, teachers, None, 0.05)):
        np.testing.assert_allclose((step - x).norm(dim=1).numpy(), 0.05, rtol=1e-4)
    clipped = gaussian(x, 5.0, clip=(0.0, 1.0))
    assert clipped.min() >= 0 and clipped.max() <= 1
    assert default_size(784) == pytest.approx(28 / 255)
    assert default_size(784, 2.0) == pytest.approx(56 / 255)


# -- EnsembleDistiller ------------------------------------------------------------------------
def test_one_to_one_student_member_matches_its_own_teacher_member(data, teacher):
    X, y = data
    from sklearn.frozen import FrozenEstimator

    student = LatentBEStudent(n_members=3, hidden_layer_sizes=(32,), max_epochs=60, lr=1e-2,
                              prior_strength=0.0, random_state=0)
    model = EnsembleDistiller(FrozenEstimator(teacher), student, method="one-to-one",
                              temperature=1.0).fit(X, y)
    t, s = teacher.sample_proba(X), model.student_.ensemble_proba(X)
    kl = np.array([[np.mean(np.sum(t[i] * (np.log(t[i]) - np.log(s[j])), axis=1))
                    for j in range(3)] for i in range(3)])
    assert (np.argmin(kl, axis=1) == np.arange(3)).all()


@pytest.mark.parametrize("method, perturbation", [
    ("kd", None), ("one-to-one", "tdiv-sdiv"), ("ae-kd", "confods"), ("proxy-end2", "ods"),
    ("kd", "gaussian"), ("end2", None),
])
def test_distilled_student_beats_the_prior_baseline(data, teacher, method, perturbation):
    from sklearn.frozen import FrozenEstimator

    X, y = data
    student = LatentBEStudent(n_members=3, **FAST)
    with warnings.catch_warnings():  # EnD2's loss, a negative log-density, falls below 0
        warnings.simplefilter("error", TrainingFailureWarning)
        model = EnsembleDistiller(FrozenEstimator(teacher), student, method=method,
                                  perturbation=perturbation, random_state=0).fit(X, y)
    prior = np.tile(np.bincount(y) / len(y), (len(y), 1))
    assert model.score(X, y) > 0.8
    assert negative_log_likelihood(y, model.predict_proba(X)) < \
        0.6 * negative_log_likelihood(y, prior)
    assert len(model.student_.history_) == FAST["max_epochs"]
    if perturbation is not None:
        assert model.perturbation_size_ == pytest.approx(
            np.sqrt(6) / 255 * float(X.max() - X.min()), rel=1e-5)


def test_plain_mlp_student_works_with_kd_and_a_teacher_without_networks(data):
    X, y = data
    teacher = DeepEnsembleTeacher(LogisticRegression(), n_members=2, random_state=0)
    model = EnsembleDistiller(teacher, MLPStudent(**FAST), method="kd",
                              perturbation="gaussian", random_state=0).fit(X, y)
    assert model.student_.module_ is not None
    assert model.score(X, y) > 0.8


@pytest.mark.parametrize("params, error, match", [
    (dict(method="one-to-one", student=LatentBEStudent(n_members=2, max_epochs=1)),
     ValueError, "EnsembleDistiller: parameter method='one-to-one'.*n_members=3"),
    (dict(method="nope"), InvalidParameterError, "method.*EnsembleDistiller"),
    (dict(perturbation="fgsm"), InvalidParameterError, "perturbation.*EnsembleDistiller"),
    (dict(ae_kd_bound=0.2, method="ae-kd"), ValueError, "ae_kd_bound=0.2"),
    (dict(temperature=0.0), InvalidParameterError, "temperature"),
    (dict(teacher=RandomForestClassifier()), InvalidParameterError, "teacher"),
    (dict(student=LogisticRegression()), TypeError, "EnsembleDistiller: parameter student"),
])
def test_ensemble_distiller_rejects_bad_parameters(data, teacher, params, error, match):
    from sklearn.frozen import FrozenEstimator

    kwargs = dict(teacher=FrozenEstimator(teacher), student=LatentBEStudent(n_members=3,
                                                                             max_epochs=1))
    kwargs.update(params)
    with pytest.raises(error, match=match):
        EnsembleDistiller(**kwargs).fit(*data)


def test_gradient_perturbation_needs_teacher_networks(data):
    teacher = DeepEnsembleTeacher(LogisticRegression(), n_members=2)
    with pytest.raises(ValueError, match="perturbation='tdiv-sdiv'.*modules_"):
        EnsembleDistiller(teacher, MLPStudent(max_epochs=1), method="kd",
                          perturbation="tdiv-sdiv").fit(*data)


@pytest.mark.parametrize("perturbation", [None, "gaussian"])
def test_own_training_loop_uses_the_students_optimizer(data, teacher, perturbation):
    """Rprop takes no weight_decay: the distiller builds it the way the student's fit does."""
    X, y = data
    student = LatentBEStudent(n_members=teacher.n_members, optimizer=torch.optim.Rprop,
                              random_state=0, **{**FAST, "max_epochs": 2, "lr": 1e-3})
    distilled = EnsembleDistiller(teacher, student, perturbation=perturbation).fit(X, y)
    assert np.isfinite(distilled.predict_proba(X)).all()
    assert isinstance(distilled.student_.net_.optimizer_, torch.optim.Rprop)


def test_clean_teacher_probabilities_are_computed_once(data, teacher):
    """Without perturbation the members see each training row once, not once per epoch."""
    from sklearn.frozen import FrozenEstimator

    X, y = data
    calls = []
    handles = [m.register_forward_hook(lambda m, inp, out: calls.append(len(inp[0])))
               for m in teacher.modules_]
    try:
        EnsembleDistiller(FrozenEstimator(teacher), MLPStudent(**{**FAST, "max_epochs": 3}),
                          method="kd").fit(X, y)
    finally:
        for handle in handles:
            handle.remove()
    # Three epochs through the members would be 3 * len(X) rows per member.
    assert len(X) * teacher.n_members <= sum(calls) < 2 * len(X) * teacher.n_members


def test_predict_uncertainty_follows_the_fitted_method_not_a_later_set_params(disagreement):
    X, y = disagreement
    student = MLPStudent(**{**FAST, "max_epochs": 2})
    model = EnsembleDistiller(_DisagreeingTeacher(), student, method="end2",
                              random_state=0).fit(X, y)
    before = model.predict_uncertainty(X[:5]).epistemic
    model.set_params(method="kd")
    np.testing.assert_array_equal(model.predict_uncertainty(X[:5]).epistemic, before)
