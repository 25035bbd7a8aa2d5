"""LaplaceTeacher's Hessian structures: each implements the interface, consistently, and the
registry is what the teacher accepts."""
import inspect

import numpy as np
import pytest
import torch
from sklearn.datasets import make_classification

from skdistill import LaplaceTeacher, MLPStudent
from skdistill.teachers.laplace import (STRUCTURES, DiagHessian, FullHessian, HessianStructure,
                                        NotPositiveDefinite)

CPU = torch.device("cpu")


def factor_rows(n_params=5, seed=0):
    """Two batches of GGN factor rows ``G``, float64."""
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(7, n_params, generator=g, dtype=torch.float64) for _ in range(2)]


def fitted(cls, prior_precision, rows):
    structure = cls(rows[0].shape[1], CPU)
    for G in rows:
        structure.accumulate(G)
    structure.set_prior(prior_precision)
    return structure


def test_every_structure_implements_the_interface():
    assert set(STRUCTURES) == {"full", "diag"}
    abstract = {name for name, member in vars(HessianStructure).items()
                if getattr(member, "__isabstractmethod__", False)}
    assert abstract >= {"accumulate", "factorise", "log_det", "sample", "functional_variance"}
    for name, cls in STRUCTURES.items():
        assert issubclass(cls, HessianStructure) and cls.name == name
        assert not inspect.isabstract(cls), f"{cls.__name__}: {cls.__abstractmethods__}"
        if cls.max_params is not None:
            assert cls.instead in STRUCTURES and STRUCTURES[cls.instead].max_params is None


@pytest.mark.parametrize("name", sorted(STRUCTURES))
def test_draws_variances_and_log_determinant_describe_one_gaussian(name):
    """Whatever the structure, its draws ``delta = sample(z)`` are linear in ``z``, with a
    covariance ``S`` whose inverse has the log-determinant ``log_det`` gives, and
    ``functional_variance(J)`` is ``diag(J S J^T)``."""
    rows, lam = factor_rows(), 0.7
    structure = fitted(STRUCTURES[name], lam, rows)
    P = structure.n_params
    M = structure.sample(torch.eye(P, dtype=torch.float64))  # the draw of each unit z
    z = torch.randn(4, P, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(structure.sample(z), z @ M)
    S = M.T @ M
    J = torch.randn(3, 2, P, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(structure.functional_variance(J),
                               torch.einsum("bkp,pq,bkq->bk", J, S, J))
    assert structure.log_det(lam) == pytest.approx(-torch.logdet(S).item(), rel=1e-10)
    # at another prior: as the structure fitted there, from the GGN kept or from H minus lam
    other = fitted(STRUCTURES[name], 3.0, rows)
    expected = other.log_det(3.0)
    assert structure.log_det(3.0) == pytest.approx(expected, rel=1e-10)
    kept = STRUCTURES[name](P, CPU)
    for G in rows:
        kept.accumulate(G)
    assert kept.log_det(3.0) == pytest.approx(expected, rel=1e-10)


def test_full_and_diagonal_precisions_are_the_ggn_plus_the_prior():
    rows, lam = factor_rows(), 0.7
    G = torch.cat(rows)
    dense = G.T @ G + lam * torch.eye(G.shape[1], dtype=torch.float64)
    torch.testing.assert_close(fitted(FullHessian, lam, rows).precision, dense)
    torch.testing.assert_close(fitted(DiagHessian, lam, rows).precision, dense.diagonal())
    # a flat direction the prior cannot fill in float64 is refused by the full structure
    flat = [torch.ones(3, 2, dtype=torch.float64)]
    with pytest.raises(NotPositiveDefinite):
        fitted(FullHessian, 1e-300, flat)


@pytest.mark.parametrize("value", ["kron", "lowrank", "Full"])
def test_an_unknown_structure_is_named_in_the_error(value):
    X, y = make_classification(n_samples=20, n_features=3, n_informative=2, n_redundant=0,
                               random_state=0)
    with pytest.raises(ValueError, match=rf"^LaplaceTeacher: parameter hessian_structure="
                                         rf"'{value}' is invalid; expected 'full' or 'diag'"):
        LaplaceTeacher(hessian_structure=value).fit(X, y)


def test_a_registered_structure_is_one_the_teacher_accepts(monkeypatch):
    """Adding a structure is a class and an entry in the registry: the teacher needs no more."""

    class Diagonal(DiagHessian):
        name = "diagonal"

    monkeypatch.setitem(STRUCTURES, "diagonal", Diagonal)
    X, y = make_classification(n_samples=40, n_features=3, n_informative=2, n_redundant=0,
                               random_state=0)

    def teacher(structure):
        return LaplaceTeacher(MLPStudent(hidden_layer_sizes=(4,), max_epochs=2,
                                         random_state=0),
                              hessian_structure=structure, n_samples=3,
                              random_state=0).fit(X, y)

    new, diag = teacher("diagonal"), teacher("diag")
    assert isinstance(new._posterior, Diagonal)
    np.testing.assert_array_equal(new.sample_proba(X[:5]), diag.sample_proba(X[:5]))
    assert new.log_marginal_likelihood(2.0) == diag.log_marginal_likelihood(2.0)
