"""The contaminated-MoE rate study: moestat's sweep vs a straightforward SciPy/BFGS protocol.

Workload: `experiments/contaminated_distinguishable.toml` (full preset: 20 log-spaced n in
[1e3, 1e5], 40 replicates = 800 fits, d = 8, tanh experts, Laplace frozen expert).

* moestat: the whole sweep in this process (data, jitted vmapped EM per cell, metrics), from a
  cold start: the persistent compilation cache is off, so every compile is paid and counted.
* baselines: the paper's protocol written the plain way — one fit at a time,
  `scipy.optimize.minimize(method="BFGS")` on the mean negative log-likelihood in
  (beta, tau, eta, log nu), vectorised NumPy, from the same near-truth start, on the same data
  (moestat's simulator; its cost is not charged to the baselines). Two variants:
  "numeric" — no gradient given, so SciPy differentiates by finite differences (what the
  straightforward script does); "analytic" — the hand-derived gradient (a careful script).
  Each runs `--baseline-replicates` of the 40 replicates at every n and its time is scaled
  by 40 / that number (fits are independent, so time is linear in replicates).
  A check that both solve the same problem: at every baseline fit, the BFGS optimum's
  log-likelihood is compared with moestat's on the same replicate (reported: the largest
  per-sample difference).

Run: moestat bench --contaminated [--preset full|quick] [--baseline-replicates 4] [--json]
     (or .venv/bin/python benchmarks/contaminated_protocol.py with the same options)
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import jax
import numpy as np
from scipy.optimize import minimize

from moestat.experiments.grid import replicate_keys
from moestat.experiments.runner import prepare_out, resolve, run_sweep
from moestat.experiments.settings import build
from moestat.experiments.simulation import simulate
from moestat.experiments.store import read_rows
from moestat.shipped import experiment_path

CONFIG = experiment_path("contaminated_distinguishable")


def _log_sigmoid(z):
    return -np.logaddexp(0.0, -z)


def neg_loglik_and_grad(theta, X, y, eta0, s0):
    """Mean negative log-likelihood of (1 - g) Laplace(y; tanh(eta0.x), s0) + g N(y; tanh(eta.x),
    nu), g = sigmoid(beta.x + tau), and its gradient in theta = (beta, tau, eta, log nu)."""
    d = X.shape[1]
    beta, tau, eta, log_nu = theta[:d], theta[d], theta[d + 1:2 * d + 1], theta[-1]
    nu = np.exp(log_nu)
    z = X @ beta + tau
    h = np.tanh(X @ eta)
    r = y - h
    log_f1 = -0.5 * np.log(2 * np.pi * nu) - 0.5 * r**2 / nu
    log_f0 = -np.log(2 * s0) - np.abs(y - np.tanh(X @ eta0)) / s0
    a1, a0 = _log_sigmoid(z) + log_f1, _log_sigmoid(-z) + log_f0
    log_p = np.logaddexp(a0, a1)
    post = np.exp(a1 - log_p)  # posterior probability of the prompt
    g = np.exp(_log_sigmoid(z))
    dz = post - g
    deta = post * r / nu * (1 - h**2)
    dlognu = post * (0.5 * r**2 / nu - 0.5)
    n = y.shape[0]
    grad = np.concatenate([X.T @ dz, [dz.sum()], X.T @ deta, [dlognu.sum()]])
    return -log_p.sum() / n, -grad / n


def baseline(config, replicates: int, gradient: str):
    setting = config.settings[0]
    models = build(setting)
    eta0, s0 = frozen_of(setting)
    seconds, lls = 0.0, {}
    for n in config.n_values():
        truth = models.truth(n)
        keys = replicate_keys(config.seed, setting.data_stream, n, range(replicates))
        X, y, start, _ = jax.device_get(simulate(models, keys, truth, n))
        for r in range(replicates):
            t, lls[(n, r)] = bfgs_fit(X[r], y[r], start, r, eta0, s0, gradient)
            seconds += t
    return seconds, lls


def frozen_of(setting):
    """The frozen Laplace expert's (eta0, scale s0) of a contaminated setting."""
    return (np.asarray(setting.frozen.params["eta"], float),
            float(np.sqrt(setting.frozen.var / 2)))


def bfgs_fit(X, y, start, r: int, eta0, s0, gradient: str) -> tuple[float, float]:
    """One paper-protocol fit of replicate r from moestat's start: (seconds, mean
    log-likelihood at the BFGS optimum)."""
    x0 = np.concatenate([start.gate.beta[r], [start.gate.tau[r]], start.expert.eta[r, 0],
                         [np.log(start.noise.var[r, 0])]])
    t = time.perf_counter()
    if gradient == "analytic":
        res = minimize(neg_loglik_and_grad, x0, args=(X, y, eta0, s0), jac=True,
                       method="BFGS", options={"gtol": 1e-7, "maxiter": 2000})
    else:
        res = minimize(lambda th, *a: neg_loglik_and_grad(th, *a)[0], x0,
                       args=(X, y, eta0, s0), method="BFGS", options={"maxiter": 2000})
    return time.perf_counter() - t, -float(res.fun)


def moestat_sweep(config):
    with tempfile.TemporaryDirectory() as d:
        out = Path(d) / "run"
        t = time.perf_counter()
        prepare_out(config, out, True)
        run_sweep(config, out)
        seconds = time.perf_counter() - t
        rows = read_rows(out).to_pydict()
    lls = {(n, r): ll for n, r, ll in zip(rows["n"], rows["replicate"], rows["loglik"],
                                          strict=True)}
    return seconds, lls


def run(preset: str = "full", baseline_replicates: int = 4) -> dict:
    """moestat's sweep (cold) and both SciPy baselines on the same grid; times and ratios."""
    config = resolve(CONFIG, preset)
    fits = len(config.n_values()) * config.replicates
    t_moe, ll_moe = moestat_sweep(config)
    out = {"preset": preset, "fits": fits, "moestat_seconds": round(t_moe, 2), "baselines": {}}
    for gradient in ("numeric", "analytic"):
        t_base, ll_base = baseline(config, baseline_replicates, gradient)
        t_all = t_base * config.replicates / baseline_replicates
        out["baselines"][gradient] = {
            "seconds_measured": round(t_base, 2), "replicates_run": baseline_replicates,
            "seconds_all_fits": round(t_all, 1), "speedup": round(t_all / t_moe, 2),
            "max_loglik_gap_per_sample": max(abs(ll_base[k] - ll_moe[k]) for k in ll_base)}
    return out


def lines(out: dict) -> list[str]:
    text = [f"contaminated_distinguishable ({out['preset']}: {out['fits']} fits, d = 8)",
            f"  moestat sweep (cold, compiles included): {out['moestat_seconds']:8.1f} s"]
    for gradient, b in out["baselines"].items():
        text.append(f"  SciPy BFGS, {gradient} gradient, {b['replicates_run']} replicates per "
                    f"n: {b['seconds_measured']:.1f} s -> {b['seconds_all_fits']:.1f} s for all "
                    f"{out['fits']} fits; moestat speedup {b['speedup']:.2f}x; max |loglik gap| "
                    f"per sample {b['max_loglik_gap_per_sample']:.1e}")
    return text
