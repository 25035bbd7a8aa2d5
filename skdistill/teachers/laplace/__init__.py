"""LaplaceTeacher: a network made Bayesian by a Laplace approximation around its MAP.

The teacher (``_teacher``) trains the MAP, computes the curvature and predicts; each form of
the posterior precision (``hessian_structure``) is a :class:`HessianStructure` subclass in a
module of its own (``_full``, ``_diag``, ``_kron``), listed in ``STRUCTURES`` (``_registry``).
"""
from ._base import HessianStructure, NotPositiveDefinite
from ._diag import DiagHessian
from ._full import MAX_FULL_PARAMS, FullHessian
from ._kron import KronHessian, KronPrecision, UnsupportedLayer
from ._registry import STRUCTURES
from ._teacher import MARGLIK_BOUNDS, MARGLIK_MAP_PRECISION, LaplaceSample, LaplaceTeacher

__all__ = ["LaplaceTeacher", "LaplaceSample", "HessianStructure", "NotPositiveDefinite",
           "FullHessian", "DiagHessian", "KronHessian", "KronPrecision", "UnsupportedLayer",
           "STRUCTURES", "MAX_FULL_PARAMS", "MARGLIK_BOUNDS", "MARGLIK_MAP_PRECISION"]
