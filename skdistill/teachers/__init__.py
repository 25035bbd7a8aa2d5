"""Teachers: uncertainty-aware classifiers whose posterior expectations students distil."""
from .ensemble import DeepEnsembleTeacher
from .sgld import SGLDTeacher

__all__ = ["SGLDTeacher", "DeepEnsembleTeacher"]
