"""The one training engine, seen from every estimator that trains through it.

sample_weight semantics, sparse input (densified one minibatch at a time), the public teacher
protocol with a teacher written outside the package, the student's own settings honoured
under every distiller, user-defined objectives, and the thread cap.
"""
import math

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from scipy.sparse._compressed import _cs_matrix
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_digits, make_classification
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder
from skorch.callbacks import Callback, EarlyStopping, LRScheduler
from torch import nn

from skdistill import (CNNStudent, CrossFitDistiller, DeepEnsembleTeacher, EnsembleDistiller,
                       GPEDDistiller, KnowledgeDistiller, LatentBEStudent, MLPStudent,
                       SGLDTeacher)
from skdistill import engine
from skdistill.engine import Objective
from skdistill.losses import SoftTargetCrossEntropy

# Short chains on purpose: GPED's budget warning has its own tests elsewhere.
pytestmark = pytest.mark.filterwarnings("ignore:GPEDDistiller.*student only:UserWarning")

N, BATCH = 240, 32


# -- data ---------------------------------------------------------------------------------------

def _tabular():
    X, y = make_classification(n_samples=N, n_features=6, n_informative=4, n_redundant=0,
                               n_classes=3, n_clusters_per_class=1, class_sep=2.0,
                               random_state=0)
    X = (X - X.mean(0)) / X.std(0)
    return X.astype(np.float32), y


def _images():
    X, y = load_digits(n_class=3, return_X_y=True)
    return (X[:N] / 16).astype(np.float32), y[:N]


TABULAR, IMAGES = _tabular(), _images()


def _corrupt(y, rows):
    """Labels of ``rows`` moved to another existing class."""
    bad = y.copy()
    bad[rows] = (bad[rows] + 1) % 3
    return bad


# -- estimators, each a fresh one with fixed seeds ------------------------------------------------

def mlp(**kw):
    params = dict(hidden_layer_sizes=(8,), max_epochs=4, batch_size=BATCH, lr=1e-2,
                  random_state=0)
    return MLPStudent(**{**params, **kw})


def latent_be(**kw):
    params = dict(n_members=2, hidden_layer_sizes=(8,), max_epochs=4, batch_size=BATCH,
                  lr=1e-2, random_state=0)
    return LatentBEStudent(**{**params, **kw})


def cnn(**kw):
    params = dict(width_multiplier=0.5, max_epochs=3, batch_size=BATCH, lr=1e-2,
                  random_state=0)
    return CNNStudent(**{**params, **kw})


def rf(**kw):
    return RandomForestClassifier(n_estimators=10, random_state=0, **kw)


def kd(**kw):
    # alpha < 1: the labels enter the student's loss too, so a student that ignored the
    # weights would learn the corrupted labels of zero-weight rows
    return KnowledgeDistiller(rf(), mlp(**kw), alpha=0.5, random_state=0)


def crossfit_net(**kw):
    return CrossFitDistiller(rf(), mlp(**kw), n_folds=3, stratify=False, gamma_alpha=0.1,
                             random_state=0)


def crossfit_rf():
    # bootstrap=False: scikit-learn's sparse and dense splitters break the ties of bootstrap
    # duplicates differently, so a bootstrapped forest differs between sparse and dense X
    regressor = RandomForestRegressor(n_estimators=10, bootstrap=False, max_features=3,
                                      random_state=0)
    return CrossFitDistiller(rf(), regressor, n_folds=3, stratify=False, gamma_alpha=0.1, random_state=0)


def deep_ensemble():
    return DeepEnsembleTeacher(mlp(max_epochs=3), n_members=2, random_state=0)


def ensemble(**kw):
    return EnsembleDistiller(deep_ensemble(), latent_be(**kw), method="one-to-one",
                             alpha=0.5, random_state=0)


def sgld(**kw):
    params = dict(hidden_layer_sizes=(8,), step_size=1e-3, prior_precision=1.0,
                  batch_size=BATCH, n_iter=300, burn_in=100, thinning=20, random_state=0)
    return SGLDTeacher(**{**params, **kw})


def gped(**kw):
    student = MLPStudent(hidden_layer_sizes=(8,), lr=1e-2, batch_size=BATCH, random_state=0)
    params = dict(teacher=sgld(), student=student, n_iter=300, burn_in=100, thinning=1,
                  random_state=0)
    return GPEDDistiller(**{**params, **kw})


ESTIMATORS = {
    "MLPStudent": (mlp, TABULAR),
    "LatentBEStudent": (latent_be, TABULAR),
    "CNNStudent": (cnn, IMAGES),
    "KnowledgeDistiller": (kd, TABULAR),
    "CrossFitDistiller-net": (crossfit_net, TABULAR),
    "CrossFitDistiller-rf": (crossfit_rf, TABULAR),
    "EnsembleDistiller": (ensemble, TABULAR),
    "GPEDDistiller": (gped, TABULAR),
    "DeepEnsembleTeacher": (deep_ensemble, TABULAR),
    "SGLDTeacher": (sgld, TABULAR),
}
NAMES = list(ESTIMATORS)


def proba(name, X=None, y=None, sample_weight=None):
    make, (X0, y0) = ESTIMATORS[name]
    X = X0 if X is None else X
    y = y0 if y is None else y
    model = make().fit(X, y, sample_weight=sample_weight)
    return model.predict_proba(X0)


# -- 1. sample_weight ------------------------------------------------------------------------------

@pytest.mark.parametrize("name", NAMES)
def test_sample_weight_semantics(name):
    """None is exactly all ones; weight 0 is no influence (not vacuous); weights matter."""
    X, y = ESTIMATORS[name][1]
    rng = np.random.default_rng(1)
    unweighted = proba(name)
    np.testing.assert_array_equal(proba(name, sample_weight=np.ones(N)), unweighted)

    rows = rng.choice(N, size=N // 4, replace=False)
    zero = np.ones(N)
    zero[rows] = 0.0
    bad_y = _corrupt(y, rows)
    clean = proba(name, sample_weight=zero)
    np.testing.assert_array_equal(proba(name, y=bad_y, sample_weight=zero), clean)
    # the corruption matters when those rows count: the check above is not vacuous
    assert np.abs(proba(name, y=bad_y) - unweighted).max() > 1e-2

    varied = rng.uniform(0.1, 3.0, size=N)
    assert np.abs(proba(name, sample_weight=varied) - unweighted).max() > 1e-2


@pytest.mark.parametrize("name", NAMES)
def test_bad_sample_weight_is_refused_naming_the_estimator(name):
    make, (X, y) = ESTIMATORS[name]
    cls = type(make()).__name__
    bad = {"negative": np.r_[-1.0, np.ones(N - 1)], "length": np.ones(N - 1),
           "nan": np.r_[np.nan, np.ones(N - 1)], "zero": np.zeros(N),
           "inf": np.r_[np.inf, np.ones(N - 1)]}
    for what, weight in bad.items():
        with pytest.raises(ValueError, match=cls) as info:
            make().fit(X, y, sample_weight=weight)
        assert str(info.value).startswith(cls), (what, str(info.value))


class NoWeightClassifier(ClassifierMixin, BaseEstimator):
    """Nearest-centroid probabilities; its fit has no sample_weight."""

    def fit(self, X, y):
        self.classes_, y_enc = np.unique(y, return_inverse=True)
        self.centroids_ = np.stack([X[y_enc == k].mean(0) for k in range(len(self.classes_))])
        self.n_features_in_ = X.shape[1]
        return self

    def predict_proba(self, X):
        d = ((np.asarray(X)[:, None, :] - self.centroids_[None]) ** 2).sum(-1)
        z = np.exp(-(d - d.min(1, keepdims=True)))
        return z / z.sum(1, keepdims=True)


def test_teacher_without_sample_weight_warns_and_the_fit_still_works():
    X, y = TABULAR
    weight = np.random.default_rng(0).uniform(0.5, 2.0, size=N)
    model = KnowledgeDistiller(NoWeightClassifier(), mlp(max_epochs=10))
    with pytest.warns(UserWarning, match="KnowledgeDistiller: .*NoWeightClassifier"):
        model.fit(X, y, sample_weight=weight)
    assert model.predict_proba(X).shape == (N, 3)
    assert model.score(X, y) > 0.8
    # the student still used the weights
    plain = KnowledgeDistiller(NoWeightClassifier(), mlp(max_epochs=10)).fit(X, y)
    assert np.abs(plain.predict_proba(X) - model.predict_proba(X)).max() > 1e-3


@pytest.mark.parametrize("kind", ["ensemble", "gped"])
def test_weights_reach_the_student_when_the_teacher_takes_none(kind, easy):
    """A teacher that ignores the weights (warned): the student's loss still uses them."""
    X, y, _, _ = easy
    weight = np.ones(len(X))
    weight[y == 0] = 0.05

    def make():
        if kind == "ensemble":
            return EnsembleDistiller(LinearEnsemble(), mlp(max_epochs=5), method="kd",
                                     random_state=0)
        return GPEDDistiller(LinearEnsemble(), mlp(max_epochs=5), random_state=0)

    plain = make().fit(X, y).predict_proba(X)
    with pytest.warns(UserWarning, match="LinearEnsemble"):
        weighted = make().fit(X, y, sample_weight=weight).predict_proba(X)
    # rows of class 0 barely count: the student gives class 0 less probability
    assert weighted[:, 0].mean() < plain[:, 0].mean() - 0.02


# -- 2. sparse input -------------------------------------------------------------------------------

@pytest.fixture
def densified(monkeypatch):
    """Row counts of every sparse matrix densified (csr/csc toarray, todense goes through it)."""
    rows = []
    original = _cs_matrix.toarray

    def recording(self, *args, **kwargs):
        rows.append(self.shape[0])
        return original(self, *args, **kwargs)

    monkeypatch.setattr(_cs_matrix, "toarray", recording)
    return rows


@pytest.mark.parametrize("name", NAMES)
def test_sparse_input_matches_dense_and_is_densified_batch_by_batch(name, densified):
    make, (X, y) = ESTIMATORS[name]
    dense = make().fit(X, y).predict_proba(X)
    Xs = sp.csr_matrix(X)
    del densified[:]
    model = make().fit(Xs, y)
    during_fit = list(densified)
    if name != "CrossFitDistiller-rf":  # forests never densify; every network does, by batch
        assert during_fit, "the sparse fit never densified a batch: was it densified whole?"
    assert max(during_fit, default=0) <= BATCH < N
    np.testing.assert_allclose(model.predict_proba(X), dense, rtol=0, atol=1e-6)

    del densified[:]
    np.testing.assert_allclose(model.predict_proba(Xs), dense, rtol=0, atol=1e-6)
    big = sp.vstack([Xs] * 20, format="csr")  # 4,800 rows: more than one 4,096 chunk
    del densified[:]
    out = model.predict_proba(big)
    np.testing.assert_allclose(out[N:2 * N], dense, rtol=0, atol=1e-6)
    assert max(densified, default=0) <= 4096 < big.shape[0]


def test_dense_chunks_never_exceed_the_chunk(densified):
    X = sp.random(10_000, 5, density=0.3, format="csr", random_state=0, dtype=np.float32)
    chunks = list(engine.dense_chunks(X, chunk=4096))
    assert [len(c) for c in chunks] == [4096, 4096, 1808]
    assert max(densified) == 4096
    np.testing.assert_array_equal(torch.cat(chunks).numpy(), X.toarray())


def test_pipeline_with_sparse_one_hot_columns_into_knowledge_distiller():
    rng = np.random.default_rng(0)
    n = 300
    colour = rng.choice(["red", "green", "blue", "black", "white"], size=n)
    size = rng.normal(size=n)
    y = np.where((colour == "red") | (colour == "blue"), 1, 0) ^ (size > 1.2)
    X = np.empty((n, 2), dtype=object)
    X[:, 0], X[:, 1] = colour, size
    columns = ColumnTransformer([("colour", OneHotEncoder(), [0])], remainder="passthrough",
                                sparse_threshold=1.0)
    assert sp.issparse(columns.fit_transform(X))
    model = Pipeline([("columns", columns),
                      ("kd", KnowledgeDistiller(rf(), mlp(max_epochs=30), random_state=0))])
    model.fit(X, y)
    assert model.predict_proba(X).shape == (n, 2)
    assert model.score(X, y) > 0.85


# -- 3. the public teacher protocol, with a teacher written outside the package ------------------

class _Sample:
    def __init__(self, module):
        self.module = module

    def __call__(self, X):
        with torch.no_grad():
            return torch.softmax(self.module(X), dim=-1)


class LinearEnsemble(ClassifierMixin, BaseEstimator):
    """A deep-ensemble-like teacher of linear members on bootstrap samples (numpy + torch)."""

    def __init__(self, n_members=3, n_steps=60, lr=0.5, random_state=None):
        self.n_members = n_members
        self.n_steps = n_steps
        self.lr = lr
        self.random_state = random_state

    def fit(self, X, y):
        X = np.asarray(X, dtype=np.float32)
        self.classes_, y_enc = np.unique(y, return_inverse=True)
        self.n_features_in_ = X.shape[1]
        seed = 0 if self.random_state is None else int(self.random_state)
        gen = torch.Generator().manual_seed(seed)
        rng = np.random.default_rng(seed)
        self.modules_ = []
        for _ in range(self.n_members):
            rows = rng.integers(0, len(X), size=len(X))
            xt, yt = torch.from_numpy(X[rows]), torch.from_numpy(y_enc[rows])
            member = nn.Linear(X.shape[1], len(self.classes_))
            with torch.no_grad():
                member.weight.copy_(torch.randn(member.weight.shape, generator=gen))
                member.bias.zero_()
            optimiser = torch.optim.SGD(member.parameters(), lr=self.lr)
            for _ in range(self.n_steps):
                optimiser.zero_grad()
                nn.functional.cross_entropy(member(xt), yt).backward()
                optimiser.step()
            self.modules_.append(member.eval().requires_grad_(False))
        return self

    def sample_proba(self, X):
        xt = torch.as_tensor(np.asarray(X, dtype=np.float32))
        return np.stack([_Sample(m)(xt).double().numpy() for m in self.modules_])

    def predict_proba(self, X):
        return self.sample_proba(X).mean(0)

    def predict(self, X):
        return self.classes_[self.predict_proba(X).argmax(1)]

    def iter_samples(self, X, y):
        if not hasattr(self, "modules_"):
            self.fit(X, y)
        for member in self.modules_:
            yield _Sample(member)


@pytest.fixture(scope="module")
def easy():
    X, y = make_classification(n_samples=300, n_features=5, n_informative=3, n_redundant=0,
                               n_classes=3, n_clusters_per_class=1, class_sep=2.0,
                               random_state=1)
    X = ((X - X.mean(0)) / X.std(0)).astype(np.float32)
    return X[:200], y[:200], X[200:], y[200:]


def test_external_teacher_honours_the_protocol_itself(easy):
    X, y, X_test, _ = easy
    teacher = LinearEnsemble(random_state=0).fit(X, y)
    S = teacher.sample_proba(X_test)
    assert S.shape == (3, len(X_test), 3)
    np.testing.assert_allclose(S.sum(-1), 1.0, atol=1e-6)
    samples = list(LinearEnsemble(random_state=0).iter_samples(X, y))
    got = np.stack([s(torch.from_numpy(X_test)).numpy() for s in samples])
    np.testing.assert_allclose(got, S, atol=1e-6)


@pytest.mark.parametrize("kind", ["kd", "ensemble-kd", "one-to-one-tdiv", "gped"])
def test_external_teacher_is_distilled_by_every_distiller(easy, kind):
    X, y, X_test, y_test = easy
    teacher = LinearEnsemble(random_state=0)
    if kind == "kd":
        model = KnowledgeDistiller(teacher, mlp(max_epochs=20), random_state=0)
    elif kind == "ensemble-kd":
        model = EnsembleDistiller(teacher, mlp(max_epochs=20), method="kd", temperature=1.0,
                                  random_state=0)
    elif kind == "one-to-one-tdiv":
        model = EnsembleDistiller(teacher, latent_be(n_members=3, max_epochs=20),
                                  method="one-to-one", perturbation="tdiv-sdiv",
                                  temperature=1.0, random_state=0)
    else:
        model = GPEDDistiller(teacher, mlp(max_epochs=25), random_state=0)
    model.fit(X, y)
    teacher_ = model.teacher_
    assert type(teacher_) is LinearEnsemble and len(teacher_.modules_) == 3
    assert teacher_.score(X_test, y_test) > 0.85
    assert model.score(X_test, y_test) > 0.85
    assert model.student_.net_ is not None and model.history_ is model.student_.history_
    if kind == "gped":
        # cycled samples: max_epochs passes of len(X) // batch_size steps each
        assert len(model.history_) == 25
        assert model.n_student_steps_ == 25 * (len(X) // BATCH)
        gap = np.abs(model.predict_proba(X_test) - teacher_.predict_proba(X_test)).mean()
        assert gap < 0.05


def test_gped_refuses_chain_parameters_for_a_teacher_without_a_chain(easy):
    X, y, _, _ = easy
    for param in ("n_iter", "burn_in", "thinning"):
        with pytest.raises(ValueError, match=f"GPEDDistiller: parameter {param}=.*LinearEnsemble"):
            GPEDDistiller(LinearEnsemble(), mlp(), **{param: 5}).fit(X, y)


# -- 4. the student's settings under every distiller --------------------------------------------

def _slow_student(kind):
    """A student with a learning rate too small to improve: EarlyStopping must fire."""
    kw = dict(lr=1e-7, max_epochs=50, validation_fraction=0.2,
              callbacks=[EarlyStopping(patience=1)])
    return latent_be(**kw) if kind == "ensemble" else mlp(**kw)


@pytest.mark.parametrize("kind", ["kd", "crossfit", "ensemble"])
def test_early_stopping_and_validation_fraction_apply_under_every_distiller(kind):
    X, y = TABULAR
    student = _slow_student(kind)
    model = {"kd": lambda: KnowledgeDistiller(rf(), student, random_state=0),
             "crossfit": lambda: CrossFitDistiller(rf(), student, n_folds=3, random_state=0),
             "ensemble": lambda: EnsembleDistiller(deep_ensemble(), student,
                                                   random_state=0)}[kind]()
    model.fit(X, y)
    history = model.history_
    assert history is model.student_.history_
    assert "valid_loss" in history[-1]
    assert len(history) < 50
    # 80% of the rows train, 20% validate
    assert sum(b.get("train_batch_size", 0) for b in history[0]["batches"]) == int(N * 0.8)


@pytest.mark.parametrize("make", [
    lambda kw: KnowledgeDistiller(rf(), mlp(**kw), random_state=0),
    lambda kw: CrossFitDistiller(rf(), mlp(**kw), n_folds=3, random_state=0),
    lambda kw: EnsembleDistiller(deep_ensemble(), latent_be(**kw), random_state=0),
], ids=["kd", "crossfit", "ensemble"])
def test_history_epochs_and_batch_size_are_the_students(make):
    X, y = TABULAR
    model = make(dict(max_epochs=3, batch_size=50)).fit(X, y)
    history = model.history_
    assert history is model.student_.history_ is model.student_.net_.history
    assert len(history) == 3 and all("train_loss" in row for row in history)
    for row in history:
        assert len(row["batches"]) == math.ceil(N / 50) == row["train_batch_count"]
        assert [b["train_batch_size"] for b in row["batches"]] == [50, 50, 50, 50, 40]


@pytest.mark.parametrize("make", [
    lambda: KnowledgeDistiller(rf(), mlp(max_epochs=2), verbose=1, random_state=0),
    lambda: EnsembleDistiller(deep_ensemble(), latent_be(max_epochs=2), verbose=1,
                              random_state=0),
], ids=["kd", "ensemble"])
def test_distiller_verbose_prints_the_student_epoch_table(make, capsys):
    X, y = TABULAR
    capsys.readouterr()
    make().fit(X, y)
    out = capsys.readouterr().out
    assert "epoch" in out and "train_loss" in out and "dur" in out
    lines = [line for line in out.splitlines() if line.strip()[:1].isdigit()]
    assert len(lines) >= 2


class _BatchSpy(Callback):
    """Records, at each training batch, the mode the network is in and the learning rate."""

    def initialize(self):
        self.begin, self.modes, self.lrs = 0, [], []  # modes: (training pass, module mode)
        return self

    def on_batch_begin(self, net, training=None, **kwargs):
        self.begin += 1

    def on_batch_end(self, net, training=None, **kwargs):
        self.modes.append((training, net.module_.training))
        if training:
            self.lrs.append(net.optimizer_.param_groups[0]["lr"])


def test_per_batch_callbacks_are_called_and_training_mode_follows_the_pass():
    """The engine calls only the callbacks that act per batch: those must see every batch
    (train and valid), an LRScheduler stepping per batch must act, and each training batch runs
    in train mode and each validation batch in eval mode."""
    X, y = TABULAR
    spy = _BatchSpy()
    sched = LRScheduler(torch.optim.lr_scheduler.StepLR, step_size=1, gamma=0.5,
                        step_every="batch")
    student = mlp(max_epochs=2, batch_size=50, validation_fraction=0.25,
                  callbacks=[("spy", spy), ("sched", sched)]).fit(X, y)
    spy = dict(student.net_.callbacks_)["spy"]
    n_train, n_valid = math.ceil(N * 0.75 / 50), math.ceil(N * 0.25 / 50)
    assert spy.begin == 2 * (n_train + n_valid)
    assert spy.modes == ([(True, True)] * n_train + [(False, False)] * n_valid) * 2
    assert spy.lrs == [1e-2 * 0.5 ** k for k in range(2 * n_train)]
    assert not student.net_.module_.training  # left in eval mode after the last validation


def test_gped_student_is_fitted_with_net_and_history():
    X, y = TABULAR
    model = gped().fit(X, y)
    student = model.student_
    assert student.net_ is not None and model.history_ is student.history_
    assert len(model.history_) >= 1 and all("train_loss" in row for row in model.history_)
    assert model.n_student_steps_ == (300 - 100) // 1
    # distill_batch_size=None: the student's batch_size is the distillation batch
    sizes = {b["train_batch_size"] for row in model.history_ for b in row["batches"]}
    assert sizes == {BATCH}


def test_gped_distill_batch_size_when_only_it_is_given():
    X, y = TABULAR
    student = MLPStudent(hidden_layer_sizes=(8,), lr=1e-2, random_state=0)  # default batch
    model = gped(student=student, distill_batch_size=20, n_iter=150).fit(X, y)
    sizes = {b["train_batch_size"] for row in model.history_ for b in row["batches"]}
    assert sizes == {20}
    # the same value on both is no conflict
    gped(distill_batch_size=BATCH, n_iter=120).fit(X, y)


def test_gped_rejections_name_the_distiller():
    X, y = TABULAR
    calls = []
    teacher = sgld(step_size=lambda t: calls.append(t) or 1e-3)
    student = dict(hidden_layer_sizes=(8,), random_state=0)
    with pytest.raises(ValueError, match="GPEDDistiller: parameter student=.*max_epochs"):
        gped(teacher=teacher, student=MLPStudent(max_epochs=7, **student)).fit(X, y)
    with pytest.raises(ValueError, match="GPEDDistiller: parameter student=.*validation_fraction"):
        gped(teacher=teacher,
             student=MLPStudent(validation_fraction=0.2, **student)).fit(X, y)
    with pytest.raises(ValueError, match="GPEDDistiller: parameter distill_batch_size=50 .*"
                                         "batch_size=32"):
        gped(teacher=teacher, distill_batch_size=50).fit(X, y)
    assert calls == []  # refused before the chain ran


# -- 5. a user-defined objective -------------------------------------------------------------------

class RuleObjective(Objective):
    """Targets computed per batch from the inputs (the sign of column 0, not y), and noise on
    training inputs; every call is recorded."""

    def __init__(self, X_clean, noise):
        super().__init__(SoftTargetCrossEntropy(reduction="none"), n_outputs=2)
        self.X_clean, self.noise = torch.as_tensor(X_clean), noise
        self.perturbed, self.seen = [], []

    def perturb(self, X, rows, module):
        out = X + self.noise * torch.randn_like(X)
        self.perturbed.append(rows["index"].clone())
        return out

    def batch_targets(self, X, rows, training):
        clean = self.X_clean[rows["index"]]
        self.seen.append((training, bool(torch.equal(X, clean)), len(X)))
        return (clean[:, 0] > 0).long()


def test_user_objective_with_per_batch_targets_and_training_only_perturbation():
    X, y = TABULAR
    objective = RuleObjective(X, noise=0.05)
    student = mlp(max_epochs=15, validation_fraction=0.25)
    student.fit_objective(X, y, objective)
    n_train, n_valid = N - N // 4, N // 4
    train = [s for s in objective.seen if s[0]]
    valid = [s for s in objective.seen if not s[0]]
    assert sum(s[2] for s in train) == 15 * n_train
    assert sum(s[2] for s in valid) == 15 * n_valid
    assert not any(same for _, same, _ in train)  # training batches arrive perturbed
    assert all(same for _, same, _ in valid)  # validation batches never are
    assert len(objective.perturbed) == len(train)
    # the per-batch targets were learnt (the network has the objective's 2 outputs)
    logits = student.forward(X)
    assert logits.shape == (N, 2)
    rule = (X[:, 0] > 0).astype(int)
    assert (logits.argmax(1).numpy() == rule).mean() > 0.9
    assert "valid_loss" in student.history_[-1]


# -- 6. threads -------------------------------------------------------------------------------------

def test_limit_threads_caps_torch_threads_on_a_dask_worker(monkeypatch):
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        monkeypatch.setattr(engine, "_dask_worker_threads", lambda: 2)
        assert engine.worker_threads() == 1
        with engine.limit_threads():
            assert torch.get_num_threads() == 1
        assert torch.get_num_threads() == 2
        # restored also when the block raises
        with pytest.raises(RuntimeError):
            with engine.limit_threads():
                assert torch.get_num_threads() == 1
                raise RuntimeError
        assert torch.get_num_threads() == 2
        # a worker running one task at a time gives it all the threads torch has there
        monkeypatch.setattr(engine, "_dask_worker_threads", lambda: 1)
        assert engine.worker_threads() == 2
        with engine.limit_threads():
            assert torch.get_num_threads() == 2
        # outside a dask worker nothing changes
        monkeypatch.setattr(engine, "_dask_worker_threads", lambda: None)
        with engine.limit_threads():
            assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_a_fit_on_a_dask_worker_runs_with_its_threads(monkeypatch):
    X, y = TABULAR
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    seen = []
    original = engine.StudentNet.fit

    def recording(self, *args, **kwargs):
        seen.append(torch.get_num_threads())
        return original(self, *args, **kwargs)

    try:
        monkeypatch.setattr(engine, "_dask_worker_threads", lambda: 2)
        monkeypatch.setattr(engine.StudentNet, "fit", recording)
        mlp(max_epochs=1).fit(X, y)
        assert seen == [1] and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)



def test_fits_at_once_on_a_dask_worker_each_get_their_share(monkeypatch):
    # two tasks at once on a two-thread worker whose torch has 4 threads: 2 each, whatever
    # the order; the second must not divide what the first already divided
    import threading

    before = torch.get_num_threads()
    torch.set_num_threads(4)
    monkeypatch.setattr(engine, "_dask_worker_threads", lambda: 2)
    first_in, second_in, first_out = threading.Event(), threading.Event(), threading.Event()
    seen = {}

    def first():
        with engine.limit_threads():
            seen["first"] = torch.get_num_threads()
            first_in.set()
            second_in.wait(10)
        first_out.set()

    def second():
        first_in.wait(10)
        with engine.limit_threads():
            seen["second"] = engine.worker_threads(), torch.get_num_threads()
            second_in.set()
            first_out.wait(10)

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(20)
        assert seen == {"first": 2, "second": (2, 2)}
        assert torch.get_num_threads() == 4  # the worker's threads, once both have left
        with engine.limit_threads(), engine.limit_threads():  # nested: the same share
            assert torch.get_num_threads() == 2
        assert torch.get_num_threads() == 4
    finally:
        torch.set_num_threads(before)

# -- fixes from the review of the engine ---------------------------------------------------------

class ShortChain(LinearEnsemble):
    """A chain teacher (skdistill.base.PosteriorChain) whose stream ends before the student's
    budget."""

    def __init__(self, n_iter=300, burn_in=100, n_members=2, n_steps=20, lr=0.5,
                 random_state=None):
        super().__init__(n_members, n_steps, lr, random_state)
        self.n_iter = n_iter
        self.burn_in = burn_in

    def chain_length(self):
        return self.n_iter, self.burn_in

    def set_chain_length(self, n_iter=None, burn_in=None):
        self.n_iter = self.n_iter if n_iter is None else n_iter
        self.burn_in = self.burn_in if burn_in is None else burn_in
        return self

    def iter_samples(self, X, y, sample_weight=None, *, every=None, keep=False):
        self.calls_ = getattr(self, "calls_", 0) + 1
        yield from super().iter_samples(X, y)


def test_a_chain_that_runs_out_is_not_restarted(easy):
    X, y, _, _ = easy
    student = MLPStudent(hidden_layer_sizes=(8,), lr=1e-2, random_state=0)
    with pytest.warns(UserWarning, match="only 200 steps"):
        model = GPEDDistiller(ShortChain(), student, thinning=1, random_state=0).fit(X, y)
    # a budget of (300 - 100) // 1 = 200 steps, but the chain yields 2 samples: 2 steps
    assert model.teacher_.calls_ == 1
    assert model.n_student_steps_ == 2


def test_gped_refuses_a_frozen_chain_teacher_and_leaves_it_as_it_was():
    from sklearn.frozen import FrozenEstimator

    X, y = _tabular()
    teacher = sgld().fit(X, y)
    before = teacher.samples_.clone()
    with pytest.raises(TypeError, match=r"(?s)GPEDDistiller: parameter teacher=.*a frozen one cannot run"):
        gped(teacher=FrozenEstimator(teacher)).fit(X, y)
    torch.testing.assert_close(teacher.samples_, before, rtol=0, atol=0)


def test_a_plain_function_is_a_loss():
    X, y = _tabular()

    def per_row_ce(logits, target):
        return nn.functional.cross_entropy(logits, target, reduction="none")

    by_function = mlp().fit_objective(X, y, Objective(per_row_ce))
    by_module = mlp().fit_objective(X, y, Objective(SoftTargetCrossEntropy(reduction="none")))
    np.testing.assert_allclose(by_function.predict_proba(X), by_module.predict_proba(X),
                               atol=1e-6)


def test_the_objective_hears_each_epoch_begin_counted_from_zero_in_each_fit():
    from skdistill import MLPStudent
    from skdistill.engine import Objective

    class Counting(Objective):
        def __init__(self):
            super().__init__(torch.nn.CrossEntropyLoss(), fields=("y",))
            self.epochs = []

        def begin_epoch(self, epoch):
            self.epochs.append(epoch)

    X = np.random.default_rng(0).normal(size=(60, 3)).astype(np.float32)
    y = (X[:, 0] > 0).astype(int)
    student = MLPStudent(hidden_layer_sizes=(4,), max_epochs=3, random_state=0)
    first, second = Counting(), Counting()
    student.fit_objective(X, y, first)
    student.fit_objective(X, y, second)
    assert first.epochs == second.epochs == [0, 1, 2]
