"""What a training method plugs into the engine: :class:`Objective`, and the loss helpers."""
import numpy as np
import torch


class Objective:
    """A training method for the engine: targets, loss, perturbation, network, batch stream.

    Give ``loss`` and ``targets`` for the common case (fixed per-row targets); subclass and
    override a method to change one thing, as with skorch's own hooks. A student trains on an
    objective through its public :meth:`~skdistill.students.MLPStudent.fit_objective`.

    Parameters
    ----------
    loss : torch.nn.Module or callable
        ``loss(outputs, targets) -> (B,)`` tensor, one loss per row (the engine averages them,
        weighted by ``sample_weight`` when given). A 0-d result is taken as already averaged
        (then ``sample_weight`` is refused).
    targets : array-like of shape (n_samples, ...), default=None
        Per-row targets, handed to ``loss`` batch by batch; ``None`` means the encoded labels.
    n_outputs : int, default=None
        Outputs of the student's network; ``None`` means the number of classes.
    fields : tuple of str, default=None
        The per-row fields the batches carry (of ``"index"``, ``"y"``, ``"target"``; the
        weights always): ``None`` means all; naming only those the hooks read saves an
        indexing operation per batch and field.

    Notes
    -----
    A student whose network outputs one set of logits per member (a LatentBE BatchEnsemble,
    ``(M, B, C)``) applies ``loss`` to each member and averages, unless the objective sets
    ``member_aware = True`` (its loss handles ``(M, B, C)`` outputs itself).
    """

    member_aware = False

    def __init__(self, loss, targets=None, n_outputs=None, fields=None):
        self.loss = loss
        self.targets = targets
        self.n_outputs = n_outputs
        self.fields = fields

    def build(self, module):
        """The network to train, given the student's network (default: that network)."""
        return module

    def deploy(self, module):
        """The network the student predicts with, given the trained one (default: it)."""
        return module

    def batch_targets(self, X, rows, training):
        """Targets of one batch (default: the ``"target"`` field, else the labels ``"y"``).

        ``X`` is the batch's input tensor on the training device, after :meth:`perturb`;
        ``rows`` the batch's fields (``"index"``, ``"y"``, ``"target"``, ``"weight"``).
        """
        return rows["target"] if "target" in rows else rows["y"]

    def perturb(self, X, rows, module):
        """Training inputs of one batch (default: unchanged); not applied to validation."""
        return X

    def batches(self, dataset, batch_size):
        """The training batches of one epoch (default: shuffled minibatches); None: default."""
        return None

    def n_epochs(self, dataset, batch_size, max_epochs):
        """Epochs to train (default: the student's ``max_epochs``)."""
        return max_epochs

    def begin_epoch(self, epoch):
        """Hear that training epoch ``epoch`` (from 0 in each fit) begins (default: nothing).

        For a schedule of the targets by epoch, such as EnD2's annealed temperature.
        """

    def target_proba(self, rows, y, n_classes):
        """The class probabilities the network learns to predict for training rows ``rows``.

        ``rows`` are row numbers, ``y`` their encoded labels (default: ``targets`` when they
        hold one probability per class, else the one-hot labels). A network whose predictions
        vary far less than these after training learnt nothing (:func:`flat_predictions`).
        """
        targets = None if self.targets is None else np.asarray(self.targets)
        if targets is not None and targets.dtype.kind == "f" and targets.shape[1:] == (
                n_classes,):
            return targets[rows]
        return np.eye(n_classes)[y]

    def penalties(self, module):
        """Terms of the loss that a parameter of the method sets, on ``module``.

        ``module`` is the network built by :meth:`build`; the terms are ``{label: 0-d
        tensor}``, the label naming the parameter and its value (default: none). A term that
        makes most of the first batch's loss is named first when training diverges or learns
        nothing.
        """
        return {}


#: The objective of a net built without one: fixed targets (or labels), no perturbation.
_PLAIN = Objective(None)


class _FunctionLoss(torch.nn.Module):
    """A plain ``loss(outputs, targets)`` function as a module (skorch instantiates classes)."""

    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, outputs, targets):
        return self.fn(outputs, targets)


def as_loss_module(loss):
    """``loss`` as a torch module: modules as they are, a plain function wrapped."""
    if isinstance(loss, torch.nn.Module):
        return loss
    if callable(loss) and not isinstance(loss, type):
        return _FunctionLoss(loss)
    return loss


def weighted_rows(per_row, weight):
    """``per_row * weight``, exactly 0 for rows of weight 0 even where their loss is not
    finite: a zero-weight row has no influence (scikit-learn's convention)."""
    return torch.where(weight > 0, per_row * weight, torch.zeros_like(per_row))


class Streamed(Objective):
    """``objective`` trained on a stream of chunks besides the rows in memory.

    Every hook is ``objective``'s, but the training batches of an epoch: one pass of
    :class:`~skdistill.engine.data.ChunkBatches` over the training rows in memory and the
    chunks of ``feed`` (:class:`skdistill.streaming.Feed`), mixed in a shuffle buffer of
    ``buffer_rows`` rows. Validation batches are the engine's, over rows in memory only.

    Parameters
    ----------
    objective : Objective
        What the student learns (its fixed targets are those of the rows in memory).
    feed : skdistill.streaming.Feed
        The labelled chunks, whose fields are those of the rows in memory.
    buffer_rows : int
        Rows of the shuffle buffer.
    """

    def __init__(self, objective, feed, buffer_rows):
        super().__init__(objective.loss, objective.targets, objective.n_outputs,
                         objective.fields)
        self.inner, self.feed, self.buffer_rows = objective, feed, buffer_rows
        self.member_aware = objective.member_aware

    def build(self, module):
        return self.inner.build(module)

    def deploy(self, module):
        return self.inner.deploy(module)

    def batch_targets(self, X, rows, training):
        return self.inner.batch_targets(X, rows, training)

    def perturb(self, X, rows, module):
        return self.inner.perturb(X, rows, module)

    def batches(self, dataset, batch_size):
        from .data import ChunkBatches

        return ChunkBatches(dataset, self.feed, batch_size, self.buffer_rows)

    def n_epochs(self, dataset, batch_size, max_epochs):
        return self.inner.n_epochs(dataset, batch_size, max_epochs)

    def begin_epoch(self, epoch):
        self.inner.begin_epoch(epoch)

    def target_proba(self, rows, y, n_classes):
        return self.inner.target_proba(rows, y, n_classes)

    def penalties(self, module):
        return self.inner.penalties(module)
