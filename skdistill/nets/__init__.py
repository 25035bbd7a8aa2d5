"""Plain torch modules (no scikit-learn): MLP, CNN, BatchEnsemble and Bayesian building blocks.

Every classifier network here (``MLP``, ``CNN``) is a :class:`skdistill.base.TrunkHeadNet`: it
exposes ``features`` (the trunk, input -> last hidden layer), ``head`` (last hidden layer ->
logits) and ``n_hidden_out`` (the trunk's output width), so a distiller can put several heads
on one trunk (``MultiHeadNet``, ``LinearHead``). ``BayesMLP`` (a mean-field Gaussian network,
the VI teacher's) is the exception: its layers hold distributions, not weights.
"""
from .mlp import MLP, make_activation, scaled_widths
from .cnn import CNN, CNN_ARCHITECTURES
from .batch_ensemble import BatchEnsemble, BEConv2d, BELinear, merge_batch_ensemble
from .heads import LinearHead, MultiHeadNet, head_expectation
from .utils import eval_mode
from .bayesian import BayesLinear, BayesMLP

__all__ = ["MLP", "CNN", "CNN_ARCHITECTURES", "make_activation", "scaled_widths",
           "BatchEnsemble", "BELinear", "BEConv2d", "merge_batch_ensemble", "LinearHead",
           "MultiHeadNet", "head_expectation", "eval_mode", "BayesLinear", "BayesMLP"]
