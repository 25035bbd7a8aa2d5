"""skdistill: uncertainty-aware knowledge distillation with a scikit-learn API."""
from .students import CNNStudent, MLPStudent
from .distillers import CrossFitDistiller, KnowledgeDistiller
from .distillers import GPEDDistiller
from .teachers import SGLDTeacher
from .students import LatentBEStudent
from .teachers import DeepEnsembleTeacher
from .distillers import EnsembleDistiller

__version__ = "0.1.0"

__all__ = ["MLPStudent", "CNNStudent", "KnowledgeDistiller", "CrossFitDistiller",
           "SGLDTeacher", "GPEDDistiller", "LatentBEStudent", "DeepEnsembleTeacher",
           "EnsembleDistiller"]
