"""The engine's skorch net: :class:`StudentNet`, driven by an :class:`~.objective.Objective`."""
import math

import torch
from skorch import NeuralNet
from skorch.dataset import get_len

from .._devices import DeviceFallbackMixin
from .._interrupt import user_interrupted
from .data import BatchIterator, RowDataset, as_device
from .divergence import NonFiniteLossError, read_every, zero_grad_if_not_finite_
from .objective import _PLAIN, weighted_rows


def _acts_on(callback, event):
    """Whether ``callback`` overrides skorch's no-op ``Callback.<event>``."""
    from skorch.callbacks import Callback

    return getattr(type(callback), event, None) is not getattr(Callback, event)


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

    The training data (a :class:`~skdistill.engine.RowDataset`) go to the device once when
    they fit (:meth:`~skdistill.engine.RowDataset.placed`), else batch by batch. On an
    accelerator, where reading a loss waits for the device, the losses are read every
    :func:`~skdistill.engine.divergence.read_every` steps in one transfer (at once where a
    callback acts on every batch, or the optimizer re-evaluates the loss): a non-finite loss
    then raises within that many steps, with the same error, and its step applies no
    gradient (:func:`~skdistill.engine.divergence.zero_grad_if_not_finite_`).
    """

    def __init__(self, module, criterion, *args, objective=None, regularizer=None,
                 **kwargs):
        super().__init__(module, criterion, *args, **kwargs)
        self.objective = objective
        self.regularizer = regularizer

    @classmethod
    def for_estimator(cls, estimator, module, objective, **kwargs):
        """The engine set up from an estimator's training settings.

        ``lr``, ``max_epochs``, ``batch_size``, ``device`` and ``verbose`` are read from
        ``estimator``; training minibatches are shuffled, validation ones are not, and the
        criterion is ``objective.loss`` unless ``criterion`` is given.

        Parameters
        ----------
        estimator : estimator
            The estimator whose network trains (a student, a teacher trained by the engine).
        module : torch.nn.Module
            The network to train.
        objective : Objective
            What it is trained on.
        **kwargs
            The rest of the net's settings, as skorch takes them: ``optimizer``
            (``optimizer__*``), ``regularizer``, ``train_split``, ``callbacks``, ...

        Returns
        -------
        net : StudentNet
            Unfitted (an instance of the class this is called on).
        """
        kwargs.setdefault("criterion", objective.loss)
        return cls(module=module, objective=objective, lr=estimator.lr,
                   max_epochs=estimator.max_epochs, batch_size=estimator.batch_size,
                   iterator_train=BatchIterator, iterator_train__shuffle=True,
                   iterator_valid=BatchIterator, device=estimator.device,
                   verbose=int(estimator.verbose), **kwargs)

    def fit_loop(self, X, y=None, epochs=None, **fit_params):
        self.interrupted_ = self._callback_stop = False
        self._closure = self._closure_needed()
        self._listeners = self._batch_listeners()
        self._device = as_device(self.device)
        # a callback acting on every batch may read its loss in the history: read at once
        per_batch = any(len(methods) > 1 for methods in self._listeners.values())
        self._read_every = 1 if self._closure or per_batch else read_every(self._device)
        if isinstance(X, RowDataset):
            X = X.placed(self._device)
        self._fit_epoch = 0
        try:
            return super().fit_loop(X, y, epochs=epochs, **fit_params)
        except KeyboardInterrupt:
            # a callback's stop (EarlyStopping) ends training normally; any other
            # KeyboardInterrupt, a Ctrl-C above all, interrupts the owner's fit
            self.interrupted_ = not self._callback_stop
            raise
        finally:
            self._listeners = None

    def on_epoch_begin(self, net, dataset_train=None, dataset_valid=None, **kwargs):
        super().on_epoch_begin(net, dataset_train=dataset_train, dataset_valid=dataset_valid,
                               **kwargs)
        if self.objective is not None:
            self.objective.begin_epoch(self._fit_epoch)  # counted from 0 by fit_loop
        self._fit_epoch += 1

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
        if getattr(self, "_read_every", 1) == 1:
            value = loss.item()  # skorch reads it after the step anyway: no extra read
            if not math.isfinite(value):
                raise NonFiniteLossError(value, len(self.history),
                                         len(self.history[-1]["batches"]))
            loss.backward()
        else:  # read later (run_single_epoch); a non-finite loss's step applies no gradient
            loss.backward()
            zero_grad_if_not_finite_(
                [p for group in self.optimizer_.param_groups for p in group["params"]], loss)
        return {"loss": loss, "y_pred": y_pred}

    def run_single_epoch(self, iterator, training, prefix, step_fn, **fit_params):
        """skorch's pass over ``iterator``, the batches' losses read every
        ``read_every`` steps in one transfer (see the class description); skorch's own
        pass, which reads each one, where they are read at every step."""
        every = getattr(self, "_read_every", 1)
        if iterator is None or every == 1:
            return super().run_single_epoch(iterator, training, prefix, step_fn,
                                            **fit_params)
        pending, batch_count = [], 0
        try:
            for batch in iterator:
                self.notify("on_batch_begin", batch=batch, training=training)
                step = step_fn(batch, **fit_params)
                batches = self.history[-1]["batches"]
                pending.append((batches[-1], len(batches), step["loss"].detach()))
                self.history.record_batch(prefix + "_batch_size", get_len(batch[0]))
                self.notify("on_batch_end", batch=batch, training=training, **step)
                batch_count += 1
                if len(pending) == every and training:
                    self._read_losses(pending, prefix, check=True)
        except BaseException:
            self._read_losses(pending, prefix, check=False)  # what was trained, recorded
            raise
        self._read_losses(pending, prefix, check=training)
        self.history.record(prefix + "_batch_count", batch_count)

    def _read_losses(self, pending, prefix, check):
        """Record the losses of ``pending`` batches (``(history row, batch number, loss)``)
        in their history rows, in one transfer, and empty it; with ``check``, raise
        :class:`NonFiniteLossError` for the first that is not finite."""
        if not pending:
            return
        values = torch.stack([loss for _, _, loss in pending]).tolist()
        done = [(row, number) for row, number, _ in pending]
        pending.clear()
        for (row, _), value in zip(done, values):
            row[prefix + "_loss"] = value
        if check:
            for (_, number), value in zip(done, values):
                if not math.isfinite(value):
                    raise NonFiniteLossError(value, len(self.history), number)

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
