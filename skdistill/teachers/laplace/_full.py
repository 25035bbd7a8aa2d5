"""``hessian_structure="full"``: the dense ``(P, P)`` posterior precision, by its Cholesky
factor."""
import torch

from ._base import HessianStructure, NotPositiveDefinite

#: Most parameters a full Hessian is built for: 8192**2 float64 is 512 MB.
MAX_FULL_PARAMS = 8192


def cholesky(H):
    """The Cholesky factor ``L`` of ``H = L L^T``, or :class:`NotPositiveDefinite` if ``H`` is
    singular (a GGN with flat directions and a prior too weak to fill them in float64).

    Singular means that the factorisation fails, or that it succeeds only through rounding: a
    pivot (squared diagonal entry of the factor) below ``n * eps`` times the largest diagonal
    entry of ``H``, where a flat direction's rounding error, of either sign, decides whether
    the factorisation succeeds. Such a posterior's variance along that direction would be
    rounding noise.
    """
    L, info = torch.linalg.cholesky_ex(H)
    floor = H.shape[0] * torch.finfo(H.dtype).eps * H.diagonal().abs().max()
    if info.item() or bool((L.diagonal() ** 2).min() <= floor):
        raise NotPositiveDefinite("the posterior precision is not positive definite in float64")
    return L


class FullHessian(HessianStructure):
    """The full GGN ``sum_n J_n^T (diag(p_n) - p_n p_n^T) J_n``, a ``(P, P)`` matrix.

    ``H = L L^T`` is factorised once (:attr:`cholesky`): a draw is ``L^-T z``, the variance
    of the logits ``||L^-1 J_n^T||^2`` per class, and ``log det H`` at the fitted prior
    ``2 sum log diag L``; at another prior the log-determinant comes from the GGN's
    eigenvalues, computed once.

    Parameters
    ----------
    n_params : int
        Parameters with a posterior, at most :data:`MAX_FULL_PARAMS`.
    device : torch.device
        Where the matrix is accumulated and kept.

    Examples
    --------
    >>> import torch
    >>> from skdistill.teachers.laplace import FullHessian
    >>> H = FullHessian(2, torch.device("cpu"))
    >>> H.accumulate(torch.tensor([[1.0, 2.0]], dtype=torch.float64))
    >>> H.set_prior(1.0)
    >>> H.precision
    tensor([[2., 2.],
            [2., 5.]], dtype=torch.float64)
    >>> H.functional_variance(torch.tensor([[[1.0, 0.0]]], dtype=torch.float64))
    tensor([[0.8333]], dtype=torch.float64)
    """

    name = "full"
    max_params = MAX_FULL_PARAMS
    instead = ("kron", "diag")

    def __init__(self, n_params, device, module=None):
        super().__init__(n_params, device, module)
        self.cholesky = None
        self._eigenvalues = None

    def zeros(self, n_params, device):
        """The ``(n_params, n_params)`` zero matrix."""
        return torch.zeros((n_params, n_params), dtype=torch.float64, device=device)

    def accumulate(self, G):
        """Add ``G^T G``."""
        self.ggn.addmm_(G.T, G)

    def add_diagonal(self, matrix, value):
        """``matrix + value I``."""
        out = matrix.clone()
        out.diagonal().add_(value)
        return out

    def factorise(self):
        """The Cholesky factor of ``H`` (:func:`cholesky`)."""
        self.cholesky = cholesky(self.precision)

    def log_det(self, prior_precision):
        """From the Cholesky factor at the fitted prior, else the GGN's eigenvalues."""
        if prior_precision == self.prior_precision and self.cholesky is not None:
            return float(2 * torch.log(torch.diagonal(self.cholesky)).sum())
        if self._eigenvalues is None:
            self._eigenvalues = torch.linalg.eigvalsh(self.curvature()).clamp_min(0).cpu()
        return float(torch.log(self._eigenvalues + prior_precision).sum())

    def sample(self, z):
        """``L^-T z``: ``H = L L^T``, so its covariance is ``L^-T L^-1 = H^-1``."""
        return torch.linalg.solve_triangular(self.cholesky.mT, z.T, upper=True).T

    def functional_variance(self, J):
        """``||L^-1 J_n^T||^2`` per row and class."""
        A = torch.linalg.solve_triangular(self.cholesky, J.reshape(-1, self.n_params).T,
                                          upper=False)
        return A.square().sum(dim=0).reshape(J.shape[:2])
