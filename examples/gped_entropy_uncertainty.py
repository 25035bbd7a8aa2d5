"""Distil predictive and expected entropy, then split uncertainty on clean vs occluded digits
==========================================================================================

The student has two heads on one trunk: the posterior predictive and the expected entropy
``E[H(p(y|x, theta))]`` of an SGLD teacher. One forward pass then gives total uncertainty
(entropy of the predictive), aleatoric (expected entropy) and epistemic (their difference, the
BALD score). Occluding part of each test image should raise them.

Run: ``python examples/gped_entropy_uncertainty.py`` (about a minute on 2 CPU cores); writes
``gped_uncertainty.png`` when matplotlib is installed.
"""
import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from skdistill import GPEDDistiller, MLPStudent, SGLDTeacher
from skdistill.datasets import occlude
from skdistill.metrics import entropy_mae

torch.set_num_threads(1)
X, y = load_digits(return_X_y=True)
X = (X / 16).astype(np.float32)
# sphinx_gallery_start_ignore
# SKDISTILL_EXAMPLE_QUICK=1: a smoke run of every step on less work (the gallery runs it all).
import os  # noqa: E402

from sklearn.utils import resample  # noqa: E402

QUICK = os.environ.get("SKDISTILL_EXAMPLE_QUICK") == "1"
if QUICK:
    X, y = resample(X, y, n_samples=min(600, len(X)), replace=False, stratify=y,
                    random_state=0)
# sphinx_gallery_end_ignore
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, random_state=0)
X_occluded = occlude(X_test, mask_size=4, random_state=0)

teacher = SGLDTeacher(hidden_layer_sizes=(100, 100), step_size=1e-4, prior_precision=10.0,
                      n_iter=8000, burn_in=1000, thinning=50, max_samples=200, random_state=0)
# sphinx_gallery_start_ignore
if QUICK:
    teacher.set_params(n_iter=1500, burn_in=500)
# sphinx_gallery_end_ignore
# D' mixes clean and occluded training images so the student sees both kinds of input.
X_distill = np.vstack([X_train, occlude(X_train, mask_size=4, random_state=1)])
model = GPEDDistiller(teacher, MLPStudent(hidden_layer_sizes=(100,), lr=1e-3),
                      target=["predictive", "entropy"], thinning=2, random_state=0)
model.fit(X_train, y_train, X_unlabeled=X_distill)

results = {}
for label, Xs in (("clean", X_test), ("occluded 4x4", X_occluded)):
    u = model.predict_uncertainty(Xs)
    h_teacher = model.teacher_.predict_expectation(Xs, "entropy")
    results[label] = u
    print(f"{label:13s} accuracy {model.score(Xs, y_test):.3f}  total {u.total.mean():.3f}  "
          f"aleatoric {u.aleatoric.mean():.3f}  epistemic {u.epistemic.mean():.3f}  "
          f"entropy MAE vs teacher {entropy_mae(h_teacher, u.aleatoric):.3f}")

try:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
except ImportError:
    plt = None
if plt is not None:
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.2))
    for ax, kind in zip(axes, ("total", "aleatoric", "epistemic")):
        for label, u in results.items():
            ax.hist(u[kind], bins=30, alpha=0.6, label=label)
        ax.set_title(f"{kind} uncertainty (nats)")
        ax.set_yscale("log")
    axes[0].legend()
    fig.tight_layout()
    fig.savefig("gped_uncertainty.png", dpi=100)
    print("wrote gped_uncertainty.png")
