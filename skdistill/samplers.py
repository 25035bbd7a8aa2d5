"""Stochastic gradient Langevin dynamics (SGLD) as small functions over tensors, and step-size schedules.

Nothing here knows about estimators or data: a sampler step takes parameter tensors and their
gradients. Equation 5 of Vadera et al. (Welling & Teh's SGLD) is

``theta <- theta + step/2 * (grad log p(theta) + N/M sum_i grad log p(y_i | x_i, theta))
+ Normal(0, step)``.
"""
import math

import torch

from ._validation import is_number

__all__ = ["PolynomialDecay", "as_schedule", "sgld_update_", "sgld_step_", "sgld_chain"]


class PolynomialDecay:
    """Step size ``a * (b + t) ** -gamma`` at iteration ``t`` (0-based), Welling & Teh's schedule.

    Parameters
    ----------
    a : float
        Scale (> 0).
    b : float, default=1.0
        Offset (> 0): the first step is ``a * b ** -gamma``.
    gamma : float, default=0.55
        Decay exponent in (0.5, 1] for the Robbins-Monro conditions; 0 gives a constant step.

    Examples
    --------
    >>> from skdistill.samplers import PolynomialDecay
    >>> schedule = PolynomialDecay(a=1e-2, b=1.0, gamma=0.5)
    >>> round(schedule(0), 6), round(schedule(3), 6)
    (0.01, 0.005)
    """

    def __init__(self, a, b=1.0, gamma=0.55):
        for name, value in (("a", a), ("b", b)):
            if not is_number(value) or not value > 0:
                raise ValueError(f"PolynomialDecay: parameter {name}={value!r} is invalid; "
                                 "expected a number > 0.")
        if not is_number(gamma) or gamma < 0:
            raise ValueError(f"PolynomialDecay: parameter gamma={gamma!r} is invalid; "
                             "expected a number >= 0.")
        self.a, self.b, self.gamma = float(a), float(b), float(gamma)

    def __call__(self, t):
        return self.a * (self.b + t) ** -self.gamma

    def __repr__(self):
        return f"PolynomialDecay(a={self.a!r}, b={self.b!r}, gamma={self.gamma!r})"

    def __eq__(self, other):
        return (isinstance(other, PolynomialDecay)
                and (self.a, self.b, self.gamma) == (other.a, other.b, other.gamma))

    def __hash__(self):
        return hash((self.a, self.b, self.gamma))


def as_schedule(step_size):
    """A callable ``t -> step`` from a float (constant step) or a callable schedule."""
    if callable(step_size):
        return step_size
    value = float(step_size)
    return lambda t: value


@torch.no_grad()
def sgld_update_(params, grads, step_size):
    """In place: ``theta += step/2 * grad + sqrt(step) * Normal(0, 1)`` for each tensor.

    ``grads`` are gradients of the log density (not of a loss). The noise is drawn from
    torch's global generator.
    """
    noise_scale = math.sqrt(step_size)
    for p, g in zip(params, grads):
        p.add_(g, alpha=step_size / 2).add_(torch.randn_like(p), alpha=noise_scale)


@torch.no_grad()
def sgld_step_(params, step_size, prior_precision, likelihood_scale):
    """Equation 5 in place, with ``p.grad`` holding the minibatch's summed negative log-likelihood.

    With a Gaussian prior of precision ``lambda``, ``grad log p(theta) = -lambda * theta``, and
    ``N/M sum_i grad log p(y_i|x_i, theta) = -likelihood_scale * p.grad``; the update is fused
    into three in-place operations per tensor, the same arithmetic as :func:`sgld_update_`.

    Parameters
    ----------
    params : iterable of torch.Tensor
        Parameters whose ``.grad`` is the gradient of ``sum_i -log p(y_i | x_i, theta)`` over
        the minibatch.
    step_size : float
    prior_precision : float
    likelihood_scale : float
        ``N / M``: training-set size over minibatch size.
    """
    noise_scale = math.sqrt(step_size)
    shrink = 1.0 - step_size * prior_precision / 2
    for p in params:
        p.mul_(shrink).add_(p.grad, alpha=-step_size * likelihood_scale / 2)
        p.add_(torch.randn_like(p), alpha=noise_scale)


def sgld_chain(grad_log_prob, init, n_steps, step_size, burn_in=0, thinning=1):
    """Run SGLD on one tensor and return the thinned states after burn-in.

    Parameters
    ----------
    grad_log_prob : callable
        ``theta -> grad log p(theta)`` (same shape as ``theta``; may be a stochastic estimate).
    init : torch.Tensor
        Starting state; any shape, e.g. ``(n_chains, dim)`` to run chains side by side.
    n_steps : int
    step_size : float or callable
        Constant step or a schedule ``t -> step`` such as :class:`PolynomialDecay`.
    burn_in : int, default=0
        Steps discarded before the first kept state.
    thinning : int, default=1
        Keep every ``thinning``-th state after burn-in.

    Returns
    -------
    samples : torch.Tensor of shape ``(n_kept, *init.shape)``

    Examples
    --------
    >>> import torch
    >>> from skdistill.samplers import sgld_chain
    >>> _ = torch.manual_seed(0)
    >>> s = sgld_chain(lambda x: -x, torch.zeros(1000), 500, 0.05, burn_in=100, thinning=10)
    >>> s.shape
    torch.Size([40, 1000])
    >>> abs(s.mean().item()) < 0.05 and abs(s.var().item() - 1) < 0.1
    True
    """
    schedule = as_schedule(step_size)
    theta = init.detach().clone()
    kept = []
    for t in range(n_steps):
        sgld_update_([theta], [grad_log_prob(theta)], schedule(t))
        if t + 1 > burn_in and (t + 1 - burn_in) % thinning == 0:
            kept.append(theta.clone())
    return torch.stack(kept) if kept else theta.new_empty((0, *theta.shape))
