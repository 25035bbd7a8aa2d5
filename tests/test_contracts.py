"""The contracts of skdistill.base: a teacher, a sampled teacher, a chain, a student and a
distiller written here, outside the package, from public names only, run through the
distillers; objects that break a contract are refused with an error naming what they lack."""
import re
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.special import softmax
from sklearn.base import BaseEstimator, ClassifierMixin, MetaEstimatorMixin, clone
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression
from sklearn.utils.validation import check_is_fitted, validate_data
from torch import nn

from skdistill import (CrossFitDistiller, DeepEnsembleTeacher, EnsembleDistiller, GPEDDistiller,
                       KnowledgeDistiller, LatentBEStudent, MLPStudent, SGLDTeacher)
from skdistill.base import (Objective, PosteriorChain, SampledTeacher, Student, Teacher,
                            TrunkHeadNet)
from skdistill.losses import SoftTargetCrossEntropy
from skdistill.students import BaseStudent


@pytest.fixture(scope="module")
def data():
    X, y = make_classification(n_samples=150, n_features=4, n_informative=3, n_redundant=0,
                               n_classes=3, n_clusters_per_class=1, class_sep=2.0,
                               random_state=0)
    return ((X - X.mean(0)) / X.std(0)).astype(np.float32), y


# -- written outside the package ---------------------------------------------------------------

class CentroidTeacher(ClassifierMixin, BaseEstimator):
    """A teacher: ``softmax(-scale * squared distance to each class's centroid)``."""

    def __init__(self, scale=1.0):
        self.scale = scale

    def fit(self, X, y, sample_weight=None):
        X = np.asarray(X, dtype=np.float64)
        self.classes_, y_enc = np.unique(y, return_inverse=True)
        w = np.ones(len(X)) if sample_weight is None else np.asarray(sample_weight)
        self.centroids_ = np.stack([np.average(X[y_enc == k], axis=0, weights=w[y_enc == k])
                                    for k in range(len(self.classes_))])
        return self

    def predict_proba(self, X):
        check_is_fitted(self)
        d = ((np.asarray(X, dtype=np.float64)[:, None] - self.centroids_[None]) ** 2).sum(-1)
        return softmax(-self.scale * d, axis=1)


def _centroid_sample(centroids, scale):
    """One member as GPED takes it: a tensor batch -> class probabilities."""
    c = torch.as_tensor(centroids, dtype=torch.float32)
    return lambda batch: torch.softmax(-scale * torch.cdist(batch.cpu(), c) ** 2, dim=1)


class BootstrapCentroids(ClassifierMixin, BaseEstimator):
    """A sampled teacher: centroid teachers fitted on bootstrap samples of each class."""

    def __init__(self, n_members=3, scale=1.0, random_state=None):
        self.n_members = n_members
        self.scale = scale
        self.random_state = random_state

    def fit(self, X, y, sample_weight=None):
        X, y = np.asarray(X), np.asarray(y)
        self.classes_ = np.unique(y)
        rng = np.random.default_rng(self.random_state)
        self.members_ = []
        for _ in range(self.n_members):
            rows = np.concatenate([rng.choice(np.flatnonzero(y == c), np.sum(y == c))
                                   for c in self.classes_])
            self.members_.append(CentroidTeacher(self.scale).fit(X[rows], y[rows]))
        return self

    def sample_proba(self, X):
        return np.stack([m.predict_proba(X) for m in self.members_])

    def predict_proba(self, X):
        return self.sample_proba(X).mean(0)

    def iter_samples(self, X, y, sample_weight=None):
        if not hasattr(self, "members_"):
            self.fit(X, y, sample_weight)
        for member in self.members_:
            yield _centroid_sample(member.centroids_, self.scale)


class LangevinCentroids(ClassifierMixin, BaseEstimator):
    """A chain: centroids that take noisy steps towards the class means. Its length is named
    its own way (``n_steps``, ``warmup``); ``chain_length``/``set_chain_length`` declare it."""

    def __init__(self, n_steps=300, warmup=100, thinning=20, step=0.05, random_state=None):
        self.n_steps = n_steps
        self.warmup = warmup
        self.thinning = thinning
        self.step = step
        self.random_state = random_state

    def chain_length(self):
        return self.n_steps, self.warmup

    def set_chain_length(self, n_iter=None, burn_in=None):
        self.n_steps = self.n_steps if n_iter is None else n_iter
        self.warmup = self.warmup if burn_in is None else burn_in
        return self

    def fit(self, X, y, sample_weight=None):
        for _ in self.iter_samples(X, y, sample_weight, keep=True):
            pass
        return self

    def iter_samples(self, X, y, sample_weight=None, *, every=None, keep=False):
        self.calls_ = getattr(self, "calls_", 0) + 1
        self.every_ = every
        X, y = np.asarray(X, dtype=np.float64), np.asarray(y)
        self.classes_, y_enc = np.unique(y, return_inverse=True)
        means = np.stack([X[y_enc == k].mean(0) for k in range(len(self.classes_))])
        rng = np.random.default_rng(self.random_state)
        centroids = np.zeros_like(means)
        every = self.thinning if every is None else every
        if keep:
            self.samples_ = []
        for t in range(1, self.n_steps + 1):
            centroids += self.step * (means - centroids) + 0.05 * rng.standard_normal(means.shape)
            if t > self.warmup and (t - self.warmup) % every == 0:
                if keep:
                    self.samples_.append(centroids.copy())
                yield _centroid_sample(centroids.copy(), 1.0)

    def sample_proba(self, X):
        X = np.asarray(X, dtype=np.float64)
        return np.stack([softmax(-((X[:, None] - c[None]) ** 2).sum(-1), axis=1)
                         for c in self.samples_])

    def predict_proba(self, X):
        return self.sample_proba(X).mean(0)


class TwoLayerNet(nn.Module):
    """A network with a trunk (``features``) and a head: GPED can put its heads on it."""

    def __init__(self, n_features, n_outputs, width):
        super().__init__()
        self.features = nn.Sequential(nn.Linear(n_features, width), nn.Tanh())
        self.head = nn.Linear(width, n_outputs)
        self.n_hidden_out = width

    def forward(self, x):
        return self.head(self.features(x))


class TinyStudent(BaseStudent):
    """A student: the public base class, a network and a check of ``X``."""

    def __init__(self, width=8, max_epochs=20, batch_size=32, lr=1e-2, optimizer="adam",
                 weight_decay=0.0, device="cpu", callbacks=None, validation_fraction=None,
                 verbose=0, random_state=None):
        self.width = width
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.optimizer = optimizer
        self.weight_decay = weight_decay
        self.device = device
        self.callbacks = callbacks
        self.validation_fraction = validation_fraction
        self.verbose = verbose
        self.random_state = random_state

    def build_module(self, n_outputs):
        return TwoLayerNet(self.n_features_in_, n_outputs, self.width)

    def check_X(self, X, reset):
        return validate_data(self, X, reset=reset, dtype=("float32", "float64"),
                             accept_sparse="csr")


class SoftTargetDistiller(MetaEstimatorMixin, ClassifierMixin, BaseEstimator):
    """A distiller: the student learns the teacher's probabilities through an Objective."""

    def __init__(self, teacher, student):
        self.teacher = teacher
        self.student = student

    def fit(self, X, y):
        for name, contract in (("teacher", Teacher), ("student", Student)):
            if not isinstance(getattr(self, name), contract):
                raise TypeError(f"SoftTargetDistiller: {name} must be a {contract.__name__}")
        self.teacher_ = clone(self.teacher).fit(X, y)
        proba = self.teacher_.predict_proba(X)
        objective = Objective(SoftTargetCrossEntropy(reduction="none"), proba)
        self.student_ = clone(self.student).fit_objective(X, y, objective)
        self.classes_ = self.student_.classes_
        return self

    def predict_proba(self, X):
        return self.student_.predict_proba(X)

    def predict(self, X):
        return self.student_.predict(X)


# -- the protocols -----------------------------------------------------------------------------

def test_what_each_object_is():
    teacher, sampled, chain = CentroidTeacher(), BootstrapCentroids(), LangevinCentroids()
    assert isinstance(teacher, Teacher) and not isinstance(teacher, SampledTeacher)
    assert isinstance(sampled, SampledTeacher) and not isinstance(sampled, PosteriorChain)
    assert isinstance(chain, SampledTeacher) and isinstance(chain, PosteriorChain)
    assert isinstance(TinyStudent(), Student) and isinstance(TinyStudent(), Teacher)
    assert isinstance(TwoLayerNet(4, 3, 8), TrunkHeadNet)
    # the package's own
    assert isinstance(SGLDTeacher(), PosteriorChain)
    assert isinstance(DeepEnsembleTeacher(), SampledTeacher)
    assert not isinstance(DeepEnsembleTeacher(), PosteriorChain)
    assert isinstance(MLPStudent(), Student) and isinstance(LatentBEStudent(), Student)
    assert not isinstance(LogisticRegression(), Student)
    assert isinstance(LogisticRegression(), Teacher)


def test_the_outside_student_fits_alone_and_its_network_is_a_trunk_and_a_head(data):
    X, y = data
    student = TinyStudent(random_state=0).fit(X, y)
    assert student.score(X, y) > 0.8
    assert isinstance(student.module_, TrunkHeadNet)
    assert isinstance(student.deployed_module(), nn.Module) and student.row_shape() is None


# -- the outside objects through the package's distillers -----------------------------------

def test_knowledge_distiller_takes_the_outside_teacher_and_student(data):
    X, y = data
    model = KnowledgeDistiller(CentroidTeacher(), TinyStudent(), random_state=0).fit(X, y)
    gap = np.abs(model.predict_proba(X) - model.teacher_.predict_proba(X)).mean()
    assert gap < 0.1 and model.score(X, y) > 0.8


def test_crossfit_distiller_takes_the_outside_teacher_and_student(data):
    X, y = data
    model = CrossFitDistiller(CentroidTeacher(), TinyStudent(), n_folds=3,
                              random_state=0).fit(X, y)
    assert len(model.fold_teachers_) == 3 and model.score(X, y) > 0.8


def test_gped_cycles_the_outside_sampled_teacher(data):
    X, y = data
    model = GPEDDistiller(BootstrapCentroids(random_state=0), TinyStudent(max_epochs=3),
                          random_state=0).fit(X, y)
    assert model.thinning_ is None
    assert model.n_student_steps_ == 3 * (len(X) // 32)
    assert model.predict_proba(X).shape == (len(X), 3) and model.score(X, y) > 0.6


def test_gped_runs_the_outside_chain_once_as_it_declares_itself(data):
    X, y = data
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*give the student only")
        model = GPEDDistiller(LangevinCentroids(random_state=0), TinyStudent(),
                              target=["predictive", "entropy"], n_iter=200, burn_in=50,
                              thinning=5, random_state=0).fit(X, y)
    teacher = model.teacher_
    # GPED's n_iter and burn_in went through set_chain_length, its thinning to every=
    assert teacher.chain_length() == (200, 50) and teacher.every_ == 5
    assert teacher.calls_ == 1 and model.n_student_steps_ == (200 - 50) // 5
    assert len(teacher.samples_) == 30  # keep=True: the teacher predicts afterwards
    assert model.predict_uncertainty(X[:5]).total.shape == (5,)
    assert model.score(X, y) > 0.6


def test_ensemble_distiller_takes_the_outside_sampled_teacher(data):
    X, y = data
    model = EnsembleDistiller(BootstrapCentroids(random_state=0), TinyStudent(), method="kd",
                              random_state=0).fit(X, y)
    assert model.score(X, y) > 0.8


def test_the_outside_distiller_takes_outside_and_package_objects(data):
    X, y = data
    for teacher, student in [(CentroidTeacher(), TinyStudent(random_state=0)),
                             (LogisticRegression(), MLPStudent(hidden_layer_sizes=(8,),
                                                               max_epochs=20, lr=1e-2,
                                                               random_state=0))]:
        model = SoftTargetDistiller(teacher, student).fit(X, y)
        assert model.score(X, y) > 0.8
    with pytest.raises(TypeError, match="student must be a Student"):
        SoftTargetDistiller(CentroidTeacher(), LogisticRegression()).fit(X, y)


# -- declared, not guessed -----------------------------------------------------------------

class CycledWithChainNames(BootstrapCentroids):
    """Parameters named n_iter and burn_in, but no chain declared: its samples are cycled."""

    def __init__(self, n_iter=300, burn_in=100, n_members=3, scale=1.0, random_state=None):
        super().__init__(n_members, scale, random_state)
        self.n_iter = n_iter
        self.burn_in = burn_in


def test_a_teacher_is_a_chain_by_declaration_not_by_its_parameter_names(data):
    X, y = data
    model = GPEDDistiller(CycledWithChainNames(random_state=0), TinyStudent(max_epochs=2),
                          random_state=0).fit(X, y)
    assert model.thinning_ is None and model.n_student_steps_ == 2 * (len(X) // 32)
    with pytest.raises(ValueError, match=r"GPEDDistiller: parameter n_iter=50 .*without a "
                                         r"chain .*PosteriorChain: it has no chain_length"):
        GPEDDistiller(CycledWithChainNames(), TinyStudent(), n_iter=50).fit(X, y)


# -- a broken contract is named --------------------------------------------------------------

class NoProba(ClassifierMixin, BaseEstimator):
    def fit(self, X, y):
        return self


@pytest.mark.parametrize("make, missing", [
    (lambda: KnowledgeDistiller(NoProba(), TinyStudent()), "method predict_proba"),
    (lambda: CrossFitDistiller(NoProba(), TinyStudent()), "method predict_proba"),
    (lambda: EnsembleDistiller(CentroidTeacher(), TinyStudent()), "method sample_proba"),
    (lambda: GPEDDistiller(CentroidTeacher(), TinyStudent()), "method iter_samples"),
    (lambda: GPEDDistiller(NoProba(), TinyStudent()), "methods predict_proba and iter_samples"),
], ids=["kd", "crossfit", "ensemble", "gped", "gped-two"])
def test_a_teacher_missing_a_method_is_refused_naming_it(data, make, missing):
    X, y = data
    model = make()
    name, teacher = type(model).__name__, type(model.teacher).__name__
    with pytest.raises(TypeError, match=rf"'teacher' parameter of {name} must be a "
                                        rf"skdistill\.base\.\w+ .* Got {teacher}\(\) instead: "
                                        rf"{teacher} has no {missing}\."):
        model.fit(X, y)


def test_a_student_missing_a_member_is_refused_naming_it(data):
    X, y = data
    with pytest.raises(TypeError, match=r"KnowledgeDistiller: parameter student=Logistic.*"
                                        r"skdistill\.base\.Student.*has no fit_objective"):
        KnowledgeDistiller(CentroidTeacher(), LogisticRegression()).fit(X, y)
    with pytest.raises(TypeError, match=r"GPEDDistiller: parameter student=LatentBE.*"
                                        r"trunk and a head.*BatchEnsemble has no features"):
        GPEDDistiller(BootstrapCentroids(), LatentBEStudent(n_members=2)).fit(X, y)
    with pytest.raises(TypeError, match=r"TinyStudent: parameter objective='ce'.*"
                                        r"skdistill\.base\.Objective"):
        TinyStudent().fit_objective(X, y, "ce")


def test_a_student_class_without_its_network_cannot_be_made():
    class NoNetwork(TinyStudent):
        build_module = BaseStudent.build_module

    with pytest.raises(TypeError, match="abstract method.*build_module"):
        NoNetwork()


# -- the guide's new teacher, in one file --------------------------------------------------

def test_the_new_teacher_of_extending_md_runs_as_one_file(capsys):
    doc = (Path(__file__).resolve().parents[1] / "doc" / "extending.md").read_text()
    [code] = [block for block in re.findall(r"^```python\n(.*?)^```", doc, flags=re.M | re.S)
              if "class BootstrapLogisticTeacher" in block]
    namespace = {"__name__": "__main__"}
    exec(compile(code, "doc/extending.md", "exec"), namespace)
    assert capsys.readouterr().out.splitlines()[0] == "True False"
    for name in ("kd", "ens", "gped"):
        assert namespace[name].score(namespace["X"], namespace["y"]) > 0.9
    assert namespace["gped"].n_student_steps_ == 80  # 4 members cycled, 20 epochs of 4 steps
