"""Many classes: a sampled softmax, corrected by a teacher
=======================================================

With thousands of classes the softmax's normalisation is the costly part of a training step.
:class:`~skdistill.SampledSoftmaxDistiller` estimates it from the label and a few sampled
negative classes; a teacher's probabilities then down-weight the sampled negatives that are
plausible labels of the row (Menon et al. 2021).

The data come from a latent embedding model with 1,000 classes whose Bayes probabilities
``p*(y | x) = softmax(beta * (A x) . E_y)`` are known, and labels are drawn from them, so many
rows have several plausible classes. The teacher here is ``p*`` itself, given to the
distiller as a sparse matrix of each row's 32 largest probabilities. Four students with the
same network and the same number of steps are compared on held-out rows: the full softmax on
the labels, the plain sampled softmax (16 negatives), the teacher-corrected one, and the
corrected one with distillation of the teacher's top-k. The script prints precision@1 and @5
and the test NLL of each, and plots precision@1. Runs in about 20 seconds on a laptop CPU.

What to expect at this size: the full softmax leads (1,000 classes are still cheap, and
sampled softmax needs more steps); the correction changes little with uniform sampling,
because few of 16 negatives drawn from 1,000 classes are plausible labels of a given row;
distilling the teacher's top-k closes most of the gap to the full softmax.

    python examples/plot_sampled_softmax.py
"""
import time

import numpy as np
import scipy.sparse as sp
import torch
from scipy.special import softmax
from sklearn.base import BaseEstimator, ClassifierMixin

from skdistill import MLPStudent, SampledSoftmaxDistiller

torch.set_num_threads(1)
n_classes, n_train, n_test, max_epochs = 1000, 20000, 5000, 8
# sphinx_gallery_start_ignore
# SKDISTILL_EXAMPLE_QUICK=1: a smoke run of every step on less work (the gallery runs it all).
import os  # noqa: E402

if os.environ.get("SKDISTILL_EXAMPLE_QUICK") == "1":
    n_classes, n_train, n_test, max_epochs = 200, 3000, 1000, 2
# sphinx_gallery_end_ignore

# %%
# The data: a latent embedding model with known Bayes probabilities
# -----------------------------------------------------------------
rng = np.random.default_rng(0)
A = rng.normal(size=(16, 32)) / np.sqrt(32)
E = rng.normal(size=(n_classes, 16))
E /= np.linalg.norm(E, axis=1, keepdims=True)


def bayes_proba(X):
    """``p*(y | x)`` for every class: a softmax of the latent scores."""
    return softmax(8.0 * (X @ A.T) @ E.T, axis=1)


def draw(n):
    """``n`` rows and labels drawn from ``p*``."""
    X = rng.normal(size=(n, 32)).astype(np.float32)
    cumulative = bayes_proba(X).cumsum(axis=1)
    y = (cumulative < rng.random((n, 1))).sum(axis=1).clip(max=n_classes - 1)
    return X, y


X_train, y_train = draw(n_train)
X_test, y_test = draw(n_test)


class BayesTeacher(ClassifierMixin, BaseEstimator):
    """``p*`` restricted to the classes of ``y``: each row's ``keep`` largest, as a sparse
    matrix (the distiller reads no more than that)."""

    def __init__(self, keep=32):
        self.keep = keep

    def fit(self, X, y):
        self.classes_ = np.unique(y)
        return self

    def predict_proba(self, X):
        proba = bayes_proba(X)[:, self.classes_]
        cut = -np.partition(-proba, self.keep - 1, axis=1)[:, self.keep - 1:self.keep]
        return sp.csr_matrix(np.where(proba >= cut, proba, 0.0))


# %%
# Four students, the same network and number of steps
# ---------------------------------------------------
def student():
    return MLPStudent(hidden_layer_sizes=(64,), max_epochs=max_epochs, batch_size=256,
                      lr=3e-3, random_state=0)


common = dict(teacher=BayesTeacher(), student=student(), top_k=32, random_state=0)
models = {
    "full softmax (labels)": SampledSoftmaxDistiller(n_negatives=n_classes, correction=None,
                                                     **common),
    "sampled softmax, m=16": SampledSoftmaxDistiller(n_negatives=16, correction=None,
                                                     **common),
    "teacher-corrected, m=16": SampledSoftmaxDistiller(n_negatives=16, **common),
    "corrected + distilled, m=16": SampledSoftmaxDistiller(n_negatives=16, alpha=0.5,
                                                           **common),
}


def scores(proba, top):
    """Precision@1 and @5 (hits among the top 5, divided by 5) and the NLL."""
    rows = np.arange(len(y_test))
    p1 = np.mean(top[:, 0] == y_test)
    p5 = np.mean((top == y_test[:, None]).any(axis=1)) / 5
    nll = -np.mean(np.log(np.clip(proba[rows, y_test], 1e-12, None)))
    return p1, p5, nll


results = {}
bayes = bayes_proba(X_test)
results["Bayes p*"] = scores(bayes, np.argsort(-bayes, axis=1)[:, :5])
for name, model in models.items():
    start = time.perf_counter()
    model.fit(X_train, y_train)
    seconds = time.perf_counter() - start
    # a test label the training rows never had gets no column: its probability is 0
    proba = np.zeros((n_test, n_classes))
    proba[:, model.classes_] = model.predict_proba(X_test)
    results[name] = scores(proba, model.predict_topk(X_test, k=5))
    print(f"{name:28s} fitted in {seconds:5.1f} s")

print(f"\n{'':28s} {'P@1':>6s} {'P@5':>6s} {'NLL':>6s}")
for name, (p1, p5, nll) in results.items():
    print(f"{name:28s} {p1:6.3f} {p5:6.3f} {nll:6.3f}")

# %%
# Precision@1 of each student beside the Bayes classifier's
# ---------------------------------------------------------
try:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
except ImportError:
    plt = None
if plt is None:
    print("matplotlib is not installed: no plot (pip install matplotlib)")
else:
    fig, ax = plt.subplots(figsize=(7, 3))
    names = list(results)
    ax.barh(names, [results[name][0] for name in names], color="tab:blue")
    ax.invert_yaxis()
    ax.set_xlabel("precision@1 on held-out rows")
    ax.set_title(f"{n_classes} classes, {n_train} training rows")
    fig.tight_layout()
    fig.savefig("sampled_softmax.png")
    print("saved sampled_softmax.png")
