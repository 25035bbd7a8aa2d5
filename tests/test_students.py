"""MLPStudent and CNNStudent: training, soft targets, reproducibility, callbacks, errors."""
import pickle
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.base import clone
from sklearn.datasets import make_classification
from sklearn.dummy import DummyClassifier
from sklearn.model_selection import GridSearchCV
from sklearn.preprocessing import StandardScaler
from skorch.callbacks import Callback, Checkpoint, EarlyStopping, LRScheduler, ProgressBar

from skdistill import CNNStudent, KnowledgeDistiller, MLPStudent
from skdistill.metrics import negative_log_likelihood
from skdistill.engine import BatchIterator, RowDataset

FAST = dict(hidden_layer_sizes=(32,), max_epochs=30, lr=1e-2, random_state=0)


@pytest.fixture(scope="module")
def data():
    X, y = make_classification(n_samples=400, n_features=10, n_informative=6, n_classes=3,
                               random_state=0)
    return StandardScaler().fit_transform(X), y


def test_mlp_beats_the_majority_baseline(data):
    X, y = data
    clf = MLPStudent(**FAST).fit(X[:300], y[:300])
    base = DummyClassifier().fit(X[:300], y[:300])
    assert clf.score(X[300:], y[300:]) > base.score(X[300:], y[300:]) + 0.3
    assert negative_log_likelihood(y[300:], clf.predict_proba(X[300:])) < np.log(3) - 0.3


def test_string_and_noncontiguous_labels(data):
    X, y = data
    names = np.array(["cat", "dog", "emu"])[y]
    clf = MLPStudent(**FAST).fit(X, names)
    assert list(clf.classes_) == ["cat", "dog", "emu"]
    assert set(clf.predict(X)) <= set(names)
    ints = np.array([3, 10, 42])[y]
    clf2 = MLPStudent(**FAST).fit(X, ints)
    np.testing.assert_array_equal(clf2.classes_, [3, 10, 42])
    # Same data, relabelled: same network, same probabilities.
    np.testing.assert_allclose(clf.predict_proba(X), clf2.predict_proba(X), atol=1e-6)


def test_soft_targets_are_learnt(data):
    """Trained on constant soft targets, the student reproduces them."""
    X, y = data
    P = np.tile([0.2, 0.3, 0.5], (len(X), 1))
    clf = MLPStudent(**{**FAST, "max_epochs": 60}).fit(X, y, soft_targets=P)
    np.testing.assert_allclose(clf.predict_proba(X).mean(axis=0), [0.2, 0.3, 0.5], atol=0.03)


def test_width_multiplier_scales_layers():
    X, y = make_classification(n_samples=60, n_features=5, random_state=0)
    clf = MLPStudent(hidden_layer_sizes=(100, 50), width_multiplier=[0.5, 0.1],
                     max_epochs=1).fit(X, y)
    widths = [m.out_features for m in clf.module_.modules() if isinstance(m, torch.nn.Linear)]
    assert widths == [50, 5, 2]
    clf.set_params(width_multiplier=0.001).fit(X, y)
    widths = [m.out_features for m in clf.module_.modules() if isinstance(m, torch.nn.Linear)]
    assert widths == [1, 1, 2]


def test_random_state_gives_identical_fits(data):
    X, y = data
    a = MLPStudent(**FAST, dropout=0.2).fit(X, y).predict_proba(X)
    b = MLPStudent(**FAST, dropout=0.2).fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(a, b)
    c = MLPStudent(**{**FAST, "random_state": 1}, dropout=0.2).fit(X, y).predict_proba(X)
    assert np.abs(a - c).max() > 1e-4


def test_fit_does_not_touch_global_torch_rng(data):
    X, y = data
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    MLPStudent(**{**FAST, "max_epochs": 2}).fit(X, y)
    np.testing.assert_array_equal(torch.rand(3), expected)


class RecordBatches(Callback):
    def initialize(self):
        self.epochs = []
        return self

    def on_epoch_begin(self, net, **kwargs):
        self.epochs.append([])

    def on_batch_begin(self, net, batch=None, training=None, **kwargs):
        if training:
            self.epochs[-1].append(batch[0][:, 0].clone())


def test_training_data_is_shuffled_each_epoch(data):
    X, y = data
    clf = MLPStudent(**{**FAST, "max_epochs": 3, "batch_size": 64},
                     callbacks=[RecordBatches()]).fit(X, y)
    recorder = dict(clf.net_.callbacks_)["RecordBatches"]
    orders = [torch.cat(batches).numpy() for batches in recorder.epochs]
    for order in orders:  # every row exactly once per epoch
        np.testing.assert_allclose(np.sort(order), np.sort(X[:, 0].astype(np.float32)))
    assert not np.array_equal(orders[0], orders[1])
    assert not np.array_equal(orders[0], X[:, 0].astype(np.float32))


def test_batch_iterator_covers_a_subset():
    ds = RowDataset(np.arange(10.0)[:, None], {"y": np.arange(10)})
    sub = torch.utils.data.Subset(ds, [1, 3, 5])
    batches = list(BatchIterator(sub, batch_size=2))
    assert len(batches) == 2
    np.testing.assert_array_equal(torch.cat([b[1]["y"] for b in batches]).numpy(), [1, 3, 5])
    np.testing.assert_array_equal(torch.cat([b[0] for b in batches]).numpy()[:, 0], [1, 3, 5])


def test_float64_and_pandas_input(data):
    X, y = data
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])])
    clf = MLPStudent(**FAST).fit(frame, pd.Series(y))
    np.testing.assert_array_equal(clf.feature_names_in_, frame.columns)
    np.testing.assert_allclose(clf.predict_proba(frame),
                               MLPStudent(**FAST).fit(X, y).predict_proba(X), atol=1e-6)
    assert clf.predict_proba(X.astype(np.float64)).dtype == np.float64


@pytest.mark.parametrize("make", [lambda: MLPStudent(**FAST),
                                  lambda: CNNStudent(max_epochs=2, random_state=0)])
def test_pickle_and_clone_round_trip(make):
    X, y = make_classification(n_samples=120, n_features=16, random_state=0)
    clf = make().fit(X, y)
    again = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(clf.predict_proba(X), again.predict_proba(X))
    refit = clone(clf).fit(X, y)
    np.testing.assert_array_equal(clf.predict_proba(X), refit.predict_proba(X))


def test_skorch_callbacks_pass_through(data, tmp_path, capsys):
    X, y = data
    clf = MLPStudent(
        **{**FAST, "max_epochs": 200}, validation_fraction=0.25,
        callbacks=[EarlyStopping(patience=3), ProgressBar(),
                   Checkpoint(dirname=str(tmp_path), monitor="valid_loss_best"),
                   LRScheduler(policy="StepLR", step_size=1, gamma=0.5)],
    ).fit(X, y)
    assert len(clf.history_) < 200  # stopped early
    assert (tmp_path / "params.pt").exists()
    # StepLR halved the learning rate after every epoch (skorch steps before each epoch).
    lr = clf.net_.optimizer_.param_groups[0]["lr"]
    assert lr == pytest.approx(1e-2 * 0.5 ** (len(clf.history_) - 1))
    used = dict(clf.net_.callbacks_)["EarlyStopping"]
    assert used is not clf.callbacks[0] and used.dynamic_threshold_ is not None
    assert clf.callbacks[0].dynamic_threshold_ is None  # the parameter itself is untouched


def test_grid_search_over_width(data):
    X, y = data
    search = GridSearchCV(MLPStudent(**{**FAST, "max_epochs": 10}),
                          {"width_multiplier": [0.1, 1.0]}, cv=2,
                          scoring="neg_log_loss").fit(X, y)
    assert search.best_params_["width_multiplier"] in (0.1, 1.0)


def test_cnn_image_shapes():
    rng = np.random.default_rng(0)
    X = rng.random((40, 28, 28)).astype(np.float32)
    y = np.arange(40) % 2
    clf = CNNStudent(max_epochs=1, random_state=0).fit(X, y)
    assert clf.input_shape_ == (1, 28, 28)
    convs = [m for m in clf.module_.modules() if isinstance(m, torch.nn.Conv2d)]
    linears = [m for m in clf.module_.modules() if isinstance(m, torch.nn.Linear)]
    # The GPED MNIST network: 28 -conv4-> 25 -pool-> 12 -conv4-> 9 -pool-> 4; 20*4*4 = 320.
    assert [c.out_channels for c in convs] == [10, 20]
    assert [(l.in_features, l.out_features) for l in linears] == [(320, 80), (80, 2)]
    p4 = clf.predict_proba(X[:, None])
    flat = CNNStudent(max_epochs=1, random_state=0, input_shape=(28, 28)).fit(
        X.reshape(40, -1), y)
    np.testing.assert_allclose(flat.predict_proba(X.reshape(40, -1)), p4, atol=1e-6)
    wide = CNNStudent(architecture="cifar", width_multiplier=(0.5, 2), max_epochs=1).fit(
        rng.random((8, 3, 32, 32)), np.arange(8) % 2)
    convs = [m for m in wide.module_.modules() if isinstance(m, torch.nn.Conv2d)]
    linears = [m for m in wide.module_.modules() if isinstance(m, torch.nn.Linear)]
    assert [c.out_channels for c in convs] == [8, 16]
    assert [l.out_features for l in linears] == [400, 100, 2]


# -- bad input ----------------------------------------------------------------------------
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_or_inf_in_X_is_refused(data, bad):
    X, y = data
    X = X.copy()
    X[3, 2] = bad
    with pytest.raises(ValueError, match="MLPStudent"):
        MLPStudent(**FAST).fit(X, y)
    clf = MLPStudent(**{**FAST, "max_epochs": 1}).fit(data[0], y)
    with pytest.raises(ValueError, match="MLPStudent"):
        clf.predict(X)


def test_wrong_feature_count_at_predict(data):
    X, y = data
    clf = MLPStudent(**{**FAST, "max_epochs": 1}).fit(X, y)
    with pytest.raises(ValueError, match="X has 9 features, but MLPStudent is expecting 10"):
        clf.predict_proba(X[:, :9])
    cnn = CNNStudent(max_epochs=1).fit(np.zeros((10, 8, 8)), np.arange(10) % 2)
    with pytest.raises(ValueError, match="X has 49 features, but CNNStudent is expecting 64"):
        cnn.predict(np.zeros((2, 7, 7)))


def test_single_class_is_refused(data):
    X, _ = data
    with pytest.raises(ValueError, match=r"MLPStudent: y has only one class \('a'\)"):
        MLPStudent().fit(X, ["a"] * len(X))


@pytest.mark.parametrize("P, message", [
    (np.full((400, 2), 0.5), r"soft_targets=.*shape \(400, 2\).*expected shape \(400, 3\)"),
    (np.full((400, 3), 0.5), r"soft_targets=.*row 0 sums to 1\.5.*rows that sum to 1"),
    (np.full((400, 3), np.nan), "soft_targets=.*NaN"),
    (np.tile([-0.1, 0.6, 0.5], (400, 1)), "soft_targets=.*non-negative"),
])
def test_bad_soft_targets(data, P, message):
    X, y = data
    with pytest.raises(ValueError, match="MLPStudent: parameter " + message):
        MLPStudent().fit(X, y, soft_targets=P)


@pytest.mark.parametrize("param, value", [
    ("optimizer", "adamax"), ("activation", "swish"), ("lr", -1.0), ("batch_size", 0),
    ("dropout", 1.0), ("width_multiplier", -2.0),
])
def test_bad_parameters_are_named(data, param, value):
    X, y = data
    with pytest.raises(ValueError, match=f"'{param}' parameter of MLPStudent.*Got {value!r}"):
        MLPStudent(**{param: value}).fit(X, y)


def test_bad_width_list_and_hidden_sizes(data):
    X, y = data
    with pytest.raises(ValueError, match=r"MLPStudent: parameter width_multiplier=\[1, 2, 3\]"):
        MLPStudent(hidden_layer_sizes=(4, 4), width_multiplier=[1, 2, 3]).fit(X, y)
    with pytest.raises(ValueError, match=r"MLPStudent: parameter hidden_layer_sizes=\(4, 0\)"):
        MLPStudent(hidden_layer_sizes=(4, 0)).fit(X, y)
    with pytest.raises(ValueError, match=r"CNNStudent: parameter width_multiplier=\(1, 2, 3\)"):
        CNNStudent(width_multiplier=(1, 2, 3)).fit(np.zeros((4, 8, 8)), [0, 1, 0, 1])
    with pytest.raises(ValueError, match=r"CNNStudent: parameter input_shape=\(3, 3\)"):
        CNNStudent(input_shape=(3, 3)).fit(np.zeros((4, 10)), [0, 1, 0, 1])


def test_minimal_student_of_extending_md_fits_and_predicts(capsys):
    """doc/extending.md's BaseStudent subclass (only the settings, ``build_module`` and
    ``check_X``, no pruning parameters) runs as written, fits, predicts and distils."""
    doc = (Path(__file__).resolve().parents[1] / "doc" / "extending.md").read_text()
    [code] = [block for block in re.findall(r"^```python\n(.*?)^```", doc, flags=re.M | re.S)
              if "class LinearStudent(BaseStudent)" in block]
    namespace = {"__name__": "__main__"}
    exec(compile(code, "doc/extending.md", "exec"), namespace)
    capsys.readouterr()
    student, X, y = namespace["student"], namespace["X"], namespace["y"]
    assert student.score(X, y) > 0.85
    assert student.n_pruned_units_ == 0 and "group_lasso" not in student.get_params()
    proba = student.predict_proba(X)
    assert proba.shape == (len(X), 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1, rtol=1e-6)
    np.testing.assert_array_equal(student.predict(X), student.classes_[proba.argmax(axis=1)])
    kd = KnowledgeDistiller(DummyClassifier(strategy="prior"), clone(student),
                            random_state=0).fit(X, y)
    assert kd.predict_proba(X).shape == (len(X), 3)
