"""Distillers: meta-estimators ``(teacher, student)`` whose predictions are the student's."""
from ._base import BaseDistiller
from .crossfit import CrossFitDistiller
from .gped import GPEDDistiller
from .kd import KnowledgeDistiller
from .ensemble import EnsembleDistiller
from .ranking import RankingDistiller
from .sampled_softmax import SampledSoftmaxDistiller

__all__ = ["BaseDistiller", "KnowledgeDistiller", "CrossFitDistiller", "GPEDDistiller",
           "EnsembleDistiller", "RankingDistiller", "SampledSoftmaxDistiller"]
