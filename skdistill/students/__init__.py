"""Student estimators: skorch-backed torch classifiers that accept soft targets."""
from ._base import BaseStudent
from .cnn import CNNStudent
from .mlp import MLPStudent
from .latent_be import LatentBECNNStudent, LatentBEStudent

__all__ = ["BaseStudent", "MLPStudent", "CNNStudent", "LatentBEStudent", "LatentBECNNStudent"]
