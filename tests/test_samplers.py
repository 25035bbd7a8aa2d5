"""SGLD steps, schedules, and the posterior expectations and online estimators of GPED."""
import numpy as np
import pytest
import torch

from skdistill.expectations import (OnlineMeanEstimator, StochasticEstimator, expected_entropy,
                                    output_size, predictive, variance)
from skdistill.samplers import PolynomialDecay, as_schedule, sgld_chain, sgld_step_, sgld_update_


def test_sgld_chain_matches_the_moments_of_a_correlated_gaussian():
    mean = torch.tensor([1.0, -2.0], dtype=torch.float64)
    cov = torch.tensor([[1.0, 0.8], [0.8, 2.0]], dtype=torch.float64)
    precision = torch.linalg.inv(cov)
    torch.manual_seed(0)
    init = torch.zeros(400, 2, dtype=torch.float64)  # 400 chains side by side
    samples = sgld_chain(lambda x: -(x - mean) @ precision, init, n_steps=1500, step_size=0.02,
                         burn_in=500, thinning=50).reshape(-1, 2)
    np.testing.assert_allclose(samples.mean(0), mean, atol=0.05)
    np.testing.assert_allclose(torch.cov(samples.T), cov, atol=0.1)


def test_sgld_chain_follows_a_decaying_schedule_to_the_target():
    torch.manual_seed(1)
    samples = sgld_chain(lambda x: -4.0 * x, torch.full((2000,), 3.0), n_steps=600,
                         step_size=PolynomialDecay(0.05, 1.0, 0.1), burn_in=300, thinning=30)
    assert abs(samples.mean().item()) < 0.03
    assert samples.var().item() == pytest.approx(0.25, rel=0.1)  # 1 / precision


def test_sgld_update_is_equation_5():
    theta = torch.tensor([1.0, -1.0])
    grad = torch.tensor([0.5, 2.0])
    torch.manual_seed(3)
    noise = torch.randn(2)
    torch.manual_seed(3)
    sgld_update_([theta], [grad], 0.01)
    np.testing.assert_allclose(theta, torch.tensor([1.0, -1.0]) + 0.005 * grad + 0.1 * noise,
                               rtol=1e-6)


def test_fused_sgld_step_equals_the_generic_update():
    torch.manual_seed(0)
    theta = torch.randn(5)
    nll_grad = torch.randn(5)
    a, b = theta.clone(), theta.clone()
    a.grad = nll_grad
    torch.manual_seed(7)
    sgld_step_([a], 1e-3, prior_precision=10.0, likelihood_scale=80.0)
    torch.manual_seed(7)
    sgld_update_([b], [-10.0 * theta - 80.0 * nll_grad], 1e-3)
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)


def test_polynomial_decay_and_constant_schedules():
    assert PolynomialDecay(1e-2, 1.0, 0.5)(3) == pytest.approx(5e-3)
    assert as_schedule(0.1)(1000) == 0.1
    with pytest.raises(ValueError, match="PolynomialDecay: parameter a=-1"):
        PolynomialDecay(-1)
    with pytest.raises(ValueError, match="gamma"):
        PolynomialDecay(1.0, gamma=-0.5)


def test_expectation_functions_against_hand_values():
    p = torch.tensor([[0.5, 0.5], [1.0, 0.0], [0.25, 0.75]], dtype=torch.float64)
    assert torch.equal(predictive(p), p)
    h = expected_entropy(p)[:, 0]
    np.testing.assert_allclose(h, [np.log(2), 0.0, -(0.25 * np.log(0.25) + 0.75 * np.log(0.75))])
    np.testing.assert_allclose(variance(p), [[0.25, 0.25], [0.0, 0.0], [0.1875, 0.1875]])
    assert output_size(expected_entropy, 4) == 1 and output_size(variance, 4) == 4


def test_online_estimator_is_the_running_mean_per_example():
    rng = np.random.default_rng(0)
    u = OnlineMeanEstimator(n_examples=5, n_outputs=2)
    seen = {i: [] for i in range(5)}
    for _ in range(30):
        idx = rng.choice(5, size=3, replace=False)
        values = rng.normal(size=(3, 2))
        out = u.update(torch.as_tensor(idx), torch.as_tensor(values))
        for row, i in enumerate(idx):
            seen[i].append(values[row])
            np.testing.assert_allclose(out[row], np.mean(seen[i], axis=0), rtol=1e-5, atol=1e-6)
    assert u.nbytes == 5 * 2 * 4 + 5 * 4


def test_stochastic_estimator_keeps_no_state():
    u = StochasticEstimator(n_examples=1000, n_outputs=10)
    values = torch.rand(4, 10)
    assert u.update(torch.arange(4), values) is values
    assert u.nbytes == 0
