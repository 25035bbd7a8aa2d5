"""skdistill: uncertainty-aware knowledge distillation with a scikit-learn API."""
from .distillers import CrossFitDistiller, EnsembleDistiller, GPEDDistiller, KnowledgeDistiller
from .students import CNNStudent, LatentBECNNStudent, LatentBEStudent, MLPStudent
from .teachers import DeepEnsembleTeacher, SGLDTeacher

__version__ = "0.1.0"

__all__ = [
    # teachers
    "SGLDTeacher", "DeepEnsembleTeacher",
    # students
    "MLPStudent", "CNNStudent", "LatentBEStudent", "LatentBECNNStudent",
    # distillers
    "KnowledgeDistiller", "CrossFitDistiller", "GPEDDistiller", "EnsembleDistiller",
]
