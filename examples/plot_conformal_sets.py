"""Conformal prediction sets on a distilled student, with a coverage check
=========================================================================

A random forest teacher is distilled into a small MLP on 4,000 Fashion-MNIST test images.
MAPIE's ``SplitConformalClassifier`` then turns the fitted distiller, as it is
(``prefit=True``), into a set predictor on 2,000 calibration images that neither model saw:
each set holds every label whose probability clears a threshold chosen on the calibration rows
(the LAC score). On 4,000 other images the script prints, for three confidence levels, the
fraction of images whose label is in its set, the window split conformal prediction guarantees
(widened by three standard deviations for a finite test set), the mean set size and the
fraction of single-label sets, and stops with an error if a coverage leaves its window. A
figure shows the distribution of set sizes. About 10 seconds of CPU time.

Without the Fashion-MNIST files in the data folder, scikit-learn's 8x8 digits (1,797 images)
stand in, split in the same 40/20/40 proportion, and the script says so. It needs MAPIE
(``pip install "skdistill[conformal]"``); without it, the script says so and stops before
fitting anything.
"""
import math

import numpy as np
from sklearn.datasets import load_digits
from sklearn.ensemble import RandomForestClassifier
from sklearn.model_selection import train_test_split

from skdistill import KnowledgeDistiller, MLPStudent
from skdistill.datasets import DataFileNotFoundError, get_data_home, load_fashion_mnist

try:
    X, y = load_fashion_mnist(subset="test", return_X_y=True)
    print(f"Fashion-MNIST test split ({len(X)} images)")
except DataFileNotFoundError:
    X, y = load_digits(return_X_y=True)
    X = (X / 16).astype(np.float32)
    print(f"Fashion-MNIST not found in {get_data_home() / 'fashion-mnist'} (see "
          f"skdistill.datasets); using scikit-learn's 8x8 digits ({len(X)} images)")
# sphinx_gallery_start_ignore
# SKDISTILL_EXAMPLE_QUICK=1: a smoke run of every step on less work (the gallery runs it all).
import os  # noqa: E402

from sklearn.utils import resample  # noqa: E402

QUICK = os.environ.get("SKDISTILL_EXAMPLE_QUICK") == "1"
if QUICK:
    X, y = resample(X, y, n_samples=min(1500, len(X)), replace=False, stratify=y,
                    random_state=0)
# sphinx_gallery_end_ignore
# 40% to train, 20% to calibrate, 40% to test (at most 4,000 / 2,000 / 4,000 images).
n = min(len(X), 10_000)
X_train, X_rest, y_train, y_rest = train_test_split(X, y, train_size=int(0.4 * n),
                                                    test_size=int(0.6 * n), stratify=y,
                                                    random_state=0)
X_cal, X_test, y_cal, y_test = train_test_split(X_rest, y_rest, train_size=1 / 3,
                                                stratify=y_rest, random_state=0)

try:
    from mapie.classification import SplitConformalClassifier
except ImportError:
    print("MAPIE is not installed: pip install 'skdistill[conformal]' to run the rest of this "
          "example; nothing was fitted.")
    raise SystemExit(0)

model = KnowledgeDistiller(
    RandomForestClassifier(n_estimators=100, min_samples_leaf=2, n_jobs=2, random_state=0),
    MLPStudent(hidden_layer_sizes=(64,), max_epochs=20, lr=1e-3, random_state=0),
    random_state=0).fit(X_train, y_train)
print(f"student accuracy on the test images: {model.score(X_test, y_test):.3f}")

# %%
# Conformalize on the calibration images, then predict sets for the test images. One
# conformalizer serves several levels: ``sets`` has one column of sets per level.
levels = [0.8, 0.9, 0.95]
conformal = SplitConformalClassifier(model, confidence_level=levels, conformity_score="lac",
                                     prefit=True)
conformal.conformalize(X_cal, y_cal)
_, sets = conformal.predict_set(X_test)  # (n_test, n_classes, n_levels), in classes_ order

# %%
# Split conformal prediction guarantees, for exchangeable rows, that a new row's label is in
# its set with probability between ``level`` and ``level + 1 / (n_cal + 1)``. Measured on a
# finite test set after one calibration set, the coverage varies around that: about
# ``level (1 - level) / (n_cal + 2)`` of variance from the calibration rows and
# ``level (1 - level) / n_test`` from the test rows.
n_cal, n_test = len(y_cal), len(y_test)
label_column = np.searchsorted(model.classes_, y_test)
covered = sets[np.arange(n_test), label_column]  # (n_test, n_levels)
sizes = sets.sum(axis=1)
print(f"{n_cal} calibration and {n_test} test images, {len(model.classes_)} classes")
print("level  coverage  guaranteed window (3 sd)  mean size  single label  empty")
for k, level in enumerate(levels):
    sd = math.sqrt(level * (1 - level) * (1 / (n_cal + 2) + 1 / n_test))
    low, high = level - 3 * sd, level + 1 / (n_cal + 1) + 3 * sd
    coverage = covered[:, k].mean()
    print(f"{level:5.2f}  {coverage:8.3f}  [{low:.3f}, {high:.3f}]            "
          f"{sizes[:, k].mean():9.2f}  {np.mean(sizes[:, k] == 1):12.3f}  "
          f"{np.mean(sizes[:, k] == 0):5.3f}")
    if not low <= coverage <= high:
        raise AssertionError(f"coverage {coverage:.3f} at level {level} is outside the "
                             f"window [{low:.3f}, {high:.3f}] split conformal guarantees")
print("every coverage lies in its window")

# %%
# The guarantee is marginal: over all images, not for each class. Coverage per class at the
# middle level shows how unevenly it can be spread.
per_class = [covered[label_column == c, 1].mean() for c in range(len(model.classes_))]
print(f"coverage per class at level {levels[1]}: min {min(per_class):.3f}, "
      f"max {max(per_class):.3f}")

try:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
except ImportError:
    plt = None
if plt is None:
    print("matplotlib is not installed: no figure (pip install matplotlib)")
else:
    fig, ax = plt.subplots(figsize=(6, 4))
    edges = np.arange(sizes.max() + 2) - 0.5
    width = 0.8 / len(levels)
    for k, level in enumerate(levels):
        counts, _ = np.histogram(sizes[:, k], bins=edges)
        ax.bar(np.arange(len(counts)) + (k - 1) * width, counts / n_test, width=width,
               label=f"level {level} (coverage {covered[:, k].mean():.3f})")
    ax.set_xlabel("set size (labels)")
    ax.set_ylabel("fraction of test images")
    ax.set_title("LAC prediction sets of the distilled student")
    ax.legend()
    fig.tight_layout()
    fig.savefig("conformal_set_sizes.png", dpi=100)
