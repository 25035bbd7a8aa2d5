"""Occluded MNIST digits and a Gaussian mixture's exact Bayes posterior
====================================================================

Left: MNIST test digits with GPED-style occlusion squares of growing size (sklearn's 8x8 digits
stand in when the MNIST files are not in the data folder). Right: a two-class Gaussian mixture
coloured by its true p(y=1 | x), the target a perfectly calibrated teacher would give a student.

Run with ``SKDISTILL_DATA=../shared/data python examples/plot_datasets.py``; writes
``datasets.png``.
"""
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits

from skdistill.datasets import (
    DataFileNotFoundError,
    get_data_home,
    load_mnist,
    make_gaussian_mixture,
    occlude,
)

try:
    images = load_mnist(subset="test").images[:4]
    mask_sizes = [0, 7, 14, 21]
    print(f"MNIST test split from {get_data_home() / 'mnist'}")
except DataFileNotFoundError:
    images = load_digits().images[:4] / 16
    mask_sizes = [0, 2, 4, 6]  # the same fractions of an 8x8 image as 0, 7, 14, 21 of 28x28
    print(f"MNIST not found in {get_data_home() / 'mnist'} (see skdistill.datasets); "
          f"using scikit-learn's 8x8 digits")

fig = plt.figure(figsize=(10, 4.5), layout="constrained")
left, right = fig.subfigures(1, 2, width_ratios=[1, 1])
axes = left.subplots(len(mask_sizes), len(images))
for row, mask_size in enumerate(mask_sizes):
    occluded = occlude(images, mask_size=mask_size, random_state=row)
    for col, image in enumerate(occluded):
        axes[row, col].imshow(image, cmap="gray_r", vmin=0, vmax=1)
        axes[row, col].set_xticks([])
        axes[row, col].set_yticks([])
    axes[row, 0].set_ylabel(f"mask {mask_size}")
left.suptitle("occlude(X, mask_size)")

X, y, proba = make_gaussian_mixture(n_samples=2000, class_sep=1.5, random_state=0)
print(f"Bayes accuracy {proba.max(axis=1).mean():.3f}, "
      f"argmax of proba on the sample {np.mean(proba.argmax(axis=1) == y):.3f}")
ax = right.subplots()
points = ax.scatter(X[:, 0], X[:, 1], c=proba[:, 1], cmap="coolwarm", s=6, vmin=0, vmax=1)
right.colorbar(points, ax=ax, label="Bayes p(y=1 | x)")
ax.set_title("make_gaussian_mixture")
fig.savefig("datasets.png", dpi=100)
print("saved datasets.png")
