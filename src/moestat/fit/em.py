"""Expectation-maximisation for mixture (probabilistic) MoE models.

E-step in log space: log r_ti = log w_i(x_t) + log f_i(y_t | x_t) - log p(y_t | x_t).
M-step (generalised: every block increases its part of Q, so the log-likelihood never
decreases), as each part declares in `m_step`:
  gate    "closed_form" (input-free lambda) | "newton": Newton/IRLS (softmax, quadratic
          softmax, contaminated, temperature in its ratios) | "generic": Newton with an
          autodiff Hessian of the few gate parameters (activation gate; projected L-BFGS when
          they are many) | "active_set_newton" (top-K): ECME — a Newton step on Q_gate with the
          active sets held fixed, accepted (step-halving) on the observed log-likelihood with
          experts fixed, because Q_gate is -inf as soon as a top-K boundary moves |
          "likelihood": ECME with the generic step on the observed log-likelihood (sparse gates
          whose logits are not linear in their parameters);
  experts weighted least squares ("least_squares": closed form for linear / polynomial /
          constant experts; "gauss_newton": damped Gauss-Newton) with weights exact for
          Gaussian noise and majorise-minimise for Laplace noise, then the exact variance
          (scale) update | "likelihood" (classification experts): the generic step on
          sum_ti R_ti log p_i(y_t | x_t), the labels' weighted log-likelihood.
Sample weights w_t (n_samples,) multiply every term (zero weights pad data to bucket sizes).
"""

from __future__ import annotations

import jax.numpy as jnp

from moestat import component_reductions as reductions
from moestat.fit.acceleration import run_em
from moestat.fit.bounds import project
from moestat.fit.em_newton import em_then_newton
from moestat.fit.em_statistics import applies, em_by_statistics
from moestat.fit.result import FitOptions
from moestat.fit.steps import (
    autodiff_newton_maximize,
    gauss_newton_expert_update,
    lbfgs_maximize,
    newton_gate_update,
    wls_expert_update,
)
from moestat.model import MixtureOfExperts, MoEParams


def e_step(model: MixtureOfExperts, params: MoEParams, X, y, weights):
    """Responsibilities (n_samples, n_components), the weighted mean log-likelihood and the
    log gate weights (n_samples, n_components) (reused by the gate's Newton step)."""
    log_w = model.log_gate_weights(params, X)
    log_joint = log_w + model.component_log_density(params, X, y)
    resp, ll = reductions.normalize_log(log_joint)
    return resp, jnp.sum(weights * ll) / jnp.sum(weights), log_w


def maximize_gate_q(gate, gate_params, X, resp, weights, gate_bounds, newton_steps: int,
                    inner_steps: int, ridge: float, log_w=None):
    """Increase Q_gate = sum_t w_t sum_i r_ti log w_i(x_t): closed form (input-free lambda),
    Newton/IRLS (linear-logit normalised gates), autodiff Newton (any other gate with at most
    AUTODIFF_NEWTON_MAX_PARAMS free parameters) or projected L-BFGS."""
    if gate.m_step == "closed_form":
        return project(gate.closed_form_m_step(gate_params, X, resp, weights), gate_bounds)
    if gate.m_step == "newton":
        return newton_gate_update(gate, gate_params, X, resp, weights, gate_bounds,
                                  newton_steps, ridge, log_w)
    total = jnp.sum(weights)

    def q(g):
        return gate.resp_objective(g, X, resp, weights) / total

    return generic_maximize(gate, q, gate_params, gate_bounds, newton_steps, inner_steps, ridge)


AUTODIFF_NEWTON_MAX_PARAMS = 64  # the Hessian costs p passes over the data


def generic_maximize(gate, objective, gate_params, gate_bounds, newton_steps: int,
                     inner_steps: int, ridge: float):
    """Increase a smooth objective of the gate parameters: damped autodiff Newton with at most
    AUTODIFF_NEWTON_MAX_PARAMS free parameters, projected L-BFGS otherwise."""
    if _n_free(gate, gate_params) <= AUTODIFF_NEWTON_MAX_PARAMS:
        return autodiff_newton_maximize(objective, gate_params, gate.to_free, gate.from_free,
                                        gate_bounds, newton_steps, ridge)
    return lbfgs_maximize(objective, gate_params, gate.to_free, gate.from_free, gate_bounds,
                          inner_steps)


def _n_free(part, params) -> int:
    return sum(int(jnp.size(v)) for v in part.to_free(params))


def update_gate(model: MixtureOfExperts, params: MoEParams, X, y, resp, weights, bounds,
                options: FitOptions, log_w=None):
    """Gate block of the M-step (see module docstring)."""
    gate, gb = model.gate, (bounds[0].gate, bounds[1].gate)
    if gate.m_step in ("active_set_newton", "likelihood"):  # ECME: experts fixed
        total = jnp.sum(weights)

        def loglik(g):
            return jnp.sum(weights * model.log_prob(params._replace(gate=g), X, y)) / total

        if gate.m_step == "likelihood":
            return generic_maximize(gate, loglik, params.gate, gb, options.gate_newton_steps,
                                    options.inner_steps, options.ridge)
        return newton_gate_update(gate, params.gate, X, resp, weights, gb,
                                  options.gate_newton_steps, options.ridge, log_w,
                                  accept=loglik, features=gate.active_set_features)
    return maximize_gate_q(gate, params.gate, X, resp, weights, gb, options.gate_newton_steps,
                           options.inner_steps, options.ridge, log_w)


def update_experts(model: MixtureOfExperts, params: MoEParams, X, y, R, bounds,
                   options: FitOptions):
    """Expert and noise blocks: increase sum_ti R_ti log f(y_t | h_i(x_t), v_i).

    R (n_samples, n_experts) weighted responsibilities of the trainable experts. The expert
    step is weighted least squares with weights R * noise.irls_weights (exact for Gaussian
    noise, a majorise-minimise step for Laplace noise): closed form for experts linear in
    their parameters, damped Gauss-Newton otherwise; then the exact variance update.
    """
    expert, noise = model.expert, model.noise
    eb = (bounds[0].expert, bounds[1].expert)
    if expert.m_step == "likelihood":  # a law of the label: sum_ti R_ti log p_i(y_t | x_t)
        total = jnp.maximum(jnp.sum(R), 1e-300)

        def objective(ep):
            return jnp.sum(R * noise.log_density(y, expert.log_probs(ep, X))) / total

        return generic_maximize(expert, objective, params.expert, eb,
                                options.expert_newton_steps, options.inner_steps,
                                options.ridge), params.noise
    vb = (bounds[0].noise.var, bounds[1].noise.var)
    if noise.irls_depends_on_residual:
        resid = y[:, None] - expert.mean(params.expert, X)
        W = R * noise.irls_weights(resid, params.noise.var)
    else:
        W = R * noise.irls_weights(None, params.noise.var)
    if expert.m_step == "least_squares":
        ep = wls_expert_update(expert, params.expert, X, y, W, eb, options.ridge)
    else:
        ep = gauss_newton_expert_update(expert, params.expert, X, y, W, eb,
                                        options.expert_newton_steps, options.ridge)
    var = noise.variance_update(y[:, None] - expert.mean(ep, X), R, vb)
    return ep, params.noise._replace(var=var)


def m_step(model, params, X, y, resp, weights, bounds, options, log_w=None):
    gate = update_gate(model, params, X, y, resp, weights, bounds, options, log_w)
    R = resp[:, : model.n_experts] * weights[:, None]
    ep, npar = update_experts(model, params, X, y, R, bounds, options)
    return MoEParams(gate, ep, npar)


def em(model: MixtureOfExperts, X, y, weights, params: MoEParams, bounds,
       options: FitOptions, limit=None):
    """Run EM from `params`. Returns (params, n_iter, converged, history). Models whose
    M-step needs only weighted sums of fixed data statistics (linear-logit gate, linear
    experts, Gaussian noise) run the one-pass version in `fit/em_statistics.py` unless
    `options.em_path` is "generic". options.accelerate = "squarem" extrapolates along the EM
    path (fit/acceleration.py); options.finish = "newton" hands over to Newton steps near the
    optimum (fit/em_newton.py). `limit`: a traced iteration bound (fit/loop.py `iterate`)."""
    if options.finish == "newton":
        return em_then_newton(_em, model, X, y, weights, params, bounds, options, limit)
    return _em(model, X, y, weights, params, bounds, options, limit)


def _em(model, X, y, weights, params, bounds, options, limit=None):
    if options.em_path == "auto" and applies(model, options):
        return em_by_statistics(model, X, y, weights, params, bounds, options, limit)

    def step(p):
        resp, ll, log_w = e_step(model, p, X, y, weights)
        return m_step(model, p, X, y, resp, weights, bounds, options, log_w), ll

    return run_em(step, params, model, bounds, options, limit)
