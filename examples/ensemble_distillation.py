"""Distil a 4-member deep ensemble into one network: calibration and inference time
================================================================================

A DE-4 of MLPs is trained on 3,000 Fashion-MNIST test images and scored on 2,000 others. Without
the Fashion-MNIST files in the data folder, scikit-learn's 8x8 digits (1,797 images) stand in,
split in the same 60/40 proportion, and the script says so. The ensemble is distilled four
ways: plain KD into one MLP, LatentBE (a 4-member BatchEnsemble trained one-to-one, then merged
into one MLP), LatentBE with TDiv-SDiv perturbations, and EnD2 (one MLP whose outputs are a
Dirichlet, which keeps the members' disagreement as epistemic uncertainty). The script prints
accuracy, NLL and ECE on held-out data, and the inference time of each model per 1,000 rows:
the merged LatentBE network costs what one MLP costs. Runs in about ten seconds on a laptop CPU.

    python examples/ensemble_distillation.py
"""
import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.frozen import FrozenEstimator
from sklearn.model_selection import train_test_split

from skdistill import DeepEnsembleTeacher, EnsembleDistiller, LatentBEStudent, MLPStudent
from skdistill.complexity import count_parameters, inference_time
from skdistill.datasets import DataFileNotFoundError, get_data_home, load_fashion_mnist
from skdistill.metrics import entropy, expected_calibration_error, negative_log_likelihood

torch.set_num_threads(1)
try:
    X, y = load_fashion_mnist(subset="test", return_X_y=True)
    name, max_epochs = "Fashion-MNIST", 8
    print(f"Fashion-MNIST test split ({len(X)} images)")
except DataFileNotFoundError:
    X, y = load_digits(return_X_y=True)
    X = (X / 16).astype(np.float32)
    # About a third as many rows: three times the epochs gives about as many steps.
    name, max_epochs = "digits", 24
    print(f"Fashion-MNIST not found in {get_data_home() / 'fashion-mnist'} (see "
          f"skdistill.datasets); using scikit-learn's 8x8 digits ({len(X)} images)")
# sphinx_gallery_start_ignore
# SKDISTILL_EXAMPLE_QUICK=1: a smoke run of every step on less work (the gallery runs it all).
import os  # noqa: E402

from sklearn.utils import resample  # noqa: E402

QUICK = os.environ.get("SKDISTILL_EXAMPLE_QUICK") == "1"
if QUICK:
    X, y = resample(X, y, n_samples=min(1000, len(X)), replace=False, stratify=y,
                    random_state=0)
# sphinx_gallery_end_ignore
# At most 5,000 images, 60% to train and 40% to test: 3,000 / 2,000 of Fashion-MNIST.
X_train, X_test, y_train, y_test = train_test_split(
    X, y, train_size=min(3000, int(0.6 * len(X))), test_size=min(2000, int(0.4 * len(X))),
    stratify=y, random_state=0)

mlp = dict(hidden_layer_sizes=(128,), max_epochs=max_epochs, lr=1e-3)
teacher = DeepEnsembleTeacher(MLPStudent(**mlp), n_members=4, random_state=0)
teacher.fit(X_train, y_train)
frozen = FrozenEstimator(teacher)

models = {
    "DE-4 teacher": teacher,
    "KD (one MLP)": EnsembleDistiller(frozen, MLPStudent(**mlp), method="kd", random_state=0),
    "LatentBE (merged MLP)": EnsembleDistiller(frozen, LatentBEStudent(n_members=4, **mlp),
                                               method="one-to-one", random_state=0),
    "LatentBE + TDiv-SDiv": EnsembleDistiller(frozen, LatentBEStudent(n_members=4, **mlp),
                                              method="one-to-one", perturbation="tdiv-sdiv",
                                              random_state=0),
    "EnD2 (Dirichlet MLP)": EnsembleDistiller(frozen, MLPStudent(**mlp), method="end2",
                                              random_state=0),
}
print(f"{name}: {len(X_train)} training rows, {len(X_test)} test rows\n")
print(f"{'model':24s} {'acc':>6s} {'NLL':>7s} {'ECE':>7s} {'params':>8s} {'ms/1000':>8s}")
for label, model in models.items():
    if label != "DE-4 teacher":
        model.fit(X_train, y_train)
    proba = model.predict_proba(X_test)
    params = sum(count_parameters(m) for m in teacher.modules_) if model is teacher \
        else count_parameters(model)
    ms = inference_time(model, X_test) * 1000
    print(f"{label:24s} {np.mean(proba.argmax(1) == y_test):6.3f} "
          f"{negative_log_likelihood(y_test, proba):7.4f} "
          f"{expected_calibration_error(y_test, proba):7.4f} {params:8d} {ms:8.2f}")

be = models["LatentBE + TDiv-SDiv"].student_
unmerged = be.ensemble_proba(X_test).mean(0)
print(f"\nunmerged BatchEnsemble of LatentBE + TDiv-SDiv: NLL "
      f"{negative_log_likelihood(y_test, unmerged):.4f} (runs the batch 4 times)")

# %%
# EnD2's student is a Dirichlet over the class probabilities: besides its mean (the
# predictive) it keeps how much the members disagreed, the epistemic part of the uncertainty,
# which the ensemble's own members give by their spread.
members = teacher.sample_proba(X_test)
teacher_epistemic = entropy(members.mean(0)) - entropy(members).mean(0)
u = models["EnD2 (Dirichlet MLP)"].predict_uncertainty(X_test)
wrong = models["EnD2 (Dirichlet MLP)"].predict(X_test) != y_test
print(f"EnD2 student: epistemic {u.epistemic[wrong].mean():.3f} nats on its misclassified "
      f"test rows, {u.epistemic[~wrong].mean():.3f} on the others; correlation with the "
      f"ensemble's mutual information {np.corrcoef(u.epistemic, teacher_epistemic)[0, 1]:.2f}")
