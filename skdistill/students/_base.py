"""Shared machinery of the skorch-backed student classifiers."""
import copy
import numbers
from contextlib import contextmanager

import numpy as np
import torch
from skorch.dataset import ValidSplit
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from .._interrupt import FitPolicyMixin, fit_policy
from .._validation import (check_callbacks, check_device, check_soft_targets,
                           check_validation_fraction, encode_labels, param_error)
from ..engine import NonFiniteLossError, StudentNet, divergence_error, non_finite_problem
from ..losses import SoftTargetCrossEntropy

OPTIMIZERS = {
    "adam": (torch.optim.Adam, {}),
    "adamw": (torch.optim.AdamW, {}),
    "sgd": (torch.optim.SGD, {}),
    "momentum": (torch.optim.SGD, {"momentum": 0.9}),
    "rmsprop": (torch.optim.RMSprop, {}),
}


class TensorBatchIterator:
    """Yield ``(X, y)`` minibatches by slicing whole tensors.

    A drop-in for skorch's ``iterator_train``/``iterator_valid``: skorch's default
    ``DataLoader`` collates rows one at a time, which costs more than the forward pass of a
    small network; slicing keeps the estimator within a few percent of a bare torch loop.
    The permutation is drawn from torch's global generator, which the student seeds.
    """

    def __init__(self, dataset, batch_size=128, shuffle=False):
        indices = None
        if isinstance(dataset, torch.utils.data.Subset):
            indices = torch.as_tensor(dataset.indices, dtype=torch.long)
            dataset = dataset.dataset
        X, y = dataset.X, dataset.y
        if indices is not None:
            X, y = X[indices], (None if y is None else y[indices])
        self.X, self.y = X, y
        self.batch_size = batch_size
        self.shuffle = shuffle

    def __len__(self):
        return (len(self.X) + self.batch_size - 1) // self.batch_size

    def __iter__(self):
        n = len(self.X)
        order = torch.randperm(n) if self.shuffle else None
        for start in range(0, n, self.batch_size):
            if order is None:
                idx = slice(start, start + self.batch_size)
            else:
                idx = order[start:start + self.batch_size]
            yield self.X[idx], (None if self.y is None else self.y[idx])


@contextmanager
def seeded(seed, device="cpu"):
    """Run a block under a fixed torch seed without touching the caller's random state."""
    dev = torch.device(device)
    devices = [dev.index or 0] if dev.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


def draw_seed(random_state):
    """An int seed for torch from a scikit-learn ``random_state``."""
    return int(check_random_state(random_state).randint(np.iinfo(np.int32).max))


def resolve_optimizer(owner, optimizer):
    """Map an optimizer name (or a ``torch.optim.Optimizer`` subclass) to ``(cls, kwargs)``."""
    if isinstance(optimizer, str):
        if optimizer not in OPTIMIZERS:
            raise param_error(owner, "optimizer", optimizer,
                              f"one of {sorted(OPTIMIZERS)} or a torch.optim.Optimizer class")
        return OPTIMIZERS[optimizer]
    if isinstance(optimizer, type) and issubclass(optimizer, torch.optim.Optimizer):
        return optimizer, {}
    raise param_error(owner, "optimizer", optimizer,
                      f"one of {sorted(OPTIMIZERS)} or a torch.optim.Optimizer class", TypeError)


class BaseStudent(FitPolicyMixin, ClassifierMixin, BaseEstimator):
    """Base class: a torch classifier network trained by skorch behind the scikit-learn API.

    Subclasses define ``_build_module(n_outputs)`` and ``_check_X(X, reset)``. Distillers
    train a student on their own targets and loss through :meth:`_fit_targets`.
    """

    _parameter_constraints = {
        "max_epochs": [Interval(numbers.Integral, 0, None, closed="left")],
        "batch_size": [Interval(numbers.Integral, 1, None, closed="left")],
        "lr": [Interval(numbers.Real, 0, None, closed="neither")],
        "optimizer": [StrOptions(set(OPTIMIZERS)), type],
        "weight_decay": [Interval(numbers.Real, 0, None, closed="left")],
        "dropout": [Interval(numbers.Real, 0, 1, closed="left")],
        "device": [str, torch.device],
        "callbacks": [list, None],
        "validation_fraction": [Interval(numbers.Real, 0, 1, closed="neither"), None],
        "verbose": ["verbose"],
        "random_state": ["random_state"],
    }

    # -- to be provided by subclasses -------------------------------------------------------
    def _build_module(self, n_outputs):
        raise NotImplementedError

    def _check_X(self, X, reset):
        raise NotImplementedError

    # -- fitting ----------------------------------------------------------------------------
    @fit_policy
    def fit(self, X, y, soft_targets=None):
        """Fit on labels ``y``, or on a teacher's class probabilities ``soft_targets``.

        Parameters
        ----------
        X : array-like
        y : array-like of shape (n_samples,)
            Labels; they define ``classes_`` also when ``soft_targets`` is given.
        soft_targets : array-like of shape (n_samples, n_classes), default=None
            Probabilities over ``classes_`` (sorted labels) per row. When given, the loss is
            the soft-target cross-entropy instead of the cross-entropy on ``y``.

        Returns
        -------
        self
        """
        X, y = self._check_X_y(X, y)
        if soft_targets is None:
            targets = self._y_encoded
        else:
            targets = check_soft_targets(self, soft_targets, len(y), len(self.classes_))
        return self._fit_net(X, targets, SoftTargetCrossEntropy())

    @fit_policy
    def _fit_targets(self, X, y, targets, criterion, n_outputs=None):
        """Fit on arbitrary per-row ``targets`` with a tensor loss ``criterion(logits, t)``.

        Used by distillers: ``y`` still defines ``classes_``; ``targets`` is a float array
        (or the encoded labels) with one row per sample.
        """
        X, y = self._check_X_y(X, y)
        return self._fit_net(X, np.asarray(targets), criterion, n_outputs=n_outputs)

    def _validate_params(self):
        super()._validate_params()
        check_device(self, self.device)
        check_callbacks(self, self.callbacks)

    def _check_X_y(self, X, y):
        self._validate_params()
        if y is None:
            raise ValueError(
                f"{type(self).__name__} requires y to be passed, but the target y is None."
            )
        X = self._check_X(X, reset=True)
        classes, y_enc = encode_labels(self, y)
        if len(y_enc) != len(X):
            raise param_error(self, "y", f"<{len(y_enc)} labels>",
                              f"{len(X)} labels, one per row of X")
        self.classes_, self._y_encoded = classes, y_enc
        return X, np.asarray(y)

    def _optimizer_spec(self):
        """``(optimizer class, keyword arguments)`` from ``optimizer`` and ``weight_decay``.

        ``weight_decay`` is passed only when non-zero, so optimizers without that argument
        (``Rprop``, ``LBFGS``) work with the default.
        """
        opt_cls, kwargs = resolve_optimizer(self, self.optimizer)
        kwargs = dict(kwargs)
        if self.weight_decay:
            kwargs["weight_decay"] = self.weight_decay
        return opt_cls, kwargs

    def _make_optimizer(self, params):
        """The optimizer ``fit`` would use, for distillers that run their own training loop."""
        opt_cls, kwargs = self._optimizer_spec()
        return opt_cls(params, lr=self.lr, **kwargs)

    def _valid_split(self, n_rows, seed):
        """skorch's train split for ``validation_fraction``, checked against the data size."""
        if self.validation_fraction is None:
            return None
        check_validation_fraction(self, self.validation_fraction, n_rows)
        return ValidSplit(self.validation_fraction, stratified=False, random_state=seed)

    def _make_net(self, module, criterion, seed, train_split=None):
        opt_cls, opt_kwargs = self._optimizer_spec()
        opt_kwargs = {f"optimizer__{k}": v for k, v in opt_kwargs.items()}
        return StudentNet(
            module=module,
            criterion=criterion,
            optimizer=opt_cls,
            lr=self.lr,
            max_epochs=self.max_epochs,
            batch_size=self.batch_size,
            iterator_train=TensorBatchIterator,
            iterator_train__shuffle=True,
            iterator_valid=TensorBatchIterator,
            train_split=train_split,
            callbacks=copy.deepcopy(self.callbacks),
            device=self.device,
            verbose=int(self.verbose),
            **opt_kwargs,
        )

    def _fit_net(self, X, targets, criterion, n_outputs=None):
        seed = draw_seed(self.random_state)
        n_outputs = len(self.classes_) if n_outputs is None else n_outputs
        split = self._valid_split(len(X), seed)
        Xt = torch.as_tensor(np.require(X, requirements="W"), dtype=torch.float32)
        if np.issubdtype(targets.dtype, np.integer):
            yt = torch.as_tensor(targets, dtype=torch.int64)
        else:
            yt = torch.as_tensor(targets, dtype=torch.float32)
        with seeded(seed, self.device):
            module = self._build_module(n_outputs)
            net = self._fit_progress["net"] = self._make_net(module, criterion, seed, split)
            try:
                net.fit(Xt, yt)
            except NonFiniteLossError as exc:
                raise divergence_error(self, f"the loss became {exc.value} at epoch "
                                       f"{exc.epoch}, batch {exc.batch}", self.lr,
                                       float(Xt.abs().max())) from None
        if net.interrupted_:
            # skorch swallows Ctrl-C and returns; the policy (fit_policy) needs to see it.
            raise KeyboardInterrupt
        problem = non_finite_problem(net.module_, Xt[:self.batch_size])
        if problem is not None:
            raise divergence_error(self, problem, self.lr, float(Xt.abs().max()))
        return self._set_trained(net.module_, net, net.history)

    def _salvage(self):
        """Ctrl-C: the network is usable once at least one epoch is complete."""
        net = self._fit_progress.get("net")
        epochs = sum("train_loss" in row for row in net.history) if net is not None else 0
        if not epochs:
            return None
        self._set_trained(net.module_, net, net.history)
        return f"the network trained for {epochs} of {self.max_epochs} epochs"

    def _set_trained(self, module, net, history):
        """Install a trained network (and its skorch wrapper and history) as the fitted state."""
        self.module_ = module.eval()
        self.net_ = net
        self.history_ = history
        return self

    # -- inference --------------------------------------------------------------------------
    def _run(self, module, X, batch_size=4096):
        """Validate ``X`` and run ``module`` on it in eval mode, chunk by chunk (CPU outputs)."""
        X = self._check_X(X, reset=False)
        Xt = torch.as_tensor(np.require(X, requirements="W"), dtype=torch.float32)
        device = next(module.parameters()).device
        was_training = module.training
        module.eval()
        with torch.inference_mode():
            out = [module(Xt[i:i + batch_size].to(device)).cpu()
                   for i in range(0, len(Xt), batch_size)]
        module.train(was_training)
        return out

    def _logits(self, X, batch_size=4096):
        """Raw network outputs for ``X`` as a float32 torch tensor on the CPU."""
        check_is_fitted(self, "module_")
        out = self._run(self.module_, X, batch_size)
        return torch.cat(out) if out else torch.empty(0, len(self.classes_))

    def predict_log_proba(self, X):
        """Log class probabilities, columns in ``classes_`` order."""
        logits = self._logits(X).double()
        return torch.log_softmax(logits, dim=1).numpy()

    def predict_proba(self, X):
        """Class probabilities, columns in ``classes_`` order."""
        return np.exp(self.predict_log_proba(X))

    def predict(self, X):
        """Most probable class for each row."""
        logits = self._logits(X)
        return self.classes_[np.argmax(logits.numpy(), axis=1)]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.non_deterministic = False
        return tags
