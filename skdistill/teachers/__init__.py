"""Teachers: uncertainty-aware classifiers whose posterior expectations students distil."""
from .ensemble import DeepEnsembleTeacher
from .laplace import LaplaceTeacher
from .mc_dropout import MCDropoutTeacher
from .sgld import SGLDTeacher
from .swag import SWAGTeacher
from .vi import VITeacher

__all__ = ["SGLDTeacher", "DeepEnsembleTeacher", "LaplaceTeacher", "VITeacher",
           "MCDropoutTeacher", "SWAGTeacher"]
