"""Calibration of a random forest and a logistic regression, before and after temperature scaling
==============================================================================================

Prints NLL, ECE (10 bins), Brier, calibrated NLL/ECE (one temperature fitted on a validation split)
and the size of each model; saves a reliability diagram when matplotlib is installed.

The diagram is drawn by :class:`~skdistill.inspection.ReliabilityDisplay`: ``from_estimator``
for a fitted model, ``from_predictions`` for probabilities computed elsewhere (here the
forest's temperature-scaled ones and, when skl2onnx and onnxruntime are installed, those of
the logistic regression run as an ONNX model). On this binary problem each curve is the
fraction of class-1 (benign) rows against the mean predicted probability of class 1, over the
whole ``[0, 1]`` axis.
"""
import numpy as np
from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skdistill.calibration import apply_temperature
from skdistill.complexity import count_parameters
from skdistill.metrics import brier_score, calibrated_scores

X, y = load_breast_cancer(return_X_y=True)
X_train, X_rest, y_train, y_rest = train_test_split(X, y, test_size=0.5, random_state=0)
X_val, X_test, y_val, y_test = train_test_split(X_rest, y_rest, test_size=0.5, random_state=0)

models = {
    "logistic regression": make_pipeline(StandardScaler(), LogisticRegression(C=100)),
    "random forest": RandomForestClassifier(n_estimators=100, random_state=0),
}
temperatures = {}
for name, model in models.items():
    model.fit(X_train, y_train)
    scores = calibrated_scores(model, X_val, y_val, X_test, y_test, n_bins=10)
    temperatures[name] = scores["temperature"]
    proba = model.predict_proba(X_test)
    size_model = model[-1] if hasattr(model, "steps") else model
    print(f"{name:20s} NLL {scores['nll']:.3f}  ECE {scores['ece']:.3f}  "
          f"Brier {brier_score(y_test, proba):.3f}  cNLL {scores['cnll']:.3f}  "
          f"cECE {scores['cece']:.3f}  T {scores['temperature']:.2f}  "
          f"size {count_parameters(size_model)}")
print("size: weights + biases for the linear model, tree nodes for the forest")

try:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
except ImportError:
    plt = None
if plt is None:
    print("matplotlib is not installed: no reliability diagram (pip install matplotlib)")
else:
    from skdistill.inspection import ReliabilityDisplay

    fig, ax = plt.subplots(figsize=(5, 5))
    for name, model in models.items():
        ReliabilityDisplay.from_estimator(model, X_test, y_test, n_bins=10, name=name, ax=ax)
    # precomputed probabilities: the forest's, temperature-scaled
    forest = models["random forest"]
    scaled = apply_temperature(forest.predict_proba(X_test), temperatures["random forest"])
    ReliabilityDisplay.from_predictions(y_test, scaled, labels=forest.classes_, n_bins=10,
                                        name="random forest, temperature-scaled", ax=ax)
    try:  # the same logistic regression run by onnxruntime: its curve lies on the first
        import onnxruntime as ort
        import skl2onnx
    except ImportError:
        print("skl2onnx or onnxruntime is not installed: no ONNX curve "
              "(pip install skdistill[onnx])")
    else:
        logistic = models["logistic regression"]
        onx = skl2onnx.to_onnx(logistic, X_test[:1].astype(np.float32),
                               options={LogisticRegression: {"zipmap": False}})
        session = ort.InferenceSession(onx.SerializeToString(),
                                       providers=["CPUExecutionProvider"])
        _, onnx_proba = session.run(None, {session.get_inputs()[0].name:
                                           X_test.astype(np.float32)})
        ReliabilityDisplay.from_predictions(y_test, onnx_proba, labels=logistic.classes_,
                                            n_bins=10, name="logistic regression (ONNX)",
                                            ax=ax, linestyle="--", marker="x")
    ax.set_title("Reliability diagram (test)")
    ax.legend(loc="upper left", fontsize="small")
    fig.tight_layout()
    fig.savefig("reliability_diagram.png", dpi=100)
    print("saved reliability_diagram.png")
