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


# -- the teachers users pick: HistGradientBoosting, pipelines over raw tables ------------------
def _hgb(n_classes=2, **kw):
    from sklearn.ensemble import HistGradientBoostingClassifier

    X, y = make_classification(200, n_features=5, n_informative=3, n_classes=n_classes,
                               random_state=0)
    return HistGradientBoostingClassifier(random_state=0, **kw).fit(X, y)


@pytest.mark.parametrize("n_classes", [2, 3])
def test_count_parameters_of_hist_gradient_boosting_counts_every_node(n_classes):
    hgb = _hgb(n_classes, max_iter=4)
    trees = [tree for iteration in hgb._predictors for tree in iteration]
    assert len(trees) == hgb.n_iter_ * (1 if n_classes == 2 else n_classes)
    assert count_parameters(hgb) == sum(len(tree.nodes) for tree in trees) > len(trees)


def test_count_flops_of_hist_gradient_boosting_by_hand():
    # three leaves per tree hang at depths 1, 2, 2: the longest path tests 2 splits, then the
    # tree adds its leaf value; 2 trees (binary), 3 rows
    hgb = _hgb(max_iter=2, max_leaf_nodes=3)
    assert [sorted(t.nodes["depth"][t.nodes["is_leaf"] == 1]) for i in hgb._predictors
            for t in i] == [[1, 2, 2]] * 2
    assert count_parameters(hgb) == 2 * 5
    assert count_flops(hgb, (3, 5)) == 3 * 2 * (2 + 1)
    with pytest.raises(ValueError, match=r"count_flops: parameter input_shape=\(1, 4\)"):
        count_flops(hgb, (1, 4))
    # stumps, 3 classes: a tree per class and iteration, each one test and one addition
    assert count_flops(_hgb(3, max_iter=2, max_depth=1), (1, 5)) == 2 * 3 * (1 + 1)


@pytest.mark.parametrize("depth", [1, 3])
def test_count_flops_of_hist_gradient_boosting_stay_below_depth_times_trees(depth):
    hgb = _hgb(3, max_iter=5, max_depth=depth)
    n_trees = hgb.n_iter_ * hgb.n_trees_per_iteration_
    per_row = count_flops(hgb, (1, 5))
    assert n_trees < per_row <= n_trees * (depth + 1)  # comparisons + one addition per tree
    assert count_flops(hgb, (7, 5)) == 7 * per_row


def test_count_flops_of_forests_and_boosting_by_hand():
    from sklearn.tree import DecisionTreeClassifier

    X, y = make_classification(60, n_features=4, random_state=0)
    assert count_flops(DecisionTreeClassifier(max_depth=1).fit(X, y), (2, 4)) == 2
    boost = GradientBoostingClassifier(n_estimators=2, max_depth=1, random_state=0).fit(X, y)
    assert count_flops(boost, (1, 4)) == 2 * (1 + 1)
    forest = RandomForestClassifier(n_estimators=3, max_depth=2, random_state=0).fit(X, y)
    # each tree's depth, then its 2 class probabilities added into the average
    assert count_flops(forest, (1, 4)) == sum(t.tree_.max_depth + 2 for t in forest.estimators_)


def test_count_flops_of_categories_from_dtype_count_the_lookups():
    import pandas as pd
    from sklearn.ensemble import HistGradientBoostingClassifier

    rng = np.random.default_rng(0)
    X = pd.DataFrame({"x": rng.normal(size=120),
                      "edu": pd.Categorical(rng.choice(["HS", "BA", "MS"], 120))})
    y = (X["x"] + (X["edu"] == "MS") > 0.5).astype(int)
    hgb = HistGradientBoostingClassifier(max_iter=2, max_depth=1, categorical_features="from_dtype",
                                         random_state=0).fit(X, y)
    assert [len(t.nodes) for i in hgb._predictors for t in i] == [3, 3]
    assert count_flops(hgb, (1, 2)) == 2 * (1 + 1) + 3  # + the 3 categories looked up


F, H, C = 4, 8, 3  # raw features, hidden units, classes of the pipelines' students


def _student(**kw):
    from skdistill import MLPStudent

    return MLPStudent(hidden_layer_sizes=(H,), max_epochs=1, random_state=0, **kw)


def _net(n_in, n_out=C):  # the student's weights and biases, and its FLOPs per row
    return n_in * H + H + H * n_out + n_out, 2 * (n_in * H + H * n_out)


def test_costs_of_a_scaler_and_student_pipeline():
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = make_classification(60, n_features=F, n_informative=3, n_redundant=0,
                               n_classes=C, random_state=0)
    pipe = make_pipeline(StandardScaler(), _student()).fit(X.astype(np.float32), y)
    params, flops = _net(F)
    assert count_parameters(pipe) == 2 * F + params  # a mean and a scale per feature
    assert count_flops(pipe, (3, F)) == 3 * (2 * F + flops)  # subtract and divide


def _table(n=80):
    import pandas as pd

    rng = np.random.default_rng(0)
    X = pd.DataFrame({"age": rng.normal(40, 10, n), "hours": rng.normal(38, 5, n),
                      "edu": rng.choice(["HS", "BA", "MS"], n),
                      "sex": rng.choice(["F", "M"], n)})
    X.loc[::7, "age"] = np.nan
    y = (X["hours"] + 5 * (X["edu"] == "MS") > 40).to_numpy().astype(int)
    return X, y


def _column_pipeline(last):
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline, make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    columns = ColumnTransformer([
        ("num", make_pipeline(SimpleImputer(), StandardScaler()), ["age", "hours"]),
        ("cat", OneHotEncoder(), ["edu", "sex"])])
    return Pipeline([("columns", columns), ("model", last)])


def test_costs_of_a_column_transformer_pipeline_on_a_mixed_table():
    X, y = _table()
    pipe = _column_pipeline(_student()).fit(X, y)
    n_out = 2 + 3 + 2  # two scaled columns, then one-hot HS/BA/MS and F/M
    params, flops = _net(n_out, 2)  # two classes
    # imputer: 2 fill values, scaler: 2 + 2, encoder: 5 categories
    assert count_parameters(pipe) == 2 + 4 + 5 + params
    # per row: 2 missing-value tests, 2 subtractions and 2 divisions, 5 equality tests
    assert count_flops(pipe, (4, 4)) == 4 * (2 + 4 + 5 + flops)
    with pytest.raises(ValueError, match=r"count_flops: parameter input_shape=\(1, 7\)"):
        count_flops(pipe, (1, 7))
    assert inference_time(pipe, X, n_repeats=1, per=1) > 0
    teacher = _column_pipeline(RandomForestClassifier(n_estimators=2, max_depth=2,
                                                      random_state=0)).fit(X, y)
    trees = teacher[-1].estimators_
    assert count_parameters(teacher) == 11 + sum(t.tree_.node_count for t in trees)
    assert count_flops(teacher, (1, 4)) == 11 + sum(t.tree_.max_depth + 2 for t in trees)


def test_a_distiller_counts_its_student_pipeline():
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from skdistill import KnowledgeDistiller

    X, y = make_classification(60, n_features=F, n_informative=3, n_redundant=0,
                               n_classes=C, random_state=0)
    X = X.astype(np.float32)
    distiller = KnowledgeDistiller(LogisticRegression(), _student()).fit(X, y)
    params, flops = _net(F)
    assert count_parameters(distiller) == params
    distiller.student_ = make_pipeline(StandardScaler(), _student()).fit(X, y)
    assert count_parameters(distiller) == 2 * F + params
    assert count_flops(distiller, (2, F)) == 2 * (2 * F + flops)


def test_an_uncountable_step_is_named():
    from sklearn.decomposition import PCA
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import PolynomialFeatures

    X, y = make_classification(40, n_features=F, random_state=0)
    pipe = make_pipeline(PCA(2), LogisticRegression()).fit(X, y)
    with pytest.raises(TypeError, match=r"count_parameters: parameter estimator_or_module has a "
                                        r"step 'pca' \(PCA\) that count_parameters cannot count"):
        count_parameters(pipe)
    table, labels = _table()
    from sklearn.compose import ColumnTransformer

    nested = make_pipeline(ColumnTransformer([("num", PolynomialFeatures(), ["hours"])]),
                           LogisticRegression()).fit(table, labels)
    with pytest.raises(TypeError, match=r"step 'columntransformer__num' \(PolynomialFeatures\)"):
        count_flops(nested, (1, 4))
    # a linear last step has weights to count but no FLOP formula
    scaled = make_pipeline(ColumnTransformer([("num", "passthrough", ["hours"])]),
                           LogisticRegression()).fit(table, labels)
    assert count_parameters(scaled) == 2
    with pytest.raises(TypeError, match=r"count_flops: parameter estimator_or_module has a step "
                                        r"'logisticregression' \(LogisticRegression\)"):
        count_flops(scaled, (1, 4))
