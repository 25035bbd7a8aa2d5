"""The one training engine: every student network, whoever trains it, is trained here.

:class:`StudentNet` is a skorch :class:`~skorch.NeuralNet`; a training method (a student on
its labels, a distiller on its teacher) differs from another only in what it plugs in,
bundled in an :class:`Objective`:

- the per-row **targets** (a fixed array, e.g. a teacher's probabilities), or per-batch ones
  computed from the batch itself (:meth:`Objective.batch_targets`: an ensemble teacher run on
  perturbed inputs, a posterior-expectation estimate updated by the current SGLD sample);
- the **loss**: a torch module ``loss(outputs, targets)`` returning one loss per row
  (shape ``(B,)``); the engine takes their mean, weighted by ``sample_weight`` when given;
- an **input perturbation** (:meth:`Objective.perturb`), applied to each training batch before
  the forward pass;
- the **network** trained (:meth:`Objective.build`, e.g. extra heads) and the one deployed
  (:meth:`Objective.deploy`);
- the **stream of batches** (:meth:`Objective.batches`, e.g. one per posterior sample of a
  teacher's chain) and the number of epochs it lasts (:meth:`Objective.n_epochs`).

Because the loop is skorch's, the student's ``callbacks`` (EarlyStopping, ProgressBar,
LRScheduler, Checkpoint), ``validation_fraction``, ``verbose``, ``max_epochs`` and
``batch_size`` act the same under every method, a non-finite loss is refused before the
optimizer applies it (:class:`NonFiniteLossError`), a network that learnt nothing is reported
(:class:`TrainingFailureWarning`), and a Ctrl-C is recorded for the owner's fit policy
(:mod:`skdistill._interrupt`), here and nowhere else.
"""
import math
import sys
import threading
from contextlib import contextmanager

import numpy as np
import scipy.sparse as sp
import torch
from skorch import NeuralNet

from ._devices import DeviceFallbackMixin
from ._interrupt import user_interrupted
from .nets.utils import eval_mode


class NonFiniteLossError(ArithmeticError):
    """A training loss became NaN or infinite; raised before the optimizer applies it."""

    def __init__(self, value, epoch, batch):
        super().__init__(f"training loss {value} at epoch {epoch}, batch {batch}")
        self.value, self.epoch, self.batch = value, epoch, batch


class TrainingFailureWarning(UserWarning):
    """Training ended with a finite network that learnt nothing usable: it predicts nearly the
    same probabilities for every training row, or its training loss blew up."""


# -- data -------------------------------------------------------------------------------------

class RowDataset(torch.utils.data.Dataset):
    """Training rows: inputs ``X`` and per-row fields (targets, weights, labels, ...).

    ``X`` is a dense array (kept as one float32 tensor) or a scipy sparse matrix, kept sparse
    and densified one minibatch at a time (:meth:`rows`), never as a whole. ``row_shape``
    reshapes each dense row (e.g. ``(1, 28, 28)`` for a CNN fed flat sparse rows). ``fields``
    maps names to arrays with one entry per row; an ``"index"`` field (the row numbers) is
    added, so per-row state (an online estimate, a cached teacher output) can be looked up
    from a batch. ``keep`` limits the fields to those named (``"weight"`` is always kept):
    each field costs an indexing operation per batch.
    """

    def __init__(self, X, fields=None, row_shape=None, keep=None):
        if sp.issparse(X):
            self.X = sp.csr_matrix(X, dtype=np.float32)
        else:
            if not torch.is_tensor(X):
                X = np.require(X, dtype=np.float32, requirements="W")
                if X.ndim and min(X.strides) < 0:  # a reversed view (X[::-1]): torch refuses it
                    X = np.ascontiguousarray(X)
            self.X = torch.as_tensor(X, dtype=torch.float32)
        self.row_shape = tuple(row_shape) if row_shape is not None else None
        n = self.X.shape[0]
        self.fields = {"index": torch.arange(n)} if keep is None or "index" in keep else {}
        for name, value in (fields or {}).items():
            if value is None or (keep is not None and name not in keep and name != "weight"):
                continue
            tensor = torch.as_tensor(value)
            if tensor.dtype == torch.float64:
                tensor = tensor.float()
            if len(tensor) != n:
                raise ValueError(f"field {name!r} has {len(tensor)} rows, X has {n}")
            self.fields[name] = tensor

    def __len__(self):
        return self.X.shape[0]

    def __getitem__(self, i):  # torch's Dataset protocol; the engine batches with rows()
        x, fields = self.rows(torch.as_tensor([i]))
        return x[0], {k: v[0] for k, v in fields.items()}

    def dense(self, index):
        """Inputs of rows ``index`` (a LongTensor or slice) as one dense float32 tensor."""
        if sp.issparse(self.X):
            idx = index if isinstance(index, slice) else index.numpy()
            x = torch.from_numpy(self.X[idx].toarray())
        else:
            x = self.X[index]
        if self.row_shape is not None:
            x = x.reshape((len(x),) + self.row_shape)
        return x

    def rows(self, index):
        """``(X rows, {field: rows})`` for ``index``."""
        return self.dense(index), {k: v[index] for k, v in self.fields.items()}


def dense_chunks(X, chunk=4096, row_shape=None):
    """Yield float32 tensors of at most ``chunk`` rows of ``X`` (dense or sparse)."""
    data = RowDataset(X, row_shape=row_shape) if not isinstance(X, RowDataset) else X
    for start in range(0, len(data), chunk):
        yield data.dense(slice(start, start + chunk))


class BatchIterator:
    """Minibatches ``(X rows, fields)`` of a :class:`RowDataset` (or a ``Subset`` of one).

    The engine's ``iterator_train``/``iterator_valid``: skorch's default ``DataLoader``
    collates rows one at a time, which costs more than the forward pass of a small network;
    slicing whole tensors keeps training within a few percent of a bare torch loop. The
    permutation is drawn from torch's global generator, which the student seeds.
    """

    def __init__(self, dataset, batch_size=128, shuffle=False):
        indices = None
        if isinstance(dataset, torch.utils.data.Subset):
            indices = torch.as_tensor(np.asarray(dataset.indices), dtype=torch.long)
            dataset = dataset.dataset
        self.dataset, self.indices = dataset, indices
        self.batch_size = batch_size
        self.shuffle = shuffle

    def __len__(self):
        n = len(self.dataset) if self.indices is None else len(self.indices)
        return (n + self.batch_size - 1) // self.batch_size

    def __iter__(self):
        n = len(self.dataset) if self.indices is None else len(self.indices)
        order = torch.randperm(n) if self.shuffle else None
        for start in range(0, n, self.batch_size):
            if order is None and self.indices is None:
                yield self.dataset.rows(slice(start, start + self.batch_size))
                continue
            idx = (torch.arange(start, min(start + self.batch_size, n)) if order is None
                   else order[start:start + self.batch_size])
            if self.indices is not None:
                idx = self.indices[idx]
            yield self.dataset.rows(idx)


# -- what a method plugs in ---------------------------------------------------------------------

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

    def target_proba(self, rows, y, n_classes):
        """The class probabilities the network learns to predict for training rows ``rows``
        (row numbers), whose encoded labels are ``y`` (default: ``targets`` when they hold
        one probability per class, else the one-hot labels). A network whose predictions
        vary far less than these after training learnt nothing (:func:`flat_predictions`)."""
        targets = None if self.targets is None else np.asarray(self.targets)
        if targets is not None and targets.dtype.kind == "f" and targets.shape[1:] == (
                n_classes,):
            return targets[rows]
        return np.eye(n_classes)[y]

    def penalties(self, module):
        """Terms of the loss that a parameter of the method sets, on ``module`` (the network
        built by :meth:`build`): ``{label: 0-d tensor}``, the label naming the parameter and
        its value (default: none). A term that makes most of the first batch's loss is
        named first when training diverges or learns nothing."""
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


def _acts_on(callback, event):
    """Whether ``callback`` overrides skorch's no-op ``Callback.<event>``."""
    from skorch.callbacks import Callback

    return getattr(type(callback), event, None) is not getattr(Callback, event)


def weighted_rows(per_row, weight):
    """``per_row * weight``, exactly 0 for rows of weight 0 even where their loss is not
    finite: a zero-weight row has no influence (scikit-learn's convention)."""
    return torch.where(weight > 0, per_row * weight, torch.zeros_like(per_row))


def completed_epochs(history):
    """Epochs of a skorch ``History`` that finished (have a ``train_loss``); 0 for None."""
    return 0 if history is None else sum("train_loss" in row for row in history)


class StudentNet(DeviceFallbackMixin, NeuralNet):
    """The engine: a skorch ``NeuralNet`` driven by an :class:`Objective`.

    Each training batch: inputs to the device, ``objective.perturb``, ``objective.
    batch_targets``, forward, ``loss`` (per row, weighted mean), plus ``regularizer(module)``
    when given. A NaN or infinite loss raises :class:`NonFiniteLossError` before the optimizer
    step, so the parameters keep their last finite values. skorch ends the epoch loop on
    Ctrl-C and returns as if training had finished; ``interrupted_`` records a real Ctrl-C
    (EarlyStopping stops skorch the same way) so the owner's fit policy can act on it.
    """

    def __init__(self, module, criterion, *args, objective=None, regularizer=None,
                 **kwargs):
        super().__init__(module, criterion, *args, **kwargs)
        self.objective = objective
        self.regularizer = regularizer

    def fit_loop(self, X, y=None, epochs=None, **fit_params):
        self.interrupted_ = self._callback_stop = False
        self._closure = self._closure_needed()
        self._listeners = self._batch_listeners()
        self._device = torch.device(self.device)
        try:
            return super().fit_loop(X, y, epochs=epochs, **fit_params)
        except KeyboardInterrupt:
            # a callback's stop (EarlyStopping) ends training normally; any other
            # KeyboardInterrupt, a Ctrl-C above all, interrupts the owner's fit
            self.interrupted_ = not self._callback_stop
            raise
        finally:
            self._listeners = None

    def _batch_listeners(self):
        """For each per-batch event, the bound methods that do something with it.

        skorch calls every callback twice per batch although the default ones (EpochTimer,
        PrintLog, PassthroughScoring) act per epoch; for a small network those empty calls
        are a measurable part of a step. The net's own method (it opens the batch's history
        row) is always called. Decided once per fit, like the closure.
        """
        return {event: [getattr(self, event)] + [getattr(cb, event) for _, cb in self.callbacks_
                                                 if _acts_on(cb, event)]
                for event in ("on_batch_begin", "on_batch_end")}

    def notify(self, method_name, **cb_kwargs):
        try:
            listeners = getattr(self, "_listeners", None)
            if listeners is not None and method_name in listeners:
                for method in listeners[method_name]:
                    method(self, **cb_kwargs)
            else:
                super().notify(method_name, **cb_kwargs)
        except KeyboardInterrupt:
            self._callback_stop = not user_interrupted()
            raise

    def _set_training(self, training=True):
        # skorch sets the mode of every module at every batch (a walk over all submodules);
        # it changes only between the training and the validation pass.
        if all(getattr(self, name + "_").training == training
               for name in self._modules + self._criteria
               if isinstance(getattr(self, name + "_", None), torch.nn.Module)):
            return
        super()._set_training(training)

    def train_step(self, batch, **fit_params):
        """One optimiser step; skorch's closure path only where it is needed.

        skorch wraps every step in a closure for optimizers that re-evaluate the loss (LBFGS)
        and notifies ``on_grad_computed`` with a generator over the parameters; for a small
        network these per-batch costs are a large part of the step, so they are paid only
        when the optimizer needs a closure or a callback listens to ``on_grad_computed``.
        """
        if self._closure:
            return super().train_step(batch, **fit_params)
        self._zero_grad_optimizer()
        step = self.train_step_single(batch, **fit_params)
        self._step_optimizer(None)
        return step

    def _closure_needed(self):
        """Whether the optimizer re-evaluates the loss (LBFGS) or a callback listens to
        ``on_grad_computed``; decided once per fit, when both are initialized."""
        return isinstance(self.optimizer_, torch.optim.LBFGS) or any(
            _acts_on(cb, "on_grad_computed") for _, cb in self.callbacks_)

    def get_iterator(self, dataset, training=False):
        if training and self.objective is not None:
            stream = self.objective.batches(dataset, self.batch_size)
            if stream is not None:
                return stream
        return super().get_iterator(dataset, training=training)

    def _prepare(self, batch, training):
        X, rows = batch
        if X.device != getattr(self, "_device", None):
            X = X.to(self.device)
            rows = {k: (v.to(self.device) if torch.is_tensor(v) else v)
                    for k, v in rows.items()}
        objective = self.objective or _PLAIN
        if training:
            X = objective.perturb(X, rows, self.module_)
        return X, rows, objective.batch_targets(X, rows, training)

    def train_step_single(self, batch, **fit_params):
        self._set_training(True)
        X, rows, target = self._prepare(batch, training=True)
        y_pred = self.infer(X, **fit_params)
        loss = self.get_loss(y_pred, target, X=rows, training=True)
        value = loss.item()  # skorch reads it after the step anyway: no extra device sync
        if not math.isfinite(value):
            raise NonFiniteLossError(value, len(self.history),
                                     len(self.history[-1]["batches"]))
        loss.backward()
        return {"loss": loss, "y_pred": y_pred}

    def validation_step(self, batch, **fit_params):
        self._set_training(False)
        with torch.no_grad():
            X, rows, target = self._prepare(batch, training=False)
            y_pred = self.infer(X, **fit_params)
            loss = self.get_loss(y_pred, target, X=rows, training=False)
        return {"loss": loss, "y_pred": y_pred}

    def get_loss(self, y_pred, y_true, X=None, training=False):
        """Mean of the per-row losses (weighted by the batch's ``"weight"`` field), plus
        the regularizer while training."""
        per_row = self.criterion_(y_pred, y_true)
        weight = X.get("weight") if isinstance(X, dict) else None
        if per_row.dim() == 0:
            if weight is not None:
                raise TypeError(f"{type(self.criterion_).__name__} returns one loss per batch; "
                                "sample_weight needs one loss per row")
            loss = per_row
        elif weight is None:
            loss = per_row.mean()
        else:
            loss = (weighted_rows(per_row, weight).sum()
                    / weight.sum().clamp_min(torch.finfo(weight.dtype).tiny))
        if training and self.regularizer is not None:
            loss = loss + self.regularizer(self.module_)
        return loss


# -- after training -----------------------------------------------------------------------------

def non_finite_problem(module, X_sample):
    """What is non-finite about a trained ``module``: a parameter, or its outputs on a sample.

    Returns a description, or None when parameters and outputs on ``X_sample`` are finite.
    A last optimizer step can leave finite but huge weights whose outputs overflow float32,
    so the outputs are checked as well as the parameters.
    """
    for name, param in module.named_parameters():
        if not torch.isfinite(param).all():
            return f"parameter {name} is NaN or inf after training"
    device = next(module.parameters()).device
    with eval_mode(module), torch.no_grad():
        out = module(X_sample.to(device))
    outputs = out.values() if isinstance(out, dict) else [out]
    if not all(torch.isfinite(o).all() for o in outputs):
        return "the trained network outputs NaN or inf on the training data"
    return None


def likely_causes(lr, x_scale, lr_name="lr", penalties=None, first_loss=None):
    """What probably made a training run fail, the likeliest first, each with a safer setting.

    Parameters
    ----------
    lr : float
        The learning rate in use.
    x_scale : float
        ``max |X|`` of the training inputs.
    lr_name : str, default="lr"
        The parameter that set ``lr`` (``"fine_tune_lr"`` once a pruned network fine-tunes).
    penalties : dict of str to float, default=None
        Penalty terms on the network before training, by label (:meth:`Objective.penalties`,
        the group lasso).
    first_loss : float, default=None
        The first batch's training loss, None when it was not finite. A penalty that is not
        finite, or makes most of this loss, swamped the data from the start: it comes first.

    Returns
    -------
    hints : list of str
    """
    hints = []
    for label, value in (penalties or {}).items():
        if not math.isfinite(value):
            hints.append(f"{label} is probably too large (its penalty is {value} before "
                         "training)")
        elif first_loss is not None and value > first_loss / 2:
            hints.append(f"{label} is probably too large (its penalty is "
                         f"{value / first_loss:.0%} of the first batch's loss)")
    # A tenth of a huge rate diverges too; Adam's 1e-3 is the usual safe start.
    lr_hint = (f"the learning rate {lr_name}={lr:g} is probably too large "
               f"(try {lr_name}={min(lr / 10, 1e-3):g})")
    data_hint = (f"the inputs are badly scaled (max |X| = {x_scale:.3g}; standardise them, "
                 "e.g. with sklearn.preprocessing.StandardScaler)")
    return hints + ([data_hint, lr_hint] if x_scale > 1e4 else [lr_hint, data_hint])


def divergence_error(owner, what, lr, x_scale, **causes):
    """The error for a diverged training run, naming the likely causes and safer settings.

    Parameters
    ----------
    owner : estimator
    what : str
        What went wrong, e.g. ``"the loss became nan at epoch 3, batch 7"``.
    lr, x_scale, **causes
        As in :func:`likely_causes`.
    """
    hints = likely_causes(lr, x_scale, **causes)
    return ValueError(f"{type(owner).__name__}: training diverged: {what}; "
                      f"{', or '.join(hints)}.")


#: Rows of the training data on which a network's predictions are checked, before and after
#: training.
CHECKED_ROWS = 1024
#: Targets whose rows are this close to their mean row (mean total-variation distance) are
#: near-uniform: a network fitting them may predict nearly the same for every row.
FLAT_TARGETS = 0.05
#: Predictions that spread less than this fraction of their targets' learnt nothing from X.
FLAT_RATIO = 0.01
#: A mean training loss above this is no fitted classifier's: a penalty swamped the data.
LOSS_BOUND = 1e6


def checked_rows(n):
    """At most :data:`CHECKED_ROWS` row numbers spread evenly over ``n`` rows (so that data
    sorted by class is covered)."""
    return np.unique(np.linspace(0, n - 1, min(n, CHECKED_ROWS)).astype(np.int64))


def spread(proba, weight=None):
    """Mean total-variation distance of the rows of ``proba`` from their mean row (both means
    weighted by ``weight``, one per row, when given): 0 when every row is the same,
    ``1 - 1/C`` for balanced one-hot rows of ``C`` classes."""
    proba = torch.as_tensor(proba, dtype=torch.float64)
    w = (torch.ones(len(proba), dtype=torch.float64) if weight is None
         else torch.as_tensor(weight, dtype=torch.float64))
    if not w.sum() > 0:
        return 0.0
    w = w / w.sum()
    # centred on the first row first: exactly 0 for identical rows, whose mean may round
    shifted = proba - proba[:1]
    distance = 0.5 * (shifted - w @ shifted).abs().sum(1)
    return float(w @ distance)


def predicted_spread(module, batches, weight=None):
    """:func:`spread` of the class probabilities of a classifier ``module`` on ``batches``
    (input tensors; ``weight``, one per row, as in :func:`spread`); a network with one set
    of logits per member, ``(M, B, C)``, is taken as its members' mean probabilities."""
    device = next(module.parameters()).device
    with eval_mode(module), torch.no_grad():
        proba = [torch.softmax(module(x.to(device)).double(), dim=-1).cpu() for x in batches]
    proba = torch.cat([p.mean(0) if p.dim() == 3 else p for p in proba])
    return spread(proba, weight)


def flat_predictions(before, after, target_proba, weight=None):
    """Whether training left a classifier predicting nearly the same for every row.

    ``before`` and ``after`` are the :func:`predicted_spread` of the network before and
    after training, ``target_proba`` the probabilities it was trained towards on the same
    rows (soft targets, or one-hot labels), ``weight`` the rows' weights. Returns ``(after,
    spread of the targets)`` when ``after`` is below :data:`FLAT_RATIO` times the targets'
    spread and below half of ``before`` (training flattened the network, rather than not yet
    shaped one that started flat), else None. Near-uniform targets (spread below
    :data:`FLAT_TARGETS`) ask for nearly constant predictions: None.
    """
    target = spread(target_proba, weight)
    if target < FLAT_TARGETS or after >= FLAT_RATIO * target or after >= before / 2:
        return None
    return after, target


def loss_blowup(history):
    """What is wrong with the epoch losses of a finished run (skorch ``History``), or None:
    a last epoch's training loss over 1000 times the first's, or above :data:`LOSS_BOUND`."""
    losses = [row["train_loss"] for row in history if "train_loss" in row]
    if not losses:
        return None
    first, last = losses[0], losses[-1]
    if last > 1e3 * first:
        return (f"its training loss grew from {first:.3g} in the first epoch to {last:.3g} in "
                f"epoch {len(losses)}")
    if last > LOSS_BOUND:
        return f"its training loss is {last:.3g} after {len(losses)} epochs"
    return None


def untrained_warning(owner, history, before, after, target_proba, causes, weight=None):
    """The warning for a finished training run that learnt nothing usable, or None.

    Parameters
    ----------
    owner : estimator
    history : skorch History
        Its epochs' losses are checked (:func:`loss_blowup`).
    before, after, target_proba, weight
        As in :func:`flat_predictions`.
    causes : callable
        Returns :func:`likely_causes`' arguments; called only when there is something to say.

    Returns
    -------
    warning : TrainingFailureWarning or None
    """
    problems = [loss_blowup(history)]
    flat = flat_predictions(before, after, target_proba, weight)
    if flat is not None:
        problems.append("it predicts nearly the same probabilities for every training row "
                        f"(their spread is {flat[0]:.2g}, its targets' {flat[1]:.2g})")
    if not any(problems):
        return None
    hints = likely_causes(**causes())
    if flat is not None:
        hints.append("X carries no information about y")
    return TrainingFailureWarning(f"{type(owner).__name__}: training learnt nothing usable: "
                                  f"{'; '.join(filter(None, problems))}; "
                                  f"{', or '.join(hints)}.")


def first_batch_loss(history):
    """The training loss of the first batch of a skorch ``History``; None before it ended."""
    batches = history[0]["batches"] if history else []
    return batches[0].get("train_loss") if batches else None


def max_abs(X):
    """``max |X|`` of a dense array, tensor or sparse matrix (0 when empty)."""
    if sp.issparse(X):
        return float(abs(X).max()) if X.nnz else 0.0
    if torch.is_tensor(X):
        return float(X.abs().max()) if X.numel() else 0.0
    X = np.asarray(X)
    return float(np.abs(X).max()) if X.size else 0.0


# -- threads ------------------------------------------------------------------------------------

def _dask_worker_threads():
    """Threads of the dask worker running this code, or None outside a dask worker."""
    if "distributed" not in sys.modules:
        return None
    try:
        from distributed import get_worker

        return int(get_worker().state.nthreads)
    except (ImportError, ValueError, AttributeError):
        return None


#: Fits inside :func:`limit_threads` in this process, and torch's threads before the first.
_threads_lock = threading.Lock()
_threads_state = {"active": 0, "total": None}


def _thread_share(nthreads):
    """``(each fit's share, the count it is a share of)`` on a worker running ``nthreads``
    tasks at once: the count is torch's before the fits running in :func:`limit_threads`
    lowered it. Called with ``_threads_lock`` held."""
    total = (_threads_state["total"] if _threads_state["active"]
             else torch.get_num_threads())
    return max(1, total // nthreads), total


def worker_threads():
    """torch intra-op threads that suit where this code runs, or None to leave them.

    - a dask worker running ``nthreads`` tasks at once: each fit's share of the threads torch
      has there, ``torch.get_num_threads() // nthreads`` (at least 1), counted before the
      fits running in the process lowered them (fits at once, or nested, get the same
      share). dask's nanny starts workers with ``OMP_NUM_THREADS=MKL_NUM_THREADS=1``, so
      that is 1 unless the cluster raised both; a worker with one thread and both at ``k``
      gives its one fit ``k``;
    - a process started by joblib's loky backend: joblib already caps it
      (``OMP_NUM_THREADS = cores // n_jobs``) and torch follows, so nothing is changed;
    - elsewhere: unchanged.
    """
    nthreads = _dask_worker_threads()
    if nthreads is None:
        return None
    with _threads_lock:
        return _thread_share(nthreads)[0]


@contextmanager
def limit_threads():
    """Cap torch's threads for the duration of a fit (see :func:`worker_threads`).

    torch keeps a thread count per thread, and a thread's first use copies the count last
    set by any thread: the first fit to enter records the process's count, each fit sets
    its thread to its share of that count, and each sets its thread back to that count when
    it leaves (not to what it found, which may be another fit's share). Each setting is made
    under the same lock as the bookkeeping: a fit entering between another's leaving and its
    setting back would otherwise record that fit's share as the process's count.
    """
    nthreads = _dask_worker_threads()
    if nthreads is None:
        yield
        return
    with _threads_lock:
        n, total = _thread_share(nthreads)
        if not _threads_state["active"]:
            _threads_state["total"] = total
        _threads_state["active"] += 1
        if torch.get_num_threads() != n:
            torch.set_num_threads(n)
    try:
        yield
    finally:
        with _threads_lock:
            _threads_state["active"] -= 1
            if torch.get_num_threads() != total:
                torch.set_num_threads(total)


__all__ = ["StudentNet", "Objective", "as_loss_module", "RowDataset", "BatchIterator",
           "NonFiniteLossError", "TrainingFailureWarning", "divergence_error", "likely_causes",
           "non_finite_problem", "predicted_spread", "flat_predictions", "loss_blowup",
           "untrained_warning", "limit_threads",
           "dense_chunks", "max_abs", "worker_threads"]
