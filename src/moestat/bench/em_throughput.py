"""EM throughput: moestat (JAX, jit, float64) vs a plain vectorised NumPy EM, same process.

Softmax-gated Gaussian MoE with linear experts, k = 3, d = 1, n = 200 000, 100 EM iterations
(tol < 0, so both run every iteration). Both implement the same algorithm: log-space
E-step, one Newton (IRLS) step for the gate, closed-form weighted least squares and variances
for the experts. Reported: point-iterations per second (n * iterations / seconds) for each,
the ratio, and moestat's compile time separately (first call minus a warm call); and the same
iterations as a user's one-start fit runs them (`table_fit.fit_table`: standardised data padded
to its bucket, a k-means start), against the same NumPy time and against the core on that
fit's own data (iterations cost more on standardised data here: the gate's step-halving).

Run: moestat bench [--n 200000] [--iters 100] [--json]
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np

from moestat import MixtureOfExperts
from moestat.fit import FitOptions, fit, near_truth

TRUTH = {"gate.beta1": [[6.0], [-6.0], [0.0]], "gate.beta0": [-1.0, -1.0, 0.0],
         "expert.a": [[-4.0], [4.0], [1.0]], "expert.b": [3.0, -3.0, 0.0],
         "noise.var": [0.09, 0.16, 0.1]}


RESOLVABLE = 1e-13  # halve a failed gate step only while its predicted gain per sample exceeds this


def _logsumexp(a):
    m = a.max(axis=1, keepdims=True)
    return m[:, 0] + np.log(np.exp(a - m).sum(axis=1))


def numpy_em(X, y, beta, coef, var, iters):
    """Vectorised NumPy EM of the same model (written for speed: max-shifted logsumexp,
    BLAS matrix products for every Hessian / normal-equation block). X (n, d); beta (k, d + 1)
    gate [slopes, intercept] rows with the last fixed at 0; coef (k, d + 1) expert [a, b];
    var (k,)."""
    n = X.shape[0]
    Phi = np.column_stack([X, np.ones(n)])  # (n, m = d + 1) for gate and experts
    k, m = beta.shape
    f = k - 1

    def q(b, resp):
        z = Phi @ b.T
        return np.sum(resp * (z - _logsumexp(z)[:, None]))

    for _ in range(iters):
        logits = Phi @ beta.T
        logw = logits - _logsumexp(logits)[:, None]
        means = Phi @ coef.T
        lj = logw - 0.5 * (np.log(2 * np.pi * var) + (y[:, None] - means) ** 2 / var)
        ll = _logsumexp(lj)
        resp = np.exp(lj - ll[:, None])
        # gate: one Newton step with step-halving on Q_gate
        W = np.exp(logw)
        G = (resp - W).T @ Phi
        H = np.empty((f, m, f, m))
        for i in range(f):
            for j in range(f):
                c = W[:, i] * ((i == j) - W[:, j])
                H[i, :, j, :] = (Phi * c[:, None]).T @ Phi
        H = H.reshape(m * f, m * f)
        delta = np.linalg.solve(H + 1e-10 * np.trace(H) / (m * f) * np.eye(m * f),
                                G[:f].ravel()).reshape(f, m)
        q0, s = q(beta, resp), 1.0
        cand = beta.copy()
        cand[:f] += delta
        qc = q(cand, resp)
        g, Hd = G[:f].ravel(), H @ delta.ravel()
        while (qc < q0 and s > 2.0**-20
               and s * (g @ delta.ravel()) - 0.5 * s * s * (delta.ravel() @ Hd) > RESOLVABLE * n):
            s /= 2
            cand = beta.copy()
            cand[:f] += s * delta
            qc = q(cand, resp)
        if qc >= q0:
            beta = cand
        # experts: weighted least squares, then variances
        for i in range(k):
            Pr = Phi * resp[:, i : i + 1]
            coef[i] = np.linalg.solve(Pr.T @ Phi, Pr.T @ y)
        var = np.sum(resp * (y[:, None] - Phi @ coef.T) ** 2, axis=0) / resp.sum(axis=0)
    return beta, coef, var, ll.sum()


# Work of one point-iteration of moestat's one-pass EM at k = 3, d = 1 (fit/em_statistics.py),
# counted from the code: E-step ~60 arithmetic operations + 6 exp + 1 log, the (8 x n)(n x 6)
# statistics product 96, the gate step's acceptance pass ~8 + 2 expm1 + 1 log1p; memory, the
# least any formulation of this algorithm moves: x, y, w in (24 B), L out and back (2 x 64 B),
# D (6 columns, 48 B), the acceptance pass's x, W, w (32 B).
FLOPS_PER_POINT_ITER = 164  # arithmetic operations, transcendental functions not counted
TRANSCENDENTALS_PER_POINT_ITER = 10
BYTES_PER_POINT_ITER = 232


def machine_limits() -> dict:
    """This machine's measured peaks (same process, float64): a 2048 x 2048 matrix product
    (GFLOP/s, all cores) and streaming bandwidth (GB/s, y = 2x + 1 over 20M elements: 16 bytes
    moved per element)."""
    a = jnp.ones((2048, 2048))
    v = jnp.ones(20_000_000)
    mm = jax.jit(lambda a: a @ a)
    st = jax.jit(lambda v: 2.0 * v + 1.0)
    jax.block_until_ready((mm(a), st(v)))  # compile
    return {"matmul_gflops": 2 * 2048**3 / best_seconds(lambda: mm(a), 5)[0] / 1e9,
            "stream_gb_per_s": 16 * v.size / best_seconds(lambda: st(v), 5)[0] / 1e9}


def best_seconds(call, repeats: int = 3):
    """(best wall time of `repeats` calls, the last result), each call waited for."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = jax.block_until_ready(call())
        times.append(time.perf_counter() - t0)
    return min(times), out


def workload(n: int = 200_000, iters: int = 100):
    """The benchmark's model, data, start and options (exactly `iters` EM steps)."""
    model = MixtureOfExperts.create("softmax", "linear", "gaussian", n_experts=3, n_features=1)
    truth = model.from_named(TRUTH)
    X = jax.random.uniform(jax.random.PRNGKey(0), (n, 1), minval=-1, maxval=1)
    y = model.sample(jax.random.PRNGKey(1), truth, X)
    start = near_truth(model, truth, jax.random.PRNGKey(2), 0.1)
    return model, X, y, start, FitOptions(max_iter=iters, tol=-1.0)  # never "converged"


def run(n: int = 200_000, iters: int = 100) -> dict:
    """Both EMs on the same data from the same start, `iters` iterations each."""
    model, X, y, start, opts = workload(n, iters)
    first, _ = best_seconds(lambda: fit(model, X, y, start, options=opts), 1)
    jax_s, r = best_seconds(lambda: fit(model, X, y, start, options=opts))
    assert int(r.n_iter) == iters

    Xn, yn = np.asarray(X), np.asarray(y)
    table_first, _ = best_seconds(lambda: _table_fit(model, Xn, yn, opts), 1)
    table_s, tf = best_seconds(lambda: _table_fit(model, Xn, yn, opts))
    Xp, yp, wp = tf.data  # the core on the user fit's own (standardised, padded) data
    best_seconds(lambda: fit(model, Xp, yp, tf.result.params, weights=wp, options=opts), 1)
    core_same_s, _ = best_seconds(lambda: fit(model, Xp, yp, tf.result.params, weights=wp,
                                              options=opts))
    named = model.named(start)
    beta, coef = numpy_start(named)
    t0 = time.perf_counter()
    _, _, _, ll_np = numpy_em(Xn, yn, beta, coef, named["noise.var"].copy(), iters)
    np_s = time.perf_counter() - t0
    return {
        "n": n, "k": 3, "d": 1, "iterations": iters, "device": jax.devices()[0].platform,
        "moestat_seconds": jax_s, "moestat_compile_seconds": first - jax_s,
        "numpy_seconds": np_s,
        "table_fit_seconds": table_s, "table_fit_compile_seconds": table_first - table_s,
        "table_fit_iterations": int(tf.result.n_iter), "table_fit_ratio": np_s / table_s,
        "core_same_data_seconds": core_same_s,
        "moestat_point_iters_per_s": n * iters / jax_s,
        "numpy_point_iters_per_s": n * iters / np_s,
        "ratio": np_s / jax_s,
        "loglik_moestat": float(r.loglik) * n, "loglik_numpy_last_estep": float(ll_np),
        **_limits(n * iters / jax_s),
    }


def _table_fit(model, X, y, options):
    """What the estimator and `moestat fit` run with one start (k-means on (x, y), no
    exploration): standardised, padded to its bucket, `options.max_iter` EM steps."""
    from moestat.table_fit import fit_table

    return fit_table(model, X, y, n_init=1, explore=1, options=options, seed=0)


def _limits(point_iters_per_s: float) -> dict:
    """moestat's achieved arithmetic and memory rates against the machine's measured peaks."""
    peaks = machine_limits()
    gflops = FLOPS_PER_POINT_ITER * point_iters_per_s / 1e9
    gbs = BYTES_PER_POINT_ITER * point_iters_per_s / 1e9
    return {**peaks, "achieved_gflops": gflops, "achieved_gb_per_s": gbs,
            "fraction_of_matmul_peak": gflops / peaks["matmul_gflops"],
            "fraction_of_stream_bandwidth": gbs / peaks["stream_gb_per_s"]}


def lines(out: dict) -> list[str]:
    return [
        f"EM throughput, softmax Gaussian MoE, linear experts, k=3 d=1 n={out['n']}, "
        f"{out['iterations']} iterations ({out['device']})",
        f"  moestat (JAX) : {out['moestat_point_iters_per_s']:.3e} point-iter/s "
        f"({out['moestat_seconds']:.3f} s; compile {out['moestat_compile_seconds']:.2f} s)",
        f"  NumPy baseline: {out['numpy_point_iters_per_s']:.3e} point-iter/s "
        f"({out['numpy_seconds']:.3f} s)",
        f"  ratio         : {out['ratio']:.1f}x",
        f"  one-start user fit (estimator / moestat fit, standardised, padded, k-means start): "
        f"{out['table_fit_seconds']:.3f} s for {out['table_fit_iterations']} iterations, "
        f"{out['table_fit_ratio']:.1f}x NumPy (compile {out['table_fit_compile_seconds']:.2f} s); "
        f"the core's {out['iterations']} iterations on the same standardised, padded data: "
        f"{out['core_same_data_seconds']:.3f} s",
        f"  machine       : {out['matmul_gflops']:.1f} GFLOP/s (float64 matrix product), "
        f"{out['stream_gb_per_s']:.1f} GB/s (streaming)",
        f"  moestat uses  : {out['achieved_gflops']:.1f} GFLOP/s "
        f"({100 * out['fraction_of_matmul_peak']:.0f}% of the product's rate), "
        f"{out['achieved_gb_per_s']:.1f} GB/s of necessary traffic "
        f"({100 * out['fraction_of_stream_bandwidth']:.0f}% of streaming)",
        f"  total log-lik : moestat {out['loglik_moestat']:.4f}, NumPy (last E-step) "
        f"{out['loglik_numpy_last_estep']:.4f}"]


def numpy_start(named: dict):
    """moestat's named parameters as the NumPy EM's (beta, coef): [slopes, intercept] rows."""
    return (np.column_stack([named["gate.beta1"], named["gate.beta0"]]),
            np.column_stack([named["expert.a"], named["expert.b"]]))
