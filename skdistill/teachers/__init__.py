"""Teachers: uncertainty-aware classifiers whose posterior expectations students distil."""
from .sgld import SGLDTeacher

__all__ = ["SGLDTeacher"]
