"""``hessian_structure="diag"``: the diagonal of the posterior precision, a ``(P,)`` vector."""
import torch

from ._base import HessianStructure


class DiagHessian(HessianStructure):
    """The diagonal of the GGN, ``sum_n diag(J_n^T (diag(p_n) - p_n p_n^T) J_n)``: parameters
    independent a posteriori, for any number of them.

    A draw is ``z / sqrt(H)``, the variance of the logits ``sum_p J_np^2 / H_p`` per class,
    and ``log det H`` the sum of ``log H_p``.

    Parameters
    ----------
    n_params : int
        Parameters with a posterior.
    device : torch.device
        Where the diagonal is accumulated and kept.

    Examples
    --------
    >>> import torch
    >>> from skdistill.teachers.laplace import DiagHessian
    >>> H = DiagHessian(2, torch.device("cpu"))
    >>> H.accumulate(torch.tensor([[1.0, 2.0]], dtype=torch.float64))
    >>> H.set_prior(1.0)
    >>> H.precision
    tensor([2., 5.], dtype=torch.float64)
    >>> H.functional_variance(torch.tensor([[[1.0, 0.0]]], dtype=torch.float64))
    tensor([[0.5000]], dtype=torch.float64)
    """

    name = "diag"

    def zeros(self, n_params, device):
        """The ``(n_params,)`` zero vector."""
        return torch.zeros((n_params,), dtype=torch.float64, device=device)

    def accumulate(self, G):
        """Add the diagonal of ``G^T G``: the squares of ``G``'s columns, summed."""
        self.ggn += G.square().sum(dim=0)

    def add_diagonal(self, matrix, value):
        """``matrix + value``: the diagonal of ``diag(matrix) + value I``."""
        return matrix + value

    def factorise(self):
        """Nothing to do: each ``H_p`` is at least the prior precision, positive."""

    def log_det(self, prior_precision):
        """``sum_p log(GGN_p + prior_precision)``."""
        return float(torch.log(self.curvature().clamp_min(0) + prior_precision).sum())

    def sample(self, z):
        """``z / sqrt(H)``, elementwise."""
        return z / self.precision.sqrt()

    def functional_variance(self, J):
        """``sum_p J_np^2 / H_p`` per row and class."""
        return (J.square() / self.precision).sum(dim=2)
