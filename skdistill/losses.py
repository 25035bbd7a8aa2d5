"""Loss functions over tensors: soft-target cross-entropy and Hinton's distillation loss.

Every loss here takes ``(logits, target)`` tensors and returns a scalar, so it can be used as a
skorch ``criterion`` and knows nothing about estimators, teachers or data.
"""
import numpy as np
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


# -- Dao et al. (2021): gamma loss correction, squared-error losses ---------------------------

#: Floor on teacher probabilities before taking logs on the log scale (Dao et al. use 1/500).
LOG_PROBA_FLOOR = 1.0 / 500


def gamma_correction(y_onehot, proba, alpha, scale="p", floor=LOG_PROBA_FLOOR):
    """Per example and class correction weight ``gamma`` of Dao et al. (2021).

    ``gamma = argmin_g g^2 (y - p)^2 + alpha (g0 - g)^2 = alpha g0 / (alpha + (y - p)^2)``
    with ``g0 = 1`` on the probability scale (``scale="p"``) and ``g0 = 1 / p`` on the log scale
    (``scale="logp"``, ``p`` clipped below at ``floor``). ``alpha = 0`` gives ``gamma = 0``
    (no correction, plain distillation) and ``alpha = inf`` gives ``gamma = g0`` (the
    Neyman-orthogonal loss). Works on numpy arrays and torch tensors of the same shape.

    >>> import numpy as np
    >>> y, p = np.array([[0.0, 1.0]]), np.array([[0.2, 0.8]])
    >>> gamma_correction(y, p, 0.04)  # 0.04 / (0.04 + 0.2 ** 2)
    array([[0.5, 0.5]])
    >>> gamma_correction(y, p, np.inf, scale="logp")  # 1 / p
    array([[5.  , 1.25]])
    """
    if scale not in ("p", "logp"):
        raise ValueError(f"gamma_correction: parameter scale={scale!r} is invalid; "
                         "expected 'p' or 'logp'.")
    if not alpha >= 0:  # also rejects NaN
        raise ValueError(f"gamma_correction: parameter alpha={alpha!r} is invalid; "
                         "expected a number >= 0 or inf.")
    lib = torch if torch.is_tensor(proba) else np
    g0 = 1.0 if scale == "p" else 1.0 / lib.clip(proba, floor, None)
    if alpha == 0:
        return lib.zeros_like(proba) * g0
    if alpha == float("inf"):
        return lib.ones_like(proba) * g0
    return alpha * g0 / (alpha + (y_onehot - proba) ** 2)


def corrected_targets(y_onehot, proba, alpha, scale="p", floor=LOG_PROBA_FLOOR):
    """Gamma-corrected distillation targets of Dao et al. (2021).

    Probability scale: ``p + gamma * (y - p)``; log scale: ``log max(p, floor) + gamma * (y - p)``
    with ``gamma`` from :func:`gamma_correction`. ``y_onehot`` and ``proba`` have shape
    ``(n, C)``. On the probability scale the targets lie between ``p`` and ``y`` (``gamma`` is
    in [0, 1]); rows need not sum to one.

    >>> import numpy as np
    >>> y, p = np.array([[0.0, 1.0]]), np.array([[0.2, 0.8]])
    >>> corrected_targets(y, p, 0.04)  # halfway from p to y
    array([[0.1, 0.9]])
    >>> np.round(corrected_targets(y, p, np.inf, scale="logp"), 4)  # log p + y / p - 1
    array([[-2.6094,  0.0269]])
    """
    gamma = gamma_correction(y_onehot, proba, alpha, scale, floor)
    lib = torch if torch.is_tensor(proba) else np
    base = proba if scale == "p" else lib.log(lib.clip(proba, floor, None))
    return base + gamma * (y_onehot - proba)


def squared_error_logits(logits, target):
    """Squared error between logits and log-probability targets (Ba & Caruana, 2014).

    ``mean_i sum_k (z_ik - t_ik)^2 / 2``: the student's logits regress the teacher's (corrected)
    log-probabilities.

    >>> round(squared_error_logits(torch.zeros(1, 2), torch.tensor([[1.0, -1.0]])).item(), 4)
    1.0
    """
    return 0.5 * ((logits - target) ** 2).sum(dim=-1).mean()


def squared_error_proba(logits, target):
    """Squared error between ``softmax(z)`` and probability targets, ``mean_i sum_k (.)^2``.

    >>> round(squared_error_proba(torch.zeros(1, 2), torch.tensor([[1.0, 0.0]])).item(), 4)
    0.5
    """
    return ((torch.softmax(logits, dim=-1) - target) ** 2).sum(dim=-1).mean()


class SquaredErrorLogits(nn.Module):
    """Criterion for :func:`squared_error_logits`."""

    def forward(self, logits, target):
        return squared_error_logits(logits, target)


class SquaredErrorProba(nn.Module):
    """Criterion for :func:`squared_error_proba`."""

    def forward(self, logits, target):
        return squared_error_proba(logits, target)
