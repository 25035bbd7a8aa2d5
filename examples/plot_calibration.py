"""Calibration of a random forest and a logistic regression, before and after temperature scaling
==============================================================================================

Prints NLL, ECE, Brier, calibrated NLL/ECE (one temperature fitted on a validation split)
and the size of each model; saves a reliability diagram when matplotlib is installed.
"""
from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skdistill.complexity import count_parameters
from skdistill.metrics import brier_score, calibrated_scores, calibration_bins

X, y = load_breast_cancer(return_X_y=True)
X_train, X_rest, y_train, y_rest = train_test_split(X, y, test_size=0.5, random_state=0)
X_val, X_test, y_val, y_test = train_test_split(X_rest, y_rest, test_size=0.5, random_state=0)

models = {
    "logistic regression": make_pipeline(StandardScaler(), LogisticRegression(C=100)),
    "random forest": RandomForestClassifier(n_estimators=100, random_state=0),
}
bins = {}
for name, model in models.items():
    model.fit(X_train, y_train)
    scores = calibrated_scores(model, X_val, y_val, X_test, y_test)
    proba = model.predict_proba(X_test)
    size_model = model[-1] if hasattr(model, "steps") else model
    print(f"{name:20s} NLL {scores['nll']:.3f}  ECE {scores['ece']:.3f}  "
          f"Brier {brier_score(y_test, proba):.3f}  cNLL {scores['cnll']:.3f}  "
          f"cECE {scores['cece']:.3f}  T {scores['temperature']:.2f}  "
          f"size {count_parameters(size_model)}")
    bins[name] = calibration_bins(y_test, proba, n_bins=10)
print("size: weights + biases for the linear model, tree nodes for the forest")

try:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
except ImportError:
    plt = None
if plt is not None:
    fig, ax = plt.subplots(figsize=(4, 4))
    ax.plot([0, 1], [0, 1], "k:", label="perfect calibration")
    for name, b in bins.items():
        filled = b.count > 0
        ax.plot(b.confidence[filled], b.accuracy[filled], "o-", label=name)
    ax.set(xlabel="confidence", ylabel="accuracy", title="Reliability diagram (test)")
    ax.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig("reliability_diagram.png", dpi=100)
    print("saved reliability_diagram.png")
