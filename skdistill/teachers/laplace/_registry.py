"""The Hessian structures of LaplaceTeacher, by their ``hessian_structure`` value."""
from ._diag import DiagHessian
from ._full import FullHessian
from ._kron import KronHessian

#: ``hessian_structure`` value -> its :class:`~._base.HessianStructure` subclass. A new
#: structure is one module holding its subclass, and one entry here.
STRUCTURES = {cls.name: cls for cls in (FullHessian, DiagHessian, KronHessian)}
