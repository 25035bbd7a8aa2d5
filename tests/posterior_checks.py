"""Checks shared by the tests of the posterior teachers (SGLD, Laplace, VI)."""
import numpy as np


def assert_uncertainty_decomposes(teacher, X):
    """``teacher.predict_uncertainty(X)`` against the numpy formulas over its samples.

    ``total`` is the entropy of the mean of ``sample_proba`` (and of ``predict_proba``),
    ``aleatoric`` the mean entropy of the samples (and ``predict_expectation(X, "entropy")``),
    ``total == aleatoric + epistemic`` exactly, and the mutual information is non-negative
    and positive somewhere (the samples disagree). Returns the uncertainty.
    """
    S = teacher.sample_proba(X)
    u = teacher.predict_uncertainty(X)
    P = S.mean(0)
    np.testing.assert_allclose(u.total, -(P * np.log(P)).sum(-1), rtol=1e-9)
    np.testing.assert_allclose(u.aleatoric, -(S * np.log(S)).sum(-1).mean(0), rtol=1e-9)
    assert np.array_equal(u.total, u.aleatoric + u.epistemic)
    assert (u.epistemic >= 0).all() and u.epistemic.max() > 0
    np.testing.assert_allclose(u.aleatoric, teacher.predict_expectation(X, "entropy"))
    p = teacher.predict_proba(X)
    np.testing.assert_allclose(u.total, -(p * np.log(p)).sum(1), rtol=1e-9, atol=1e-12)
    return u
