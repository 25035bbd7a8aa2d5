"""BatchEnsemble layers, their merge into one plain network, and the LatentBE students."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.datasets import make_classification
from sklearn.utils._param_validation import InvalidParameterError

from skdistill import LatentBEStudent, MLPStudent
from skdistill.complexity import count_flops, count_parameters
from skdistill.nets import CNN, MLP, BatchEnsemble, BEConv2d, BELinear, merge_batch_ensemble
from skdistill.students import LatentBECNNStudent
from skdistill.students.latent_be import MemberLoss, PriorPenalty


def _randomise_factors(ensemble, seed=0):
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for layer in ensemble.be_layers():
            layer.r.copy_(torch.rand(layer.r.shape, generator=gen) * 1.5 + 0.25)
            layer.s.copy_(torch.rand(layer.s.shape, generator=gen) * 1.5 + 0.25)
            layer.bias.copy_(torch.randn(layer.bias.shape, generator=gen))


@pytest.mark.parametrize("network", [MLP(6, 3, (8, 5)),
                                     CNN((1, 8, 8), 3, (4, 6), 3, (10,))])
def test_factors_at_one_make_every_member_the_shared_network(network):
    torch.manual_seed(0)
    x = torch.randn(7, 64 if isinstance(network, CNN) else 6)
    ensemble = BatchEnsemble(network, n_members=3)
    with torch.no_grad():
        members = ensemble(x)
        expected = network(x)
        merged = merge_batch_ensemble(ensemble)
    assert members.shape == (3, 7, 3)
    for m in range(3):
        torch.testing.assert_close(members[m], expected, rtol=0, atol=1e-6)
    # merging changes nothing: same class, same parameters, same outputs
    assert type(merged) is type(network)
    for (name, p), (name0, p0) in zip(merged.named_parameters(), network.named_parameters()):
        assert name == name0
        torch.testing.assert_close(p, p0, rtol=0, atol=1e-7)
    torch.testing.assert_close(merged(x), expected, rtol=0, atol=1e-6)


def test_merged_linear_layer_is_the_mean_of_member_weights_exactly():
    torch.manual_seed(0)
    layer = BELinear.from_linear(torch.nn.Linear(5, 4), n_members=3)
    with torch.no_grad():
        layer.r.uniform_(-2, 2)
        layer.s.uniform_(-2, 2)
        layer.bias.normal_()
    merged = layer.merged()
    by_hand = torch.stack([layer.weight * torch.outer(layer.s[m], layer.r[m])
                           for m in range(3)])
    assert torch.equal(layer.member_weights(), by_hand)
    assert torch.equal(merged.weight, by_hand.mean(0))
    assert torch.equal(merged.bias, layer.bias.mean(0))
    # ... so the merged layer outputs the mean of the member outputs (linearity)
    x = torch.randn(6, 5)
    with torch.no_grad():
        outs = layer(x.repeat(3, 1)).view(3, 6, 4)
        torch.testing.assert_close(merged(x), outs.mean(0), rtol=1e-5, atol=1e-5)


def test_member_m_uses_weight_w_times_outer_s_r_on_its_block_of_the_tiled_batch():
    torch.manual_seed(1)
    layer = BELinear.from_linear(torch.nn.Linear(5, 4), n_members=3)
    conv = BEConv2d(torch.nn.Conv2d(2, 3, 3, padding=1), n_members=3)
    for be in (layer, conv):
        with torch.no_grad():
            be.r.uniform_(0, 2)
            be.s.uniform_(0, 2)
            be.bias.normal_()
    x = torch.randn(3 * 4, 5)
    img = torch.randn(3 * 4, 2, 6, 6)
    with torch.no_grad():
        out, out_img = layer(x), conv(img)
        for m in range(3):
            rows = slice(4 * m, 4 * m + 4)
            torch.testing.assert_close(
                out[rows], F.linear(x[rows], layer.member_weights()[m], layer.bias[m]))
            torch.testing.assert_close(
                out_img[rows], F.conv2d(img[rows], conv.member_weights()[m], conv.bias[m],
                                        padding=1), rtol=1e-4, atol=1e-5)


def test_merged_cnn_conv_weights_are_member_means():
    ensemble = BatchEnsemble(CNN((1, 8, 8), 3, (4, 6), 3, (10,)), n_members=2)
    _randomise_factors(ensemble)
    merged = merge_batch_ensemble(ensemble)
    convs = [m for m in merged.modules() if isinstance(m, torch.nn.Conv2d)]
    be_convs = [m for m in ensemble.be_layers() if isinstance(m, BEConv2d)]
    assert len(convs) == len(be_convs) == 2
    for conv, be in zip(convs, be_convs):
        assert torch.equal(conv.weight, be.member_weights().mean(0))


def test_be_layer_rejects_a_batch_that_is_not_tiled():
    layer = BELinear(3, 2, n_members=4)
    with pytest.raises(ValueError, match="multiple of n_members=4"):
        layer(torch.randn(5, 3))


def test_member_loss_gives_each_member_its_own_target_row():
    logits = torch.randn(2, 3, 4)
    per_member = torch.softmax(torch.randn(3, 2, 4), dim=-1)  # (B, M, C)
    loss = MemberLoss(lambda z, t: -(t * torch.log_softmax(z, -1)).sum(-1))(logits, per_member)
    assert loss.shape == (3,)  # one loss per row: the member mean
    by_hand = np.mean([-(per_member[:, m] * torch.log_softmax(logits[m], -1)).sum(-1).mean()
                       for m in range(2)])
    assert loss.mean().item() == pytest.approx(float(by_hand), rel=1e-6)
    # the factors' prior is the engine's regularizer, added once per batch
    module = type("M", (), {"prior_penalty": lambda self: torch.tensor(2.0)})()
    assert PriorPenalty(0.5)(module).item() == 1.0


@pytest.fixture(scope="module")
def data():
    X, y = make_classification(n_samples=300, n_features=8, n_informative=5, n_classes=3,
                               random_state=0)
    return X.astype(np.float32), y


def test_latent_be_student_deploys_a_plain_mlp_as_costly_as_mlp_student(data):
    X, y = data
    config = dict(hidden_layer_sizes=(16, 8), max_epochs=30, lr=1e-2, random_state=0)
    be = LatentBEStudent(n_members=3, **config).fit(X, y)
    mlp = MLPStudent(**config).fit(X, y)
    assert type(be.merged_module_) is type(mlp.module_) is MLP
    assert count_parameters(be) == count_parameters(mlp.module_)
    assert count_flops(be, (1, 8)) == count_flops(mlp.module_, (1, 8))
    members = be.ensemble_proba(X[:5])
    assert members.shape == (3, 5, 3)
    np.testing.assert_allclose(members.sum(-1), 1, atol=1e-6)
    proba = be.predict_proba(X)
    np.testing.assert_allclose(proba.sum(1), 1, atol=1e-6)
    assert be.score(X, y) > 0.8 > np.bincount(y).max() / len(y)


def test_prior_strength_keeps_factors_near_one(data):
    X, y = data
    penalties = []
    for strength in (0.0, 1.0):
        clf = LatentBEStudent(n_members=2, hidden_layer_sizes=(16,), max_epochs=20, lr=1e-2,
                              prior_strength=strength, random_state=0).fit(X, y)
        penalties.append(clf.module_.prior_penalty().item())
    assert penalties[1] < 0.2 * penalties[0]


def test_latent_be_cnn_student_merges_into_a_cnn():
    rng = np.random.default_rng(0)
    X = rng.random((60, 1, 8, 8)).astype(np.float32)
    y = (X[:, 0, :4].mean(axis=(1, 2)) > X[:, 0, 4:].mean(axis=(1, 2))).astype(int)
    clf = LatentBECNNStudent(n_members=2, max_epochs=2, width_multiplier=0.5,
                             random_state=0).fit(X, y)
    assert type(clf.merged_module_) is CNN
    assert clf.ensemble_proba(X[:4]).shape == (2, 4, 2)


@pytest.mark.parametrize("params, match", [
    (dict(n_members=0), "n_members"),
    (dict(prior_strength=-1.0), "prior_strength"),
    (dict(hidden_layer_sizes=(0,)), "hidden_layer_sizes"),
])
def test_latent_be_student_rejects_bad_parameters(data, params, match):
    X, y = data
    with pytest.raises((InvalidParameterError, ValueError), match=match) as info:
        LatentBEStudent(max_epochs=1, **params).fit(X, y)
    assert "LatentBEStudent" in str(info.value)


def test_latent_be_student_is_a_knowledge_distiller_student(data):
    from skdistill import KnowledgeDistiller

    X, y = data
    model = KnowledgeDistiller(student=LatentBEStudent(n_members=2, hidden_layer_sizes=(16,),
                                                       max_epochs=20, lr=1e-2),
                               temperature=2.0, alpha=0.5, random_state=0).fit(X, y)
    assert type(model.student_.merged_module_) is MLP
    assert model.score(X, y) > 0.8


@pytest.mark.parametrize("make", [
    lambda: LatentBEStudent(n_members=2, hidden_layer_sizes=(8,), max_epochs=2, random_state=0),
    lambda: LatentBECNNStudent(n_members=2, max_epochs=1, width_multiplier=0.5, random_state=0),
], ids=["LatentBEStudent", "LatentBECNNStudent"])
def test_fit_and_merge_do_not_touch_global_torch_rng(make):
    X, y = make_classification(n_samples=40, n_features=16, random_state=0)
    torch.manual_seed(7)
    expected = torch.rand(3)
    torch.manual_seed(7)
    student = make().fit(X.astype(np.float32), y)
    np.testing.assert_array_equal(torch.rand(3), expected)
    # Merging on its own (e.g. a distiller installing a trained ensemble) draws nothing either.
    torch.manual_seed(7)
    merge_batch_ensemble(student.module_)
    np.testing.assert_array_equal(torch.rand(3), expected)
