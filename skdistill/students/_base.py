"""Shared machinery of the skorch-backed student classifiers."""
import copy
import numbers
from abc import ABCMeta, abstractmethod
from contextlib import nullcontext

import numpy as np
import torch
from skorch.callbacks import Checkpoint
from skorch.dataset import ValidSplit
from skorch.history import History
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils._param_validation import Interval, StrOptions

from .._devices import DeviceFallbackMixin
from .._interrupt import FitPolicyMixin, fit_policy, warn_user
from .._random import draw_seed, seeded
from .._validation import (CheckedRows, StrictParamsMixin, callback_objects, check_callbacks,
                           check_device, check_fitted, check_sample_weight, check_soft_targets,
                           check_validation_fraction, encode_labels, fast_float_rows,
                           is_plain_float_array, param_error)
from ..engine import (NonFiniteLossError, Objective, RowDataset, StudentNet,
                      as_loss_module, checked_rows, completed_epochs, dense_chunks,
                      divergence_error, first_batch_loss, limit_threads, max_abs,
                      non_finite_problem, predicted_spread, untrained_warning)
from ..losses import SoftTargetCrossEntropy
from ..nets.utils import eval_mode
from ..pruning import PruneCallback, group_plan, layer_widths

OPTIMIZERS = {
    "adam": (torch.optim.Adam, {}),
    "adamw": (torch.optim.AdamW, {}),
    "sgd": (torch.optim.SGD, {}),
    "momentum": (torch.optim.SGD, {"momentum": 0.9}),
    "rmsprop": (torch.optim.RMSprop, {}),
}


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


def _to_cpu(out):
    return {k: v.cpu() for k, v in out.items()} if isinstance(out, dict) else out.cpu()


def _device_and_mode(module):
    """``(device of module's first parameter, whether any of its modules is in train mode)``:
    a few microseconds where ``next(module.parameters())`` and ``module.modules()`` take ten
    each. The first parameter is the first in ``module.parameters()`` order (depth first,
    stopping there); the modes are read breadth first, the list growing as it is read."""
    device, stack = None, [module]
    while stack and device is None:
        m = stack.pop()
        if m is None:
            continue
        for p in m._parameters.values():
            if p is not None:
                device = p.device
                break
        stack += reversed(m._modules.values())
    if device is None:  # no parameter at all: what torch says about it
        device = next(module.parameters()).device
    modules = [module]
    for m in modules:
        if m is not None:
            if m.training:
                return device, True
            modules += m._modules.values()
    return device, False


def _array_chunks(x, chunk, row_shape):
    """Float32 tensors of at most ``chunk`` rows of the array ``x``, sharing its memory: the
    chunks of :func:`~skdistill.engine.dense_chunks`, without its dataset."""
    x = torch.from_numpy(x)
    for start in range(0, len(x), chunk):
        rows = x[start:start + chunk]
        yield rows if row_shape is None else rows.reshape((len(rows),) + tuple(row_shape))


class BaseStudent(StrictParamsMixin, DeviceFallbackMixin, FitPolicyMixin, ClassifierMixin,
                  BaseEstimator, metaclass=ABCMeta):
    """Base class of the students: a torch classifier network behind the scikit-learn API.

    It implements :class:`skdistill.base.Student`. A subclass defines
    :meth:`build_module` (the network) and :meth:`check_X` (the validation of ``X``), and
    where it needs them :meth:`row_shape`, :meth:`fast_rows`, :meth:`training_loss`,
    :meth:`regularizer` and :meth:`deployed_module`; its ``__init__`` takes the training
    settings (``max_epochs``, ``batch_size``, ``lr``, ``optimizer``, ``weight_decay``,
    ``device``, ``callbacks``, ``validation_fraction``, ``verbose``, ``random_state``) and
    stores them unchanged. Every student trains through the one engine: :meth:`fit` on labels
    or soft targets, and :meth:`fit_objective` on any :class:`~skdistill.base.Objective`,
    which is how distillers train a student on their own targets and loss.

    The pruning parameters (``group_lasso``, ``prune_threshold``, ``fine_tune_epochs``,
    ``fine_tune_lr``) default to class attributes (no pruning), so a subclass whose
    ``__init__`` does not take them trains its full network.

    Examples
    --------
    >>> import torch
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.utils.validation import validate_data
    >>> from skdistill.students import BaseStudent
    >>> class LinearStudent(BaseStudent):
    ...     def __init__(self, max_epochs=50, batch_size=32, lr=1e-2, optimizer="adam",
    ...                  weight_decay=0.0, device="cpu", callbacks=None,
    ...                  validation_fraction=None, verbose=0, random_state=None):
    ...         self.max_epochs, self.batch_size, self.lr = max_epochs, batch_size, lr
    ...         self.optimizer, self.weight_decay, self.device = optimizer, weight_decay, device
    ...         self.callbacks, self.validation_fraction = callbacks, validation_fraction
    ...         self.verbose, self.random_state = verbose, random_state
    ...
    ...     def build_module(self, n_outputs):
    ...         return torch.nn.Linear(self.n_features_in_, n_outputs)
    ...
    ...     def check_X(self, X, reset):
    ...         return validate_data(self, X, reset=reset, dtype=("float32", "float64"))
    >>> X, y = load_iris(return_X_y=True)
    >>> X = (X - X.mean(0)) / X.std(0)
    >>> LinearStudent(random_state=0).fit(X, y).score(X, y) > 0.9
    True
    """

    # pruning off unless a subclass takes these as parameters (MLPStudent, CNNStudent...)
    group_lasso = 0.0
    prune_threshold = 1e-3
    fine_tune_epochs = None
    fine_tune_lr = None

    _parameter_constraints = {
        "max_epochs": [Interval(numbers.Integral, 1, None, closed="left")],
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
        "group_lasso": [Interval(numbers.Real, 0, None, closed="left")],
        "prune_threshold": [Interval(numbers.Real, 0, None, closed="left")],
        "fine_tune_epochs": [Interval(numbers.Integral, 0, None, closed="left"), None],
        "fine_tune_lr": [Interval(numbers.Real, 0, None, closed="neither"), None],
    }

    # -- to be provided by subclasses -------------------------------------------------------
    @abstractmethod
    def build_module(self, n_outputs):
        """The untrained torch network, for ``n_features_in_`` (set by :meth:`check_X`).

        Parameters
        ----------
        n_outputs : int
            Outputs of the network: the number of classes, or what the objective asks for.

        Returns
        -------
        module : torch.nn.Module
            Maps a float32 batch of rows, shaped by :meth:`row_shape`, to logits
            ``(n, n_outputs)``. An :class:`skdistill.base.TrunkHeadNet` can also be a
            :class:`~skdistill.GPEDDistiller`'s student.
        """

    @abstractmethod
    def check_X(self, X, reset):
        """Validate ``X`` as the network takes it; with ``reset``, learn its shape.

        Parameters
        ----------
        X : array-like or sparse matrix
            The rows given to ``fit`` (``reset=True``) or to a prediction (``reset=False``).
        reset : bool
            Whether to set ``n_features_in_`` (and whatever shape the network needs);
            otherwise ``X`` must match them.

        Returns
        -------
        X : ndarray or sparse CSR matrix
            Float32 or float64 rows; a sparse matrix stays sparse (densified batch by
            batch, reshaped by :meth:`row_shape`).
        """

    def row_shape(self):
        """The shape of one densified row as the network takes it (None: as it is).

        Returns
        -------
        shape : tuple of int or None
            E.g. ``(C, H, W)`` for a convolutional network given flat rows.
        """
        return None

    def fast_rows(self, X):
        """The fast path's shape rule, or None for the checked path.

        ``X`` is a float array of at least one row (see :meth:`_fast_X`). A subclass returns
        it shaped as :meth:`check_X` would return it when its shape is the fitted one, else
        None (the checked path). None here: a student takes the fast path only where it
        gives the rule of its own :meth:`check_X`.

        Parameters
        ----------
        X : ndarray
            Float32 or float64 rows, unchecked.

        Returns
        -------
        X : ndarray or None
            The rows shaped as the network takes them, or None.
        """
        return None

    def training_loss(self, loss):
        """The loss as applied to this student's outputs (LatentBE: per member).

        Parameters
        ----------
        loss : torch.nn.Module
            The objective's per-row loss.

        Returns
        -------
        loss : torch.nn.Module
            ``loss`` itself here.
        """
        return loss

    def regularizer(self):
        """A picklable ``module -> scalar`` added to the training loss, or None.

        Returns
        -------
        regularizer : callable or None
            None here.
        """
        return None

    def _check_prunable(self):
        """Raise when this student cannot be pruned (``group_lasso > 0``)."""

    def _record_architecture(self, module):
        """Set the attributes describing the deployed network (``hidden_layer_sizes_``...)."""
        self.hidden_layer_sizes_ = layer_widths(module)[1]

    def deployed_module(self):
        """The network the fitted student predicts with: ``module_`` here.

        ``predict_proba`` and the ONNX export run it; a LatentBE student's is its merged
        network.

        Returns
        -------
        module : torch.nn.Module
            Maps a batch of rows shaped by :meth:`row_shape` to logits.
        """
        check_fitted(self, "module_")
        return self.module_

    # -- fitting ----------------------------------------------------------------------------
    @fit_policy
    def fit(self, X, y, soft_targets=None, sample_weight=None):
        """Fit on labels ``y``, or on a teacher's class probabilities ``soft_targets``.

        Parameters
        ----------
        X : array-like or sparse matrix
            Sparse input is densified one minibatch at a time, never as a whole.
        y : array-like of shape (n_samples,)
            Labels; they define ``classes_`` also when ``soft_targets`` is given.
        soft_targets : array-like of shape (n_samples, n_classes), default=None
            Probabilities over ``classes_`` (sorted labels) per row. When given, the loss is
            the soft-target cross-entropy instead of the cross-entropy on ``y``.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative row weights: each minibatch's loss is the weighted mean of its
            rows' losses. ``None`` is exactly all ones; a row of weight 0 has no influence.

        Returns
        -------
        self
        """
        X, y_enc, sample_weight = self._check_fit_data(X, y, sample_weight)
        targets = None
        if soft_targets is not None:
            targets = check_soft_targets(self, soft_targets, len(y_enc), len(self.classes_))
        objective = Objective(SoftTargetCrossEntropy(reduction="none"), targets,
                              fields=("y",) if targets is None else ("target",))
        return self._train(X, y_enc, objective, sample_weight)

    @fit_policy
    def fit_objective(self, X, y, objective, sample_weight=None):
        """Train on a method's own targets and loss: the extension point for distillers.

        The student builds its network (``objective.build`` may wrap it), and the one engine
        trains it with the student's optimiser settings, ``max_epochs``, ``batch_size``,
        ``callbacks``, ``validation_fraction`` and ``verbose``; ``module_`` is then
        ``objective.deploy(trained network)``, and ``net_``, ``history_`` are set as after
        :meth:`fit`.

        Parameters
        ----------
        X : array-like or sparse matrix
        y : array-like of shape (n_samples,)
            Labels: they define ``classes_`` (and the ``"y"`` field of every batch).
        objective : skdistill.base.Objective
            Targets, per-row loss and optional hooks.
        sample_weight : array-like of shape (n_samples,), default=None
            As in :meth:`fit`.

        Returns
        -------
        self

        Examples
        --------
        >>> import numpy as np
        >>> from sklearn.datasets import load_iris
        >>> from skdistill import MLPStudent
        >>> from skdistill.engine import Objective
        >>> from skdistill.losses import SoftTargetCrossEntropy
        >>> X, y = load_iris(return_X_y=True)
        >>> X = (X - X.mean(0)) / X.std(0)
        >>> uniform = np.full((len(X), 3), 1 / 3)  # a teacher that knows nothing
        >>> clf = MLPStudent(max_epochs=30, lr=1e-2, random_state=0).fit_objective(
        ...     X, y, Objective(SoftTargetCrossEntropy(reduction="none"), uniform))
        >>> bool(abs(clf.predict_proba(X) - 1 / 3).max() < 0.05)
        True
        """
        if not isinstance(objective, Objective):
            raise param_error(self, "objective", objective,
                              "a skdistill.base.Objective (an instance of it or of a subclass)",
                              TypeError)
        X, y_enc, sample_weight = self._check_fit_data(X, y, sample_weight)
        return self._train(X, y_enc, objective, sample_weight)

    def _validate_params(self):
        super()._validate_params()
        check_device(self, self.device)
        check_callbacks(self, self.callbacks)

    def _check_fit_data(self, X, y, sample_weight=None):
        """Validate parameters, ``X``, ``y`` and ``sample_weight``; set ``classes_``.

        Returns ``X`` (as the network takes it, or sparse), the encoded labels and the
        weights (None when absent or all ones).
        """
        self._validate_params()
        if y is None:
            raise ValueError(
                f"{type(self).__name__} requires y to be passed, but the target y is None."
            )
        X = self.check_X(X, reset=True)
        classes, y_enc = encode_labels(self, y)
        if len(y_enc) != X.shape[0]:
            raise param_error(self, "y", f"<{len(y_enc)} labels>",
                              f"{X.shape[0]} labels, one per row of X")
        self.classes_ = classes
        return X, y_enc, check_sample_weight(self, sample_weight, X.shape[0])

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

    def _valid_split(self, n_rows, seed):
        """skorch's train split for ``validation_fraction``, checked against the data size."""
        if self.validation_fraction is None:
            return None
        check_validation_fraction(self, self.validation_fraction, n_rows)
        return ValidSplit(self.validation_fraction, stratified=False, random_state=seed)

    def _pruner(self, module, data):
        """The pruning callback for ``module`` (``group_lasso > 0``), else None.

        The groups are derived from the network trained (a distiller's heads included) on a
        batch of the training data, before training, so that a network that cannot be pruned
        is refused before any work is done.
        """
        if not self.group_lasso:
            return None
        self._check_prunable()
        for _, cb in callback_objects(self.callbacks):
            if isinstance(cb, Checkpoint) and cb.load_best:
                raise param_error(self, "callbacks", self.callbacks,
                                  "no Checkpoint with load_best=True when group_lasso > 0 (the "
                                  "weights it saved before pruning do not fit the pruned "
                                  "network); use load_best=False, or EarlyStopping("
                                  "load_best=True), which restarts with the fine-tuning")
        try:
            plan = group_plan(module, data.dense(slice(0, 2)))
        except ValueError as exc:
            raise param_error(self, "group_lasso", self.group_lasso,
                              f"0 for this network: {exc}") from None
        return PruneCallback(plan, self.group_lasso, self.prune_threshold,
                             self.fine_tune_epochs,
                             self.lr if self.fine_tune_lr is None else self.fine_tune_lr,
                             self.regularizer(),
                             owner=f"{type(self).__name__} (group_lasso={self.group_lasso:g})")

    def _make_net(self, module, objective, seed, train_split=None, pruner=None):
        opt_cls, opt_kwargs = self._optimizer_spec()
        opt_kwargs = {f"optimizer__{k}": v for k, v in opt_kwargs.items()}
        loss = as_loss_module(objective.loss)
        loss = loss if objective.member_aware else self.training_loss(loss)
        # with pruning, the pruner's: the student's own term plus the penalty until pruning,
        # the student's term (the same object) after it
        regularizer = self.regularizer() if pruner is None else pruner.penalised
        callbacks = copy.deepcopy(self.callbacks)
        if pruner is not None:
            callbacks = (callbacks or []) + [("prune", pruner)]
        return StudentNet.for_estimator(self, module, objective, criterion=loss,
                                        regularizer=regularizer, optimizer=opt_cls,
                                        train_split=train_split, callbacks=callbacks,
                                        **opt_kwargs)

    def _train(self, X, y_enc, objective, sample_weight):
        """The engine run shared by :meth:`fit` and :meth:`fit_objective`."""
        seed = draw_seed(self.random_state)
        n_outputs = objective.n_outputs or len(self.classes_)
        split = self._valid_split(X.shape[0], seed)
        targets = objective.targets
        if targets is not None:
            targets = np.asarray(targets)
            targets = targets.astype(np.int64 if targets.dtype.kind in "iub" else np.float32)
        data = RowDataset(X, {"y": y_enc.astype(np.int64), "target": targets,
                              "weight": sample_weight}, row_shape=self.row_shape(),
                          keep=objective.fields)
        rows, checked, checked_weight = self._checked_rows(data, sample_weight)
        with seeded(seed, self.device, self), limit_threads():
            module = objective.build(self.build_module(n_outputs))
            pruner = self._pruner(module, data)
            penalties = self._penalties(module, objective, pruner)
            spread_before = predicted_spread(objective.deploy(module), checked,
                                             checked_weight)
            net = self._make_net(module, objective, seed, split, pruner)
            net.max_epochs = objective.n_epochs(data, self.batch_size, self.max_epochs)
            if net.max_epochs < 1:
                raise param_error(self, "objective", objective,
                                  f"an objective that trains for at least one epoch (its "
                                  f"n_epochs gave {net.max_epochs})")
            if pruner is not None and pruner.fine_tune_epochs_for(
                    net.max_epochs) >= net.max_epochs:
                raise param_error(self, "fine_tune_epochs", self.fine_tune_epochs,
                                  f"fewer than the {net.max_epochs} training epochs (the "
                                  "network is pruned after max_epochs - fine_tune_epochs "
                                  "epochs with the group-lasso penalty)")
            self._fit_progress.update(net=net, objective=objective)
            try:
                net.fit(data, None)
            except NonFiniteLossError as exc:
                raise divergence_error(self, f"the loss became {exc.value} at epoch "
                                       f"{exc.epoch}, batch {exc.batch}",
                                       **self._causes(net, pruner, penalties, X)) from None
        if net.interrupted_:
            # skorch swallows Ctrl-C and returns; the policy (fit_policy) needs to see it.
            raise KeyboardInterrupt
        problem = non_finite_problem(net.module_, checked[0])
        if problem is not None:
            raise divergence_error(self, problem, **self._causes(net, pruner, penalties, X))
        warning = untrained_warning(
            self, net.history, spread_before,
            predicted_spread(objective.deploy(net.module_), checked, checked_weight),
            objective.target_proba(rows, y_enc[rows], len(self.classes_)),
            lambda: self._causes(net, pruner, penalties, X), checked_weight)
        if warning is not None:
            warn_user(warning)
        return self._install(net, objective)

    def _checked_rows(self, data, sample_weight):
        """``(row numbers, their inputs in batches, their weights or None)``: the training
        rows on which the predictions are checked before and after training."""
        rows = checked_rows(len(data))
        batches = [data.dense(torch.as_tensor(rows[i:i + self.batch_size]))
                   for i in range(0, len(rows), self.batch_size)]
        return rows, batches, None if sample_weight is None else sample_weight[rows]

    def _penalties(self, module, objective, pruner):
        """The penalty terms on the untrained ``module``, by label: the objective's and the
        group lasso; floats."""
        with torch.no_grad():
            terms = dict(objective.penalties(module))
            if pruner is not None:
                terms[f"group_lasso={self.group_lasso:g}"] = pruner.penalty(module)
            return {label: float(term) for label, term in terms.items()}

    def _causes(self, net, pruner, penalties, X):
        """:func:`~skdistill.engine.likely_causes`' arguments for a failed run of ``net``:
        the learning rate in use (``fine_tune_lr``'s once the pruned network fine-tunes)."""
        lr_name, lr = "lr", self.lr
        if pruner is not None and self.fine_tune_lr is not None and pruner.fine_tuning(net):
            lr_name, lr = "fine_tune_lr", self.fine_tune_lr
        return dict(lr=lr, x_scale=max_abs(X), lr_name=lr_name, penalties=penalties,
                    first_loss=first_batch_loss(net.history))

    def _install(self, net, objective):
        """The trained network becomes the fitted state; the net keeps no per-fit hooks."""
        net.objective = None  # may hold a teacher or a chain: not part of the fitted student
        self._set_trained(objective.deploy(net.module_), net, net.history)
        pruner = dict(net.callbacks_).get("prune")
        self.n_pruned_units_ = pruner.n_pruned_units_ if pruner is not None else 0
        self._record_architecture(self.deployed_module())
        return self

    def _salvage(self):
        """Ctrl-C: the network is usable once at least one epoch is complete."""
        net = self._fit_progress.get("net")
        epochs = completed_epochs(net.history if net is not None else None)
        if not epochs:
            return None
        self._install(net, self._fit_progress["objective"])
        last, full = net.history[-1], net.history[0].get("train_batch_count")
        done = sum("train_loss" in b for b in last["batches"])
        if "train_loss" not in last and (full is None or done < full):
            # history_ lists the epochs whose every batch was trained; net_.history also
            # has the interrupted one
            self.history_ = History(list(net.history)[:-1])
        return f"the network trained for {epochs} of {net.max_epochs} epochs"

    def _set_trained(self, module, net, history):
        """Install a trained network (and its skorch wrapper and history) as the fitted state."""
        self.module_ = module.eval()
        self.net_ = net
        self.history_ = history
        return self

    # -- inference --------------------------------------------------------------------------
    def _fast_X(self, X):
        """``X`` as the network takes it (float32, shaped), when the fitted student can skip
        :meth:`check_X`: a plain float32 or float64 ndarray of at least one row, in the
        fitted shape (:meth:`fast_rows`), finite and within float32's range, for a student
        fitted without feature names. None otherwise: the checked path, with its errors and
        warnings. Both paths give the network the same array."""
        if not is_plain_float_array(self, X) or not hasattr(self, "n_features_in_"):
            return None
        X = self.fast_rows(X)
        return None if X is None else fast_float_rows(X)

    def _run(self, module, X, batch_size=4096):
        """Validate ``X`` and run ``module`` on it in eval mode, chunk by chunk (CPU outputs).

        ``X`` may be rows a distiller already checked (:class:`~skdistill._validation.
        CheckedRows`). A module in eval mode throughout is run as it is (nothing is written
        to it); one with a module in train mode is put in eval mode for the call.
        """
        rows = X.array if type(X) is CheckedRows else self._fast_X(X)
        if rows is None:
            chunks = dense_chunks(self.check_X(X, reset=False), batch_size, self.row_shape())
        else:
            chunks = _array_chunks(rows, batch_size, self.row_shape())
        device, training = _device_and_mode(module)
        with eval_mode(module) if training else nullcontext(), torch.inference_mode():
            return [_to_cpu(module(chunk.to(device))) for chunk in chunks]

    def forward(self, X, module=None, batch_size=4096, copy=True):
        """Outputs of the trained network for ``X``, on the CPU, in eval mode.

        ``X`` is validated and shaped as for :meth:`predict` (sparse rows densified chunk by
        chunk). ``module`` runs another network that takes the same inputs instead, e.g. a
        distiller's network with extra heads on this student's trunk; a network returning a
        dict of tensors gives a dict.

        Parameters
        ----------
        X : array-like or sparse matrix of shape (n_samples, ...)
            Rows as at ``fit``.
        module : torch.nn.Module, default=None
            The network to run; None: ``module_``.
        batch_size : int, default=4096
            Rows per forward pass.
        copy : bool, default=True
            False returns the outputs of ``X`` in one chunk as the network gave them
            (inference tensors, to be read only), without joining them into a copy.

        Returns
        -------
        outputs : torch.Tensor or dict of torch.Tensor
            Logits of shape ``(n, n_outputs)`` for the student's own network.
        """
        check_fitted(self, "module_")
        out = self._run(self.module_ if module is None else module, X, batch_size)
        if len(out) == 1 and not copy:
            return out[0]
        if out and isinstance(out[0], dict):
            return {k: torch.cat([o[k] for o in out]) for k in out[0]}
        return torch.cat(out) if out else torch.empty(0, len(self.classes_))

    def _logits(self, X, batch_size=4096):
        """Logits of the deployed network, which ``predict_proba`` turns into probabilities
        (CPU, float32; an inference tensor when ``X`` is one chunk)."""
        return self.forward(X, self.deployed_module(), batch_size, copy=False)

    def predict_log_proba(self, X):
        """Log class probabilities, columns in ``classes_`` order."""
        # dtype= casts the logits to float64 before the operation, in the same kernel call
        return torch.log_softmax(self._logits(X), dim=1, dtype=torch.float64).numpy()

    def predict_proba(self, X):
        """Class probabilities, columns in ``classes_`` order.

        Parameters
        ----------
        X : array-like or sparse matrix of shape (n_samples, n_features)
            Rows as at ``fit``. A plain NumPy float32 or float64 array in the fitted shape,
            given to a student fitted without feature names, skips scikit-learn's input
            checks: it is converted to float32 once and checked for NaN, infinity and
            values beyond float32's range by one or two reductions, with the same result,
            errors and warnings (see "Serving predictions from Python" in the deployment
            guide).

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Float64 probabilities: the exponential of :meth:`predict_log_proba`.
        """
        log_proba = self.predict_log_proba(X)
        return np.exp(log_proba, out=log_proba)  # in place: one array less per call

    def predict(self, X):
        """Most probable class for each row."""
        logits = self._logits(X)
        return self.classes_[np.argmax(logits.numpy(), axis=1)]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.non_deterministic = False
        tags.input_tags.sparse = True
        return tags

