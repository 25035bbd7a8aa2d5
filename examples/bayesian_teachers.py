"""Bayesian teachers: the MAP network against Laplace, VI, SWAG and MC dropout posteriors
=========================================================================================

Run: ``python examples/bayesian_teachers.py`` (about 30 s on 2 CPU cores). On scikit-learn's
8x8 digits (1,797 images, 2/3 to train), it fits

- a 64-100-10 network to the MAP under a Gaussian prior (the plug-in predictive),
- its Laplace approximation over the last layer, with the prior precision tuned on the
  marginal likelihood (Monte Carlo GLM predictive, and the probit approximation),
- its Laplace approximation over all weights with the Kronecker-factored (K-FAC) GGN,
- a mean-field Gaussian network of the same shape trained by variational inference,
- SWAG, a Gaussian fitted to the SGD iterates of the same network,
- MC dropout: the same network trained with dropout, kept on at prediction,

prints accuracy, NLL and ECE of each on the held-out images, and distils the Laplace teacher
into a 32-unit student with GPED (the teacher's posterior samples drive the student).
"""
import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.frozen import FrozenEstimator
from sklearn.model_selection import train_test_split

from skdistill import (GPEDDistiller, LaplaceTeacher, MCDropoutTeacher, MLPStudent,
                       SWAGTeacher, VITeacher)
from skdistill.metrics import expected_calibration_error, negative_log_likelihood

torch.set_num_threads(1)
X, y = load_digits(return_X_y=True)
X = (X / 16).astype(np.float32)
# sphinx_gallery_start_ignore
# SKDISTILL_EXAMPLE_QUICK=1: a smoke run of every step on less work (the gallery runs it all).
import os  # noqa: E402

from sklearn.utils import resample  # noqa: E402

QUICK = os.environ.get("SKDISTILL_EXAMPLE_QUICK") == "1"
if QUICK:
    X, y = resample(X, y, n_samples=min(300, len(X)), replace=False, stratify=y,
                    random_state=0)
# sphinx_gallery_end_ignore
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=1 / 3, random_state=0)

network = MLPStudent(hidden_layer_sizes=(100,), max_epochs=60, lr=1e-3, batch_size=64,
                     random_state=0)
laplace = LaplaceTeacher(network, prior_precision="marglik", n_samples=100,
                         random_state=0).fit(X_train, y_train)
# the same MAP network, trained once, for the other two approximations
map_network = FrozenEstimator(laplace.estimator_)
probit = LaplaceTeacher(map_network, prior_precision="marglik", link_approx="probit",
                        random_state=0).fit(X_train, y_train)
kron = LaplaceTeacher(map_network, subset_of_weights="all", hessian_structure="kron",
                      prior_precision="marglik", n_samples=100,
                      random_state=0).fit(X_train, y_train)
vi = VITeacher(hidden_layer_sizes=(100,), prior_precision=1.0, max_epochs=150, lr=3e-3,
               batch_size=64, n_samples=100, random_state=0).fit(X_train, y_train)
swag = SWAGTeacher(MLPStudent(hidden_layer_sizes=(100,), max_epochs=60, lr=0.05,
                              optimizer="momentum", batch_size=64, random_state=0),
                   swa_start=30, swa_lr=0.02, n_samples=100,
                   random_state=0).fit(X_train, y_train)
dropout = MCDropoutTeacher(network, dropout=0.2, n_samples=100,
                           random_state=0).fit(X_train, y_train)
student = GPEDDistiller(laplace, MLPStudent(hidden_layer_sizes=(32,), lr=3e-3, max_epochs=60,
                                            batch_size=64),
                        target=["predictive", "entropy"], random_state=0).fit(X_train, y_train)

print(f"8x8 digits: {len(X_train)} training images, {len(X_test)} held out")
print(f"Laplace: {laplace.n_params_} last-layer parameters, prior precision "
      f"{laplace.prior_precision_:.3g} (marginal likelihood); VI ELBO "
      f"{vi.elbo_history_[0]:.0f} -> {vi.elbo_history_[-1]:.0f} over {vi.max_epochs} epochs")
rows = [("MAP network (plug-in)", laplace.estimator_.predict_proba(X_test)),
        ("Laplace, last layer (MC)", laplace.predict_proba(X_test)),
        ("Laplace, last layer (probit)", probit.predict_proba(X_test)),
        ("Laplace, all weights, K-FAC", kron.predict_proba(X_test)),
        ("VI, mean-field (MC)", vi.predict_proba(X_test)),
        ("SWAG", swag.predict_proba(X_test)),
        ("MC dropout (p = 0.2)", dropout.predict_proba(X_test)),
        ("GPED student of Laplace", student.predict_proba(X_test))]
print(f"{'model':30s} {'accuracy':>8s} {'NLL':>7s} {'ECE':>7s}")
for name, proba in rows:
    accuracy = np.mean(proba.argmax(1) == y_test)
    print(f"{name:30s} {accuracy:8.3f} {negative_log_likelihood(y_test, proba):7.3f} "
          f"{expected_calibration_error(y_test, proba):7.3f}")
u = laplace.predict_uncertainty(X_test)
wrong = laplace.predict(X_test) != y_test
print(f"Laplace epistemic uncertainty (mutual information): {u.epistemic[wrong].mean():.3f} "
      f"on misclassified images, {u.epistemic[~wrong].mean():.3f} on the others")
