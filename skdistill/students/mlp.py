"""MLPStudent: a fully connected student network with width multipliers."""
import numbers

from sklearn.utils._param_validation import Interval, StrOptions
from .._validation import check_input, check_layer_sizes, is_number, param_error
from ..nets import MLP, scaled_widths
from ..nets.mlp import ACTIVATIONS
from ._base import BaseStudent


class MLPStudent(BaseStudent):
    """Multi-layer perceptron classifier trained with PyTorch through skorch.

    Usable on its own (``fit(X, y)``) or as the student of a distiller, which trains it on a
    teacher's probabilities (``fit(X, y, soft_targets=P)``). Layer widths are
    ``floor(size * width_multiplier)`` (at least 1), the width search of Vadera et al.

    Parameters
    ----------
    hidden_layer_sizes : tuple of int, default=(100,)
        Widths of the hidden layers before scaling.
    width_multiplier : float or sequence of float, default=1.0
        One multiplier for all hidden layers, or one per layer.
    activation : {"relu", "tanh", "sigmoid", "gelu", "elu", "leaky_relu", "identity"}, default="relu"
    dropout : float, default=0.0
        Dropout probability after each hidden activation.
    max_epochs : int, default=50
        Passes over the training data (at least one); the data are shuffled each epoch.
    batch_size : int, default=128
    lr : float, default=1e-3
        Learning rate.
    optimizer : {"adam", "adamw", "sgd", "momentum", "rmsprop"} or torch optimizer class, default="adam"
        ``"momentum"`` is SGD with momentum 0.9.
    weight_decay : float, default=0.0
    device : str, default="cpu"
        Torch device, e.g. ``"cuda"``.
    callbacks : list of skorch callbacks, default=None
        Passed to the underlying :class:`skorch.NeuralNet` (``EarlyStopping``,
        ``ProgressBar``, ``Checkpoint``, ``LRScheduler``...). They are copied, never mutated.
    validation_fraction : float, default=None
        Hold out this fraction of the training data as skorch's validation split (gives
        ``valid_loss`` for ``EarlyStopping``); ``None`` trains on everything.
    verbose : int, default=0
        Print skorch's per-epoch table when positive.
    random_state : int, RandomState instance or None, default=None
        Seeds initialisation, shuffling and dropout; an int makes two fits identical.
    group_lasso : float, default=0.0
        Strength ``lambda`` of the group-lasso penalty ``lambda * sum_k ||w_{G_k}||_2`` over
        the incoming weights of each hidden unit (Vadera et al. §3.3), added to the mean
        training loss; the paper searches it on a log scale, 1e-8 to 1e-3. When positive, the
        network is **pruned**: after ``max_epochs - fine_tune_epochs`` epochs every unit whose
        incoming weights are all at most ``prune_threshold`` is removed (with the next layer's
        matching inputs; see :mod:`skdistill.pruning`), and the smaller network is fine-tuned
        without the penalty for the remaining epochs. Works the same when a distiller trains
        the student (its loss, and so the useful ``lambda``, may be on another scale). 0
        trains and keeps the full network. The paper trains without dropout while
        regularising.
    prune_threshold : float, default=1e-3
        The paper's epsilon: a unit is removed when all its incoming weights are at most it
        in magnitude (0: when they are all zero).
    fine_tune_epochs : int, default=None
        Epochs of fine-tuning after pruning, counted within ``max_epochs`` (or within the
        epochs a distiller's teacher decides); ``None`` is a fifth of them. Must be fewer.
    fine_tune_lr : float, default=None
        Learning rate at which fine-tuning restarts, with a fresh optimiser state (and a
        fresh schedule for ``LRScheduler`` callbacks); ``None`` is ``lr``. The paper restarts
        at 1e-4 for fully connected students and 1e-3 for CNNs.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Only when ``X`` has string column names.
    module_ : torch.nn.Module
        The trained network (outputs logits).
    net_ : skdistill.engine.StudentNet
        The skorch net (the one training engine) that trained it, whoever called it: the
        student's own ``fit`` or a distiller through ``fit_objective``.
    history_ : skorch.History
        Per-epoch losses and timings; the epoch of pruning records ``n_pruned_units``.
    hidden_layer_sizes_ : tuple of int
        Widths of the hidden layers of the trained network: ``hidden_layer_sizes`` scaled by
        ``width_multiplier``, less the units pruned.
    n_pruned_units_ : int
        Hidden units removed by pruning (0 unless ``group_lasso > 0``).

    References
    ----------
    Vadera, Jalaian, Marlin. Generalized Bayesian Posterior Expectation Distillation for Deep
    Neural Networks. UAI 2020.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from skdistill import MLPStudent
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = MLPStudent(hidden_layer_sizes=(32,), max_epochs=100, lr=1e-2,
    ...                  random_state=0).fit(X, y)
    >>> clf.predict_proba(X[:2]).shape
    (2, 3)
    >>> clf.score(X, y) > 0.9
    True

    Group-lasso pruning leaves a smaller network:

    >>> from sklearn.preprocessing import scale
    >>> pruned = MLPStudent(hidden_layer_sizes=(32,), max_epochs=100, lr=1e-2,
    ...                     group_lasso=0.05, random_state=0).fit(scale(X), y)
    >>> pruned.hidden_layer_sizes_[0] < 32, pruned.module_.head.in_features < 32
    (True, True)
    """

    _parameter_constraints = {
        **BaseStudent._parameter_constraints,
        "hidden_layer_sizes": ["array-like", Interval(numbers.Integral, 1, None, closed="left")],
        "width_multiplier": [Interval(numbers.Real, 0, None, closed="neither"), "array-like"],
        "activation": [StrOptions(set(ACTIVATIONS))],
    }

    def __init__(self, hidden_layer_sizes=(100,), width_multiplier=1.0, activation="relu",
                 dropout=0.0, max_epochs=50, batch_size=128, lr=1e-3, optimizer="adam",
                 weight_decay=0.0, device="cpu", callbacks=None, validation_fraction=None,
                 verbose=0, random_state=None,
                 group_lasso=0.0, prune_threshold=1e-3, fine_tune_epochs=None,
                 fine_tune_lr=None):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.width_multiplier = width_multiplier
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

    def _hidden_sizes(self):
        sizes = check_layer_sizes(self, self.hidden_layer_sizes)
        mult = self.width_multiplier
        mults = [mult] if isinstance(mult, numbers.Real) else list(mult)
        if not all(is_number(m) and m > 0 for m in mults):
            raise param_error(self, "width_multiplier", mult, "positive numbers")
        try:
            return scaled_widths(sizes, mult)
        except ValueError as exc:
            raise param_error(self, "width_multiplier", mult,
                              f"one float or {len(sizes)} values (one per hidden layer)") from exc

    def _validate_params(self):
        super()._validate_params()
        # the sizes are array-likes to scikit-learn's constraints: their values are checked
        # here, so that a distiller refuses them before it fits its teacher
        self._hidden_sizes()

    def build_module(self, n_outputs):
        """The untrained :class:`~skdistill.nets.MLP` (a trunk and a head)."""
        return MLP(self.n_features_in_, n_outputs, self._hidden_sizes(), self.activation,
                   self.dropout)

    def check_X(self, X, reset):
        """``X`` validated: float rows, or a CSR matrix, of ``n_features_in_`` columns."""
        return check_input(self, X, reset=reset, dtype=("float32", "float64"),
                           accept_sparse="csr")

    def fast_rows(self, X):
        """``X`` as it is when it has the fitted number of columns, else None."""
        # rows of the fitted width, as check_X returns them; a subclass with a check_X of
        # its own takes the checked path
        if (X.ndim == 2 and X.shape[1] == self.n_features_in_
                and type(self).check_X is MLPStudent.check_X):
            return X
        return None
