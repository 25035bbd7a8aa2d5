"""Calibrate an under-confident teacher before distilling it (Menon et al., ICML 2021)
===================================================================================

A shallow random forest on the digits is accurate but under-confident: its votes are spread
over many classes, so its probabilities are far below its accuracy. A student distilled from
it copies that. ``teacher_calibration`` fits a map on the teacher's out-of-fold probabilities
(temperature scaling or isotonic regression) and the student learns calibrated targets.

Prints the teacher report (held-out accuracy, NLL, ECE, Spiegelhalter's test, in-sample vs
held-out confidence) and the students' NLL/ECE; saves a reliability diagram when matplotlib is
installed.
"""
from pathlib import Path

from sklearn.datasets import load_digits
from sklearn.ensemble import RandomForestClassifier
from sklearn.model_selection import train_test_split

from skdistill import CrossFitDistiller, MLPStudent
from skdistill.inspection import plot_reliability, teacher_report

X, y = load_digits(return_X_y=True)
X = X / 16.0  # pixel intensities 0..16 -> [0, 1]
# sphinx_gallery_start_ignore
# SKDISTILL_EXAMPLE_QUICK=1: a smoke run of every step on less work (the gallery runs it all).
import os  # noqa: E402

from sklearn.utils import resample  # noqa: E402

QUICK = os.environ.get("SKDISTILL_EXAMPLE_QUICK") == "1"
if QUICK:
    X, y = resample(X, y, n_samples=min(600, len(X)), replace=False, stratify=y,
                    random_state=0)
# sphinx_gallery_end_ignore
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.5, random_state=0,
                                                    stratify=y)

teacher = RandomForestClassifier(n_estimators=100, max_depth=6, random_state=0)
student = MLPStudent(hidden_layer_sizes=(64,), max_epochs=60, lr=1e-2, random_state=0)
# sphinx_gallery_start_ignore
if QUICK:
    teacher.set_params(n_estimators=20)
    student.set_params(max_epochs=20)
# sphinx_gallery_end_ignore

report = teacher_report({"forest, depth 6": teacher.fit(X_train, y_train)}, X_test, y_test,
                        X_train=X_train, y_train=y_train)
print("Teacher on held-out digits (confidence far below accuracy: under-confident):")
print(report[["accuracy", "confidence", "nll", "ece", "spiegelhalter_z",
              "spiegelhalter_p", "confidence_gap"]].round(3).to_string())

models = {"labels only": student.fit(X_train, y_train)}
for method in [None, "temperature", "isotonic"]:
    models[f"CrossFit, calibration={method}"] = CrossFitDistiller(
        teacher, student, n_folds=5, teacher_calibration=method, random_state=0,
    ).fit(X_train, y_train)
temperature = models["CrossFit, calibration=temperature"].teacher_calibrator_.temperature_
print(f"\nfitted teacher temperature: {temperature:.3f} (< 1 sharpens)")

students = teacher_report(models, X_test, y_test)
print("\nStudents on held-out digits:")
print(students[["accuracy", "nll", "ece", "spiegelhalter_z"]].round(3).to_string())

try:
    import matplotlib
except ImportError:
    matplotlib = None
if matplotlib is None:
    print("\nmatplotlib is not installed: no reliability diagram (pip install matplotlib)")
else:
    matplotlib.use("Agg")
    models["teacher"] = teacher
    fig = plot_reliability(models, X_test, y_test, n_bins=10)
    path = Path("teacher_calibration_reliability.png").resolve()
    fig.savefig(path, dpi=100)
    print(f"\nsaved the reliability diagram to {path}")
