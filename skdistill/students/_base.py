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
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import column_or_1d

from .._devices import DeviceFallbackMixin
from .._interrupt import FitPolicyMixin, fit_policy, partial_fit_policy, warn_user
from .._random import draw_seed, seeded
from .._validation import (CheckedRows, StrictParamsMixin, callback_objects, check_callbacks,
                           check_device, check_fitted, check_labels_present,
                           check_sample_weight, check_soft_targets, check_validation_fraction,
                           encode_labels, fast_float_rows, is_number, is_plain_float_array,
                           named_errors, param_error)
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


def _state_copy(module):
    """A copy of ``module``'s parameters and buffers, for ``load_state_dict``."""
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


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


def _partial_fit_available(student):
    """``partial_fit`` is an attribute of a student unless it prunes (``group_lasso > 0``),
    as scikit-learn's ``MLPClassifier.partial_fit`` is not one for its non-stochastic
    solver: a pruned network is the end of one ``fit``, which a stream of calls has not."""
    if is_number(student.group_lasso) and student.group_lasso > 0:
        raise param_error(student, "group_lasso", student.group_lasso,
                          "0 for partial_fit (pruning removes units at an epoch of one fit, "
                          "which a stream of partial_fit calls has not); prune with fit",
                          AttributeError)
    return True


class _LabelStream(Objective):
    """The objective of :meth:`BaseStudent.partial_fit`: the cross-entropy on the labels, as
    ``fit`` without soft targets.

    It stays on the engine net between calls with the state of the stream of calls: the seed
    drawn from ``random_state`` on its first call and the number of calls completed. A pickled
    student thus continues its stream, and a new ``fit`` (a new net) ends it.
    """

    def __init__(self, seed):
        super().__init__(SoftTargetCrossEntropy(reduction="none"), fields=("y",))
        self.seed, self.calls = seed, 0

    def call_seed(self):
        """The torch seed of the next call: the stream's seed for the first call (which is
        then ``fit`` with ``max_epochs=1``), one drawn from ``(seed, call number)`` after."""
        if not self.calls:
            return self.seed
        return int(np.random.SeedSequence([self.seed, self.calls]).generate_state(1)[0] >> 1)


def _same_network(a, b):
    """Whether two networks have the same type and parameters and buffers of the same names
    and shapes: the optimizer state of one fits the other."""
    if type(a) is not type(b):
        return False
    sa, sb = a.state_dict(), b.state_dict()
    return list(sa) == list(sb) and all(sa[k].shape == sb[k].shape for k in sa)


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
    or soft targets, :meth:`partial_fit` on labels one block of rows at a time, and
    :meth:`fit_objective` on any :class:`~skdistill.base.Objective`, which is how distillers
    train a student on their own targets and loss.

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

    @available_if(_partial_fit_available)
    @partial_fit_policy
    def partial_fit(self, X, y, classes=None, sample_weight=None):
        """Train for one epoch on the rows given, continuing from the current network.

        One call is one pass over ``X`` in shuffled minibatches of ``batch_size``, through
        the same engine, optimizer and settings (``lr``, ``device``, ``callbacks``...) as
        :meth:`fit`, on the cross-entropy of the labels; the network and the optimizer's
        state carry over from call to call. This is scikit-learn's incremental learning
        interface, for data seen one block at a time (dask-ml's ``Incremental``, a loop
        over the blocks of an array too large for memory).

        The first call on an unfitted student builds the network for ``classes`` and sets
        ``classes_`` and ``n_features_in_``; later calls check ``X`` against them. After
        :meth:`fit`, a call continues training the fitted network (with its optimizer
        state, when ``fit`` trained that network itself), with the classes of ``fit``. The
        training settings are read by the call that makes the engine's net (the first call,
        or the first after ``fit``); ``set_params`` between later calls does not change them.

        Each call adds one row to ``history_`` (its training loss). ``validation_fraction``
        is not used: there is no validation split, so a callback monitoring ``valid_loss``
        has nothing to read, and a block is not checked for a network that learnt nothing
        (a block may be small). A NaN or infinite loss raises the ``ValueError`` of
        :meth:`fit`. A call that raises, or is interrupted by Ctrl-C, leaves the student as
        it was after the last complete call (unfitted before the first one) and the error,
        or the ``KeyboardInterrupt``, propagates, so a loop of calls stops there.

        ``random_state`` is drawn from once, on the first call; each call then trains under
        a seed derived from that draw and the call's number, so a sequence of calls on the
        same blocks gives the same network every time (also through a pickled student). The
        first call on an unfitted student trains exactly as :meth:`fit` with
        ``max_epochs=1`` and ``validation_fraction=None``.

        Not available when the student prunes (``group_lasso > 0``): ``partial_fit`` is
        then not an attribute (as scikit-learn's ``MLPClassifier.partial_fit`` with the
        ``"lbfgs"`` solver), and using it raises an ``AttributeError`` naming the parameter.

        Parameters
        ----------
        X : array-like or sparse matrix
            Rows of one block, as :meth:`fit` takes them.
        y : array-like of shape (n_samples,)
            Their labels, each one of ``classes_``; a block need not hold every class.
        classes : array-like of shape (n_classes,), default=None
            Every class of the whole stream. Required on the first call (it sets
            ``classes_``, sorted); on a later call it may be given again and must then be
            the same classes.
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
        >>> X, y = load_iris(return_X_y=True)
        >>> X = (X - X.mean(0)) / X.std(0)
        >>> order = np.random.RandomState(0).permutation(len(X))
        >>> clf = MLPStudent(hidden_layer_sizes=(32,), lr=1e-2, random_state=0)
        >>> for _ in range(10):  # ten passes over five blocks
        ...     for block in np.array_split(order, 5):
        ...         clf = clf.partial_fit(X[block], y[block], classes=[0, 1, 2])
        >>> len(clf.history_), bool(clf.score(X, y) > 0.9)
        (50, True)
        """
        self._validate_params()
        if y is None:
            raise ValueError(
                f"{type(self).__name__} requires y to be passed, but the target y is None."
            )
        first = not hasattr(self, "net_")
        classes = self._partial_fit_classes(classes, first)
        X = self.check_X(X, reset=first)
        if first:
            self.classes_ = classes
        y_enc = self._encode_block_labels(y, X.shape[0])
        sample_weight = check_sample_weight(self, sample_weight, X.shape[0])
        data = RowDataset(X, {"y": y_enc, "weight": sample_weight},
                          row_shape=self.row_shape(), keep=("y",))
        stream = None if first else self.net_.objective
        new_stream = not isinstance(stream, _LabelStream)
        if new_stream:
            stream = _LabelStream(draw_seed(self.random_state))
        sample = data.dense(torch.as_tensor(checked_rows(len(data))[:self.batch_size]))
        with seeded(stream.call_seed(), self.device, self), limit_threads():
            net = self._partial_fit_net(stream, first, new_stream)
            try:
                net.partial_fit(data, None, epochs=1)
            except NonFiniteLossError as exc:
                raise divergence_error(self, f"the loss became {exc.value} at epoch "
                                       f"{exc.epoch} (this partial_fit call), batch {exc.batch}",
                                       **self._causes(net, None, {}, X)) from None
        if net.interrupted_:
            raise KeyboardInterrupt  # skorch returns on Ctrl-C; the policy needs to see it
        problem = non_finite_problem(net.module_, sample)
        if problem is not None:
            raise divergence_error(self, problem, **self._causes(net, None, {}, X))
        stream.calls += 1
        self._set_trained(net.module_, net, net.history)
        if first:
            self.n_pruned_units_ = 0
        self._record_architecture(self.deployed_module())
        return self

    def _partial_fit_classes(self, classes, first):
        """``classes`` of :meth:`partial_fit` checked: the sorted classes of the stream."""
        name = type(self).__name__
        if classes is None:
            if first:
                raise ValueError(f"{name}: classes must be passed on the first call to "
                                 "partial_fit.")
            return self.classes_
        values = np.asarray(classes)
        check_labels_present(self, values, "classes")
        try:
            unique = np.unique(values) if values.ndim == 1 else values[:0]
            check_classification_targets(unique)
        except (TypeError, ValueError):
            unique = values[:0]
        if len(unique) < 2:
            raise param_error(self, "classes", classes,
                              "a 1-d array-like of at least two class labels of one type, "
                              "integers or strings", ValueError)
        if not first and not np.array_equal(unique, self.classes_):
            raise param_error(self, "classes", classes,
                              f"the classes_ of the first call to partial_fit or of fit, "
                              f"{self.classes_.tolist()}")
        return unique

    def _encode_block_labels(self, y, n_rows):
        """The labels of one :meth:`partial_fit` block as positions in ``classes_``."""
        y = named_errors(self, column_or_1d, y, warn=True)
        check_labels_present(self, y, "y")
        if len(y) != n_rows:
            raise param_error(self, "y", f"<{len(y)} labels>",
                              f"{n_rows} labels, one per row of X")
        known = np.isin(y, self.classes_)
        if not known.all():
            unknown = list(dict.fromkeys(y[~known].tolist()))
            shown = ", ".join(map(repr, unknown[:5])) + (", ..." if len(unknown) > 5 else "")
            raise param_error(self, "y", f"<labels {shown} not in classes_>",
                              f"labels among classes_ {self.classes_.tolist()} (the classes "
                              "of the first call to partial_fit, or of fit)")
        return np.searchsorted(self.classes_, y).astype(np.int64)

    def _partial_fit_net(self, stream, first, new_stream):
        """The engine net a :meth:`partial_fit` call trains, initialised, and the snapshot
        of what the call changes (in ``_fit_progress``) for :meth:`_rollback`.

        The first call builds the network; a call after ``fit`` (or after a distiller's
        ``fit_objective``) trains ``module_`` in a net of its own, with ``fit``'s optimizer
        state when ``fit``'s net trained the same network, and ``history_`` continued;
        the calls after continue that net.
        """
        if first:
            net = self._make_net(self.build_module(len(self.classes_)), stream, None)
            return net.initialize()
        if new_stream:
            old = self.net_
            net = self._make_net(self.module_, stream, None).initialize()
            net.history = History(list(self.history_))
            if (_same_network(old.module_, net.module_)
                    and type(old.optimizer_) is type(net.optimizer_)):
                net.optimizer_.load_state_dict(copy.deepcopy(old.optimizer_.state_dict()))
            self._fit_progress["snapshot"] = dict(module=net.module_,
                                                  params=_state_copy(net.module_))
            return net
        net = self.net_
        self._fit_progress["snapshot"] = dict(
            module=net.module_, params=_state_copy(net.module_), optimizer=net.optimizer_,
            optimizer_state=copy.deepcopy(net.optimizer_.state_dict()), history=net.history,
            epochs=len(net.history))
        return net

    def _rollback(self):
        """A failed or interrupted :meth:`partial_fit` call: the network, optimizer state and
        history as they were before it."""
        snapshot = self._fit_progress.get("snapshot")
        if snapshot is not None:
            snapshot["module"].load_state_dict(snapshot["params"])
            if "optimizer" in snapshot:
                snapshot["optimizer"].load_state_dict(snapshot["optimizer_state"])
                del snapshot["history"][snapshot["epochs"]:]
        if not hasattr(self, "net_"):
            return None
        return (f"the network as it was before this call ({completed_epochs(self.history_)} "
                "epochs trained)")

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

