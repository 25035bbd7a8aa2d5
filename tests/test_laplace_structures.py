"""LaplaceTeacher's Hessian structures: each implements the interface, consistently, and the
registry is what the teacher accepts."""
import inspect

import numpy as np
import pytest
import torch
from sklearn.datasets import make_classification

from sklearn.frozen import FrozenEstimator
from torch import nn

from skdistill import CNNStudent, LaplaceTeacher, MLPStudent
from skdistill.teachers.laplace import (STRUCTURES, DiagHessian, FullHessian, HessianStructure,
                                        KronHessian, NotPositiveDefinite)

CPU = torch.device("cpu")


def factor_rows(n_params=5, seed=0):
    """Two batches of GGN factor rows ``G``, float64."""
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(7, n_params, generator=g, dtype=torch.float64) for _ in range(2)]


def accumulated(cls, rows):
    """A structure holding the GGN of two batches: the factor rows ``rows``, or, for a
    structure that reads the network, two batches of 7 rows through a small tanh network."""
    if not cls.from_network:
        structure = cls(rows[0].shape[1], CPU)
        for G in rows:
            structure.accumulate(G)
        return structure
    with torch.random.fork_rng():
        torch.manual_seed(0)
        net = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 3)).double()
    structure = cls(sum(p.numel() for p in net.parameters()), CPU, net)
    g = torch.Generator().manual_seed(3)
    for _ in range(2):
        x = torch.randn(7, 3, generator=g, dtype=torch.float64)
        with torch.no_grad():
            p = torch.softmax(net(x), dim=1)
        structure.accumulate_network(x, p, torch.rand(7, generator=g, dtype=torch.float64))
    return structure


def fitted(cls, prior_precision, rows):
    structure = accumulated(cls, rows)
    structure.set_prior(prior_precision)
    return structure


def test_every_structure_implements_the_interface():
    assert set(STRUCTURES) == {"full", "diag", "kron"}
    abstract = {name for name, member in vars(HessianStructure).items()
                if getattr(member, "__isabstractmethod__", False)}
    assert abstract >= {"accumulate", "factorise", "log_det", "sample", "functional_variance"}
    for name, cls in STRUCTURES.items():
        assert issubclass(cls, HessianStructure) and cls.name == name
        assert not inspect.isabstract(cls), f"{cls.__name__}: {cls.__abstractmethods__}"
        if cls.max_params is not None:
            assert cls.instead and all(name in STRUCTURES and STRUCTURES[name].max_params
                                       is None for name in cls.instead)


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
    kept = accumulated(STRUCTURES[name], rows)
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


@pytest.mark.parametrize("value", ["kfac", "lowrank", "Full"])
def test_an_unknown_structure_is_named_in_the_error(value):
    X, y = make_classification(n_samples=20, n_features=3, n_informative=2, n_redundant=0,
                               random_state=0)
    with pytest.raises(ValueError, match=rf"^LaplaceTeacher: parameter hessian_structure="
                                         rf"'{value}' is invalid; expected 'full' or 'diag' or "
                                         rf"'kron'"):
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


def test_kron_is_the_exact_ggn_block_of_each_layer_for_one_row():
    """K-FAC's weight block ``B kron A`` replaces the mean of ``(sum_c g g^T) kron a a^T`` by
    the product of the means: exact for one row (here all others weigh 0), not for several;
    the bias's block ``B`` is exact whatever the rows. The block between a layer's weight and
    its bias is dropped."""
    X, y = make_classification(n_samples=60, n_features=3, n_informative=3, n_redundant=0,
                               n_classes=3, n_clusters_per_class=1, random_state=0)
    student = MLPStudent(hidden_layer_sizes=(), batch_size=60, optimizer=torch.optim.LBFGS,
                         lr=1.0, max_epochs=20, random_state=0).fit(X, y)

    def precision(structure, weight):
        teacher = LaplaceTeacher(FrozenEstimator(student), subset_of_weights="all",
                                 hessian_structure=structure, n_samples=2).fit(X, y, weight)
        H = teacher.posterior_precision_
        return H if structure == "full" else H.to_dense()

    w, b = slice(0, 9), slice(9, 12)  # the weight (3, 3) row by row, then the bias
    one = np.zeros(60)
    one[5] = 1.0
    full, kron = precision("full", one), precision("kron", one)
    torch.testing.assert_close(kron[w, w], full[w, w], rtol=0, atol=1e-10)
    torch.testing.assert_close(kron[b, b], full[b, b], rtol=0, atol=1e-10)
    assert full[w, b].abs().max() > 1e-3 and not kron[w, b].any()
    full, kron = precision("full", None), precision("kron", None)
    torch.testing.assert_close(kron[b, b], full[b, b], rtol=0, atol=1e-10)
    assert (kron[w, w] - full[w, w]).norm() > 0.05 * full[w, w].norm()


def test_kron_names_a_layer_it_has_no_block_for():
    X = np.random.default_rng(0).uniform(size=(30, 64)).astype(np.float32)
    y = np.arange(30) % 3
    cnn = CNNStudent(max_epochs=1, width_multiplier=0.25, random_state=0)
    with pytest.raises(ValueError, match=r"^LaplaceTeacher: parameter hessian_structure='kron' "
                                         r"is invalid; expected 'diag' or subset_of_weights="
                                         r"'last_layer' for a network with .*\(Conv2d\)"):
        LaplaceTeacher(cnn, subset_of_weights="all", hessian_structure="kron").fit(X, y)
    # its head is linear
    teacher = LaplaceTeacher(cnn, hessian_structure="kron", n_samples=2).fit(X, y)
    assert teacher.posterior_precision_.to_dense().shape == (teacher.n_params_,) * 2
    with pytest.raises(TypeError, match="KronHessian accumulates from a network"):
        KronHessian(4, CPU)
