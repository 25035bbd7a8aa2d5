"""Group-lasso pruning (skdistill.pruning) and the students' pruning parameters."""
import copy
import pickle

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.ensemble import RandomForestClassifier
from sklearn.utils._param_validation import InvalidParameterError
from skorch.callbacks import EarlyStopping, LRScheduler
from torch import nn

from skdistill import (CNNStudent, CrossFitDistiller, DeepEnsembleTeacher, EnsembleDistiller,
                       GPEDDistiller, KnowledgeDistiller, LatentBEStudent, MLPStudent,
                       SGLDTeacher)
from skdistill.complexity import count_flops, count_parameters
from skdistill.nets import CNN, MLP
from skdistill.pruning import (group_lasso_penalty, group_norms, group_plan, layer_widths,
                               prune_network)


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return (X / 16).astype(np.float32), y


# -- the penalty and the groups ------------------------------------------------------------------

def test_penalty_equals_hand_computed_group_norms():
    net = MLP(3, 2, (2,)).double()
    conv = CNN((1, 6, 6), 2, channels=(2,), kernel_size=2, fc_sizes=(3,)).double()
    with torch.no_grad():
        net.features[1].weight.copy_(torch.tensor([[1.0, 2.0, 2.0], [0.0, -3.0, 4.0]]))
        w = torch.arange(8, dtype=torch.double).reshape(2, 1, 2, 2) - 3
        conv.features[0].weight.copy_(w)
    plan = group_plan(net, torch.zeros(1, 3, dtype=torch.double))
    assert plan.names == ["features.1"]  # the head feeds the output: not a group
    assert float(group_lasso_penalty(net, plan).detach()) == pytest.approx(3.0 + 5.0)
    cplan = group_plan(conv, torch.zeros(1, 1, 6, 6, dtype=torch.double))
    assert cplan.names == ["features.0", "features.4"]
    norms = group_norms(conv, cplan)["features.0"]
    by_hand = [np.sqrt(9 + 4 + 1 + 0), np.sqrt(1 + 4 + 9 + 16)]  # filters (-3..0), (1..4)
    np.testing.assert_allclose(norms.detach().numpy(), by_hand)
    fc = conv.features[4].weight
    total = float(group_lasso_penalty(conv, cplan).detach())
    assert total == pytest.approx(sum(by_hand) + float(fc.detach().norm(dim=1).sum()))


@pytest.mark.parametrize("activation", ["relu", "sigmoid", "tanh"])
def test_removed_units_give_exactly_the_masked_network(activation):
    torch.manual_seed(0)
    net = MLP(6, 4, (10, 8), activation=activation).double()
    with torch.no_grad():  # non-zero biases: the removed units' constants must be folded
        net.features[1].bias.uniform_(-1, 1)
        net.features[1].weight[[0, 3, 4]] = 0
        net.features[3].weight[[1, 7]] = 0
    plan = group_plan(net, torch.zeros(2, 6, dtype=torch.double))
    small, sizes = prune_network(net, plan)
    assert sizes == {"features.1": (10, 7), "features.3": (8, 6)}
    assert layer_widths(small) == ((), (7, 6))
    assert isinstance(small, MLP) and small.n_hidden_out == 6 and small.head.in_features == 6
    x = torch.randn(50, 6, dtype=torch.double)
    torch.testing.assert_close(small(x), net(x), rtol=0, atol=1e-12)
    assert count_parameters(small) < count_parameters(net)


def test_small_weights_below_threshold_are_removed_and_large_ones_kept():
    net = MLP(4, 2, (5,)).double()
    with torch.no_grad():
        net.features[1].weight[0] = 1e-4
        net.features[1].weight[1] = torch.tensor([1e-4, 1e-4, 2e-3, 0.0])  # one weight above
    plan = group_plan(net, torch.zeros(1, 4, dtype=torch.double))
    assert prune_network(net, plan, threshold=1e-3)[1] == {"features.1": (5, 4)}
    assert prune_network(net, plan, threshold=0.0)[1] == {"features.1": (5, 5)}


def test_units_whose_weights_are_all_zero_are_removed_at_threshold_zero():
    net = MLP(4, 2, (5,)).double()
    with torch.no_grad():
        net.features[1].weight[[1, 3]] = 0.0
    plan = group_plan(net, torch.zeros(1, 4, dtype=torch.double))
    small, sizes = prune_network(net, plan, threshold=0.0)
    assert sizes == {"features.1": (5, 3)}
    x = torch.randn(20, 4, dtype=torch.double)
    torch.testing.assert_close(small(x), net(x), rtol=0, atol=1e-12)


def test_removing_a_conv_channel_removes_the_next_layers_input_channels():
    torch.manual_seed(0)
    net = CNN((1, 14, 14), 3, channels=(4, 5), kernel_size=3, fc_sizes=(6,)).double()
    before = copy.deepcopy(net)
    with torch.no_grad():
        net.features[0].weight[[1, 2]] = 0
        net.features[3].weight[4] = 0
    plan = group_plan(net, torch.zeros(1, 1, 14, 14, dtype=torch.double))
    small, sizes = prune_network(net, plan)
    assert sizes["features.0"] == (4, 2) and sizes["features.3"] == (5, 4)
    conv2, fc = small.features[3], small.features[7]
    assert conv2.weight.shape == (4, 2, 3, 3)  # input channels 1, 2 gone
    torch.testing.assert_close(conv2.weight, before.features[3].weight[:4][:, [0, 3]])
    # each conv-2 channel is flattened into 2 x 2 = 4 inputs of the fully connected layer
    assert fc.weight.shape == (6, 16)
    torch.testing.assert_close(fc.weight, before.features[7].weight[:, :16])
    x = torch.randn(7, 1, 14, 14, dtype=torch.double)
    torch.testing.assert_close(small(x), net(x), rtol=0, atol=1e-12)
    assert count_flops(small, (1, 1, 14, 14)) < count_flops(net, (1, 1, 14, 14))


def test_a_layer_keeps_its_largest_unit_with_a_warning():
    net = MLP(3, 2, (4,)).double()
    with torch.no_grad():
        net.features[1].weight.fill_(1e-5)
        net.features[1].weight[2, 0] = 5e-4
    plan = group_plan(net, torch.zeros(1, 3, dtype=torch.double))
    with pytest.warns(UserWarning, match="every unit of layer 'features.1'.*largest unit"):
        small, sizes = prune_network(net, plan)
    assert sizes == {"features.1": (4, 1)}
    torch.testing.assert_close(small.features[1].weight, net.features[1].weight[[2]])


class _Residual(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.act, self.b, self.out = nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 4), \
            nn.Linear(4, 2)

    def forward(self, x):
        h = self.act(self.a(x))
        return self.out(self.b(h) + h)  # h reaches `out` through a sum the hooks cannot see


class _TwoPaths(_Residual):
    def forward(self, x):
        h = self.act(self.a(x))
        return self.out(self.act(self.b(h))) + h[:, :2]


class _Sliced(_Residual):
    def forward(self, x):
        h = self.a(x)
        return self.out(self.act(self.b(self.act(h)))) + h[:, -1:]  # the last unit, read apart


class _Tied(_Residual):
    def __init__(self):
        super().__init__()
        self.b.weight = self.a.weight

    def forward(self, x):
        return self.out(self.act(self.b(self.act(self.a(x)))))


def test_a_slice_or_tied_weights_leave_the_layer_whole():
    plan = group_plan(_Sliced(), torch.zeros(2, 4))
    assert plan.names == ["b"] and "changed the network's outputs" in plan.skipped["a"]
    with pytest.raises(ValueError, match="a: the weights of a are shared with another layer"):
        group_plan(_Tied(), torch.zeros(2, 4))
    example = torch.zeros(2, 4, dtype=torch.double)
    group_plan(MLP(4, 2, (3,)).double(), example)
    assert (example == 0).all()  # the probe does not write into the caller's tensor


def test_a_network_whose_layers_cannot_be_grouped_is_refused_or_partly_pruned():
    with pytest.raises(ValueError, match="no layer of _Residual can be pruned.*changed the "
                                         "network's outputs"):
        group_plan(_Residual(), torch.zeros(2, 4))
    plan = group_plan(_TwoPaths(), torch.zeros(2, 4))
    assert plan.names == ["b"] and "changed the network's outputs" in plan.skipped["a"]
    with pytest.raises(ValueError, match=r"no layer of Sequential can be pruned \(0.0: "
                                         "it reaches 0.1, a BatchNorm1d"):
        group_plan(nn.Sequential(nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4)),
                                 nn.Linear(4, 2)), torch.zeros(2, 3))
    with pytest.raises(ValueError, match="no layer of Sequential can be pruned"):
        group_plan(nn.Sequential(nn.Linear(3, 2)), torch.zeros(1, 3))


# -- students -------------------------------------------------------------------------------------

FAST = dict(hidden_layer_sizes=(48, 48), max_epochs=25, lr=3e-3, random_state=0)


def test_strong_penalty_prunes_units_and_weak_penalty_prunes_none(digits):
    X, y = digits
    # tanh: no dead units (with Adam, any penalty removes a ReLU unit that no row activates,
    # as the penalty is then its only gradient and Adam normalises the step)
    weak = MLPStudent(**FAST, activation="tanh", group_lasso=1e-7).fit(X[:1000], y[:1000])
    strong = MLPStudent(**FAST, activation="tanh", group_lasso=3e-2).fit(X[:1000], y[:1000])
    assert weak.n_pruned_units_ == 0 and weak.hidden_layer_sizes_ == (48, 48)
    assert strong.n_pruned_units_ >= 15
    assert sum(strong.hidden_layer_sizes_) == 96 - strong.n_pruned_units_
    assert layer_widths(strong.module_)[1] == strong.hidden_layer_sizes_
    assert count_flops(strong, (1, 64)) < 0.75 * count_flops(weak, (1, 64))
    assert strong.score(X[1000:], y[1000:]) > 0.83
    # the penalty is gone after pruning: the fine-tuning epochs' loss drops to the data loss
    history = strong.history_
    at = [i for i, row in enumerate(history) if "n_pruned_units" in row]
    assert at == [25 - 25 // 5 - 1]
    assert history[at[0] + 1, "train_loss"] < 0.5 * history[at[0], "train_loss"]


def test_default_is_unchanged_and_pruning_parameters_are_searchable(digits):
    X, y = digits
    plain = MLPStudent(**FAST).fit(X[:300], y[:300])
    assert plain.n_pruned_units_ == 0 and plain.hidden_layer_sizes_ == (48, 48)
    assert "n_pruned_units" not in plain.history_[-1]
    params = MLPStudent().get_params()
    assert params["group_lasso"] == 0.0 and params["prune_threshold"] == 1e-3
    assert params["fine_tune_epochs"] is None and params["fine_tune_lr"] is None


def test_fine_tuning_restarts_the_optimizer_at_fine_tune_lr(digits):
    X, y = digits
    sched = LRScheduler("StepLR", step_size=1, gamma=0.5)
    clf = MLPStudent(**{**FAST, "max_epochs": 6}, group_lasso=1e-2, fine_tune_epochs=2,
                     fine_tune_lr=1e-4, callbacks=[sched]).fit(X[:300], y[:300])
    assert "n_pruned_units" in clf.history_[3]
    # a fresh optimizer on the pruned network: lr restarted at 1e-4, and the schedule with
    # it: halved after each of the two fine-tuning epochs
    opt = clf.net_.optimizer_
    assert opt.param_groups[0]["lr"] == pytest.approx(1e-4 * 0.25)
    assert {id(p) for g in opt.param_groups for p in g["params"]} == {
        id(p) for p in clf.net_.module_.parameters()}
    assert clf.net_.regularizer is None  # the penalty is dropped with the pruning


def test_cnn_student_prunes_channels(digits):
    X, y = digits
    clf = CNNStudent(max_epochs=12, batch_size=32, lr=3e-3, random_state=0, group_lasso=1e-2,
                     fine_tune_epochs=3).fit(X[:800], y[:800])
    assert clf.channels_ == layer_widths(clf.module_)[0]
    assert sum(clf.channels_) + sum(clf.hidden_layer_sizes_) == 10 + 20 + 80 - \
        clf.n_pruned_units_
    assert clf.n_pruned_units_ > 0 and clf.channels_[1] < 20
    assert clf.module_.features[3].in_channels == clf.channels_[0]
    assert clf.score(X[800:], y[800:]) > 0.7
    assert clf.predict_proba(X[800:810]).shape == (10, 10)


def test_pruned_student_pickles_and_clones(digits):
    X, y = digits
    clf = MLPStudent(**FAST, group_lasso=2e-2).fit(X[:500], y[:500])
    again = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(again.predict_proba(X[500:]), clf.predict_proba(X[500:]))
    assert again.hidden_layer_sizes_ == clf.hidden_layer_sizes_
    fresh = clone(clf)
    assert fresh.get_params()["group_lasso"] == 2e-2 and not hasattr(fresh, "module_")
    refit = fresh.fit(X[:500], y[:500])  # same seed, same pruned network
    np.testing.assert_array_equal(refit.predict_proba(X[500:]), clf.predict_proba(X[500:]))


def _pruned_student(**kw):
    return MLPStudent(hidden_layer_sizes=(48, 48), lr=3e-3, random_state=0,
                      group_lasso=1e-2, **kw)


@pytest.mark.parametrize("make", [
    lambda: KnowledgeDistiller(RandomForestClassifier(30, random_state=0),
                               _pruned_student(max_epochs=20)),
    lambda: CrossFitDistiller(RandomForestClassifier(30, random_state=0),
                              _pruned_student(max_epochs=20), n_folds=3, random_state=0),
    # ED's loss is scaled by temperature**2 = 16: a smaller penalty
    lambda: EnsembleDistiller(DeepEnsembleTeacher(MLPStudent((32,), max_epochs=30, lr=1e-2),
                                                  n_members=2, random_state=0),
                              _pruned_student(max_epochs=20).set_params(group_lasso=1e-3),
                              method="kd", random_state=0),
], ids=["kd", "crossfit", "ensemble"])
def test_pruning_works_under_every_distiller(digits, make):
    X, y = digits
    model = make().fit(X[:800], y[:800])
    student = model.student_
    assert student.n_pruned_units_ > 0
    assert sum(student.hidden_layer_sizes_) == 96 - student.n_pruned_units_
    assert count_flops(model, (1, 64)) < 2 * (64 * 48 + 48 * 48 + 48 * 10)
    assert model.score(X[800:], y[800:]) > 0.8


def test_pruning_under_gped_prunes_the_shared_trunk_of_every_head(digits):
    X, y = digits
    teacher = DeepEnsembleTeacher(MLPStudent((32,), max_epochs=30, lr=1e-2), n_members=2,
                                  random_state=0)  # its members are GPED's posterior samples
    student = MLPStudent(hidden_layer_sizes=(48, 48), lr=3e-3, max_epochs=20, batch_size=32,
                         group_lasso=1e-2)
    model = GPEDDistiller(teacher, student, target=["predictive", "entropy", "variance"],
                          random_state=0).fit(X[:600], y[:600])
    widths = model.student_.hidden_layer_sizes_
    assert model.student_.n_pruned_units_ >= 10 and sum(widths) < 96
    assert model.score(X[600:], y[600:]) > 0.85
    heads = model.module_.heads
    assert {name: h.linear.in_features for name, h in heads.items()} == {
        "predictive": widths[-1], "entropy": widths[-1], "variance": widths[-1]}
    u = model.predict_uncertainty(X[600:610])
    np.testing.assert_allclose(u["total"], u["aleatoric"] + u["epistemic"], atol=1e-6)


def test_under_a_chain_teacher_fine_tuning_is_the_last_fifth_of_the_chain(digits):
    X, y = digits
    X = (X - X.mean(0)) / (X.std(0) + 1e-6)
    teacher = SGLDTeacher(hidden_layer_sizes=(16,), step_size=2e-3, prior_precision=1.0,
                          random_state=0)
    student = MLPStudent(hidden_layer_sizes=(32,), lr=1e-2, group_lasso=3e-2)
    model = GPEDDistiller(teacher, student, n_iter=1100, burn_in=100, thinning=1,
                          distill_batch_size=100, random_state=0)
    model.fit(X[:500], y[:500])
    history = model.student_.history_
    epochs = len(history)  # 1,000 steps of 5 batches: the chain decides 200 epochs
    assert epochs == 200
    assert [i for i, row in enumerate(history) if "n_pruned_units" in row] == [159]
    assert model.student_.n_pruned_units_ == history[159, "n_pruned_units"] > 0


# -- errors ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("name, value", [("group_lasso", -1e-3), ("prune_threshold", -1.0),
                                         ("fine_tune_epochs", -1), ("fine_tune_lr", 0.0)])
def test_negative_pruning_parameters_are_refused(digits, name, value):
    X, y = digits
    with pytest.raises(InvalidParameterError, match=f"'{name}' parameter of MLPStudent"):
        MLPStudent(**{name: value}).fit(X[:50], y[:50])


def test_fine_tuning_longer_than_training_is_refused_before_training(digits):
    X, y = digits
    with pytest.raises(ValueError, match=r"MLPStudent: parameter fine_tune_epochs=5 is "
                                         r"invalid; expected fewer than the 5 training epochs"):
        MLPStudent(max_epochs=5, group_lasso=1e-3, fine_tune_epochs=5).fit(X[:50], y[:50])


def test_latent_be_student_says_why_it_is_not_pruned(digits):
    X, y = digits
    with pytest.raises(ValueError, match="LatentBEStudent: parameter group_lasso=0.001 is "
                                         "invalid; expected 0: LatentBE students are not "
                                         "pruned"):
        LatentBEStudent(n_members=2, max_epochs=1, group_lasso=1e-3).fit(X[:50], y[:50])


def test_early_stop_before_pruning_prunes_at_the_end_with_a_warning(digits):
    X, y = digits
    stop = EarlyStopping(monitor="train_loss", patience=1, threshold=10.0)  # stops at once
    clf = MLPStudent(**FAST, group_lasso=2e-2, callbacks=[stop])
    with pytest.warns(UserWarning, match=r"MLPStudent \(group_lasso=0.02\): training stopped "
                                         "after 2 epochs, before the 20 with the group-lasso"):
        clf.fit(X[:300], y[:300])
    assert "n_pruned_units" in clf.history_[-1]
    # the optimizer holds the pruned network's parameters, not the old ones
    assert {id(p) for g in clf.net_.optimizer_.param_groups for p in g["params"]} == {
        id(p) for p in clf.net_.module_.parameters()}


def test_early_stopping_with_load_best_restarts_with_the_fine_tuning(digits):
    X, y = digits
    stop = EarlyStopping(patience=100, load_best=True)  # restores its best weights at the end
    clf = MLPStudent(**{**FAST, "max_epochs": 10}, batch_size=32, group_lasso=2e-2,
                     validation_fraction=0.2, callbacks=[stop]).fit(X[:500], y[:500])
    assert clf.n_pruned_units_ > 0
    assert clf.module_.features[1].weight.shape[0] == clf.hidden_layer_sizes_[0] < 48
    best = dict(clf.net_.callbacks_)["EarlyStopping"]
    assert best.best_epoch_ > 8  # a fine-tuning epoch: the unpruned ones were forgotten


def test_checkpoint_with_load_best_is_refused_before_training(digits, tmp_path):
    X, y = digits
    from skorch.callbacks import Checkpoint

    clf = MLPStudent(max_epochs=3, group_lasso=1e-3, callbacks=[
        Checkpoint(dirname=str(tmp_path), load_best=True)])
    with pytest.raises(ValueError, match=r"MLPStudent: parameter callbacks=.* is invalid; "
                                         "expected no Checkpoint with load_best=True"):
        clf.fit(X[:50], y[:50])
    assert not list(tmp_path.iterdir())


def test_zero_epochs_with_a_penalty_are_refused(digits):
    X, y = digits
    with pytest.raises(InvalidParameterError, match="'max_epochs' parameter of MLPStudent"):
        MLPStudent(hidden_layer_sizes=(8,), max_epochs=0, group_lasso=1e-2).fit(X[:50], y[:50])
