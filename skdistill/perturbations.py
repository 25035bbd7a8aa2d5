"""Input perturbations for ensemble distillation: Gaussian, ODS, ConfODS and TDiv-SDiv.

Each function takes a batch ``x`` (a float tensor, rows first) and returns ``x + size * d``
with ``d`` a direction of unit L2 norm per row, clipped to ``clip = (low, high)`` when given.
``teachers`` is a list of torch modules returning logits (the members of a deep ensemble);
``student`` returns logits of shape ``(M, B, C)`` (a BatchEnsemble) or ``(B, C)``. Nothing
here knows about estimators: the gradients are taken with respect to ``x`` only, never
accumulated into any parameter. Random draws use torch's global generator.
"""
import math

import torch
import torch.nn.functional as F


def default_size(n_features, data_range=1.0):
    """The paper's perturbation size: L2 norm ``sqrt(D) / 255`` on ``[0, 1]``-scaled inputs.

    For inputs spanning ``data_range`` the norm scales with it.

    >>> round(default_size(784), 4)  # 28 / 255
    0.1098
    """
    return math.sqrt(n_features) / 255.0 * float(data_range)


def _unit(direction):
    flat = direction.reshape(direction.shape[0], -1)
    norm = flat.norm(dim=1).clamp_min(1e-12)
    return (flat / norm[:, None]).reshape(direction.shape)


def _step(x, direction, size, clip):
    out = x.detach() + size * _unit(direction.detach())
    if clip is not None:
        out = out.clamp(clip[0], clip[1])
    return out


def _input_grad(x, objective):
    x = x.detach().requires_grad_(True)
    with torch.enable_grad():
        (grad,) = torch.autograd.grad(objective(x), x)
    return grad


def gaussian(x, size, clip=None):
    """Step of norm ``size`` in a uniformly random direction (isotropic Gaussian noise)."""
    return _step(x, torch.randn_like(x), size, clip)


def _member_outputs(teachers, x, proba):
    outs = torch.stack([t(x) for t in teachers])
    return torch.softmax(outs, dim=-1) if proba else outs


def ods(x, teachers, size, clip=None):
    """Output Diversified Sampling (Tashiro et al. 2020) on the teachers' mean logits.

    Direction ``grad_x w^T mean_m f_m(x)`` with ``w ~ U(-1, 1)^C`` drawn per row.
    """
    def objective(xv):
        logits = _member_outputs(teachers, xv, proba=False).mean(0)
        w = torch.rand(logits.shape) * 2 - 1
        return (w.to(logits.device) * logits).sum()

    return _step(x, _input_grad(x, objective), size, clip)


def confods(x, teachers, size, clip=None):
    """ODS on the ensemble's mean *probabilities* instead of its logits (ConfODS).

    Direction ``grad_x w^T mean_m softmax(f_m(x))``, ``w ~ U(-1, 1)^C`` per row: a random
    move of the predictive distribution itself, so the step changes the teachers'
    confidence rather than unbounded logits (Nam et al. 2021's confidence-based variant, as
    read here).
    """
    def objective(xv):
        proba = _member_outputs(teachers, xv, proba=True).mean(0)
        w = torch.rand(proba.shape) * 2 - 1
        return (w.to(proba.device) * proba).sum()

    return _step(x, _input_grad(x, objective), size, clip)


def _pair_divergence(logits_i, logits_j):
    """``KL(softmax(z_i) || sg softmax(z_j))`` per row: gradient through member ``i`` only."""
    log_p = F.log_softmax(logits_i, dim=-1)
    log_q = F.log_softmax(logits_j.detach(), dim=-1)
    return (log_p.exp() * (log_p - log_q)).sum(-1)


def tdiv_sdiv_objective(x, teachers, student, pair):
    """Per-row ``TDiv - SDiv`` for member pair ``(i, j)`` (Nam et al. 2022, eqs. 13-14).

    ``TDiv = KL(p_i || sg p_j)`` between teachers ``i`` and ``j``; ``SDiv`` the same between
    student members ``i mod M_s`` and ``j mod M_s`` (zero for a one-member student).
    """
    i, j = pair
    div = _pair_divergence(teachers[i](x), teachers[j](x))
    if student is not None:
        z = student(x)
        if z.dim() == 3 and z.shape[0] > 1:
            m = z.shape[0]
            if i % m != j % m:
                div = div - _pair_divergence(z[i % m], z[j % m])
    return div


def tdiv_sdiv(x, teachers, student, size, clip=None, pair=None):
    """Step along the normalised gradient of ``TDiv - SDiv`` (Nam et al. 2022).

    Seeks inputs where two teachers disagree while the matching student members agree, so
    distilling there transfers the teachers' diversity. ``pair`` is a random pair of distinct
    teacher members when ``None``.
    """
    if pair is None:
        if len(teachers) < 2:
            raise ValueError("tdiv_sdiv needs at least 2 teacher members")
        i, j = torch.randperm(len(teachers))[:2].tolist()
        pair = (i, j)

    def objective(xv):
        return tdiv_sdiv_objective(xv, teachers, student, pair).sum()

    return _step(x, _input_grad(x, objective), size, clip)


#: perturbation name -> function(x, teachers, student, size, clip)
PERTURBATIONS = {
    "gaussian": lambda x, teachers, student, size, clip: gaussian(x, size, clip),
    "ods": lambda x, teachers, student, size, clip: ods(x, teachers, size, clip),
    "confods": lambda x, teachers, student, size, clip: confods(x, teachers, size, clip),
    "tdiv-sdiv": tdiv_sdiv,
}

__all__ = ["default_size", "gaussian", "ods", "confods", "tdiv_sdiv", "tdiv_sdiv_objective",
           "PERTURBATIONS"]
