"""Bring your own teacher: a bootstrap ensemble of logistic regressions, distilled three ways
==========================================================================================

The teacher below is written here, outside skdistill, and subclasses nothing of it: a
scikit-learn classifier (``fit``, ``predict_proba``, ``classes_``) that is also a
``skdistill.base.SampledTeacher`` and has ``modules_`` (:doc:`Extending skdistill
</extending>`):

- ``sample_proba(X)``: every member's probabilities, ``(n_members, n, n_classes)``;
- ``modules_``: every member as a torch module mapping inputs to logits, through which the
  gradient perturbations of ``EnsembleDistiller`` (here TDiv-SDiv) flow;
- ``iter_samples(X, y, sample_weight)``: the members as callables, float32 tensor batch ->
  class probabilities, one ``GPEDDistiller`` student step each.

It is distilled by ``KnowledgeDistiller`` (its mean prediction), ``EnsembleDistiller`` (a
4-member LatentBE student trained one-to-one on TDiv-SDiv perturbed inputs, then merged into
one MLP) and ``GPEDDistiller`` (the members cycled as posterior samples), on scikit-learn's
breast cancer data, standardised. The script prints accuracy and NLL on held-out rows.
About ten seconds on 2 CPU cores.

    python examples/custom_teacher.py
"""
import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from skdistill import (EnsembleDistiller, GPEDDistiller, KnowledgeDistiller, LatentBEStudent,
                       MLPStudent)
from skdistill.metrics import negative_log_likelihood


class BootstrapLogisticTeacher(ClassifierMixin, BaseEstimator):
    """``n_members`` softmax regressions, each fitted on a bootstrap sample of the rows."""

    def __init__(self, n_members=4, n_steps=200, lr=0.1, l2=1e-3, random_state=None):
        self.n_members = n_members
        self.n_steps = n_steps
        self.lr = lr
        self.l2 = l2
        self.random_state = random_state

    def fit(self, X, y, sample_weight=None):
        X = torch.as_tensor(_dense(X))
        self.classes_, y_enc = np.unique(y, return_inverse=True)
        self.n_features_in_ = X.shape[1]
        y_t = torch.as_tensor(y_enc)
        w = (torch.ones(len(y_t)) if sample_weight is None
             else torch.as_tensor(np.asarray(sample_weight, dtype=np.float32)))
        rng = np.random.default_rng(self.random_state)
        self.modules_ = []
        for _ in range(self.n_members):
            rows = torch.as_tensor(rng.integers(0, len(y_t), len(y_t)))  # bootstrap sample
            net = torch.nn.Linear(X.shape[1], len(self.classes_))
            torch.nn.init.zeros_(net.weight)
            torch.nn.init.zeros_(net.bias)
            opt = torch.optim.Adam(net.parameters(), lr=self.lr)
            for _ in range(self.n_steps):  # full-batch weighted cross-entropy + L2
                opt.zero_grad()
                nll = F.cross_entropy(net(X[rows]), y_t[rows], reduction="none")
                loss = ((w[rows] * nll).sum() / w[rows].sum()
                        + self.l2 * net.weight.square().sum())
                loss.backward()
                opt.step()
            self.modules_.append(net.eval().requires_grad_(False))
        return self

    def sample_proba(self, X):
        X = torch.as_tensor(_dense(X))
        with torch.no_grad():
            return np.stack([torch.softmax(m(X), dim=1).double().numpy()
                             for m in self.modules_])

    def predict_proba(self, X):
        return self.sample_proba(X).mean(axis=0)

    def predict(self, X):
        return self.classes_[self.predict_proba(X).argmax(axis=1)]

    def iter_samples(self, X, y, sample_weight=None):
        if not hasattr(self, "modules_"):  # GPEDDistiller hands over an unfitted clone
            self.fit(X, y, sample_weight)
        for module in self.modules_:
            yield lambda batch, m=module: torch.softmax(m(batch.cpu()), dim=1)


def _dense(X):
    X = X.toarray() if sp.issparse(X) else X
    return np.asarray(X, dtype=np.float32)


torch.set_num_threads(1)
X, y = load_breast_cancer(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, stratify=y,
                                                    random_state=0)
scaler = StandardScaler().fit(X_train)
X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)

mlp = dict(hidden_layer_sizes=(32,), max_epochs=40, batch_size=64, lr=1e-3)
teacher = BootstrapLogisticTeacher(n_members=4, random_state=0)
models = {
    "KD: one MLP": KnowledgeDistiller(teacher, MLPStudent(**mlp), random_state=0),
    "LatentBE + TDiv-SDiv": EnsembleDistiller(
        teacher, LatentBEStudent(n_members=4, **mlp), method="one-to-one",
        perturbation="tdiv-sdiv", random_state=0),
    "GPED: members cycled": GPEDDistiller(teacher, MLPStudent(**mlp), random_state=0),
}
print(f"breast cancer, standardised: {len(X_train)} training rows, {len(X_test)} test rows\n")
print(f"{'model':24s} {'accuracy':>8s} {'NLL':>7s}")
rows = [("teacher (4 members)", teacher.fit(X_train, y_train).predict_proba(X_test))]
for label, model in models.items():
    rows.append((label, model.fit(X_train, y_train).predict_proba(X_test)))
for label, proba in rows:
    print(f"{label:24s} {np.mean(proba.argmax(1) == y_test):8.3f} "
          f"{negative_log_likelihood(y_test, proba):7.4f}")
gped = models["GPED: members cycled"]
print(f"\nGPED: {gped.n_student_steps_} student steps, one per member sample "
      f"({len(gped.history_)} epochs of {len(X_train) // 64} steps)")
