"""CNNStudent: the convolutional student networks of the GPED paper."""
import math
import numbers

import numpy as np
import scipy.sparse as sp
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import _check_feature_names, check_array

from .._validation import check_float32_range, is_number, named_errors, param_error
from ..nets import CNN, CNN_ARCHITECTURES
from ..nets.mlp import ACTIVATIONS
from ..pruning import layer_widths
from ._base import BaseStudent


class CNNStudent(BaseStudent):
    """Convolutional classifier for images, trained with PyTorch through skorch.

    The two base architectures of Vadera et al.: ``"mnist"`` is Conv(10, k=4) MaxPool(2)
    Conv(20, k=4) MaxPool(2) FC(80) FC(out); ``"cifar"`` is Conv(16, 5) Pool Conv(32, 5) Pool
    FC(200) FC(50) FC(out). Conv channel counts are scaled by K1 and fully connected widths by
    K2 (``floor(size * k)``, at least 1).

    Images may be given as ``(n, H, W)``, ``(n, C, H, W)``, or flat ``(n, C*H*W)`` with
    ``input_shape=(C, H, W)``. Flat input without ``input_shape`` is read as one square
    grey-scale image when the feature count is a square number, else as a ``1 x F`` strip.

    Parameters
    ----------
    architecture : {"mnist", "cifar"}, default="mnist"
    width_multiplier : float or (float, float), default=1.0
        ``K1`` for conv channels and ``K2`` for fully connected widths; one float sets both.
    input_shape : tuple of int, default=None
        ``(C, H, W)`` or ``(H, W)`` of one image for flat input.
    activation, dropout, max_epochs, batch_size, lr, optimizer, weight_decay, device, \
callbacks, validation_fraction, verbose, random_state
        As in :class:`MLPStudent`.
    group_lasso, prune_threshold, fine_tune_epochs, fine_tune_lr
        As in :class:`MLPStudent`: a group is the filter of one conv output channel, or the
        incoming weights of one fully connected unit; a removed channel takes the matching
        input channels of the next conv (or inputs of the fully connected layer) with it.

    Attributes
    ----------
    classes_, n_features_in_, module_, net_, history_
        As in :class:`MLPStudent`.
    input_shape_ : tuple of int
        ``(C, H, W)`` of one image as seen by the network.
    channels_ : tuple of int
        Output channels of the conv layers of the trained network (after pruning).
    hidden_layer_sizes_ : tuple of int
        Widths of its hidden fully connected layers (after pruning).
    n_pruned_units_ : int
        Channels and units removed by pruning.

    References
    ----------
    Vadera, Jalaian, Marlin. Generalized Bayesian Posterior Expectation Distillation for Deep
    Neural Networks. UAI 2020.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skdistill import CNNStudent
    >>> X, y = load_digits(return_X_y=True)
    >>> clf = CNNStudent(width_multiplier=(1.0, 0.5), max_epochs=5, random_state=0)
    >>> clf.fit(X / 16, y).input_shape_
    (1, 8, 8)
    >>> clf.predict_proba(X[:3] / 16).shape
    (3, 10)
    """

    _parameter_constraints = {
        **BaseStudent._parameter_constraints,
        "architecture": [StrOptions(set(CNN_ARCHITECTURES))],
        "width_multiplier": [Interval(numbers.Real, 0, None, closed="neither"), "array-like"],
        "input_shape": ["array-like", None],
        "activation": [StrOptions(set(ACTIVATIONS))],
    }

    def __init__(self, architecture="mnist", width_multiplier=1.0, input_shape=None,
                 activation="relu", dropout=0.0, max_epochs=20, batch_size=128, lr=1e-3,
                 optimizer="adam", weight_decay=0.0, device="cpu", callbacks=None,
                 validation_fraction=None, verbose=0, random_state=None,
                 group_lasso=0.0, prune_threshold=1e-3, fine_tune_epochs=None,
                 fine_tune_lr=None):
        self.architecture = architecture
        self.width_multiplier = width_multiplier
        self.input_shape = input_shape
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

    def _multipliers(self):
        m = self.width_multiplier
        k = (m, m) if isinstance(m, numbers.Real) else tuple(m)
        if len(k) != 2 or not all(is_number(v) and v > 0 for v in k):
            raise param_error(self, "width_multiplier", m,
                              "a positive float or a pair (K1 conv, K2 fully connected)")
        return k

    def _validate_params(self):
        super()._validate_params()
        # an array-like to scikit-learn's constraints: its values are checked here, so that a
        # distiller refuses them before it fits its teacher
        self._multipliers()

    def build_module(self, n_outputs):
        """The untrained :class:`~skdistill.nets.CNN` of ``architecture`` (a trunk and a head)."""
        k1, k2 = self._multipliers()
        return CNN.from_architecture(self.architecture, self.input_shape_, n_outputs, k1, k2,
                                     activation=self.activation, dropout=self.dropout)

    def _record_architecture(self, module):
        self.channels_, self.hidden_layer_sizes_ = layer_widths(module)

    def _image_shape(self, X):
        if X.ndim == 4:
            return X.shape[1:]
        if X.ndim == 3:
            return (1,) + X.shape[1:]
        n_features = X.shape[1]
        if self.input_shape is not None:
            shape = tuple(int(s) for s in self.input_shape)
            shape = (1,) + shape if len(shape) == 2 else shape
            if len(shape) != 3 or int(np.prod(shape)) != n_features:
                raise param_error(self, "input_shape", self.input_shape,
                                  f"(C, H, W) or (H, W) whose product is the {n_features} "
                                  "features of X")
            return shape
        side = math.isqrt(n_features)
        return (1, side, side) if side * side == n_features else (1, 1, n_features)

    def check_X(self, X, reset):
        """``X`` validated and shaped as images ``(n, C, H, W)``; sparse rows stay flat."""
        _check_feature_names(self, X, reset=reset)
        X = named_errors(self, check_array, X, allow_nd=True, dtype=("float32", "float64"),
                         accept_sparse="csr", input_name="X", estimator=self)
        check_float32_range(self, X)
        if X.ndim > 4:
            raise param_error(self, "X", f"<array of shape {X.shape}>",
                              "(n, H, W), (n, C, H, W) or flat (n, features)")
        n_features = int(np.prod(X.shape[1:]))
        if reset:
            self.n_features_in_ = n_features
            self.input_shape_ = tuple(int(s) for s in self._image_shape(X))
        elif n_features != self.n_features_in_:
            raise ValueError(
                f"X has {n_features} features, but {type(self).__name__} is expecting "
                f"{self.n_features_in_} features as input."
            )
        if sp.issparse(X):  # flat rows, reshaped minibatch by minibatch (row_shape)
            return X
        return X.reshape((len(X),) + self.input_shape_)

    def fast_rows(self, X):
        """``X`` reshaped to images when it holds the fitted number of values, else None."""
        # flat or image rows of the fitted size, reshaped as check_X reshapes them; a
        # subclass with a check_X of its own takes the checked path
        if (X.ndim <= 4 and math.prod(X.shape[1:]) == self.n_features_in_
                and type(self).check_X is CNNStudent.check_X):
            return X.reshape((len(X),) + self.input_shape_)
        return None

    def row_shape(self):
        """``input_shape_``: flat rows are reshaped to ``(C, H, W)`` images."""
        return self.input_shape_
