"""A 2-D Bayesian logistic regression and its long random-walk Metropolis reference (and the
random walk itself, for any log density).

The ground truth that the SGLD and Laplace teachers are checked against: a 2-class softmax
regression, ``theta = (W (2x2) row-major, b (2))``, under the Gaussian prior of precision
``precision``, on 20 training rows.
"""
import numpy as np
from scipy.special import logsumexp

#: Test points of the predictive, from the bulk of the data to beyond it.
X_TEST = np.array([[0, 0], [2, 2], [1, -1], [-2, 0.5], [3, 0], [-1, -3]], dtype=float)


def logistic_data():
    """The 20 training rows ``X, y`` and the test points."""
    rng = np.random.default_rng(1)
    X = rng.normal(size=(20, 2))
    y = (X @ [1.5, -1.0] + 0.8 * rng.normal(size=20) > 0).astype(int)
    return X, y, X_TEST.copy()


def logits(theta, X):
    """Logits of shape (n_theta, n_rows, 2) for a batch of parameter vectors ``theta``."""
    W, b = theta[:, :4].reshape(-1, 2, 2), theta[:, 4:]
    return np.einsum("nd,skd->snk", X, W) + b[:, None, :]


def log_posterior(theta, X, y, precision):
    """Unnormalised log posterior of each row of ``theta``."""
    z = logits(theta, X)
    log_p = z - logsumexp(z, axis=2, keepdims=True)
    return log_p[:, np.arange(len(y)), y].sum(axis=1) - 0.5 * precision * (theta**2).sum(axis=1)


def proba_1(theta, X):
    """p(y = 1 | x, theta) of shape (n_theta, n_rows)."""
    z = logits(theta, X)
    return 1 / (1 + np.exp(z[:, :, 0] - z[:, :, 1]))


def metropolis(X, y, precision, *, n_steps, keep_every, n_chains=50, scale=0.35,
               burn_in=1000):
    """Posterior samples of the 6 parameters: every ``keep_every``-th state after burn-in of
    ``n_chains`` seeded random-walk Metropolis chains, stacked."""
    return random_walk(lambda theta: log_posterior(theta, X, y, precision), np.zeros(6),
                       n_steps=n_steps, keep_every=keep_every, n_chains=n_chains, scale=scale,
                       burn_in=burn_in)


def random_walk(log_density, start, *, n_steps, keep_every, n_chains=50, scale=0.35,
                burn_in=1000):
    """Samples of any density: ``n_chains`` seeded random-walk Metropolis chains from
    ``start``, every ``keep_every``-th state after ``burn_in``, stacked. ``log_density`` maps
    a batch ``(n_chains, P)`` of parameters to their unnormalised log densities."""
    rng = np.random.default_rng(0)
    theta = np.repeat(np.asarray(start, dtype=float)[None], n_chains, axis=0)
    lp = log_density(theta)
    kept = []
    for t in range(n_steps):
        proposal = theta + scale * rng.normal(size=theta.shape)
        lp_new = log_density(proposal)
        accept = np.log(rng.uniform(size=n_chains)) < lp_new - lp
        theta[accept], lp[accept] = proposal[accept], lp_new[accept]
        if t >= burn_in and t % keep_every == 0:
            kept.append(theta.copy())
    return np.concatenate(kept)
