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

The package holds one module per job: :mod:`~skdistill.engine.data` (training rows, their
minibatches and the device they live on), :mod:`~skdistill.engine.objective` (what a method
plugs in), :mod:`~skdistill.engine.net` (the skorch net), :mod:`~skdistill.engine.divergence`
(diverged or failed training) and :mod:`~skdistill.engine.threads` (torch's threads per fit).
Every name is importable from ``skdistill.engine`` itself.
"""
import sys
import types

from . import data, divergence, net, objective, threads
from .data import (DEVICE_DATA_BYTES, BatchIterator, ChunkBatches, Minibatches, RowDataset,
                   SampleStream, StreamBatches, as_device, dense_chunks)
from .divergence import (CHECK_EVERY, CHECKED_ROWS, FLAT_RATIO, FLAT_TARGETS, LOSS_BOUND,
                         NonFiniteLossError, TrainingFailureWarning, checked_rows, divergence_error,
                         first_batch_loss, flat_predictions, likely_causes, loss_blowup, max_abs,
                         non_finite_problem, predicted_spread, read_every, spread,
                         untrained_warning, zero_grad_if_not_finite_)
from .net import StudentNet, _acts_on, completed_epochs
from .objective import (_PLAIN, Objective, Streamed, _FunctionLoss, as_loss_module,
                        weighted_rows)
from .threads import (_dask_worker_threads, _thread_share, _threads_lock, _threads_state,
                      limit_threads, worker_threads)

_PARTS = (data, divergence, net, objective, threads)


class _Engine(types.ModuleType):
    """The package's module type: a name set on the package (as a test's
    ``monkeypatch.setattr(engine, name, value)`` does) is set in each submodule that holds it
    too, where the code that uses it looks it up."""

    def __setattr__(self, name, value):
        for part in _PARTS:
            if name in vars(part):
                setattr(part, name, value)
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Engine

__all__ = ["StudentNet", "Objective", "as_loss_module", "RowDataset", "BatchIterator",
           "NonFiniteLossError", "TrainingFailureWarning", "divergence_error", "likely_causes",
           "non_finite_problem", "predicted_spread", "flat_predictions", "loss_blowup",
           "untrained_warning", "limit_threads",
           "dense_chunks", "max_abs", "worker_threads", "Minibatches", "SampleStream",
           "StreamBatches", "ChunkBatches", "Streamed"]
