"""Synthetic transfer sets: new rows made from the labelled ones, for a teacher to label.

A student learns a teacher's function only where it is shown it. With few labelled rows,
Bucilă, Caruana and Niculescu-Mizil (2006) grow the transfer set with synthetic rows drawn
near the real ones, which the teacher labels: :class:`Munge`, their algorithm, mixes each row
with its nearest neighbour; :class:`GaussianNoise`, the simple alternative, jitters the
numeric columns of copies of the rows. Both are parameter objects with one method,
``sample(X, n_samples, random_state)``, which returns rows of the same kind as ``X`` (a
NumPy array of the same dtype, or a DataFrame with the same columns and dtypes).
``KnowledgeDistiller(augment=Munge(p=0.3))`` and ``CrossFitDistiller`` draw them at ``fit``
(parameters ``augment`` and ``augment_size``).

A column is *nominal* (its values are only ever moved between rows, never changed) or
*continuous* (numbers, drawn anew). Columns whose dtype is not a number (``category``,
strings, ``object``, bool, dates) are always nominal; ``categorical_features`` names numeric
columns to treat as nominal too (integer-coded categories, say). Continuous integer columns
are rounded back to integers, within their dtype's range.
"""
import numbers
import warnings

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator
from sklearn.neighbors import NearestNeighbors
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions

from ._validation import StrictParamsMixin, is_number, param_error, validate_params


class _Augmenter(StrictParamsMixin, BaseEstimator):
    """What :class:`Munge` and :class:`GaussianNoise` share: ``sample`` and the column split."""

    def sample(self, X, n_samples=None, random_state=None):
        """Draw synthetic rows from the rows of ``X``.

        Parameters
        ----------
        X : ndarray or DataFrame of shape (n_samples_X, n_features)
            The real rows: a 2-d NumPy array (numbers, bools, strings or objects) or a
            pandas DataFrame, missing values (NaN, None) allowed. Sparse matrices are
            refused.
        n_samples : int, default=None
            Number of rows to draw; ``None`` means ``len(X)``. The rows come from whole
            passes over ``X`` and, for the rest, a random subset of the rows of one more pass.
        random_state : int, RandomState instance or None, default=None
            Seeds the draws: the same seed gives the same rows.

        Returns
        -------
        X_new : ndarray or DataFrame of shape (n_samples, n_features)
            Rows of the same kind as ``X``: an array of its dtype, or a DataFrame with its
            columns and dtypes (a fresh index).
        """
        validate_params(self)
        table = _Table(self, X, self.categorical_features)
        n = table.n_rows
        if n_samples is None:
            n_samples = n
        if not is_number(n_samples, numbers.Integral) or n_samples < 1:
            raise param_error(self, "n_samples", n_samples, "a positive int, or None")
        rng = check_random_state(random_state)
        n_passes = -(-n_samples // n)
        passes = self._passes(table, n_passes, rng)
        C = np.concatenate([c for c, _ in passes])
        R = np.concatenate([r for _, r in passes])
        keep = n_samples - (n_passes - 1) * n
        if keep < n:  # the last pass in part: a random subset of its rows, in order
            rows = np.concatenate([np.arange((n_passes - 1) * n),
                                   (n_passes - 1) * n + np.sort(rng.choice(n, keep,
                                                                           replace=False))])
            C, R = C[rows], R[rows]
        return table.rebuild(C, R)


class Munge(_Augmenter):
    """MUNGE: synthetic rows that mix each row with its nearest neighbour.

    Bucilă, Caruana and Niculescu-Mizil (2006). Each pass copies the rows ``T`` to ``T'``
    and, for each row ``e`` of ``T'`` in turn, with its nearest neighbour ``e'``, changes
    each attribute ``a`` with probability ``p``:

    - continuous: with ``sd = |e_a - e'_a| / s``, ``e_a ~ N(e'_a, sd)`` and
      ``e'_a ~ N(old e_a, sd)``: each row moves to around the other's value;
    - nominal: ``e_a`` and ``e'_a`` are swapped.

    Passes are repeated until there are ``n_samples`` rows. The algorithm is the paper's:
    both ``e`` and ``e'`` change, and a row changed as the neighbour of an earlier row is
    used as it then is. It is computed in batches of pairs that share no row, in an order
    that keeps every row's changes in the paper's order, so each pass costs a few NumPy
    operations per batch rather than per row; the result is the same as the row-by-row
    loop's with the same random draws.

    Neighbours are found once, among the real rows (each pass starts from them), by
    :class:`~sklearn.neighbors.NearestNeighbors` on an encoded copy: each continuous column
    divided by its standard deviation (the paper's "unit spread"), each nominal column
    one-hot encoded and scaled by ``1/sqrt(2)``, so the squared distance is the squared
    Euclidean distance over the continuous columns plus one per nominal mismatch (the
    paper's Hamming term). A missing value is its own nominal value; in a continuous
    column, a missing value adds one to the distance from a present one (an indicator
    column) and counts as the column's mean otherwise.

    Missing values: where ``e_a`` or ``e'_a`` is missing in a continuous column, the two
    are swapped (with probability ``p``), as nominal values are: there is no spread to draw
    from, and a row's missing values keep their share of the synthetic rows.

    Parameters
    ----------
    p : float, default=0.5
        Probability that each attribute of each pair is changed, in ``[0, 1]``. ``0`` gives
        copies of the rows; the paper tried 0.1 to 0.5 (with ``s = 1`` to 20).
    s : float, default=1.0
        Local variance parameter (> 0): the spread of a continuous draw is the distance
        between the two rows' values divided by ``s``; larger ``s`` keeps the synthetic
        values closer to the real ones.
    categorical_features : "from_dtype", array-like of int, bool or str, or None, \
default="from_dtype"
        Numeric columns to treat as nominal besides the columns whose dtype is not a number
        (``category``, strings, ``object``, bool), which always are: column indices, a
        boolean mask over the columns, or (for a DataFrame) column names. ``"from_dtype"``
        and ``None``: no other column.

    See Also
    --------
    GaussianNoise : Gaussian jitter of the continuous columns of copies of the rows.

    References
    ----------
    Bucilă, Caruana, Niculescu-Mizil. Model Compression. KDD 2006.

    Examples
    --------
    >>> import numpy as np
    >>> import pandas as pd
    >>> from skdistill.augment import Munge
    >>> X = pd.DataFrame({"age": [25, 32, 47, 51, 62, 38],
    ...                   "job": ["clerk", "nurse", "clerk", "chef", "nurse", "chef"]})
    >>> X_new = Munge(p=0.5).sample(X, n_samples=9, random_state=0)
    >>> X_new.shape, list(X_new.dtypes.astype(str)) == list(X.dtypes.astype(str))
    ((9, 2), True)
    >>> set(X_new["job"]) <= set(X["job"])
    True
    >>> rows = np.array([[0.0, 1.0], [0.1, 1.2], [5.0, 5.0]])
    >>> np.array_equal(Munge(p=0.0).sample(rows, random_state=0), rows)
    True
    """

    _parameter_constraints = {
        "p": [Interval(numbers.Real, 0, 1, closed="both")],
        "s": [Interval(numbers.Real, 0, None, closed="neither")],
        "categorical_features": [StrOptions({"from_dtype"}), "array-like", None],
    }

    def __init__(self, p=0.5, s=1.0, categorical_features="from_dtype"):
        self.p = p
        self.s = s
        self.categorical_features = categorical_features

    def _passes(self, table, n_passes, rng):
        if table.n_rows < 2:
            raise param_error(self, "X", f"<{type(table.X).__name__} with 1 row>",
                              "at least 2 rows (each row is mixed with its nearest neighbour)")
        neighbours = _nearest_other(table.encoded())
        order, bounds = _batches(neighbours)
        n, dc, dk = table.n_rows, table.C.shape[1], table.n_nominal
        out = []
        for _ in range(n_passes):
            C, R = table.C.copy(), np.tile(np.arange(n), (dk, 1)).T
            coins = rng.random_sample((n, dc + dk)) < self.p
            noise = rng.standard_normal((2, n, dc))
            _munge_pass(C, R, neighbours, coins[:, :dc], coins[:, dc:], noise[0], noise[1],
                        float(self.s), order, bounds)
            out.append((C, R))
        return out


class GaussianNoise(_Augmenter):
    """Copies of the rows with Gaussian noise added to each continuous column.

    Each synthetic row is a real row (whole passes over the rows, then a random subset of
    them) whose continuous values get independent ``N(0, (scale * std)^2)`` noise, ``std``
    being the column's standard deviation over its present values. Nominal columns (see
    ``categorical_features``) are copied as they are, and missing values stay missing. The
    simple alternative to :class:`Munge`, which keeps more of the joint structure of the
    columns: noise of a fixed size in every column ignores how the columns vary together.

    Parameters
    ----------
    scale : float, default=0.1
        The noise's standard deviation as a fraction of each column's (>= 0); ``0`` gives
        copies of the rows.
    categorical_features : "from_dtype", array-like of int, bool or str, or None, \
default="from_dtype"
        Numeric columns to treat as nominal (copied, no noise) besides the columns whose
        dtype is not a number, which always are: column indices, a boolean mask over the
        columns, or (for a DataFrame) column names. ``"from_dtype"`` and ``None``: no other
        column.

    See Also
    --------
    Munge : The paper's algorithm: each row mixed with its nearest neighbour.

    Examples
    --------
    >>> import numpy as np
    >>> from skdistill.augment import GaussianNoise
    >>> X = np.random.default_rng(0).normal(size=(200, 2))
    >>> X_new = GaussianNoise(scale=0.1).sample(X, n_samples=400, random_state=0)
    >>> X_new.shape
    (400, 2)
    >>> bool(np.abs(X_new[:200] - X).std() < 0.2)
    True
    """

    _parameter_constraints = {
        "scale": [Interval(numbers.Real, 0, None, closed="left")],
        "categorical_features": [StrOptions({"from_dtype"}), "array-like", None],
    }

    def __init__(self, scale=0.1, categorical_features="from_dtype"):
        self.scale = scale
        self.categorical_features = categorical_features

    def _passes(self, table, n_passes, rng):
        n, dc = table.n_rows, table.C.shape[1]
        R = np.tile(np.arange(n), (table.n_nominal, 1)).T
        spread = _spread(table.C)
        return [(table.C + self.scale * spread * rng.standard_normal((n, dc)), R.copy())
                for _ in range(n_passes)]


# -- MUNGE's pass -----------------------------------------------------------------------------
def _nearest_other(encoded):
    """Index of each row's nearest other row (the first one found, for ties)."""
    n = encoded.shape[0]
    found = NearestNeighbors(n_neighbors=min(2, n)).fit(encoded).kneighbors(
        encoded, return_distance=False)
    itself = found[:, 0] == np.arange(n)
    return np.where(itself, found[:, -1], found[:, 0])


def _batches(neighbours):
    """Pairs ``(e, neighbours[e])`` grouped into batches that share no row, in an order that
    keeps the paper's: a pair comes after every earlier pair that touches one of its rows.

    Returns ``(order, bounds)``: the pairs (by ``e``) sorted by batch, and where each batch
    starts in ``order`` (then its end).
    """
    last = [0] * len(neighbours)
    batch = []
    for e, other in enumerate(neighbours.tolist()):
        k = max(last[e], last[other]) + 1
        last[e] = last[other] = k
        batch.append(k)
    batch = np.asarray(batch)
    order = np.argsort(batch, kind="stable")
    bounds = np.searchsorted(batch[order], np.arange(1, batch.max() + 2))
    return order, bounds


def _munge_pass(C, R, neighbours, coins_c, coins_k, z1, z2, s, order=None, bounds=None):
    """One MUNGE pass over the rows, in place.

    ``C`` (n, n_continuous) holds the continuous values (NaN: missing), ``R`` (n, n_nominal)
    the row each nominal value comes from. Row ``e``'s turn changes ``e`` and its neighbour
    ``e' = neighbours[e]``: where ``coins_c[e]``, a continuous value is drawn around the
    other's with spread ``|e_a - e'_a| / s`` from the standard normals ``z1[e]`` (for
    ``e``) and ``z2[e]`` (for ``e'``), or swapped where either is missing; where
    ``coins_k[e]``, a nominal value is swapped.
    """
    if order is None:
        order, bounds = _batches(neighbours)
    for start, stop in zip(bounds[:-1], bounds[1:]):
        e = order[start:stop]
        other = neighbours[e]
        a, b = C[e], C[other]
        sd = np.abs(a - b) / s
        missing = np.isnan(a) | np.isnan(b)
        draw = coins_c[e] & ~missing
        swap = coins_c[e] & missing
        C[e] = np.where(draw, b + sd * z1[e], np.where(swap, b, a))
        C[other] = np.where(draw, a + sd * z2[e], np.where(swap, a, b))
        ra, rb = R[e], R[other]
        R[e] = np.where(coins_k[e], rb, ra)
        R[other] = np.where(coins_k[e], ra, rb)


def _spread(C):
    """Standard deviation of each column over its present values; 1 where it is 0 or none."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a column with no present value
        spread = np.nanstd(C, axis=0)
    return np.where(np.isfinite(spread) & (spread > 0), spread, 1.0)


def _centre(C):
    """Mean of each column over its present values; 0 where it has none."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = np.nanmean(C, axis=0)
    return np.where(np.isfinite(mean), mean, 0.0)


# -- tables in and out ------------------------------------------------------------------------
class _Table:
    """``X`` split into continuous values ``C`` (float, NaN: missing) and nominal columns,
    and rebuilt as ``X``'s kind from new values and, per nominal column, source rows."""

    def __init__(self, owner, X, categorical_features):
        if sp.issparse(X):
            raise param_error(owner, "X", f"<sparse {type(X).__name__} of shape {X.shape}>",
                              "a dense array or a DataFrame (synthetic rows change single "
                              "entries; convert X with X.toarray())", TypeError)
        self.frame = hasattr(X, "iloc") and hasattr(X, "columns")
        if not self.frame:
            if not hasattr(X, "shape") or not hasattr(X, "dtype"):
                X = np.asarray(X)
            if X.ndim != 2:
                raise param_error(owner, "X", f"<{type(X).__name__} of shape {X.shape}>",
                                  "a 2-d array of rows (n_samples, n_features)")
        elif X.ndim != 2:
            raise param_error(owner, "X", f"<{type(X).__name__}>", "a 2-d table")
        if X.shape[0] < 1:
            raise param_error(owner, "X", f"<{type(X).__name__} with 0 rows>",
                              "at least one row")
        self.X = X
        self.n_rows, n_features = X.shape
        columns = [self._column(j) for j in range(n_features)]
        numeric = np.array([_numeric_kind(col, self.frame) is not None for col in columns],
                           dtype=bool)
        self.nominal = ~numeric | _chosen(owner, categorical_features, X, self.frame)
        self.cont_idx = np.flatnonzero(~self.nominal)
        self.nom_idx = np.flatnonzero(self.nominal)
        self.n_nominal = len(self.nom_idx)
        self.integer = [_numeric_kind(columns[j], self.frame) == "int" for j in self.cont_idx]
        self.C = (np.column_stack([_as_float(columns[j], self.frame) for j in self.cont_idx])
                  if len(self.cont_idx) else np.empty((self.n_rows, 0)))

    def _column(self, j):
        return self.X.iloc[:, j] if self.frame else self.X[:, j]

    def encoded(self):
        """The rows as numbers for the neighbour search (see :class:`Munge`)."""
        C = self.C
        missing = np.isnan(C)
        parts = [np.where(missing, 0.0, (C - _centre(C)) / _spread(C))]
        parts += [missing[:, [j]].astype(float) for j in range(C.shape[1])
                  if missing[:, j].any()]
        width = sum(p.shape[1] for p in parts)
        nominal = []
        for j in self.nom_idx:
            codes = _codes(self._column(j))
            nominal.append(codes)
            width += codes.max() + 1
        if nominal and width > 512:  # many categories: sparse one-hot, brute-force search
            blocks = [sp.csr_matrix(p) for p in parts] + [
                sp.csr_matrix((np.full(self.n_rows, 2 ** -0.5), (np.arange(self.n_rows), c)))
                for c in nominal]
            return sp.hstack(blocks).tocsr()
        parts += [np.eye(c.max() + 1)[c] * 2 ** -0.5 for c in nominal]
        return np.hstack(parts)

    def rebuild(self, C, R):
        """Rows of ``X``'s kind: continuous values ``C``, nominal values from rows ``R``."""
        if self.frame:
            return self._rebuild_frame(C, R)
        X = self.X
        out = np.empty((len(C), X.shape[1]), dtype=X.dtype)
        for k, j in enumerate(self.cont_idx):
            out[:, j] = _from_float(C[:, k], X.dtype if X.dtype.kind != "O" else None,
                                    self.integer[k])
        for k, j in enumerate(self.nom_idx):
            out[:, j] = X[R[:, k], j]
        return out

    def _rebuild_frame(self, C, R):
        import pandas as pd

        X = self.X
        columns = {}
        cont = {j: k for k, j in enumerate(self.cont_idx)}
        nom = {j: k for k, j in enumerate(self.nom_idx)}
        for j in range(X.shape[1]):
            col = X.iloc[:, j]
            if j in nom:
                columns[j] = col.take(R[:, nom[j]]).reset_index(drop=True)
                continue
            k = cont[j]
            values = C[:, k]
            if isinstance(col.dtype, np.dtype):
                columns[j] = pd.Series(_from_float(values, col.dtype, self.integer[k]))
            else:  # a pandas extension dtype (Int64, Float64): NaN back as its NA
                values = np.round(values) if self.integer[k] else values
                columns[j] = pd.Series(values).astype(col.dtype)
        out = pd.concat([columns[j] for j in range(X.shape[1])], axis=1)
        out.columns = X.columns
        return out


def _numeric_kind(col, frame):
    """``"int"`` or ``"float"`` for a column of numbers (not bools), None for anything else."""
    if frame:
        import pandas as pd

        dtype = col.dtype
        if pd.api.types.is_bool_dtype(dtype) or not pd.api.types.is_numeric_dtype(dtype):
            return None
        return "int" if pd.api.types.is_integer_dtype(dtype) else "float"
    kind = col.dtype.kind
    if kind in "iu":
        return "int"
    if kind == "f":
        return "float"
    if kind != "O":
        return None
    present = [v for v in col if not _is_missing(v)]
    if not all(isinstance(v, numbers.Real) and not isinstance(v, (bool, np.bool_))
               for v in present):
        return None
    return "int" if present and all(isinstance(v, numbers.Integral) for v in present) \
        else "float"


def _is_missing(value):
    return value is None or (isinstance(value, float) and value != value) or \
        type(value).__name__ in {"NAType", "NaTType"}


def _as_float(col, frame):
    if frame:
        return col.to_numpy(dtype=np.float64, na_value=np.nan)
    if col.dtype.kind == "O":
        return np.array([np.nan if _is_missing(v) else float(v) for v in col])
    return col.astype(np.float64)


def _from_float(values, dtype, integer):
    """Float values back to ``dtype``; integer columns rounded, within the dtype's range."""
    if integer:
        values = np.round(values)
        if dtype is not None and dtype.kind in "iu":
            info = np.iinfo(dtype)
            return np.clip(values, info.min, info.max).astype(dtype)
        return np.array([np.nan if v != v else int(v) for v in values], dtype=object)
    return values if dtype is None else values.astype(dtype)


def _codes(col):
    """Integer codes of a nominal column; missing values get a code of their own."""
    import pandas as pd

    codes = pd.factorize(pd.Series(np.asarray(col, dtype=object)), use_na_sentinel=True)[0]
    return np.where(codes < 0, codes.max() + 1, codes)


def _chosen(owner, categorical_features, X, frame):
    """Boolean mask of the columns ``categorical_features`` names."""
    n_features = X.shape[1]
    mask = np.zeros(n_features, dtype=bool)
    if categorical_features is None or (isinstance(categorical_features, str)
                                        and categorical_features == "from_dtype"):
        return mask
    chosen = np.asarray(categorical_features)
    if chosen.ndim != 1:
        raise param_error(owner, "categorical_features", categorical_features,
                          "'from_dtype', None, or a 1-d list of column indices, names or a "
                          "boolean mask")
    if chosen.dtype.kind == "b":
        if len(chosen) != n_features:
            raise param_error(owner, "categorical_features", categorical_features,
                              f"a boolean mask of length {n_features} (the columns of X)")
        return chosen.copy()
    if chosen.dtype.kind in "iu":
        if len(chosen) and (chosen.min() < 0 or chosen.max() >= n_features):
            raise param_error(owner, "categorical_features", categorical_features,
                              f"column indices in [0, {n_features - 1}]")
        mask[chosen] = True
        return mask
    if chosen.dtype.kind in "OU" and frame:
        names = list(X.columns)
        unknown = [c for c in chosen.tolist() if c not in names]
        if unknown:
            raise param_error(owner, "categorical_features", categorical_features,
                              f"names of columns of X (not {unknown})")
        mask[[names.index(c) for c in chosen.tolist()]] = True
        return mask
    if len(chosen) == 0:
        return mask
    raise param_error(owner, "categorical_features", categorical_features,
                      "'from_dtype', None, column indices, a boolean mask, or (for a "
                      "DataFrame) column names")


# The names the distillers' ``augment`` parameter accepts, and the class each makes.
_AUGMENTERS = {"munge": Munge, "gaussian": GaussianNoise}

__all__ = ["Munge", "GaussianNoise"]
