"""What the posterior teachers share: prediction from posterior expectations (SGLD, Laplace,
VI), and Monte Carlo over a seeded sample set (the Gaussian posteriors: Laplace, VI).

A teacher using :class:`SampledPosteriorMixin` draws the same ``n_samples`` posterior samples
at every call (sample ``s`` from seed ``_sample_seed + s``), so its predictions are
reproducible and :meth:`iter_samples` hands a distiller exactly the samples its
``predict_proba`` averages over. It names the attribute a fit sets (``_fitted_attribute``)
and provides ``_draws()``, what it needs of the ``n_samples`` draws, made once per
prediction call, and ``_chunk_sample_proba(chunk, draws)``: the ``(n_samples, n, C)``
probabilities of a float32 batch on its device.
"""
import numpy as np
import torch
from sklearn.utils import Bunch
from sklearn.utils.validation import check_is_fitted

from .._meta import is_fitted
from .._validation import check_input, param_error
from ..engine import dense_chunks
from ..expectations import EXPECTATIONS, expected_entropy

#: Rows per forward pass at prediction time.
CHUNK = 4096


def entropy(proba):
    """``-sum_k p_k log p_k`` over the last axis (``0 log 0 = 0``)."""
    return expected_entropy(proba).squeeze(-1)


class PosteriorPredictionMixin:
    """What every sampled-posterior teacher (SGLD, Laplace, VI) predicts the same way, from
    its posterior samples (``_sample_blocks``): the expectations, the uncertainty, the
    predictive and the class."""

    def _resolve_target(self, target):
        if callable(target):
            return target
        if isinstance(target, str) and target in EXPECTATIONS:
            return EXPECTATIONS[target]
        raise param_error(self, "target", target, f"one of {sorted(EXPECTATIONS)} or a callable")

    def _sample_blocks(self, X):
        """The posterior's probabilities on ``X``, block of rows by block of rows: for each
        block, an iterable of ``(b, C)`` float64 CPU tensors, one per posterior sample."""
        raise NotImplementedError

    def predict_expectation(self, X, target="predictive"):
        """Monte Carlo posterior expectation ``mean_s g(p(y|x, theta_s))``.

        The mean runs over the teacher's posterior samples (SGLD's kept samples, the Laplace
        or VI draws).

        Parameters
        ----------
        X : array-like or sparse matrix
        target : {"predictive", "entropy", "variance"} or callable, default="predictive"
            ``"predictive"``: class probabilities ``(n, C)``; ``"entropy"``: expected entropy
            of ``p(y|x, theta)`` ``(n,)`` (aleatoric uncertainty); ``"variance"``:
            ``p (1 - p)`` per class ``(n, C)``; a callable maps a ``(n, C)`` torch tensor of
            probabilities to ``(n,)`` or ``(n, k)``.

        Returns
        -------
        expectation : ndarray of shape (n,) or (n, k)
        """
        g = self._resolve_target(target)
        parts = []
        for samples in self._sample_blocks(X):
            total, count = None, 0
            for proba in samples:
                value = torch.as_tensor(g(proba), dtype=torch.float64)
                total, count = (value if total is None else total + value), count + 1
            parts.append(total / count)
        out = torch.cat(parts).numpy()
        return out[:, 0] if isinstance(target, str) and target == "entropy" else out

    def predict_uncertainty(self, X):
        """Total, aleatoric and epistemic uncertainty of the posterior, by Monte Carlo.

        ``total`` is the entropy of the predictive ``mean_s p_s``, ``aleatoric`` the expected
        entropy ``mean_s H(p_s)`` and ``epistemic = total - aleatoric`` (the mutual
        information between the label and the parameters, BALD), all over the same
        posterior samples. The mutual information is non-negative (Jensen); a rounding
        below 0 is set to 0, and ``total`` is rebuilt from its parts, so that
        ``total == aleatoric + epistemic`` holds exactly.

        Returns
        -------
        uncertainty : Bunch
            ``total``, ``aleatoric``, ``epistemic``: arrays of shape (n,).
        """
        total, aleatoric = [], []
        for samples in self._sample_blocks(X):
            mean, mean_entropy, count = None, None, 0
            for proba in samples:
                h = entropy(proba)
                mean = proba if mean is None else mean + proba
                mean_entropy = h if mean_entropy is None else mean_entropy + h
                count += 1
            total.append(entropy(mean / count))
            aleatoric.append(mean_entropy / count)
        total, aleatoric = torch.cat(total).numpy(), torch.cat(aleatoric).numpy()
        epistemic = np.maximum(total - aleatoric, 0.0)
        return Bunch(total=aleatoric + epistemic, aleatoric=aleatoric, epistemic=epistemic)

    def predict_proba(self, X):
        """Posterior predictive probabilities: the mean over the posterior samples.

        Columns in ``classes_`` order; float64 rows that sum to one to float64 rounding (each
        sample's softmax is taken in float64).
        """
        return self.predict_expectation(X, "predictive")

    def predict(self, X):
        """Class with the highest posterior predictive probability."""
        check_is_fitted(self)
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.non_deterministic = False
        tags.input_tags.sparse = True
        return tags


class SampledPosteriorMixin(PosteriorPredictionMixin):
    """Posterior predictive, expectations, uncertainty and the sample stream of a teacher
    whose posterior is sampled on demand from a fixed seed."""

    def _row_shape(self):
        return None

    def _generator(self, s):
        """The CPU generator of draw ``s``: its own seed, so draw ``s`` is the same whichever
        draws are asked for."""
        return torch.Generator().manual_seed((self._sample_seed + s) % 2**63)

    def _check_predict_X(self, X):
        check_is_fitted(self, self._fitted_attribute)
        return check_input(self, X, reset=False, allow_nd=True, dtype=("float32", "float64"),
                           accept_sparse="csr")

    def _iter_chunks(self, X):
        """``(n_samples, b, C)`` float64 CPU probabilities, chunk by chunk of ``X``."""
        X = self._check_predict_X(X)
        device = torch.device(self.device)
        with torch.no_grad():
            draws = self._draws()
        empty = True
        for chunk in dense_chunks(X, CHUNK, self._row_shape()):
            empty = False
            with torch.no_grad():
                proba = self._chunk_sample_proba(chunk.to(device), draws).cpu().double()
            # outside the no_grad block: a consumer that stops here keeps its grad mode
            yield proba
        if empty:
            yield torch.empty(self.n_samples, 0, len(self.classes_), dtype=torch.float64)

    def sample_proba(self, X):
        """Class probabilities under each of the ``n_samples`` posterior samples.

        Returns
        -------
        proba : ndarray of shape (n_samples, n, n_classes)
        """
        return torch.cat(list(self._iter_chunks(X)), dim=1).numpy()

    def _sample_blocks(self, X):
        return self._iter_chunks(X)  # a (n_samples, b, C) tensor iterates over the samples

    def iter_samples(self, X, y, sample_weight=None):
        """The ``n_samples`` posterior samples, as callables (the teacher protocol).

        Fits the teacher on ``X, y`` first unless it is fitted already; a fitted teacher
        yields its samples without refitting, the same ones at every call (those its
        :meth:`predict_proba` averages over), so a distiller cycles a fixed sample set.

        Yields
        ------
        sample : callable
            Maps a float32 tensor batch of rows (shaped as ``X``'s) to its ``(n, n_classes)``
            class probabilities, a tensor on the teacher's ``device``.
        """
        if not is_fitted(self):
            self.fit(X, y, sample_weight=sample_weight)
        for s in range(self.n_samples):
            yield self._sample(s)
