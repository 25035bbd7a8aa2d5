"""MCDropoutTeacher: masks (rate, scaling, variation), seeded samples, the frozen path, GPED,
CNNs and errors."""
import numpy as np
import pytest
import torch
from sklearn.datasets import make_classification
from sklearn.frozen import FrozenEstimator
from sklearn.utils._param_validation import InvalidParameterError

from posterior_checks import assert_uncertainty_decomposes
from skdistill import CNNStudent, GPEDDistiller, LatentBEStudent, MCDropoutTeacher, MLPStudent
from skdistill.teachers.mc_dropout import SeededDropout


@pytest.fixture(scope="module")
def data():
    X, y = make_classification(n_samples=200, n_features=5, random_state=0)
    return X.astype(np.float32), y


def student(**kwargs):
    params = dict(hidden_layer_sizes=(16,), dropout=0.3, max_epochs=20, lr=1e-2,
                  batch_size=50, random_state=0)
    return MLPStudent(**{**params, **kwargs})


@pytest.fixture(scope="module")
def teacher(data):
    return MCDropoutTeacher(student(), n_samples=10, random_state=0).fit(*data)


def test_masks_vary_and_the_mc_mean_is_not_the_eval_network(data, teacher):
    X, _ = data
    P = teacher.sample_proba(X[:20])
    assert P.shape == (10, 20, 2) and teacher.dropout_ == 0.3
    assert all(np.abs(P[s] - P[0]).max() > 1e-3 for s in range(1, 10))
    deterministic = teacher.estimator_.predict_proba(X[:20])
    assert np.abs(teacher.predict_proba(X[:20]) - deterministic).max() > 1e-3
    # outside a sample, the copy is the network in eval mode
    with torch.no_grad():
        logits = teacher.module_(torch.as_tensor(X[:20])).double()
    np.testing.assert_allclose(torch.softmax(logits, 1).numpy(), deterministic, atol=1e-6)
    assert [type(m) for m in teacher.module_.features][-1] is SeededDropout


def test_samples_are_seeded_and_iter_samples_gives_those_of_predict_proba(data, teacher):
    X, y = data
    state = torch.get_rng_state()
    P = teacher.sample_proba(X[:7])
    assert torch.equal(state, torch.get_rng_state())  # torch's global generator untouched
    np.testing.assert_array_equal(P, teacher.sample_proba(X[:7]))
    np.testing.assert_allclose(teacher.predict_proba(X[:7]), P.mean(0), rtol=1e-12)
    # a sample is a function of the row: the same alone, in another batch, in another order
    np.testing.assert_allclose(P[:, 3:4], teacher.sample_proba(X[3:4]), rtol=1e-5)
    order = np.random.default_rng(0).permutation(7)
    np.testing.assert_allclose(teacher.sample_proba(X[:7][order]), P[:, order], rtol=1e-5)
    assert teacher.predict(X[:1]).shape == (1,)
    again = MCDropoutTeacher(student(), n_samples=10, random_state=0).fit(X, y)
    np.testing.assert_array_equal(again.sample_proba(X[:7]), P)
    other = MCDropoutTeacher(student(), n_samples=10, random_state=1).fit(X, y)
    assert np.abs(other.sample_proba(X[:7]) - P).max() > 1e-3
    # sample s is the same whichever samples are asked
    fewer = MCDropoutTeacher(student(), n_samples=3, random_state=0).fit(X, y)
    np.testing.assert_array_equal(fewer.sample_proba(X[:7]), P[:3])
    samples = list(teacher.iter_samples(X, y))  # fitted: not refitted
    assert len(samples) == 10
    for s, sample in enumerate(samples):
        np.testing.assert_allclose(sample(torch.as_tensor(X[:7])).numpy(), P[s], atol=1e-6)


def test_keep_rate_and_inverted_scaling_of_the_masks(data, teacher):
    X, _ = data
    seen = []
    layer = teacher.module_.features[-1]
    hook = layer.register_forward_hook(lambda m, inputs, out: seen.append((inputs[0], out)))
    try:
        for s in range(300):
            teacher._logits(torch.as_tensor(X[:4]), s)
    finally:
        hook.remove()
    ratios = torch.stack([out / torch.where(x == 0, torch.nan, x) for x, out in seen])
    ratios = ratios[~ratios.isnan()]
    kept = ratios != 0
    np.testing.assert_allclose(ratios[kept].numpy(), 1 / 0.7, rtol=1e-5)
    assert abs(kept.double().mean().item() - 0.7) < 0.04
    # one mask set per sample, shared by the rows it is applied to
    masks = torch.stack([out != 0 for _, out in seen])
    known = torch.stack([x != 0 for x, _ in seen])
    both = known & known[:, :1]
    assert bool((masks == masks[:, :1])[both].all()) and both[:, 1:].sum() > 100
    assert masks[:, 0][known[:, 0]].float().std() > 0


def test_mean_logits_over_masks_are_the_eval_logits_when_dropout_feeds_the_head(data, teacher):
    X, _ = data
    rows = torch.as_tensor(X[:10])
    with torch.no_grad():
        logits = torch.stack([teacher._logits(rows, s) for s in range(4000)]).double()
        deterministic = teacher.module_(rows).double()
    error = logits.std(0) / np.sqrt(len(logits))
    assert (error > 0).all()
    assert ((logits.mean(0) - deterministic).abs() <= 4 * error + 1e-6).all()


def test_frozen_network_is_used_as_it_is_with_its_rate_or_another(data):
    X, y = data
    fitted = student(dropout=0.2).fit(X, y)
    before = [p.detach().clone() for p in fitted.module_.parameters()]
    teacher = MCDropoutTeacher(FrozenEstimator(fitted), n_samples=5, random_state=0).fit(X, y)
    assert teacher.dropout_ == 0.2 and np.all(teacher.classes_ == fitted.classes_)
    assert all(torch.equal(a, b) for a, b in zip(before, fitted.module_.parameters()))
    wider = MCDropoutTeacher(FrozenEstimator(fitted), dropout=0.5, n_samples=5,
                             random_state=0).fit(X, y)
    assert wider.dropout_ == 0.5 and fitted.module_.features[-1].p == 0.2
    spread = [t.sample_proba(X[:20]).std(0).mean() for t in (teacher, wider)]
    assert spread[1] > spread[0] > 0


def test_dropout_overrides_an_unfitted_students_rate(data):
    X, y = data
    teacher = MCDropoutTeacher(student(dropout=0.0), dropout=0.4, n_samples=2).fit(X, y)
    assert teacher.dropout_ == 0.4 and teacher.estimator_.dropout == 0.4
    assert teacher.estimator.dropout == 0.0  # the parameter is not changed


def test_uncertainty_decomposes_into_expected_entropy_and_mutual_information(data, teacher):
    X, _ = data
    assert_uncertainty_decomposes(teacher, X[:20])


def test_gped_distils_it(data):
    X, y = data
    model = GPEDDistiller(MCDropoutTeacher(student(), n_samples=10),
                          MLPStudent(hidden_layer_sizes=(16,), lr=1e-2, max_epochs=15,
                                     batch_size=20),
                          target=["predictive", "entropy"], random_state=0).fit(X, y)
    assert model.n_student_steps_ == 150
    assert isinstance(model.teacher_, MCDropoutTeacher) and model.score(X, y) > 0.85
    reference = model.teacher_.predict_proba(X)
    assert np.abs(model.predict_proba(X) - reference).mean() < 0.1


def test_a_cnn_student_samples_from_flat_rows():
    rng = np.random.default_rng(0)
    X = rng.random((60, 64), dtype=np.float32)
    y = (X[:, :32].sum(1) > X[:, 32:].sum(1)).astype(int)
    cnn = CNNStudent(width_multiplier=0.5, dropout=0.3, max_epochs=2, random_state=0)
    teacher = MCDropoutTeacher(cnn, n_samples=4, random_state=0).fit(X, y)
    P = teacher.sample_proba(X[:5])
    assert P.shape == (4, 5, 2) and P.std(0).max() > 0
    sample = next(iter(teacher.iter_samples(X, y)))
    np.testing.assert_allclose(sample(torch.as_tensor(X[:5])).numpy(), P[0], atol=1e-6)


def test_errors(data):
    X, y = data
    with pytest.raises(ValueError, match=r"^MCDropoutTeacher: parameter estimator=<MLPStudent "
                       r"with dropout=0.0> is invalid; expected a network with dropout.*its "
                       r"dropout is 0: every MC dropout sample would be the same network"):
        MCDropoutTeacher(student(dropout=0.0)).fit(X, y)
    no_dropout = FrozenEstimator(student(dropout=0.0, max_epochs=1).fit(X, y))
    with pytest.raises(ValueError, match=r"^MCDropoutTeacher: parameter estimator=<FrozenEstimator"
                       r"\(MLPStudent\) with dropout=0.0> .*no nn.Dropout layer with a positive"):
        MCDropoutTeacher(no_dropout, dropout=0.5).fit(X, y)
    with pytest.raises(InvalidParameterError, match="dropout"):
        MCDropoutTeacher(student(), dropout=0.0).fit(X, y)
    with pytest.raises(TypeError, match=r"^MCDropoutTeacher: parameter estimator=LatentBE"):
        MCDropoutTeacher(LatentBEStudent(n_members=2, dropout=0.1)).fit(X, y)
