"""Divergence and failed training: the errors and warnings of a run that went wrong.

A NaN or infinite training loss (:class:`NonFiniteLossError`), a trained network with
non-finite parameters or outputs (:func:`non_finite_problem`), one that learnt nothing
(:func:`untrained_warning`), and the likely causes each message names (:func:`likely_causes`).
"""
import math

import numpy as np
import scipy.sparse as sp
import torch

from ..nets.utils import eval_mode


class NonFiniteLossError(ArithmeticError):
    """A training loss became NaN or infinite; raised before the optimizer applies it."""

    def __init__(self, value, epoch, batch):
        super().__init__(f"training loss {value} at epoch {epoch}, batch {batch}")
        self.value, self.epoch, self.batch = value, epoch, batch


#: Training steps between two reads of the training loss, by device type (``"other"``: any
#: type not listed). Reading a loss on the CPU costs no device sync, so it is read, and checked,
#: at every step. On an accelerator a read waits for the device to finish all the work queued
#: so far: the losses of ``k`` steps are read in one transfer, so a non-finite loss is caught
#: within ``k`` steps, and :func:`zero_grad_if_not_finite_` keeps a step whose loss is not
#: finite from being applied meanwhile.
CHECK_EVERY = {"cpu": 1, "other": 32}


def read_every(device):
    """Steps between two reads of the training loss on ``device`` (see :data:`CHECK_EVERY`)."""
    return CHECK_EVERY.get(torch.device(device).type, CHECK_EVERY["other"])


@torch.no_grad()
def zero_grad_if_not_finite_(params, loss):
    """Zero the gradients of ``params`` when ``loss`` is NaN or infinite, on the device.

    For a loop that reads its losses every few steps (:func:`read_every`): the optimizer
    step that follows applies no gradient of a non-finite loss, and nothing waits for the
    device to tell whether the loss is finite.
    """
    bad = ~torch.isfinite(loss.detach())
    for p in params:
        if p.grad is not None:
            p.grad.masked_fill_(bad, 0.0)


class TrainingFailureWarning(UserWarning):
    """Training ended with a finite network that learnt nothing usable: it predicts nearly the
    same probabilities for every training row, or its training loss blew up."""


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
    a last epoch's training loss over 1000 times the first's (a non-negative one: a negative
    log-density, e.g. EnD2's, may fall below 0), or above :data:`LOSS_BOUND`."""
    losses = [row["train_loss"] for row in history if "train_loss" in row]
    if not losses:
        return None
    first, last = losses[0], losses[-1]
    if first >= 0 and last > 1e3 * first:
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
