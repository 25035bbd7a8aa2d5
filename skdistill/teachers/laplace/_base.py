"""The interface of a Hessian structure: one form of the Laplace posterior precision."""
from abc import ABC, abstractmethod


class NotPositiveDefinite(ArithmeticError):
    """The posterior precision is singular in float64, or positive definite only by rounding.

    A structure's :meth:`HessianStructure.factorise` raises it; the teacher turns it into the
    error that names its ``prior_precision``.
    """


class HessianStructure(ABC):
    """One form of the posterior precision ``H = GGN + lambda I`` of a Laplace approximation.

    A subclass is one value of ``LaplaceTeacher(hessian_structure=...)`` (its :attr:`name`):
    how the generalised Gauss-Newton matrix (GGN) is stored and accumulated, how ``H`` is
    built and factorised, and what the teacher asks of the posterior ``N(theta*, H^-1)``:
    draws, the variance of the linearised logits and the log-determinant of the evidence.
    Parameters are in the order of ``torch.nn.utils.parameters_to_vector``; everything is
    float64 on the teacher's device.

    One instance per fit, in this order:

    1. ``HessianStructure(n_params, device, module)``: an empty GGN, :attr:`ggn`.
    2. :meth:`accumulate` for each batch of factor rows, or, for a structure that
       accumulates from the network itself (:attr:`from_network`, such as ``"kron"``),
       :meth:`accumulate_network` for each batch of inputs.
    3. :meth:`log_det` at any prior precision (the search of ``prior_precision="marglik"``).
    4. :meth:`set_prior`: :attr:`precision` is ``H`` at the chosen prior precision and
       :meth:`factorise` has prepared it.
    5. :meth:`sample`, :meth:`functional_variance` and :meth:`log_det`. The teacher then drops
       :attr:`ggn` (``H`` minus the prior: not kept twice).

    Parameters
    ----------
    n_params : int
        Parameters with a posterior.
    device : torch.device
        Where the curvature is accumulated and kept.
    module : torch.nn.Module, default=None
        The network whose parameters have a posterior (the head, or the whole network); a
        structure that accumulates from factor rows ignores it.

    Examples
    --------
    >>> from skdistill.teachers.laplace import STRUCTURES, HessianStructure
    >>> sorted(STRUCTURES)
    ['diag', 'full', 'kron']
    >>> all(issubclass(cls, HessianStructure) for cls in STRUCTURES.values())
    True
    """

    #: The ``hessian_structure`` value that selects the structure.
    name = None
    #: Most parameters the structure is built for (None: any number).
    max_params = None
    #: The structures to name in the error beyond ``max_params``.
    instead = ()
    #: Whether the GGN is accumulated from the network (:meth:`accumulate_network`) rather
    #: than from the Jacobians' factor rows (:meth:`accumulate`).
    from_network = False

    def __init__(self, n_params, device, module=None):
        self.n_params = n_params
        self.ggn = self.zeros(n_params, device)
        self.prior_precision = None
        self.precision = None

    # -- curvature ------------------------------------------------------------------------
    @abstractmethod
    def zeros(self, n_params, device):
        """An empty GGN: the zero matrix in this structure's form."""

    @abstractmethod
    def accumulate(self, G):
        """Add ``G^T G`` to :attr:`ggn`, ``G`` a float64 ``(m, n_params)`` batch of factor rows
        (``sqrt(w_n) diag(sqrt(p_n)) (I - 1 p_n^T) J_n`` per row, its classes stacked)."""

    def accumulate_network(self, inputs, p, weight=None):
        """Add a batch of rows, from the ``module``'s ``inputs``, their ``(b, C)`` softmax
        ``p`` at the MAP and their weights (None: ones); for :attr:`from_network` structures."""
        raise NotImplementedError(f"{type(self).__name__} accumulates factor rows")

    def batch_rows(self, n_classes):
        """Rows per call of :meth:`accumulate_network`."""
        raise NotImplementedError(f"{type(self).__name__} accumulates factor rows")

    @abstractmethod
    def add_diagonal(self, matrix, value):
        """``matrix + value I`` of a matrix in this structure's form, as a new tensor."""

    def curvature(self):
        """The GGN: :attr:`ggn` while it is kept, else ``H - prior_precision I``."""
        if self.ggn is not None:
            return self.ggn
        return self.add_diagonal(self.precision, -self.prior_precision)

    # -- the posterior --------------------------------------------------------------------
    def set_prior(self, prior_precision):
        """Set :attr:`precision` to ``GGN + prior_precision I`` and :meth:`factorise` it."""
        self.prior_precision = prior_precision
        self.precision = self.add_diagonal(self.ggn, prior_precision)
        self.factorise()

    @abstractmethod
    def factorise(self):
        """Prepare :attr:`precision` for the methods below (a Cholesky factor, ...); raise
        :class:`NotPositiveDefinite` if it is not positive definite in float64."""

    @abstractmethod
    def log_det(self, prior_precision):
        """``log det(GGN + prior_precision I)``, a float (the marginal likelihood's term)."""

    @abstractmethod
    def sample(self, z):
        """Draws of ``N(0, H^-1)`` from standard normal draws ``z``, float64
        ``(n_draws, n_params)`` on the device of :attr:`precision`."""

    @abstractmethod
    def functional_variance(self, J):
        """``diag(J_n H^-1 J_n^T)`` per row: the variance of each linearised logit, ``(b, C)``,
        from the float64 Jacobians ``J`` of shape ``(b, C, n_params)``."""
