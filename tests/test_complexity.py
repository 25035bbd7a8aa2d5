"""Parameter and FLOP counts pinned to hand-computed values."""
import numpy as np
import pytest
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.datasets import make_classification
from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier
from skorch import NeuralNetClassifier

from skdistill.complexity import count_flops, count_parameters, inference_time


def mlp():
    return torch.nn.Sequential(torch.nn.Linear(10, 5), torch.nn.ReLU(), torch.nn.Linear(5, 3))


class _Fitted(ClassifierMixin, BaseEstimator):
    """Stands in for a fitted student: a module_ and, optionally, a merged_module_ (the
    network its predict_proba runs)."""

    def fit(self, X=None, y=None, merged=False):
        self.module_ = mlp()
        if merged:
            self.merged_module_ = torch.nn.Linear(10, 3)
        return self

    def predict_proba(self, X):
        module = getattr(self, "merged_module_", self.module_)
        with torch.no_grad():
            return torch.softmax(module(torch.as_tensor(X)), 1).numpy()


class _Distiller(ClassifierMixin, BaseEstimator):
    def fit(self, X=None, y=None):
        self.student_ = _Fitted().fit()
        return self


def test_count_parameters_of_modules_by_hand():
    # Linear(10, 5): 50 + 5; Linear(5, 3): 15 + 3 -> 73
    assert count_parameters(torch.nn.Linear(10, 5)) == 55
    net = mlp()
    assert count_parameters(net) == 73
    net[0].weight.requires_grad_(False)
    assert count_parameters(net, trainable_only=True) == 23
    assert count_parameters(net) == 73


def test_count_parameters_of_students_prefers_the_merged_network():
    assert count_parameters(_Fitted().fit()) == 73
    assert count_parameters(_Fitted().fit(merged=True)) == 33  # 30 + 3
    assert count_parameters(_Distiller().fit()) == 73


def test_count_parameters_of_skorch_net_and_unfitted_estimators():
    X, y = make_classification(40, n_features=10, random_state=0)
    net = NeuralNetClassifier(torch.nn.Sequential(torch.nn.Linear(10, 2), torch.nn.Softmax(-1)),
                              max_epochs=1, train_split=None)
    with pytest.raises(NotFittedError):
        count_parameters(net)
    net.fit(X.astype(np.float32), y)
    assert count_parameters(net) == 22
    with pytest.raises(NotFittedError):
        count_parameters(_Fitted())
    with pytest.raises(NotFittedError):
        count_flops(RandomForestClassifier(), (1, 10))


def test_count_parameters_of_sklearn_models():
    X, y = make_classification(60, n_features=4, random_state=0)
    forest = RandomForestClassifier(n_estimators=3, max_depth=2, random_state=0).fit(X, y)
    assert count_parameters(forest) == sum(t.tree_.node_count for t in forest.estimators_)
    boost = GradientBoostingClassifier(n_estimators=2, max_depth=1, random_state=0).fit(X, y)
    assert count_parameters(boost) == 2 * 3  # two stumps of three nodes
    assert count_parameters(LogisticRegression().fit(X, y)) == 5  # 4 weights + 1 bias
    mlp_clf = MLPClassifier((3,), max_iter=5).fit(X, y)
    assert count_parameters(mlp_clf) == 4 * 3 + 3 + 3 * 1 + 1
    with pytest.raises(TypeError, match="count_parameters: parameter estimator_or_module="):
        count_parameters("not a model")


def test_count_flops_by_hand():
    # addmm counts 2 * batch * in * out; the bias add is not counted
    assert count_flops(torch.nn.Linear(10, 5), (1, 10)) == 100
    # batch 4: 2*4*10*5 + 2*4*5*3 = 400 + 120
    assert count_flops(mlp(), (4, 10)) == 520
    # Conv2d(1, 2, 3) on 5x5: 3x3 outputs x 2 channels, 9 mult-adds each -> 2 * 18 * 9
    assert count_flops(torch.nn.Conv2d(1, 2, 3), (1, 1, 5, 5)) == 324
    assert count_flops(_Fitted().fit(merged=True), (1, 10)) == 2 * 10 * 3


def test_count_flops_keeps_the_training_mode_and_rejects_bad_shapes():
    net = torch.nn.Sequential(torch.nn.Linear(10, 5), torch.nn.Dropout(0.5))
    net.train()
    count_flops(net, [2, 10])
    assert net.training
    with pytest.raises(ValueError, match="count_flops: parameter input_shape=784"):
        count_flops(net, 784)
    X, y = make_classification(30, n_features=4, random_state=0)
    with pytest.raises(TypeError, match="count_flops: parameter estimator_or_module="):
        count_flops(LogisticRegression().fit(X, y), (1, 4))


def test_inference_time_is_positive():
    X, y = make_classification(200, random_state=0)
    model = LogisticRegression().fit(X, y)
    assert inference_time(model, X, n_repeats=2, per=100) > 0
    with pytest.raises(ValueError, match="inference_time: parameter n_repeats=0"):
        inference_time(model, X, n_repeats=0)


# -- what predict_proba really does (issue 21, item 6) ------------------------------------------
D, H, C = 6, 8, 3  # features, hidden units, classes of the posterior teachers below
FORWARD = 2 * (D * H + H * C)  # one pass of the D-H-C network at one row


def _data():
    X, y = make_classification(60, n_features=D, n_informative=4, n_classes=C,
                               random_state=0)
    return X.astype(np.float32), y


def _laplace(n_samples, **kw):
    from skdistill import LaplaceTeacher, MLPStudent

    return LaplaceTeacher(MLPStudent(hidden_layer_sizes=(H,), max_epochs=1, random_state=0),
                          n_samples=n_samples, random_state=0, **kw).fit(*_data())


def test_flops_of_a_vi_teacher_count_every_posterior_sample():
    from skdistill import VITeacher

    for n_samples in (1, 10):
        teacher = VITeacher(hidden_layer_sizes=(H,), max_epochs=1, n_samples=n_samples,
                            random_state=0).fit(*_data())
        assert count_flops(teacher, (1, D)) == n_samples * FORWARD


def test_flops_of_an_sgld_teacher_count_every_kept_sample():
    from skdistill import SGLDTeacher

    teacher = SGLDTeacher(hidden_layer_sizes=(H,), n_iter=60, burn_in=20, thinning=10,
                          random_state=0).fit(*_data())
    assert count_flops(teacher, (1, D)) == len(teacher.samples_) * FORWARD


def test_flops_of_a_last_layer_laplace_teacher():
    # the trunk once, the MAP head and one head product per draw; the draws' triangular
    # solves (P^2 per draw, once per call) with the head's P = H * C + C parameters
    P = H * C + C
    for n_samples in (1, 10):
        teacher = _laplace(n_samples)
        assert count_flops(teacher, (1, D)) == FORWARD + n_samples * (2 * H * C + P * P)
        assert count_flops(teacher, (2, D)) - count_flops(teacher, (1, D)) == (
            FORWARD + n_samples * 2 * H * C)


def test_flops_of_an_all_weights_laplace_teacher_grow_with_the_draws():
    # a Jacobian-vector product per draw: at least the forward pass and its tangent
    one, ten = (count_flops(_laplace(s, subset_of_weights="all", hessian_structure="diag"),
                            (1, D)) for s in (1, 10))
    assert one >= 2 * FORWARD
    assert ten == 10 * one


def test_flops_of_a_probit_laplace_teacher_count_the_jacobian_and_its_solves():
    P = H * C + C
    full = _laplace(1, link_approx="probit")
    # last layer: the network, then per row and class a solve with the P x P Cholesky factor
    assert count_flops(full, (1, D)) == FORWARD + C * P * P
    assert count_flops(full, (1, D)) == count_flops(_laplace(10, link_approx="probit"), (1, D))
    assert count_flops(_laplace(1, link_approx="probit", hessian_structure="diag"),
                       (1, D)) == FORWARD
    # all weights: the network and, per class, a backward pass for the Jacobian (at least as
    # costly as the forward); the full Hessian adds the solves with all P parameters
    diag, full = (_laplace(1, link_approx="probit", subset_of_weights="all",
                           hessian_structure=h) for h in ("diag", "full"))
    assert count_flops(diag, (1, D)) >= (1 + C) * FORWARD
    assert count_flops(full, (1, D)) - count_flops(diag, (1, D)) == C * full.n_params_ ** 2
