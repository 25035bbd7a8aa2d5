"""skdistill: uncertainty-aware knowledge distillation with a scikit-learn API.

The estimators are importable from here (``from skdistill import CrossFitDistiller``). The
submodules are reachable as attributes after ``import skdistill`` alone
(``skdistill.metrics.expected_calibration_error``), as ``sklearn.datasets`` is after
``import sklearn``; each is imported the first time it is used, so ``import skdistill`` stays
as quick as the estimators allow.
"""
import importlib

from .discovery import KINDS as _KINDS, all_estimators as _all_estimators

# The one place of the version: setup.cfg reads it (attr:) without importing the package.
__version__ = "0.1.0"

# Every estimator, re-exported from the subpackage of its kind (teachers, students, distillers:
# skdistill.discovery.all_estimators): a new estimator is named once, in its subpackage's
# __all__.
__all__ = [name for kind in _KINDS for name, _ in _all_estimators(kind)]
globals().update(_all_estimators())

# Public submodules, imported on first attribute access (PEP 562).
_SUBMODULES = [
    "augment", "base", "calibration", "complexity", "datasets", "discovery", "distillers",
    "expectations", "inspection", "losses", "metrics", "model_selection", "nets", "onnx",
    "perturbations", "pruning", "samplers", "streaming", "students", "teachers",
]


def __getattr__(name):
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted({*globals(), *_SUBMODULES})
