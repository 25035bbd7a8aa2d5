"""Decoupled knowledge distillation (Zhao et al. 2022): dkd_loss and loss="dkd"."""
import json

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skdistill import KnowledgeDistiller, MLPStudent
from skdistill.losses import DKDLoss, dkd_loss, dkd_terms, soften
from skdistill.streaming import Chunks

STUDENT = MLPStudent(hidden_layer_sizes=(16,), max_epochs=15, lr=1e-2, random_state=0)


@pytest.fixture(scope="module")
def data():
    X, y = make_classification(n_samples=300, n_features=8, n_informative=5, n_classes=3,
                               random_state=1)
    return StandardScaler().fit_transform(X), y


def _softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _mdistiller_dkd(z_s, z_t, target, T, alpha, beta):
    """Zhao et al.'s reference formula (mdistiller's dkd_loss), per row, in numpy."""
    gt = np.zeros_like(z_s, dtype=bool)
    gt[np.arange(len(target)), target] = True
    p_s, p_t = _softmax(z_s / T), _softmax(z_t / T)
    b_s = np.stack([p_s[gt], p_s[~gt].reshape(len(z_s), -1).sum(1)], axis=1)
    b_t = np.stack([p_t[gt], p_t[~gt].reshape(len(z_s), -1).sum(1)], axis=1)
    tckd = (b_t * (np.log(b_t) - np.log(b_s))).sum(1) * T**2
    q_t = _softmax(z_t / T - 1000.0 * gt)
    s_t = _softmax(z_s / T - 1000.0 * gt)
    nckd = np.where(gt, 0.0, q_t * np.log(np.where(gt, 1.0, q_t / np.where(gt, 1.0, s_t))))
    nckd = nckd.sum(1) * T**2
    return alpha * tckd + beta * nckd


@pytest.mark.parametrize("T, alpha, beta", [(1.0, 1.0, 8.0), (4.0, 1.0, 8.0), (2.0, 0.5, 2.0),
                                            (0.5, 2.0, 0.0)])
def test_dkd_loss_matches_the_reference_formula(T, alpha, beta):
    rng = np.random.default_rng(0)
    z_s, z_t = rng.normal(size=(32, 5)) * 3, rng.normal(size=(32, 5)) * 3
    target = rng.integers(0, 5, size=32)
    expected = _mdistiller_dkd(z_s, z_t, target, T, alpha, beta)
    q_t = torch.softmax(torch.as_tensor(z_t) / T, dim=-1)
    got = dkd_loss(torch.as_tensor(z_s), torch.as_tensor(target), q_t, T, alpha, beta,
                   reduction="none")
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-7, atol=1e-10)
    assert dkd_loss(torch.as_tensor(z_s), torch.as_tensor(target), q_t, T, alpha,
                    beta).item() == pytest.approx(expected.mean(), rel=1e-7)
    # the teacher's probabilities softened as KnowledgeDistiller does (its log-probabilities
    # are its logits up to a constant) give the same loss
    softened = torch.as_tensor(soften(_softmax(z_t), T))
    np.testing.assert_allclose(
        dkd_loss(torch.as_tensor(z_s), torch.as_tensor(target), softened, T, alpha, beta,
                 reduction="none").numpy(), expected, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("T", [1.0, 4.0])
def test_kd_is_tckd_plus_weighted_nckd(T):
    """Zhao et al.'s eq. (1): T^2 KL(q || s) = TCKD + (1 - q_t) NCKD, row by row."""
    gen = torch.Generator().manual_seed(1)
    z_s = torch.randn(64, 6, generator=gen, dtype=torch.float64) * 2
    q = torch.softmax(torch.randn(64, 6, generator=gen, dtype=torch.float64) * 3, dim=-1)
    target = torch.randint(0, 6, (64,), generator=gen)
    tckd, nckd = dkd_terms(z_s, target, q, T)
    kl = (q * (q.log() - torch.log_softmax(z_s / T, dim=-1))).sum(-1) * T**2
    q_t = q.gather(1, target[:, None])[:, 0]
    np.testing.assert_allclose((tckd + (1 - q_t) * nckd).numpy(), kl.numpy(), rtol=1e-10)
    # dkd_beta weighs NCKD for every row alike, where KD's weight 1 - q_t varies from row to row
    assert (1 - q_t).std() > 0.1


def test_gradients_flow_and_stay_finite_for_a_sure_teacher():
    z = torch.tensor([[3.0, 0.0, -1.0, 0.5]], requires_grad=True)
    q = torch.tensor([[1 - 3e-12, 1e-12, 1e-12, 1e-12]])  # sure of the target
    loss = dkd_loss(z, torch.tensor([0]), q, temperature=4.0)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(z.grad).all()
    z.grad = None
    q = torch.tensor([[0.5, 0.1, 0.3, 0.1]])
    dkd_loss(z, torch.tensor([0]), q, temperature=2.0).backward()
    assert z.grad.abs().sum() > 0 and abs(z.grad.sum().item()) < 1e-6


def test_dkd_loss_module_mixes_labels_and_teacher():
    gen = torch.Generator().manual_seed(2)
    z = torch.randn(6, 4, generator=gen)
    q = torch.softmax(torch.randn(6, 4, generator=gen) * 2, dim=-1)
    labels = torch.tensor([0, 1, 2, 3, -1, -1])
    target = torch.cat([labels[:, None].float(), q], dim=1)
    got = DKDLoss(2.0, alpha=0.3, dkd_alpha=0.5, dkd_beta=4.0, reduction="none")(z, target)
    classes = torch.where(labels < 0, q.argmax(-1), labels)
    dkd = dkd_loss(z, classes, q, 2.0, 0.5, 4.0, reduction="none")
    ce = torch.nn.functional.cross_entropy(z, classes, reduction="none")
    expected = torch.where(labels < 0, dkd, 0.7 * ce + 0.3 * dkd)
    torch.testing.assert_close(got, expected)
    # an unlabelled row's target class is the teacher's most probable one, not another class
    other = (q.argmax(-1) + 1) % 4
    assert not torch.allclose(got[4:], dkd_loss(z[4:], other[4:], q[4:], 2.0, 0.5, 4.0,
                                                reduction="none"))


def test_distiller_with_dkd_learns_and_differs_from_kd(data):
    X, y = data
    dkd = KnowledgeDistiller(LogisticRegression(), STUDENT, loss="dkd", temperature=4.0,
                             alpha=0.5).fit(X, y)
    assert dkd.score(X, y) > 0.6  # chance is 1/3; the linear teacher scores 0.66
    kd = KnowledgeDistiller(LogisticRegression(), STUDENT, temperature=4.0, alpha=0.5).fit(X, y)
    assert np.abs(dkd.predict_proba(X) - kd.predict_proba(X)).max() > 1e-3


def test_dkd_with_weights_calibration_pipeline_and_unlabeled_rows(data):
    X, y = data
    w = np.where(y == 0, 2.0, 1.0)
    student = make_pipeline(StandardScaler(), clone(STUDENT))
    model = KnowledgeDistiller(LogisticRegression(), student, loss="dkd", temperature=2.0,
                               alpha=0.5, teacher_calibration="temperature",
                               teacher_calibration_cv=3)
    model.fit(X[:200], y[:200], sample_weight=w[:200], X_unlabeled=X[200:])
    assert model.score(X, y) > 0.6
    streamed = KnowledgeDistiller(LogisticRegression(), clone(STUDENT), loss="dkd", alpha=0.5,
                                  shuffle_buffer=64)
    streamed.fit(X[:200], y[:200], X_unlabeled=Chunks([X[200:250], X[250:]]))
    assert streamed.score(X, y) > 0.6


def test_unlabeled_rows_learn_the_teachers_argmax(data):
    """TCKD alone (dkd_beta=0) on rows without labels: their target class is the teacher's most
    probable one, so the student learns the teacher's probability of that class (0.013 off on
    average; 0.029 when their target class is 0 instead)."""
    X, y = data
    model = KnowledgeDistiller(LogisticRegression(), clone(STUDENT).set_params(max_epochs=30),
                               loss="dkd", dkd_beta=0.0)
    model.fit(X[:30], y[:30], X_unlabeled=X[30:])
    q, p = model.teacher_.predict_proba(X[30:]), model.predict_proba(X[30:])
    rows, top = np.arange(len(q)), q.argmax(axis=1)
    assert np.abs(p[rows, top] - q[rows, top]).mean() < 0.02


def test_binary_problem_is_refused(data):
    X, y = data
    with pytest.raises(ValueError, match=r"^KnowledgeDistiller: parameter loss='dkd' is "
                                         r"invalid; expected 'kd' with 2 classes"):
        KnowledgeDistiller(LogisticRegression(), STUDENT, loss="dkd").fit(X, y % 2)


@pytest.mark.parametrize("param, value", [("dkd_alpha", -1.0), ("dkd_beta", -0.5),
                                          ("loss", "dk")])
def test_bad_dkd_parameters(data, param, value):
    X, y = data
    with pytest.raises(ValueError, match=f"'{param}' parameter of KnowledgeDistiller"):
        KnowledgeDistiller(LogisticRegression(), STUDENT, **{param: value}).fit(X, y)


def test_default_kd_ignores_the_dkd_parameters(data):
    X, y = data
    base = KnowledgeDistiller(LogisticRegression(), STUDENT, temperature=2.0).fit(X, y)
    assert base.loss == "kd"
    other = KnowledgeDistiller(LogisticRegression(), STUDENT, temperature=2.0, loss="kd",
                               dkd_alpha=3.0, dkd_beta=0.0).fit(X, y)
    np.testing.assert_array_equal(base.predict_proba(X), other.predict_proba(X))


def test_latentbe_benchmark_runs_the_dkd_row(tmp_path, monkeypatch):
    """The LatentBE benchmark's DKD row, on tiny synthetic data in place of Fashion-MNIST."""
    from benchmarks import latentbe

    X, y = make_classification(n_samples=400, n_features=12, n_informative=6, n_classes=3,
                               random_state=0)
    X = X.astype(np.float32)
    monkeypatch.setattr(latentbe, "_data", lambda n_train, n_val, seed: (
        X[:200], y[:200], X[200:300], y[200:300], X[300:], y[300:], X[300:] * 3))
    monkeypatch.setattr(latentbe, "_plot_entropy", lambda entropies, path: None)
    out = tmp_path / "latentbe"
    assert latentbe.main(["--seeds", "1", "--methods", "KD", "DKD", "--hidden", "8",
                          "--teacher-epochs", "1", "--student-epochs", "2", "--threads", "1",
                          "--out", str(out)]) == 0
    row = json.loads(out.with_suffix(".json").read_text())["results"][0]
    assert list(row) == ["DE-4 teacher", "KD", "DKD"]
    assert all(np.isfinite(v) for v in row["DKD"].values())
    assert row["DKD"] != row["KD"]  # a model of its own, not the KD row's


def test_latentbe_benchmark_scores_out_of_distribution_rows(tmp_path, monkeypatch):
    """--ood: AUROC by entropy for every row, by mutual information where the model has one
    (the ensemble's members, a Dirichlet student), not for a softmax student."""
    from benchmarks import latentbe

    X, y = make_classification(n_samples=400, n_features=12, n_informative=6, n_classes=3,
                               random_state=0)
    X = X.astype(np.float32)
    monkeypatch.setattr(latentbe, "_data", lambda n_train, n_val, seed: (
        X[:200], y[:200], X[200:300], y[200:300], X[300:], y[300:], X[300:] * 0 + 25))
    monkeypatch.setattr(latentbe, "_plot_entropy", lambda entropies, path: None)
    out = tmp_path / "latentbe"
    assert latentbe.main(["--seeds", "1", "--methods", "DKD, teacher only", "EnD2", "--ood",
                          "--hidden", "8", "--teacher-epochs", "3", "--student-epochs", "2",
                          "--threads", "1", "--dkd-beta", "2", "--out", str(out)]) == 0
    row = json.loads(out.with_suffix(".json").read_text())["results"][0]
    assert list(row) == ["DE-4 teacher", "DKD, teacher only", "EnD2"]
    assert "ood_auroc_mi" not in row["DKD, teacher only"]
    for label in ("DE-4 teacher", "EnD2"):
        assert 0.0 <= row[label]["ood_auroc_mi"] <= 1.0
    assert all(0.0 <= r["ood_auroc_entropy"] <= 1.0 for r in row.values())
