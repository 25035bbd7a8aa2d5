"""LatentBE students: BatchEnsemble networks merged into one plain network after training."""
import numbers

import torch
from sklearn.utils._param_validation import Interval
from torch import nn

from ..nets.batch_ensemble import BatchEnsemble, merge_batch_ensemble
from .._validation import check_fitted, param_error
from .cnn import CNNStudent
from .mlp import MLPStudent


class MemberLoss(nn.Module):
    """Apply a per-row ``criterion`` to each member's logits; one loss per row, member mean.

    ``logits`` are ``(M, B, C)``. A target of shape ``(B, M, K)`` gives each member its own
    target row (one-to-one distillation); any other shape is shared by all members. Returns
    ``(B,)``: each row's loss averaged over the members (the training engine's convention).
    """

    def __init__(self, criterion):
        super().__init__()
        self.criterion = criterion

    def forward(self, logits, target):
        m, b = logits.shape[:2]
        if target.dim() == 3:
            target = target.transpose(0, 1).reshape(m * b, target.shape[-1])
        else:
            target = target.repeat(m, *([1] * (target.dim() - 1)))
        loss = self.criterion(logits.reshape(m * b, logits.shape[-1]), target)
        return loss.reshape(m, b).mean(0) if loss.dim() else loss


class PriorPenalty:
    """``strength * module.prior_penalty()``: the factors' Gaussian prior (picklable)."""

    def __init__(self, strength):
        self.strength = strength

    def __call__(self, module):
        return self.strength * module.prior_penalty()


class _LatentBEMixin:
    """BatchEnsemble training and merging shared by the MLP and CNN LatentBE students."""

    _be_constraints = {
        "n_members": [Interval(numbers.Integral, 1, None, closed="left")],
        "prior_strength": [Interval(numbers.Real, 0, None, closed="left")],
    }

    def build_module(self, n_outputs):
        """The untrained BatchEnsemble of the plain student's network."""
        # the plain network of the student class this one extends (MLPStudent, CNNStudent)
        return BatchEnsemble(super().build_module(n_outputs), self.n_members)

    def training_loss(self, loss):
        """``loss`` applied to each member's logits, averaged over the members."""
        return MemberLoss(loss)

    def regularizer(self):
        """The factors' Gaussian prior, weighted by ``prior_strength`` (None at 0)."""
        return PriorPenalty(self.prior_strength) if self.prior_strength else None

    def _check_prunable(self):
        raise param_error(self, "group_lasso", self.group_lasso,
                          "0: LatentBE students are not pruned (group-lasso pruning of "
                          "BatchEnsemble layers, one weight shared by members with their own "
                          "rank-one factors, is not implemented); prune an MLPStudent or "
                          "CNNStudent instead, e.g. as the EnsembleDistiller's student")

    def _set_trained(self, module, net, history):
        """Install the trained BatchEnsemble and merge it into the network that predicts."""
        super()._set_trained(module, net, history)
        self.merged_module_ = merge_batch_ensemble(self.module_)
        return self

    def deployed_module(self):
        """The merged network: the one that predicts."""
        check_fitted(self, "merged_module_")
        return self.merged_module_

    def ensemble_proba(self, X):
        """Class probabilities of each unmerged member: shape ``(n_members, n, n_classes)``.

        Plain BatchEnsemble inference (the batch runs ``n_members`` times); compare with
        :meth:`predict_proba`, the merged network.
        """
        return torch.softmax(self.forward(X).double(), dim=-1).numpy()

    def forward(self, X, module=None, batch_size=4096, copy=True):
        """Outputs of a trained network for ``X``: by default the members' logits.

        As :meth:`MLPStudent.forward <skdistill.MLPStudent.forward>`; for the unmerged
        BatchEnsemble (``module_``, the default) the members' logits, of shape
        ``(n_members, n, n_classes)``, the rows of every chunk joined along the second axis
        (a copy, whatever ``copy``).

        Returns
        -------
        outputs : torch.Tensor or dict of torch.Tensor
            The members' logits for ``module_``; what ``module`` returns otherwise.
        """
        if module is not None and module is not getattr(self, "module_", None):
            return super().forward(X, module=module, batch_size=batch_size, copy=copy)
        check_fitted(self, "module_")
        out = self._run(self.module_, X, batch_size)
        return torch.cat(out, dim=1) if out else torch.empty(
            self.n_members, 0, len(self.classes_))


_SHARED_DOC = """
    BatchEnsemble (Wen et al. 2020) with ``n_members`` members sharing each weight ``W``;
    member ``m`` uses ``W * outer(s_m, r_m)`` and its own bias. The rank-one factors start at
    one and a Gaussian prior centred at one (``prior_strength``, the paper's lambda) keeps them
    close, so that after ``fit`` the members can be averaged into **one plain network**,
    ``merged_module_`` (weights ``W * mean_m outer(s_m, r_m)``, biases ``mean_m b_m``), which
    :meth:`predict_proba` uses. Trained alone (``fit(X, y)`` or soft targets) every member
    sees the same targets; :class:`~skdistill.EnsembleDistiller` with
    ``method="one-to-one"`` trains member ``m`` on teacher member ``m``.
"""


class LatentBEStudent(_LatentBEMixin, MLPStudent):
    __doc__ = """Fully connected LatentBE student: a BatchEnsemble MLP merged into one MLP.
""" + _SHARED_DOC + """
    The merged network is an :class:`~skdistill.nets.MLP` with exactly the architecture of
    ``MLPStudent(hidden_layer_sizes, width_multiplier)``, hence the same parameter count,
    FLOPs and inference time.

    Parameters
    ----------
    n_members : int, default=4
        Ensemble size ``M``.
    hidden_layer_sizes : tuple of int, default=(100,)
    width_multiplier : float or sequence of float, default=1.0
    prior_strength : float, default=1e-3
        Weight of ``sum_layers ||r - 1||^2 + ||s - 1||^2`` added to the mean batch loss.
    activation, dropout, max_epochs, batch_size, lr, optimizer, weight_decay, device, \
callbacks, validation_fraction, verbose, random_state
        As in :class:`~skdistill.MLPStudent`.
    group_lasso, prune_threshold, fine_tune_epochs, fine_tune_lr
        Accepted so that one search covers every student, but LatentBE students are not
        pruned: ``group_lasso > 0`` raises a ``ValueError`` (pruning layers whose
        weight is shared by members with their own rank-one factors is not
        implemented). Prune a plain student instead.

    Attributes
    ----------
    classes_, n_features_in_, net_, history_
        As in :class:`~skdistill.MLPStudent`: set whoever trained it (the one engine).
    module_ : skdistill.nets.BatchEnsemble
        The trained BatchEnsemble (its ``forward`` returns ``(M, B, C)`` logits).
    merged_module_ : skdistill.nets.MLP
        The merged network used for prediction.
    hidden_layer_sizes_ : tuple of int
        Hidden widths of the merged network.
    n_pruned_units_ : int
        Always 0 (LatentBE students are not pruned).

    References
    ----------
    Nam, Lee, Heo, Lee. Improving Ensemble Distillation With Weight Averaging and
    Diversifying Perturbation. ICML 2022.
    Wen, Tran, Ba. BatchEnsemble: an Alternative Approach to Efficient Ensemble and Lifelong
    Learning. ICLR 2020.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from skdistill import LatentBEStudent
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = LatentBEStudent(n_members=4, hidden_layer_sizes=(32,), max_epochs=100, lr=1e-2,
    ...                       random_state=0).fit(X, y)
    >>> clf.ensemble_proba(X[:2]).shape, clf.predict_proba(X[:2]).shape
    ((4, 2, 3), (2, 3))
    >>> type(clf.merged_module_).__name__, clf.score(X, y) > 0.9
    ('MLP', True)
    """

    _parameter_constraints = {**MLPStudent._parameter_constraints,
                              **_LatentBEMixin._be_constraints}

    def __init__(self, n_members=4, hidden_layer_sizes=(100,), width_multiplier=1.0,
                 prior_strength=1e-3, activation="relu", dropout=0.0, max_epochs=50,
                 batch_size=128, lr=1e-3, optimizer="adam", weight_decay=0.0, device="cpu",
                 callbacks=None, validation_fraction=None, verbose=0, random_state=None,
                 group_lasso=0.0, prune_threshold=1e-3, fine_tune_epochs=None,
                 fine_tune_lr=None):
        self.n_members = n_members
        self.hidden_layer_sizes = hidden_layer_sizes
        self.width_multiplier = width_multiplier
        self.prior_strength = prior_strength
        self.activation = activation
        self.dropout = dropout
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.optimizer = optimizer
        self.weight_decay = weight_decay
        self.device = device
        self.callbacks = callbacks
        self.validation_fraction = validation_fraction
        self.verbose = verbose
        self.random_state = random_state
        self.group_lasso = group_lasso
        self.prune_threshold = prune_threshold
        self.fine_tune_epochs = fine_tune_epochs
        self.fine_tune_lr = fine_tune_lr



class LatentBECNNStudent(_LatentBEMixin, CNNStudent):
    __doc__ = """Convolutional LatentBE student: a BatchEnsemble CNN merged into one CNN.
""" + _SHARED_DOC + """
    Convolutions get per-channel factors (BEConv2d). The merged network is a
    :class:`~skdistill.nets.CNN` with the architecture of the matching
    :class:`~skdistill.CNNStudent`.

    Parameters
    ----------
    n_members : int, default=4
    architecture, width_multiplier, input_shape
        As in :class:`~skdistill.CNNStudent`.
    prior_strength : float, default=1e-3
    activation, dropout, max_epochs, batch_size, lr, optimizer, weight_decay, device, \
callbacks, validation_fraction, verbose, random_state
        As in :class:`~skdistill.CNNStudent`.
    group_lasso, prune_threshold, fine_tune_epochs, fine_tune_lr
        Accepted so that one search covers every student, but LatentBE students are not
        pruned: ``group_lasso > 0`` raises a ``ValueError`` (pruning layers whose
        weight is shared by members with their own rank-one factors is not
        implemented). Prune a plain student instead.

    Attributes
    ----------
    classes_, n_features_in_, input_shape_, net_, history_
        As in :class:`~skdistill.CNNStudent`.
    module_ : skdistill.nets.BatchEnsemble
    merged_module_ : skdistill.nets.CNN
    channels_, hidden_layer_sizes_, n_pruned_units_
        As in :class:`~skdistill.CNNStudent`, of the merged network (never pruned).

    References
    ----------
    Nam, Lee, Heo, Lee. Improving Ensemble Distillation With Weight Averaging and
    Diversifying Perturbation. ICML 2022.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skdistill.students import LatentBECNNStudent
    >>> X, y = load_digits(return_X_y=True)
    >>> clf = LatentBECNNStudent(n_members=2, max_epochs=3, random_state=0).fit(X / 16, y)
    >>> type(clf.merged_module_).__name__, clf.predict_proba(X[:3] / 16).shape
    ('CNN', (3, 10))
    """

    _parameter_constraints = {**CNNStudent._parameter_constraints,
                              **_LatentBEMixin._be_constraints}

    def __init__(self, n_members=4, architecture="mnist", width_multiplier=1.0,
                 input_shape=None, prior_strength=1e-3, activation="relu", dropout=0.0,
                 max_epochs=20, batch_size=128, lr=1e-3, optimizer="adam", weight_decay=0.0,
                 device="cpu", callbacks=None, validation_fraction=None, verbose=0,
                 random_state=None, group_lasso=0.0, prune_threshold=1e-3,
                 fine_tune_epochs=None, fine_tune_lr=None):
        self.n_members = n_members
        self.architecture = architecture
        self.width_multiplier = width_multiplier
        self.input_shape = input_shape
        self.prior_strength = prior_strength
        self.activation = activation
        self.dropout = dropout
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.optimizer = optimizer
        self.weight_decay = weight_decay
        self.device = device
        self.callbacks = callbacks
        self.validation_fraction = validation_fraction
        self.verbose = verbose
        self.random_state = random_state
        self.group_lasso = group_lasso
        self.prune_threshold = prune_threshold
        self.fine_tune_epochs = fine_tune_epochs
        self.fine_tune_lr = fine_tune_lr

