"""Loss functions over tensors: soft-target cross-entropy and Hinton's distillation loss.

Every loss here takes ``(logits, target)`` tensors and returns a scalar, so it can be used as a
skorch ``criterion`` and knows nothing about estimators, teachers or data.
"""
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


def _reduce(per_row, reduction):
    """``"mean"`` over the batch, or ``"none"``: one loss per row (the engine's convention)."""
    if reduction == "none":
        return per_row
    if reduction == "mean":
        return per_row.mean()
    raise ValueError(f"reduction={reduction!r} is invalid; expected 'mean' or 'none'.")


def soft_cross_entropy(logits, target, temperature=1.0, reduction="mean"):
    """Cross-entropy ``-sum_k q_k log softmax(z / T)_k`` averaged over the batch.

    ``target`` holds probabilities ``q`` of shape ``(n, C)``; integer class indices of shape
    ``(n,)`` are also accepted (ordinary cross-entropy). ``reduction="none"`` returns one
    loss per row.

    >>> z = torch.tensor([[0.0, 0.0]])
    >>> round(soft_cross_entropy(z, torch.tensor([[0.3, 0.7]])).item(), 4)  # log 2
    0.6931
    """
    log_p = F.log_softmax(logits if temperature == 1 else logits / temperature, dim=-1)
    if target.dtype in (torch.int64, torch.int32):
        return F.nll_loss(log_p, target.long(), reduction=reduction)
    return _reduce(-(target * log_p).sum(dim=-1), reduction)


class SoftTargetCrossEntropy(nn.Module):
    """Module form of :func:`soft_cross_entropy` (a skorch ``criterion``).

    ``reduction="none"`` gives one loss per row, as the training engine expects.
    """

    def __init__(self, temperature=1.0, reduction="mean"):
        super().__init__()
        self.temperature = temperature
        self.reduction = reduction

    def forward(self, logits, target):
        return soft_cross_entropy(logits, target, self.temperature, self.reduction)


def distillation_loss(logits, labels, teacher_proba_t, temperature=1.0, alpha=1.0,
                      reduction="mean"):
    """Hinton et al. (2015): ``(1 - alpha) CE(y, z) + alpha T^2 CE(q_T, z / T)``.

    ``teacher_proba_t`` are the teacher's probabilities already softened at temperature ``T``
    (``softmax(log p / T)``); the ``T^2`` factor keeps the soft term's gradients on the same
    scale as the hard term's when ``T`` changes. A label of ``-1`` marks a row without one
    (an unlabeled transfer row): its loss is the teacher term ``T^2 CE(q_T, z / T)`` alone,
    whatever ``alpha``.

    >>> z = torch.zeros(1, 2)
    >>> loss = distillation_loss(z, torch.tensor([0]), torch.tensor([[0.5, 0.5]]), 2.0, 0.5)
    >>> round(loss.item(), 4)  # 0.5 * log 2 + 0.5 * 4 * log 2
    1.7329
    """
    if alpha == 1.0:
        return soft_cross_entropy(logits, teacher_proba_t, temperature, reduction) * temperature**2
    unlabeled = labels < 0
    # with unlabeled rows, per-row losses are mixed first and reduced after
    mixed = bool(unlabeled.any())
    rows = "none" if mixed else reduction
    soft = soft_cross_entropy(logits, teacher_proba_t, temperature, rows) * temperature**2
    hard = soft_cross_entropy(logits, labels.clamp_min(0) if mixed else labels, reduction=rows)
    loss = (1.0 - alpha) * hard + alpha * soft
    return _reduce(torch.where(unlabeled, soft, loss), reduction) if mixed else loss


class DistillationLoss(nn.Module):
    """Criterion for :func:`distillation_loss`; the target packs ``[label, q_T...]`` per row.

    A label of ``-1`` marks a row without one (an unlabeled transfer row): its loss is the
    teacher term ``T^2 CE(q_T, z / T)`` alone, whatever ``alpha`` (see
    :func:`distillation_loss`).

    >>> z = torch.tensor([[2.0, 0.0], [2.0, 0.0]])
    >>> target = torch.tensor([[1.0, 0.5, 0.5], [-1.0, 0.5, 0.5]])  # label 1; no label
    >>> loss = DistillationLoss(alpha=0.5, reduction="none")(z, target)
    >>> [round(v, 4) for v in loss.tolist()]  # (2.1269 + 1.1269) / 2; 1.1269 alone
    [1.6269, 1.1269]
    """

    def __init__(self, temperature=1.0, alpha=1.0, reduction="mean"):
        super().__init__()
        self.temperature = temperature
        self.alpha = alpha
        self.reduction = reduction

    def forward(self, logits, target):
        labels = target[:, 0].long()
        return distillation_loss(logits, labels, target[:, 1:], self.temperature, self.alpha,
                                 self.reduction)


# -- Zhao et al. (2022): decoupled knowledge distillation ------------------------------------

def _masked_logsumexp(log_p, target_mask):
    """``log sum_{j != t} exp(log_p_j)`` per row: the log of the non-target mass."""
    return torch.logsumexp(log_p.masked_fill(target_mask, float("-inf")), dim=-1)


def dkd_terms(logits, labels, teacher_proba_t, temperature=1.0):
    """Per-row TCKD and NCKD of decoupled KD (Zhao et al. 2022), both times ``T^2``.

    With ``t`` the target class, ``q = teacher_proba_t`` the teacher's probabilities at
    temperature ``T`` (``softmax(log p / T)``, the teacher's logits over ``T`` up to a
    constant) and ``s = softmax(z / T)`` the student's:

    - TCKD is ``KL(b^q || b^s)`` between the binary (target, non-target) distributions
      ``b = (x_t, 1 - x_t)``;
    - NCKD is ``KL(q^ || s^)`` between the distributions over the non-target classes,
      renormalised: ``x^_j = x_j / (1 - x_t)`` for ``j != t``.

    They decompose the KD term: ``KL(q || s) = TCKD + (1 - q_t) NCKD`` (Zhao et al.'s eq. 1).
    Everything is computed from log-probabilities, so a teacher sure of the target
    (``q_t`` near 1) gives finite terms. At least three classes are needed: with two, the
    non-target distribution has one class and NCKD is always 0.

    Parameters
    ----------
    logits : torch.Tensor of shape (n, C)
        The student's logits ``z``.
    labels : torch.Tensor of shape (n,)
        The target class of each row (integers in ``[0, C)``).
    teacher_proba_t : torch.Tensor of shape (n, C)
        The teacher's probabilities softened at ``T``.
    temperature : float, default=1.0
        The temperature ``T``.

    Returns
    -------
    tckd, nckd : torch.Tensor of shape (n,)
        The two terms per row, each multiplied by ``T^2``.

    Examples
    --------
    >>> z = torch.tensor([[1.0, 0.0, -1.0]])
    >>> q = torch.tensor([[0.7, 0.2, 0.1]])
    >>> tckd, nckd = dkd_terms(z, torch.tensor([0]), q)
    >>> kl = (q * (q.log() - torch.log_softmax(z, -1))).sum()
    >>> round(kl.item(), 4) == round((tckd + (1 - 0.7) * nckd).item(), 4)
    True
    """
    t = labels.long().reshape(-1, 1)
    mask = torch.zeros_like(logits, dtype=torch.bool).scatter_(1, t, True)
    log_s = F.log_softmax(logits if temperature == 1 else logits / temperature, dim=-1)
    log_q = torch.log(teacher_proba_t.to(log_s.dtype).clamp_min(1e-12))
    log_q = log_q - torch.logsumexp(log_q, dim=-1, keepdim=True)  # rows sum to 1 again
    log_s_t, log_q_t = log_s.gather(1, t)[:, 0], log_q.gather(1, t)[:, 0]
    log_s_nt, log_q_nt = _masked_logsumexp(log_s, mask), _masked_logsumexp(log_q, mask)
    tckd = (log_q_t.exp() * (log_q_t - log_s_t)
            + log_q_nt.exp() * (log_q_nt - log_s_nt))
    log_q_hat = log_q - log_q_nt[:, None]
    log_s_hat = log_s - log_s_nt[:, None]
    nckd = torch.where(mask, 0.0, log_q_hat.exp() * (log_q_hat - log_s_hat)).sum(dim=-1)
    return tckd * temperature**2, nckd * temperature**2


def dkd_loss(logits, labels, teacher_proba_t, temperature=1.0, alpha=1.0, beta=8.0,
             reduction="mean"):
    """Decoupled KD (Zhao et al. 2022): ``alpha * TCKD + beta * NCKD`` at temperature ``T``.

    See :func:`dkd_terms` for the two terms (both times ``T^2``); ``alpha`` weighs the
    target-class term and ``beta`` the non-target one. Zhao et al.'s defaults are
    ``alpha=1, beta=8, T=4``, added to the labels' cross-entropy. ``alpha = beta = 1`` is
    KD's ``T^2 KL`` with the non-target term no longer scaled down by ``1 - q_t``.

    Parameters
    ----------
    logits : torch.Tensor of shape (n, C)
        The student's logits.
    labels : torch.Tensor of shape (n,)
        The target class of each row.
    teacher_proba_t : torch.Tensor of shape (n, C)
        The teacher's probabilities softened at ``T`` (``softmax(log p / T)``).
    temperature : float, default=1.0
        The temperature ``T``.
    alpha : float, default=1.0
        Weight of TCKD.
    beta : float, default=8.0
        Weight of NCKD.
    reduction : {"mean", "none"}, default="mean"
        Average over the rows, or one loss per row.

    Returns
    -------
    torch.Tensor
        The loss: a scalar, or of shape ``(n,)`` with ``reduction="none"``.

    Examples
    --------
    >>> z = torch.tensor([[1.0, 0.0, -1.0]])
    >>> q = torch.tensor([[0.7, 0.2, 0.1]])
    >>> round(dkd_loss(z, torch.tensor([0]), q, alpha=1.0, beta=0.0).item(), 4)  # TCKD
    0.0028
    """
    tckd, nckd = dkd_terms(logits, labels, teacher_proba_t, temperature)
    return _reduce(alpha * tckd + beta * nckd, reduction)


class DKDLoss(nn.Module):
    """Criterion of ``KnowledgeDistiller(loss="dkd")``; the target packs ``[label, q_T...]``.

    Per row, ``(1 - alpha) CE(y, z) + alpha (dkd_alpha TCKD + dkd_beta NCKD)``, the DKD terms
    (:func:`dkd_terms`) taken with the label as the target class. A label of ``-1`` marks a
    row without one (an unlabeled transfer row): its target class is the teacher's most
    probable one and its loss is the DKD term alone, whatever ``alpha``.

    Parameters
    ----------
    temperature : float, default=1.0
        The temperature ``T`` at which ``q_T`` was softened.
    alpha : float, default=1.0
        Weight of the DKD term against the labels' cross-entropy.
    dkd_alpha : float, default=1.0
        Weight of TCKD.
    dkd_beta : float, default=8.0
        Weight of NCKD.
    reduction : {"mean", "none"}, default="mean"
        Average over the rows, or one loss per row.

    Examples
    --------
    >>> z = torch.tensor([[2.0, 0.0, 0.0], [2.0, 0.0, 0.0]])
    >>> target = torch.tensor([[1.0, 0.5, 0.3, 0.2], [-1.0, 0.5, 0.3, 0.2]])
    >>> DKDLoss(alpha=0.5, reduction="none")(z, target).shape
    torch.Size([2])
    """

    def __init__(self, temperature=1.0, alpha=1.0, dkd_alpha=1.0, dkd_beta=8.0,
                 reduction="mean"):
        super().__init__()
        self.temperature = temperature
        self.alpha = alpha
        self.dkd_alpha = dkd_alpha
        self.dkd_beta = dkd_beta
        self.reduction = reduction

    def forward(self, logits, target):
        labels = target[:, 0].long()
        teacher = target[:, 1:]
        unlabeled = labels < 0
        classes = torch.where(unlabeled, teacher.argmax(dim=-1), labels)
        loss = dkd_loss(logits, classes, teacher, self.temperature, self.dkd_alpha,
                        self.dkd_beta, reduction="none")
        if self.alpha != 1.0:
            hard = F.cross_entropy(logits, classes, reduction="none")
            loss = torch.where(unlabeled, loss, (1.0 - self.alpha) * hard + self.alpha * loss)
        return _reduce(loss, self.reduction)


# -- Menon et al. (2021): distilled bipartite ranking ---------------------------------------

#: The surrogates of ``1[u < 0]`` (``u`` a score margin) that :func:`distilled_pairwise_loss`
#: takes, by name.
PAIRWISE_SURROGATES = {
    "logistic": lambda u: F.softplus(-u),  # log(1 + e^-u)
    "hinge": lambda u: F.relu(1.0 - u),  # max(0, 1 - u)
}


def _pairs(n, n_pairs, device):
    """Row numbers ``(i, j)`` of ordered pairs ``i != j`` of a batch of ``n`` rows: all of
    them (``n_pairs=None``), or ``n_pairs`` drawn uniformly with replacement (torch's RNG)."""
    if n_pairs is None:
        i, j = torch.meshgrid(torch.arange(n, device=device), torch.arange(n, device=device),
                              indexing="ij")
        keep = i != j
        return i[keep], j[keep]
    i = torch.randint(n, (n_pairs,), device=device)
    j = (i + torch.randint(1, n, (n_pairs,), device=device)) % n
    return i, j


def _ratio(weights, losses):
    """``sum(weights * losses) / sum(weights)``, 0 where the weights sum to 0 (a batch
    without such pairs), with a graph to ``losses`` either way."""
    total = weights.sum()
    return (torch.where(weights > 0, weights * losses, torch.zeros_like(losses)).sum()
            / total.clamp_min(torch.finfo(total.dtype).tiny))


def distilled_pairwise_loss(scores, teacher_pos, labels, weight=None, alpha=1.0,
                            loss="logistic", n_pairs=None):
    """Menon et al. (2021)'s distilled bipartite ranking risk of one batch of scores.

    Over ordered pairs ``(i, j)``, ``i != j``, of the batch's rows, with ``l`` the surrogate
    ``loss`` of ``1[s_i < s_j]`` applied to the margin ``s_i - s_j``:

    - the distilled term weighs every pair by the teacher's belief that ``i`` is positive and
      ``j`` negative, ``W_ij = w_i w_j p_i (1 - p_j)``, and is ``sum W_ij l / sum W_ij``;
    - the labelled term takes the pairs of a labelled positive ``i`` and a labelled negative
      ``j``, weighted ``w_i w_j``: ``sum w_i w_j l / sum w_i w_j`` (the empirical pairwise
      risk);

    and the loss is ``alpha * distilled + (1 - alpha) * labelled``. A label of ``-1`` marks a
    row without one: it takes part in the distilled term only. A term whose pair weights sum
    to 0 in the batch is 0. With ``p`` the 0/1 labels and ``alpha=1`` the distilled term is
    the labelled one.

    Parameters
    ----------
    scores : torch.Tensor of shape (B,)
        The ranking scores ``s``.
    teacher_pos : torch.Tensor of shape (B,)
        The teacher's probability ``p`` that each row is positive.
    labels : torch.Tensor of shape (B,)
        1 (positive), 0 (negative) or -1 (no label).
    weight : torch.Tensor of shape (B,), default=None
        Row weights ``w``; None means ones.
    alpha : float, default=1.0
        Weight of the distilled term; ``1 - alpha`` weighs the labelled one.
    loss : {"logistic", "hinge"}, default="logistic"
        ``log(1 + e^-u)`` or ``max(0, 1 - u)``.
    n_pairs : int, default=None
        None takes all ``B (B - 1)`` ordered pairs; an int that many pairs, drawn uniformly
        with replacement by torch's random number generator (a cost per batch independent
        of ``B``).

    Returns
    -------
    loss : torch.Tensor
        A 0-d tensor.

    Examples
    --------
    >>> s = torch.tensor([2.0, 0.0])
    >>> p = torch.tensor([0.9, 0.2])
    >>> y = torch.tensor([1, 0])
    >>> # pairs (0, 1): weight 0.9 * 0.8, margin 2; (1, 0): weight 0.2 * 0.1, margin -2
    >>> round(distilled_pairwise_loss(s, p, y).item(), 4)  # (0.72 * 0.1269 + 0.02 * 2.1269) / 0.74
    0.181
    >>> round(distilled_pairwise_loss(s, y.float(), y).item(), 4)  # log(1 + e^-2)
    0.1269
    """
    surrogate = PAIRWISE_SURROGATES[loss]
    n = scores.shape[0]
    if n < 2:
        return scores.sum() * 0.0
    i, j = _pairs(n, n_pairs, scores.device)
    margin = surrogate(scores[i] - scores[j])
    w = torch.ones_like(scores) if weight is None else weight.to(scores.dtype)
    pair_w = w[i] * w[j]
    out = 0.0
    if alpha > 0:
        out = alpha * _ratio(pair_w * teacher_pos[i] * (1.0 - teacher_pos[j]), margin)
    if alpha < 1:
        labelled = (labels[i] == 1) & (labels[j] == 0)
        out = out + (1.0 - alpha) * _ratio(torch.where(labelled, pair_w,
                                                       torch.zeros_like(pair_w)), margin)
    return out


class DistilledPairwiseLoss(nn.Module):
    """Criterion for :func:`distilled_pairwise_loss`.

    The target packs ``[label, p, w]`` per row, the outputs are the scores, shaped ``(B,)`` or
    ``(B, 1)``.

    One loss per batch (a 0-d tensor): the row weights ``w`` are in the target, as pairs are
    weighted by the product of their rows' weights.

    Parameters
    ----------
    alpha : float, default=1.0
        Weight of the distilled term.
    loss : {"logistic", "hinge"}, default="logistic"
        The surrogate.
    n_pairs : int, default=None
        Pairs per batch; None: all of them.

    Examples
    --------
    >>> scores = torch.tensor([[2.0], [0.0]])
    >>> target = torch.tensor([[1.0, 1.0, 1.0], [0.0, 0.0, 1.0]])  # [label, p, weight]
    >>> round(DistilledPairwiseLoss()(scores, target).item(), 4)  # log(1 + e^-2)
    0.1269
    """

    def __init__(self, alpha=1.0, loss="logistic", n_pairs=None):
        super().__init__()
        self.alpha = alpha
        self.loss = loss
        self.n_pairs = n_pairs

    def forward(self, scores, target):
        scores = scores.reshape(scores.shape[0], -1)[:, 0]
        return distilled_pairwise_loss(scores, target[:, 1], target[:, 0].long(),
                                       target[:, 2], self.alpha, self.loss, self.n_pairs)


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


def squared_error_logits(logits, target, reduction="mean"):
    """Squared error between logits and log-probability targets (Ba & Caruana, 2014).

    ``mean_i sum_k (z_ik - t_ik)^2 / 2``: the student's logits regress the teacher's (corrected)
    log-probabilities.

    >>> round(squared_error_logits(torch.zeros(1, 2), torch.tensor([[1.0, -1.0]])).item(), 4)
    1.0
    """
    return _reduce(0.5 * ((logits - target) ** 2).sum(dim=-1), reduction)


def squared_error_proba(logits, target, reduction="mean"):
    """Squared error between ``softmax(z)`` and probability targets, ``mean_i sum_k (.)^2``.

    >>> round(squared_error_proba(torch.zeros(1, 2), torch.tensor([[1.0, 0.0]])).item(), 4)
    0.5
    """
    return _reduce(((torch.softmax(logits, dim=-1) - target) ** 2).sum(dim=-1), reduction)


class SquaredErrorLogits(nn.Module):
    """Criterion for :func:`squared_error_logits`."""

    def __init__(self, reduction="mean"):
        super().__init__()
        self.reduction = reduction

    def forward(self, logits, target):
        return squared_error_logits(logits, target, self.reduction)


class SquaredErrorProba(nn.Module):
    """Criterion for :func:`squared_error_proba`."""

    def __init__(self, reduction="mean"):
        super().__init__()
        self.reduction = reduction

    def forward(self, logits, target):
        return squared_error_proba(logits, target, self.reduction)


# -- Ensemble distillation: AE-KD weights (Du et al. 2020), Proxy-EnD2 (Ryabinin et al. 2021) --

def project_capped_simplex(v, cap=1.0):
    """Euclidean projection of a vector ``v`` onto ``{a : sum a = 1, 0 <= a <= cap}``.

    The projection is ``clip(v - tau, 0, cap)``; ``sum clip(v - tau, 0, cap)`` is piecewise
    linear in ``tau`` with breakpoints ``v_k`` and ``v_k - cap``, so ``tau`` is found exactly
    by interpolating between the two breakpoints around 1.

    >>> project_capped_simplex(torch.tensor([0.9, 0.9, -1.0]), cap=0.6)
    tensor([0.5000, 0.5000, 0.0000])
    """
    x = np.asarray(v.detach().cpu() if torch.is_tensor(v) else v, dtype=np.float64)
    m = x.shape[-1]
    if not cap * m >= 1 - 1e-9:
        raise ValueError(f"project_capped_simplex: parameter cap={cap!r} is invalid; expected "
                         f"cap >= 1/{m} so that {m} weights can sum to 1.")
    taus = np.sort(np.concatenate([x, x - cap]))
    sums = np.clip(x[None, :] - taus[:, None], 0, cap).sum(1)  # non-increasing in tau
    k = int(np.searchsorted(-sums, -1.0, side="right"))  # first breakpoint with sum < 1
    k = min(max(k, 1), len(taus) - 1)
    t0, t1, s0, s1 = taus[k - 1], taus[k], sums[k - 1], sums[k]
    tau = t0 if s0 == s1 else t0 + (s0 - 1.0) * (t1 - t0) / (s0 - s1)
    out = np.clip(x - tau, 0, cap)
    return torch.as_tensor(out, dtype=v.dtype if torch.is_tensor(v) else torch.float64)


def ae_kd_weights(grads, cap=1.0, n_iter=100):
    """Adaptive teacher weights of AE-KD: ``argmin_a ||sum_m a_m g_m||^2`` on a capped simplex.

    ``grads`` has shape ``(M, P)``: the gradient of the distillation loss towards each teacher
    ``m`` (flattened). The weights are the min-norm point of the gradients' convex hull, with
    each weight at most ``cap`` (the bound C of Du et al., keeping one teacher from taking
    all the weight); solved by projected gradient descent on the ``M x M`` Gram matrix.

    >>> ae_kd_weights(torch.tensor([[1.0, 0.0], [0.0, 1.0]]))  # orthogonal: equal weights
    tensor([0.5000, 0.5000])
    >>> ae_kd_weights(torch.tensor([[1.0, 0.0], [2.0, 0.0]]), cap=0.7)
    tensor([0.7000, 0.3000])
    """
    g = grads.detach().reshape(grads.shape[0], -1).double()
    gram = (g @ g.T).cpu().numpy()
    m = gram.shape[0]
    a = project_capped_simplex(np.full(m, 1.0 / m), cap).numpy()
    scale = np.linalg.norm(gram, 2)
    if scale > 0:
        for _ in range(n_iter):
            a = project_capped_simplex(a - (gram @ a) / scale, cap).numpy()
    return torch.as_tensor(a, dtype=torch.float32)


def dirichlet_kl(alpha, beta):
    """``KL(Dir(alpha) || Dir(beta))`` for concentration rows of shape ``(..., C)``.

    ``log G(a0) - sum log G(a_k) - log G(b0) + sum log G(b_k)
    + sum (a_k - b_k) (digamma(a_k) - digamma(a0))``.

    >>> round(dirichlet_kl(torch.tensor([2.0, 1.0]), torch.tensor([1.0, 1.0])).item(), 4)
    0.1931
    """
    a0, b0 = alpha.sum(-1), beta.sum(-1)
    return (torch.lgamma(a0) - torch.lgamma(alpha).sum(-1) - torch.lgamma(b0)
            + torch.lgamma(beta).sum(-1)
            + ((alpha - beta) * (torch.digamma(alpha) - torch.digamma(a0).unsqueeze(-1))).sum(-1))


def proxy_dirichlet_target(member_proba, offset=1.0, max_precision=100.0, eps=1e-8):
    """Proxy-Dirichlet concentrations of an ensemble (Ryabinin et al. 2021).

    ``member_proba`` has shape ``(M, B, C)``. The target's mean is the ensemble mean
    ``pbar`` and its precision is the moment estimate
    ``(C - 1) / (2 sum_k pbar_k (log pbar_k - mean_m log p_mk))``, capped at
    ``max_precision`` (``None``: no cap); the concentrations are
    ``pbar * precision + offset``.

    The cap is ours: where the members agree the estimate reaches 10^4-10^5, and the reverse
    KL to such a sharp target trains poorly in a short budget (Fashion-MNIST, 6 epochs: 68 %
    accuracy uncapped, 79 % with the cap at 100). Ryabinin et al. temper the target instead.
    """
    p = member_proba.clamp_min(eps)
    mean = p.mean(0)
    gap = (mean * (mean.log() - p.log().mean(0))).sum(-1).clamp_min(eps)
    precision = (p.shape[-1] - 1) / (2 * gap)
    if max_precision is not None:
        precision = precision.clamp_max(max_precision)
    return mean * precision.unsqueeze(-1) + offset


def proxy_end2_loss(logits, member_proba, offset=1.0, max_precision=100.0, reduction="mean"):
    """Proxy-EnD2: reverse KL from the student's Dirichlet ``exp(logits)`` to the proxy target.

    The student's predictive distribution, the Dirichlet mean, is ``softmax(logits)``.
    Averaged over the batch; ``offset`` and ``max_precision`` as in
    :func:`proxy_dirichlet_target`.
    """
    alpha = logits.clamp(-30, 30).exp()
    target = proxy_dirichlet_target(member_proba, offset, max_precision)
    return _reduce(dirichlet_kl(alpha, target), reduction)


#: Central smoothing of the members' probabilities in :func:`end2_loss` (Malinin et al.'s
#: reference code shrinks them towards uniform by a small factor so that no log is -inf).
END2_SMOOTHING = 1e-3


def dirichlet_log_likelihood(alpha, proba):
    """``log Dir(proba | alpha)`` for concentration and probability rows of shape ``(..., C)``.

    ``log G(a0) - sum log G(a_k) + sum (a_k - 1) log p_k``, ``a0 = sum a_k``. ``proba`` must
    lie inside the simplex (no zero).

    >>> round(dirichlet_log_likelihood(torch.tensor([2.0, 1.0]),
    ...                                torch.tensor([0.5, 0.5])).item(), 4)  # log(2 * 0.5)
    0.0
    """
    return _dirichlet_log_density(alpha, proba.log())


def _dirichlet_log_density(alpha, log_p):
    """``log Dir(p | alpha)`` from ``log p``; linear in ``log p``, so the mean log-density of
    several ``p`` is the log-density at their mean ``log p``."""
    return (torch.lgamma(alpha.sum(-1)) - torch.lgamma(alpha).sum(-1)
            + ((alpha - 1) * log_p).sum(-1))


def end2_loss(logits, member_proba, temperature=1.0, smoothing=END2_SMOOTHING,
              reduction="mean"):
    """EnD2: negative Dirichlet log-likelihood of the ensemble members' probabilities.

    The student's concentrations are ``alpha = exp(logits / temperature)`` (the exponent
    clamped to ``[-30, 30]``); each member's probabilities ``p_m`` (``member_proba`` of shape
    ``(M, B, C)``) are softened, ``softmax(log p_m / temperature)``, and smoothed towards
    uniform, ``(1 - smoothing) p_m + smoothing / C``. The loss of a row is
    ``-(1/M) sum_m log Dir(p_m | alpha)`` (Malinin, Mlodozeniec, Gales 2020), whose
    target-dependent part only needs the members' mean log-probabilities.

    >>> z = torch.zeros(1, 2)                      # Dir(1, 1): the uniform density, log 1 = 0
    >>> p = torch.tensor([[[0.3, 0.7]], [[0.6, 0.4]]])
    >>> abs(end2_loss(z, p).item())
    0.0
    """
    alpha = (logits / temperature).clamp(-30, 30).exp()
    p = soften(member_proba, temperature)
    p = (1 - smoothing) * p + smoothing / p.shape[-1]
    nll = -_dirichlet_log_density(alpha, p.log().mean(0))
    return _reduce(nll, reduction)


def dirichlet_uncertainty(logits):
    """Total, aleatoric and epistemic uncertainty of the Dirichlet ``Dir(exp(logits))``.

    ``total`` is the entropy of the Dirichlet mean ``alpha / alpha0 = softmax(logits)``,
    ``aleatoric`` the expected entropy of a categorical drawn from the Dirichlet,
    ``-sum_k (alpha_k / alpha0) (digamma(alpha_k + 1) - digamma(alpha0 + 1))``, and
    ``epistemic = total - aleatoric``, their mutual information (non-negative; a rounding
    below 0 is set to 0 and ``total`` rebuilt as ``aleatoric + epistemic``, so that the
    identity holds exactly). In float64, in nats; the exponent is clamped to ``[-30, 30]``
    as in training.

    >>> total, aleatoric, epistemic = dirichlet_uncertainty(torch.zeros(1, 2))  # Dir(1, 1)
    >>> round(total.item(), 4), round(aleatoric.item(), 4), round(epistemic.item(), 4)
    (0.6931, 0.5, 0.1931)
    """
    z = torch.as_tensor(logits, dtype=torch.float64)
    alpha = z.clamp(-30, 30).exp()
    a0 = alpha.sum(-1, keepdim=True)
    mean = torch.softmax(z, -1)
    total = -torch.xlogy(mean, mean).sum(-1)
    aleatoric = -(alpha / a0 * (torch.digamma(alpha + 1) - torch.digamma(a0 + 1))).sum(-1)
    aleatoric = torch.minimum(aleatoric.clamp_min(0), total)
    epistemic = total - aleatoric
    return aleatoric + epistemic, aleatoric, epistemic


class EnsembleDistillationLoss(nn.Module):
    """Per-row loss of ensemble distillation, one object for every method.

    ``logits`` are the student's, ``(M_s, B, C)`` for a BatchEnsemble or ``(B, C)``;
    ``target`` is a dict: ``"proba"``, the teacher members' probabilities ``(M_t, B, C)``, and
    ``"y"``, the encoded labels ``(B,)``. Returns ``(B,)``:
    ``alpha * soft + (1 - alpha) * CE(y, student)``, both averaged over the student's members,
    where ``soft`` is

    - ``"kd"``: ``T^2 CE(softmax(log pbar / T), softmax(z / T))`` towards the members' mean;
    - ``"one-to-one"``: student member ``m`` towards teacher member ``m`` (``M_s = M_t``);
    - ``"ae-kd"``: the per-teacher KD losses weighted by the min-norm point of their gradients
      with respect to the student's logits, each weight at most ``ae_kd_bound`` (Du et al.);
    - ``"proxy-end2"``: reverse KL from the Dirichlet ``exp(z)`` to the members' proxy
      Dirichlet (Ryabinin et al.); ``temperature`` is not used;
    - ``"end2"``: the negative log-likelihood of the members' probabilities under the
      Dirichlet ``exp(z / T)`` (:func:`end2_loss`, Malinin et al.), ``T`` being
      ``target["temperature"]`` when the target holds one (an annealing schedule), else
      ``temperature``.
    """

    def __init__(self, method="kd", temperature=1.0, alpha=1.0, ae_kd_bound=1.0):
        super().__init__()
        self.method = method
        self.temperature = temperature
        self.alpha = alpha
        self.ae_kd_bound = ae_kd_bound

    def forward(self, logits, target):
        z = logits if logits.dim() == 3 else logits.unsqueeze(0)
        rows = torch.zeros(z.shape[1], device=z.device)
        if self.alpha > 0:
            rows = rows + self.alpha * self._soft(
                z, target["proba"], target.get("temperature", self.temperature))
        if self.alpha < 1:
            m, b, c = z.shape
            hard = F.cross_entropy(z.reshape(m * b, c), target["y"].repeat(m),
                                   reduction="none").reshape(m, b).mean(0)
            rows = rows + (1 - self.alpha) * hard
        return rows

    def _soft(self, z, p, T):
        if self.method == "end2":
            return torch.stack([end2_loss(zs, p, T, reduction="none") for zs in z]).mean(0)
        T = self.temperature
        if self.method == "proxy-end2":
            return torch.stack([proxy_end2_loss(zs, p, reduction="none") for zs in z]).mean(0)
        if self.method == "kd":
            return soft_cross_entropy(z, soften(p.mean(0), T), T, "none").mean(0) * T**2
        targets = soften(p, T)
        if self.method == "one-to-one":
            return soft_cross_entropy(z, targets, T, "none").mean(0) * T**2
        if self.method != "ae-kd":
            raise ValueError(f"EnsembleDistillationLoss: method={self.method!r} is invalid.")
        # one KD loss per teacher (per row), weighted by the min-norm point of the gradients
        # of their batch means with respect to the student's logits
        losses = torch.stack([soft_cross_entropy(z, t, T, "none").mean(0) * T**2
                              for t in targets])
        grads = torch.stack([torch.autograd.grad(loss.mean(), z, retain_graph=True)[0].flatten()
                             for loss in losses])
        weights = ae_kd_weights(grads, cap=self.ae_kd_bound).to(losses.device)
        return (weights[:, None] * losses).sum(0)


class GPEDLoss(nn.Module):
    """Per-row loss of GPED, summed over the heads of a multi-head student.

    ``outputs`` and ``target`` are dicts by head name (those of a
    :class:`~skdistill.nets.MultiHeadNet`): the soft-target cross-entropy for the
    ``"predictive"`` head (its outputs are logits, its target probabilities), and the L1
    distance, summed over a head's outputs, for every other expectation. Returns ``(B,)``.

    Examples
    --------
    >>> import torch
    >>> from skdistill.losses import GPEDLoss
    >>> outputs = {"predictive": torch.zeros(2, 2), "entropy": torch.ones(2, 1)}
    >>> target = {"predictive": torch.full((2, 2), 0.5), "entropy": torch.zeros(2, 1)}
    >>> [round(v, 4) for v in GPEDLoss()(outputs, target).tolist()]  # log 2 + |1 - 0|
    [1.6931, 1.6931]
    """

    def forward(self, outputs, target):
        """The loss of each row: the heads' losses summed.

        Parameters
        ----------
        outputs : dict of str to torch.Tensor
            Each head's outputs, ``(B, k)``.
        target : dict of str to torch.Tensor
            Each head's target, ``B`` rows of as many values.

        Returns
        -------
        loss : torch.Tensor of shape (B,)
            One loss per row.
        """
        total = 0.0
        for name, value in target.items():
            out = outputs[name]
            if name == "predictive":
                total = total + soft_cross_entropy(out, value, reduction="none")
            else:
                total = total + F.l1_loss(out, value.reshape(out.shape),
                                          reduction="none").reshape(len(out), -1).sum(1)
        return total


# -- Menon et al. (2021): teacher-corrected sampled softmax ------------------------------------

def _teacher_lookup(negatives, teacher_index, teacher_proba):
    """``(p, found)`` of shape ``(B, m)``: each row's teacher probability of each sampled class
    (0 where its top-k misses the class) and whether the top-k holds it.

    ``teacher_index`` rows are sorted in increasing class order (``-1`` pads a row with fewer
    classes, first), so the lookup is a binary search: ``O(B m log k)``, never ``O(B L)``.
    """
    batch, k = teacher_index.shape
    wanted = negatives.expand(batch, -1).contiguous()
    pos = torch.searchsorted(teacher_index.contiguous(), wanted).clamp_max(k - 1)
    found = teacher_index.gather(1, pos) == wanted
    return torch.where(found, teacher_proba.gather(1, pos), 0.0), found


def negative_weights(labels, negatives, teacher_index=None, teacher_proba=None,
                     correction="teacher"):
    """Weights ``alpha`` of the sampled negatives in each row's partition function.

    ``alpha_j(x_n) = 1 - 1[j != y_n] p^t(j | x_n)`` (Menon et al. 2021): a negative the teacher
    finds plausible is likely a false negative and counts less. A sampled class equal to the
    row's label (an accidental hit) gets 0: the label is in the partition function already.
    A class the teacher's top-k misses has ``p^t = 0``, so weight 1. ``correction=None``
    gives 1 to every negative (but 0 to accidental hits).

    Parameters
    ----------
    labels : torch.Tensor of shape (B,)
        Class indices; ``-1`` (no label) hits no class.
    negatives : torch.Tensor of shape (m,)
        Sampled class indices, shared by the rows.
    teacher_index : torch.Tensor of shape (B, k), default=None
        Each row's top-k classes in increasing order, ``-1`` for padding.
    teacher_proba : torch.Tensor of shape (B, k), default=None
        Their teacher probabilities (not renormalised).
    correction : {"teacher", None}, default="teacher"
        Whether the teacher lowers the weights.

    Returns
    -------
    alpha : torch.Tensor of shape (B, m)

    Examples
    --------
    >>> import torch
    >>> from skdistill.losses import negative_weights
    >>> negative_weights(torch.tensor([0]), torch.tensor([1, 0, 2]), torch.tensor([[0, 1]]),
    ...                  torch.tensor([[0.7, 0.3]]))  # 1 - 0.3; a hit; missed by the top-k
    tensor([[0.7000, 0.0000, 1.0000]])
    """
    p = None
    if correction is not None and teacher_index is not None:
        p, _ = _teacher_lookup(negatives, teacher_index, teacher_proba)
    return _negative_weights(labels, negatives, p)


def _negative_weights(labels, negatives, p):
    """:func:`negative_weights` given ``p``, the teacher's probabilities of the negatives
    (:func:`_teacher_lookup`), or None for no correction."""
    hit = negatives[None, :] == labels[:, None]
    if p is None:
        alpha = torch.ones(hit.shape, dtype=torch.float32, device=negatives.device)
    else:
        alpha = (1.0 - p).clamp_min(0.0)
    return torch.where(hit, 0.0, alpha)


def teacher_corrected_sampled_softmax(features, weight, bias, labels, negatives, log_q,
                                      teacher_index=None, teacher_proba=None,
                                      correction="teacher", alpha=0.0, reduction="mean"):
    """Sampled softmax cross-entropy with Menon et al.'s teacher-corrected partition function.

    The logits are those of a linear head ``f_c(x) = w_c . h(x) + b_c`` on the features
    ``h``, computed only for the classes a row needs: its label, its teacher's top-k and the
    ``m`` sampled negatives ``N`` (shared by the batch). The label term of row ``n`` is
    ``z_n - f_{y_n}`` with

    ``z_n = log(e^{f_{y_n}} + sum_{j in N} alpha_j(x_n) e^{f_j - log_q_j})``

    where ``log_q_j = log(m q_j)`` corrects for the sampling distribution ``q`` (0 when ``N``
    holds every class once) and ``alpha`` is :func:`negative_weights`. The distillation term
    (weight ``alpha``) is a sampled softmax with several positives, the row's teacher top-k
    ``T_n`` with probabilities ``phat`` renormalised over it:
    ``log(sum_{c in T_n} e^{f_c} + sum_{j in N \\ T_n} e^{f_j - log_q_j})
    - sum_{c in T_n} phat_c f_c``. A row without a label (``-1``) takes the distillation term
    alone. Cost ``O(B (m + k) d)``, whatever the number of classes.

    Parameters
    ----------
    features : torch.Tensor of shape (B, d)
        The head's inputs.
    weight : torch.Tensor of shape (L, d)
        The head's weight matrix (one row per class).
    bias : torch.Tensor of shape (L,) or None
        The head's bias.
    labels : torch.Tensor of shape (B,)
        Class indices, ``-1`` for a row without a label.
    negatives : torch.Tensor of shape (m,)
        Sampled class indices.
    log_q : torch.Tensor of shape (m,)
        ``log(m q_j)`` of each sampled class (zeros when ``negatives`` are all classes).
    teacher_index, teacher_proba : torch.Tensor of shape (B, k), default=None
        Each row's teacher top-k, classes in increasing order (``-1`` pads), and their
        probabilities. Needed for ``correction="teacher"``, ``alpha > 0`` and rows without
        labels.
    correction : {"teacher", None}, default="teacher"
        Teacher weights ``alpha_j`` in the label term's partition function, or none.
    alpha : float, default=0.0
        Weight of the distillation term; ``1 - alpha`` that of the label term.
    reduction : {"mean", "none"}, default="mean"
        ``"none"``: one loss per row.

    Returns
    -------
    loss : torch.Tensor
        Of shape ``(B,)`` with ``reduction="none"``, else 0-d.

    Examples
    --------
    With every other class as a negative and no correction, the full softmax cross-entropy:

    >>> import torch
    >>> import torch.nn.functional as F
    >>> from skdistill.losses import teacher_corrected_sampled_softmax
    >>> h, W, b = torch.randn(4, 3), torch.randn(5, 3), torch.randn(5)
    >>> y = torch.tensor([0, 4, 2, 2])
    >>> loss = teacher_corrected_sampled_softmax(h, W, b, y, torch.arange(5), torch.zeros(5),
    ...                                          correction=None)
    >>> bool(torch.isclose(loss, F.cross_entropy(h @ W.T + b, y)))
    True
    """
    labelled = labels >= 0
    rows = labels.clamp_min(0)
    f_neg = features @ weight[negatives].T - log_q
    f_label = (features * weight[rows]).sum(1)
    if bias is not None:
        f_neg = f_neg + bias[negatives]
        f_label = f_label + bias[rows]
    label_term = alpha < 1 and bool(labelled.any())
    soft_term = alpha > 0 or not bool(labelled.all())
    if soft_term and teacher_index is None:
        raise ValueError("teacher_corrected_sampled_softmax: teacher_index and "
                         "teacher_proba are needed with alpha > 0 or rows without labels.")
    # The teacher's probability of each negative, and whether its top-k holds it: looked up
    # once for both terms.
    p = in_top = None
    if teacher_index is not None and (soft_term or (label_term and correction is not None)):
        p, in_top = _teacher_lookup(negatives, teacher_index, teacher_proba)
    per_row = torch.zeros_like(f_label)
    if label_term:
        log_alpha = torch.log(_negative_weights(rows, negatives,
                                                None if correction is None else p))
        z = torch.logsumexp(torch.cat([f_label[:, None], f_neg + log_alpha], 1), 1)
        per_row = z - f_label
    if soft_term:
        soft = _sampled_soft_term(features, weight, bias, f_neg, teacher_index, teacher_proba,
                                  in_top)
        mixed = (1.0 - alpha) * per_row + alpha * soft if alpha < 1 else soft
        per_row = torch.where(labelled, mixed, soft)
    return _reduce(per_row, reduction)


def _sampled_soft_term(features, weight, bias, f_neg, teacher_index, teacher_proba, in_top):
    """The distillation term of :func:`teacher_corrected_sampled_softmax`, per row
    (``in_top``: whether each row's top-k holds each negative, of :func:`_teacher_lookup`)."""
    valid = teacher_index >= 0
    classes = teacher_index.clamp_min(0)
    f_top = torch.bmm(weight[classes], features[:, :, None])[:, :, 0]
    if bias is not None:
        f_top = f_top + bias[classes]
    z = torch.logsumexp(torch.cat([f_top.masked_fill(~valid, -torch.inf),
                                   f_neg.masked_fill(in_top, -torch.inf)], 1), 1)
    mass = teacher_proba.sum(1, keepdim=True).clamp_min(torch.finfo(teacher_proba.dtype).tiny)
    return z - ((teacher_proba / mass) * f_top.masked_fill(~valid, 0.0)).sum(1)


class SampledSoftmaxLoss(nn.Module):
    """Criterion for :func:`teacher_corrected_sampled_softmax` (one loss per row by default).

    ``outputs`` is a dict ``{"features", "weight", "bias"}`` (a network's features and its
    linear head's parameters); ``target`` a dict ``{"y", "negatives", "log_q"}`` and, where
    needed, ``{"teacher_index", "teacher_proba"}``.

    Parameters
    ----------
    correction : {"teacher", None}, default="teacher"
    alpha : float, default=0.0
    reduction : {"none", "mean"}, default="none"

    Examples
    --------
    >>> import torch
    >>> from skdistill.losses import SampledSoftmaxLoss
    >>> outputs = {"features": torch.zeros(2, 3), "weight": torch.zeros(4, 3), "bias": None}
    >>> target = {"y": torch.tensor([0, 1]), "negatives": torch.arange(4),
    ...           "log_q": torch.zeros(4)}
    >>> SampledSoftmaxLoss(correction=None)(outputs, target)  # log 4: uniform over 4 classes
    tensor([1.3863, 1.3863])
    """

    def __init__(self, correction="teacher", alpha=0.0, reduction="none"):
        super().__init__()
        self.correction = correction
        self.alpha = alpha
        self.reduction = reduction

    def forward(self, outputs, target):
        """The loss of each row (or their mean).

        Parameters
        ----------
        outputs : dict of str to torch.Tensor
            ``"features"`` ``(B, d)``, ``"weight"`` ``(L, d)``, ``"bias"`` ``(L,)`` or None.
        target : dict of str to torch.Tensor
            ``"y"``, ``"negatives"``, ``"log_q"``, and optionally ``"teacher_index"`` and
            ``"teacher_proba"``.

        Returns
        -------
        loss : torch.Tensor
        """
        return teacher_corrected_sampled_softmax(
            outputs["features"], outputs["weight"], outputs["bias"], target["y"],
            target["negatives"], target["log_q"], target.get("teacher_index"),
            target.get("teacher_proba"), self.correction, self.alpha, self.reduction)
