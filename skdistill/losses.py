"""Loss functions over tensors: soft-target cross-entropy and Hinton's distillation loss.

Every loss here takes ``(logits, target)`` tensors and returns a scalar, so it can be used as a
skorch ``criterion`` and knows nothing about estimators, teachers or data.
"""
import torch
import torch.nn.functional as F
from torch import nn


def soft_cross_entropy(logits, target, temperature=1.0):
    """Cross-entropy ``-sum_k q_k log softmax(z / T)_k`` averaged over the batch.

    ``target`` holds probabilities ``q`` of shape ``(n, C)``; integer class indices of shape
    ``(n,)`` are also accepted (ordinary cross-entropy).

    >>> z = torch.tensor([[0.0, 0.0]])
    >>> round(soft_cross_entropy(z, torch.tensor([[0.3, 0.7]])).item(), 4)  # log 2
    0.6931
    """
    log_p = F.log_softmax(logits / temperature, dim=-1)
    if target.dtype in (torch.int64, torch.int32):
        return F.nll_loss(log_p, target.long())
    return -(target * log_p).sum(dim=-1).mean()


class SoftTargetCrossEntropy(nn.Module):
    """Module form of :func:`soft_cross_entropy` (a skorch ``criterion``)."""

    def __init__(self, temperature=1.0):
        super().__init__()
        self.temperature = temperature

    def forward(self, logits, target):
        return soft_cross_entropy(logits, target, self.temperature)


def distillation_loss(logits, labels, teacher_proba_t, temperature=1.0, alpha=1.0):
    """Hinton et al. (2015): ``(1 - alpha) CE(y, z) + alpha T^2 CE(q_T, z / T)``.

    ``teacher_proba_t`` are the teacher's probabilities already softened at temperature ``T``
    (``softmax(log p / T)``); the ``T^2`` factor keeps the soft term's gradients on the same
    scale as the hard term's when ``T`` changes.

    >>> z = torch.zeros(1, 2)
    >>> loss = distillation_loss(z, torch.tensor([0]), torch.tensor([[0.5, 0.5]]), 2.0, 0.5)
    >>> round(loss.item(), 4)  # 0.5 * log 2 + 0.5 * 4 * log 2
    1.7329
    """
    soft = soft_cross_entropy(logits, teacher_proba_t, temperature) * temperature**2
    if alpha == 1.0:
        return soft
    return (1.0 - alpha) * soft_cross_entropy(logits, labels) + alpha * soft


class DistillationLoss(nn.Module):
    """Criterion for :func:`distillation_loss`; the target packs ``[label, q_T...]`` per row."""

    def __init__(self, temperature=1.0, alpha=1.0):
        super().__init__()
        self.temperature = temperature
        self.alpha = alpha

    def forward(self, logits, target):
        labels = target[:, 0].long()
        return distillation_loss(logits, labels, target[:, 1:], self.temperature, self.alpha)


def soften(proba, temperature):
    """``softmax(log p / T)`` for a numpy or torch probability array (rows sum to 1)."""
    if temperature == 1.0:
        return proba
    is_tensor = torch.is_tensor(proba)
    p = proba if is_tensor else torch.as_tensor(proba, dtype=torch.float64)
    out = torch.softmax(torch.log(p.clamp_min(1e-12)) / temperature, dim=-1)
    return out if is_tensor else out.numpy()
