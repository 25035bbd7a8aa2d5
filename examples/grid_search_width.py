"""Search the student's width multiplier for a distilled MLP with GridSearchCV
===========================================================================

Run: ``python examples/grid_search_width.py``
"""
from sklearn.datasets import load_digits
from sklearn.ensemble import RandomForestClassifier
from sklearn.model_selection import GridSearchCV, train_test_split

from skdistill import KnowledgeDistiller, MLPStudent
from skdistill.complexity import count_parameters
from skdistill.metrics import ece_scorer

X, y = load_digits(return_X_y=True)
X = X / 16.0
X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)
search = GridSearchCV(
    KnowledgeDistiller(RandomForestClassifier(n_estimators=100, random_state=0),
                       MLPStudent(hidden_layer_sizes=(64, 64), max_epochs=40, random_state=0),
                       temperature=2.0),
    {"student__width_multiplier": [0.125, 0.25, 0.5, 1.0]},
    scoring={"nll": "neg_log_loss", "ece": ece_scorer}, refit="nll", cv=3, n_jobs=2,
)
# sphinx_gallery_start_ignore
# SKDISTILL_EXAMPLE_QUICK=1: a smoke run of every step on less work (the gallery runs it all).
import os  # noqa: E402

from sklearn.utils import resample  # noqa: E402

QUICK = os.environ.get("SKDISTILL_EXAMPLE_QUICK") == "1"
if QUICK:
    X_train, y_train = resample(X_train, y_train, n_samples=450, replace=False,
                                stratify=y_train, random_state=0)
    search.set_params(estimator__teacher__n_estimators=10, estimator__student__max_epochs=10)
# sphinx_gallery_end_ignore
search.fit(X_train, y_train)
for k, nll, ece in zip(search.cv_results_["param_student__width_multiplier"],
                       search.cv_results_["mean_test_nll"], search.cv_results_["mean_test_ece"]):
    print(f"width x{k:<6} CV NLL {-nll:.4f}  CV ECE {-ece:.4f}")
best = search.best_estimator_
print(f"best {search.best_params_}: test accuracy {best.score(X_test, y_test):.4f}, "
      f"{count_parameters(best)} parameters")
