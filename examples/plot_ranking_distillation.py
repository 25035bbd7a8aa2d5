"""Distilled bipartite ranking with few labels (Menon et al., ICML 2021)
=====================================================================

Synthetic binary data whose Bayes probability ``p*(x)`` is known: 200 labelled rows and 4,000
rows without labels. A student network learns a ranking score three ways, with the same
network and the same number of epochs:

- on the labelled (positive, negative) pairs alone (``RankingDistiller(alpha=0)``);
- on every pair of labelled and unlabelled rows, weighted by a gradient-boosting teacher's
  probabilities (the distilled bipartite risk, ``alpha=1``);
- the same, weighted by the exact ``p*``: what a perfect teacher gives.

Prints the test AUC of each, of the teacher and of ``p*`` itself, and the calibrated
probabilities' log-loss; saves their ROC curves when matplotlib is installed.
"""
import numpy as np
from scipy.special import expit
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import log_loss, roc_auc_score

from skdistill import MLPStudent, RankingDistiller


def bayes_proba(X):
    """``p*(y = 1 | x)``: a nonlinear logit of the first four features."""
    return expit(1.5 * np.sin(2 * X[:, 0]) + X[:, 1] * X[:, 2] - 0.5 * X[:, 3] ** 2 + 0.5)


def draw(n, rng):
    X = rng.normal(size=(n, 8))
    return X, (rng.uniform(size=n) < bayes_proba(X)).astype(int)


class BayesTeacher(ClassifierMixin, BaseEstimator):
    """A teacher that knows ``p*``: its fit learns nothing."""

    def fit(self, X, y):
        self.classes_ = np.unique(y)
        return self

    def predict_proba(self, X):
        p = bayes_proba(np.asarray(X))
        return np.column_stack([1 - p, p])


rng = np.random.default_rng(0)
n_unlabeled, n_test, max_epochs = 4000, 4000, 40
# sphinx_gallery_start_ignore
# SKDISTILL_EXAMPLE_QUICK=1: a smoke run of every step on less work (the gallery runs it all).
import os  # noqa: E402

QUICK = os.environ.get("SKDISTILL_EXAMPLE_QUICK") == "1"
if QUICK:
    n_unlabeled, n_test, max_epochs = min(600, n_unlabeled), min(600, n_test), min(5, max_epochs)
# sphinx_gallery_end_ignore
X, y = draw(200, rng)
X_unlabeled, _ = draw(n_unlabeled, rng)
X_test, y_test = draw(n_test, rng)

student = MLPStudent(hidden_layer_sizes=(64, 64), max_epochs=max_epochs, lr=3e-3,
                     batch_size=64, random_state=0)
teacher = HistGradientBoostingClassifier(max_iter=100, learning_rate=0.05, random_state=0)
models = {
    "labels only (alpha=0)": (RankingDistiller(teacher, student, alpha=0.0, random_state=0),
                              None),
    "distilled, boosting teacher": (RankingDistiller(teacher, student, random_state=0),
                                    X_unlabeled),
    "distilled, p* as teacher": (RankingDistiller(BayesTeacher(), student, random_state=0),
                                 X_unlabeled),
}
scores = {}
for name, (model, unlabeled) in models.items():
    model.fit(X, y, X_unlabeled=unlabeled)
    scores[name] = model.decision_function(X_test)
    print(f"{name:30s} test AUC {roc_auc_score(y_test, scores[name]):.3f}  log-loss "
          f"{log_loss(y_test, model.predict_proba(X_test)):.3f}")
fitted_teacher = models["distilled, boosting teacher"][0].teacher_
scores["boosting teacher"] = fitted_teacher.predict_proba(X_test)[:, 1]
scores["p* (the Bayes probabilities)"] = bayes_proba(X_test)
for name in ["boosting teacher", "p* (the Bayes probabilities)"]:
    print(f"{name:30s} test AUC {roc_auc_score(y_test, scores[name]):.3f}")

try:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
except ImportError:
    plt = None
if plt is None:
    print("matplotlib is not installed: no ROC curves (pip install matplotlib)")
else:
    from sklearn.metrics import RocCurveDisplay

    fig, ax = plt.subplots(figsize=(5, 5))
    for name, score in scores.items():
        RocCurveDisplay.from_predictions(y_test, score, name=name, ax=ax)
    ax.set_title("Test ROC curves, 200 labelled rows")
    fig.tight_layout()
    fig.savefig("ranking_distillation_roc.png", dpi=100)
    print("saved ranking_distillation_roc.png")
