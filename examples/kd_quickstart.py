"""Distil a random forest into a small MLP and compare calibration, size and speed
===============================================================================

Run: ``python examples/kd_quickstart.py`` (uses the real FICO HELOC file from
``$SKDISTILL_DATA`` when present, else scikit-learn's breast cancer data, and says which).
"""
import numpy as np
from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import RandomForestClassifier
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skdistill import KnowledgeDistiller, MLPStudent
from skdistill.complexity import count_parameters, inference_time
from skdistill.datasets import DataFileNotFoundError, get_data_home, load_heloc
from skdistill.metrics import expected_calibration_error, negative_log_likelihood

try:
    X, y = load_heloc(return_X_y=True)
    name = "FICO HELOC"
    print(f"FICO HELOC from {get_data_home() / 'heloc'}")
except DataFileNotFoundError:
    X, y = load_breast_cancer(return_X_y=True)
    name = "breast cancer"
    print(f"FICO HELOC not found in {get_data_home() / 'heloc'} (see skdistill.datasets); "
          f"using scikit-learn's breast cancer data ({len(X)} rows)")
# sphinx_gallery_start_ignore
# SKDISTILL_EXAMPLE_QUICK=1: a smoke run of every step on less work (the gallery runs it all).
import os  # noqa: E402

from sklearn.utils import resample  # noqa: E402

QUICK = os.environ.get("SKDISTILL_EXAMPLE_QUICK") == "1"
if QUICK:
    X, y = resample(X, y, n_samples=min(1000, len(X)), replace=False, stratify=y,
                    random_state=0)
# sphinx_gallery_end_ignore

X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, stratify=y,
                                                    random_state=0)
teacher = RandomForestClassifier(n_estimators=200, min_samples_leaf=5, random_state=0)
student = MLPStudent(hidden_layer_sizes=(32,), max_epochs=40, random_state=0)
models = {
    "teacher": make_pipeline(StandardScaler(), teacher),
    "KD T=1": make_pipeline(StandardScaler(), KnowledgeDistiller(teacher, student)),
    "KD T=2, alpha=0.5": make_pipeline(StandardScaler(), KnowledgeDistiller(
        teacher, student, temperature=2.0, alpha=0.5)),
    "labels only": make_pipeline(StandardScaler(), student),
}
print(f"{name}: {len(X_train)} train / {len(X_test)} test rows")
for label, model in models.items():
    model.fit(X_train, y_train)
    proba = model.predict_proba(X_test)
    print(f"{label:<18} acc {np.mean(proba.argmax(1) == y_test):.4f}  "
          f"NLL {negative_log_likelihood(y_test, proba):.4f}  "
          f"ECE {expected_calibration_error(y_test, proba):.4f}  "
          f"size {count_parameters(model[-1]):>7}  "
          f"{1000 * inference_time(model, X_test):.2f} ms/1000 rows")
