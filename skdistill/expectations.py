"""Posterior expectation functions g(p) and the online estimators U_s and U_o of GPED.

A posterior expectation is ``E_{p(theta|D)}[g(p(y|x, theta))]``. The functions take a
``(n, C)`` tensor of class probabilities from one posterior sample and return ``(n, k)``; the
estimators fold one sample's values into per-example estimates (Vadera et al., section 3.2).
"""
import torch

__all__ = ["predictive", "expected_entropy", "variance", "EXPECTATIONS", "output_size",
           "decompose_uncertainty", "StochasticEstimator", "OnlineMeanEstimator", "ESTIMATORS"]


def predictive(proba):
    """``g(p) = p``: its expectation is the posterior predictive distribution."""
    return proba


def expected_entropy(proba):
    """``g(p) = -sum_k p_k log p_k``: its expectation is the aleatoric (expected) entropy, (n, 1)."""
    return -torch.special.xlogy(proba, proba).sum(dim=-1, keepdim=True)


def variance(proba):
    """``g(p) = p (1 - p)`` per class: the Bernoulli variance of each class indicator, (n, C)."""
    return proba * (1.0 - proba)


#: expectation name -> g; the names accepted by ``target`` and ``predict_expectation``.
EXPECTATIONS = {"predictive": predictive, "entropy": expected_entropy, "variance": variance}


def output_size(g, n_classes):
    """Number of values ``g`` returns per example (probes it on a uniform distribution)."""
    probe = torch.full((1, n_classes), 1.0 / n_classes)
    out = torch.as_tensor(g(probe))
    return 1 if out.dim() == 1 else int(out.reshape(1, -1).shape[1])


def decompose_uncertainty(predictive_logits, expected_entropy):
    """Total, aleatoric and epistemic uncertainty from a predictive and an expected entropy.

    ``total`` is the entropy of the predictive distribution ``softmax(predictive_logits)``,
    ``aleatoric`` the expected entropy (capped at ``total``: the expected entropy of a posterior
    never exceeds the entropy of its predictive, but two estimates of them may), and
    ``epistemic = total - aleatoric``, the mutual information (BALD). ``total`` is rebuilt as
    ``aleatoric + epistemic``, so that the identity holds without rounding error.
    :meth:`GPEDDistiller.predict_uncertainty <skdistill.GPEDDistiller.predict_uncertainty>`
    and its ONNX export compute their outputs with it.

    Parameters
    ----------
    predictive_logits : torch.Tensor of shape (n, C)
        Logits of the predictive distribution.
    expected_entropy : torch.Tensor of shape (n,)
        The expected entropy (aleatoric uncertainty) of each row.

    Returns
    -------
    total, aleatoric, epistemic : torch.Tensor of shape (n,)
        The uncertainty and its two parts, in nats.

    Examples
    --------
    >>> import torch
    >>> from skdistill.expectations import decompose_uncertainty
    >>> total, aleatoric, epistemic = decompose_uncertainty(torch.zeros(1, 2),
    ...                                                     torch.tensor([0.5]))
    >>> round(total.item(), 4), aleatoric.item(), round(epistemic.item(), 4)  # log 2 = 0.6931
    (0.6931, 0.5, 0.1931)
    """
    log_p = torch.log_softmax(predictive_logits, 1)
    entropy = -(log_p.exp() * log_p).sum(1)
    aleatoric = torch.minimum(expected_entropy, entropy)
    epistemic = entropy - aleatoric
    # rebuilt from its parts, so that the identity has no rounding error
    return aleatoric + epistemic, aleatoric, epistemic


class StochasticEstimator:
    """U_s: the estimate is the current sample's value alone; no per-example state.

    Examples
    --------
    >>> import torch
    >>> from skdistill.expectations import StochasticEstimator
    >>> u = StochasticEstimator(n_examples=3, n_outputs=1)
    >>> u.update(torch.tensor([0, 2]), torch.tensor([[1.0], [2.0]])).tolist()
    [[1.0], [2.0]]
    >>> u.nbytes
    0
    """

    def __init__(self, n_examples, n_outputs):
        self.n_examples = n_examples
        self.n_outputs = n_outputs

    def update(self, index, values):
        """Return the estimates for rows ``index`` after seeing ``values`` (n_index, n_outputs)."""
        return values

    def to(self, device):
        """Keep the state on ``device`` (there is none: nothing moves); returns self."""
        return self

    @property
    def nbytes(self):
        return 0


class OnlineMeanEstimator:
    """U_o: per-example running mean of ``g`` over the posterior samples seen for that example.

    Keeps a float32 ``(n_examples, n_outputs)`` table of means and an int32 count per example:
    ``4 * n_examples * (n_outputs + 1)`` bytes.

    Examples
    --------
    >>> import torch
    >>> from skdistill.expectations import OnlineMeanEstimator
    >>> u = OnlineMeanEstimator(n_examples=2, n_outputs=1)
    >>> _ = u.update(torch.tensor([0]), torch.tensor([[1.0]]))
    >>> u.update(torch.tensor([0, 1]), torch.tensor([[3.0], [5.0]])).tolist()
    [[2.0], [5.0]]
    >>> u.nbytes
    16
    """

    def __init__(self, n_examples, n_outputs):
        self.mean = torch.zeros(n_examples, n_outputs, dtype=torch.float32)
        self.count = torch.zeros(n_examples, dtype=torch.int32)

    def update(self, index, values):
        """Fold ``values`` into the means of rows ``index`` (distinct); return the new means."""
        self.count[index] += 1
        mean = self.mean[index]
        mean += (values.to(mean.dtype) - mean) / self.count[index].unsqueeze(1)
        self.mean[index] = mean
        return mean

    def to(self, device):
        """Move the means and counts to the torch ``device``; returns self.

        ``device`` is where ``update``'s ``index`` and ``values`` are, so that no update moves
        the state.
        """
        self.mean, self.count = self.mean.to(device), self.count.to(device)
        return self

    @property
    def nbytes(self):
        return self.mean.nbytes + self.count.nbytes


#: estimator name -> class, as accepted by ``GPEDDistiller(estimator=...)``.
ESTIMATORS = {"stochastic": StochasticEstimator, "online": OnlineMeanEstimator}
