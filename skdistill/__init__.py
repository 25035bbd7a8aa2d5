"""skdistill: uncertainty-aware knowledge distillation with a scikit-learn API.

The estimators are importable from here (``from skdistill import CrossFitDistiller``). The
submodules are reachable as attributes after ``import skdistill`` alone
(``skdistill.metrics.expected_calibration_error``), as ``sklearn.datasets`` is after
``import sklearn``; each is imported the first time it is used, so ``import skdistill`` stays
as quick as the estimators allow.
"""
import importlib

from .distillers import CrossFitDistiller, EnsembleDistiller, GPEDDistiller, KnowledgeDistiller
from .students import CNNStudent, LatentBECNNStudent, LatentBEStudent, MLPStudent
from .teachers import DeepEnsembleTeacher, LaplaceTeacher, SGLDTeacher, VITeacher

# The one place of the version: setup.cfg reads it (attr:) without importing the package.
__version__ = "0.1.0"

__all__ = [
    # teachers
    "SGLDTeacher", "DeepEnsembleTeacher", "LaplaceTeacher", "VITeacher",
    # students
    "MLPStudent", "CNNStudent", "LatentBEStudent", "LatentBECNNStudent",
    # distillers
    "KnowledgeDistiller", "CrossFitDistiller", "GPEDDistiller", "EnsembleDistiller",
]

# Public submodules, imported on first attribute access (PEP 562).
_SUBMODULES = [
    "augment", "base", "calibration", "complexity", "datasets", "distillers",
    "expectations", "inspection", "losses", "metrics", "model_selection", "nets", "onnx",
    "perturbations", "pruning", "samplers", "students", "teachers",
]


def __getattr__(name):
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted({*globals(), *_SUBMODULES})
