"""EM throughput against the NumPy baseline along each workload dimension.

Softmax-gated Gaussian MoE, linear experts, a random truth per (k, d) (seed 0), X uniform on
[-1, 1]^d. One dimension varies at a time around the base (n = 1e5, k = 3, d = 1, R = 1
replicate; the replicate sweep uses n = 1e4):

    n  1e3, 1e4, 1e5, 1e6        k  2, 3, 4, 6, 8        d  1, 2, 4, 8, 16, 32
    R  1, 4, 16, 64, 256   (replicates fitted at once: one vmapped program)

Both EMs run the same fixed number of iterations (tol < 0), chosen so that a point budget of
2e7 point-iterations is not exceeded (5..100). Reported per configuration: moestat's compile
time (lower + compile, separately), its run time (best of up to 3), point-iterations per
second = R n iterations / seconds and fits per second; the NumPy EM's time for one replicate
times R (replicates are independent: linear in R); the ratio; peak memory — moestat's
compiled program (arguments + temporaries + outputs, XLA's memory analysis) and the NumPy
EM's (tracemalloc peak of one replicate).

The contaminated model (experiments/contaminated_distinguishable.toml's setting: d = 8, tanh
prompt expert, frozen Laplace expert; its full-preset truth and near-truth starts) varies n
(1e3..1e6, R = 1) and R (1..256, n = 1e4) with the sweep's own fitting call (run to
convergence, slow fits continued in a smaller batch); its baseline is the paper's protocol,
SciPy BFGS with the hand-derived gradient (contaminated_protocol.bfgs_fit), BASELINE_FITS fits
per configuration (one at n = 1e6) timed and scaled to R; the ratio is of fits per second.

`write_docs(records, docs)` rewrites the "Scaling" section of docs/performance.md between its
markers and draws one figure per dimension (docs/figures/scaling_<dim>.png,
scaling_contaminated_<dim>.png).
"""

from __future__ import annotations

import time
import tracemalloc
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from moestat.bench.contaminated_protocol import CONFIG, bfgs_fit, frozen_of
from moestat.bench.em_throughput import numpy_em, numpy_start
from moestat.experiments.cell import SPLIT_AFTER
from moestat.experiments.grid import replicate_keys
from moestat.experiments.runner import resolve
from moestat.experiments.settings import build
from moestat.experiments.simulation import simulate
from moestat.fit import FitOptions, compile_batch, fit_batch, near_truth
from moestat.model import MixtureOfExperts

BASE = {"n": 100_000, "k": 3, "d": 1, "R": 1}
GRID = {"n": [1_000, 10_000, 100_000, 1_000_000], "k": [2, 3, 4, 6, 8],
        "d": [1, 2, 4, 8, 16, 32], "R": [1, 4, 16, 64, 256]}
POINT_BUDGET = 2e7
CONTAMINATED_BASE = {"n": 10_000, "R": 1}
CONTAMINATED_GRID = {"n": [1_000, 10_000, 100_000, 1_000_000], "R": [1, 4, 16, 64, 256]}
BASELINE_FITS = 4  # SciPy fits timed per contaminated configuration (1 at n > 1e5)
BEGIN, END = "<!-- scaling:begin -->", "<!-- scaling:end -->"


def configurations(quick: bool = False) -> list[dict]:
    """(model, dimension, n, k, d, R) records, one dimension varying at a time: the softmax
    Gaussian MoE's, then the contaminated model's."""
    out = []
    for dim, values in GRID.items():
        for v in values[:2] if quick else values:
            c = dict(BASE, **({"n": 10_000} if dim == "R" else {}))
            c[dim] = v
            out.append({"model": "softmax", "dimension": dim, **c})
    for dim, values in CONTAMINATED_GRID.items():
        for v in values[:2] if quick else values:
            out.append({"model": "contaminated", "dimension": dim,
                        **dict(CONTAMINATED_BASE, **{dim: v})})
    return out


def _truth(model: MixtureOfExperts, k: int, d: int):
    rng = np.random.default_rng(0)
    beta1 = 2.0 * rng.standard_normal((k, d))
    beta1[-1] = 0.0
    return model.from_named({"gate.beta1": beta1, "gate.beta0": np.zeros(k),
                             "expert.a": rng.standard_normal((k, d)),
                             "expert.b": rng.standard_normal(k), "noise.var": np.full(k, 0.1)})


def measure(n: int, k: int, d: int, R: int) -> dict:
    iters = int(np.clip(POINT_BUDGET / (n * R), 5, 100))
    model = MixtureOfExperts.create("softmax", "linear", "gaussian", n_experts=k, n_features=d)
    truth = _truth(model, k, d)
    keys = jax.random.split(jax.random.PRNGKey(1), 3 * R).reshape(3, R, 2)
    X = jax.vmap(lambda key: jax.random.uniform(key, (n, d), minval=-1, maxval=1))(keys[0])
    y = jax.vmap(lambda key, x: model.sample(key, truth, x))(keys[1], X)
    start = jax.vmap(lambda key: near_truth(model, truth, key, 0.1))(keys[2])
    w = jnp.ones((R, n))
    fn = compile_batch(model, "em", FitOptions(max_iter=iters, tol=-1.0))
    t0 = time.perf_counter()
    compiled = fn.lower(X, y, w, start, None).compile()
    compile_s = time.perf_counter() - t0
    peak = _peak_bytes(compiled)
    runs = []
    for _ in range(3 if n * R * iters < 5e7 else 1):
        t0 = time.perf_counter()
        r = jax.block_until_ready(compiled(X, y, w, start, None))
        runs.append(time.perf_counter() - t0)
    moe_s = min(runs)
    assert int(np.max(r.n_iter)) == iters

    beta, coef = numpy_start(model.named(jax.tree_util.tree_map(lambda a: a[0], start)))
    var = np.asarray(start.noise.var[0])
    Xn, yn = np.asarray(X[0]), np.asarray(y[0])
    tracemalloc.start()
    t0 = time.perf_counter()
    numpy_em(Xn, yn, beta, coef, var.copy(), iters)
    np_one = time.perf_counter() - t0
    np_peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    points = n * R * iters
    return {"n": n, "k": k, "d": d, "R": R, "iterations": iters,
            "moestat_compile_s": compile_s, "moestat_s": moe_s, "numpy_s": np_one * R,
            "moestat_point_iters_per_s": points / moe_s,
            "numpy_point_iters_per_s": points / (np_one * R),
            "moestat_fits_per_s": R / moe_s, "numpy_fits_per_s": 1 / np_one,
            "ratio": np_one * R / moe_s, "moestat_peak_bytes": peak,
            "numpy_peak_bytes_per_replicate": int(np_peak),
            "device": jax.devices()[0].platform}


def _peak_bytes(compiled) -> int | None:
    mem = compiled.memory_analysis()
    return None if mem is None else int(mem.argument_size_in_bytes + mem.temp_size_in_bytes
                                        + mem.output_size_in_bytes)


def measure_contaminated(n: int, R: int) -> dict:
    """The contaminated setting at (n, R): moestat's batched fits vs SciPy BFGS fits."""
    config = resolve(CONFIG, "full")
    setting = config.settings[0]
    models = build(setting)
    truth = models.truth(n)
    X, y, start, _ = simulate(models, replicate_keys(config.seed, setting.data_stream, n, range(R)),
                              truth, n)
    options = models.options

    def fit_all():
        return jax.block_until_ready(fit_batch(models.fit_model, X, y, start,
                                               estimator=setting.estimator, options=options,
                                               split_after=SPLIT_AFTER))

    t0 = time.perf_counter()
    fit_all()
    first = time.perf_counter() - t0
    runs = []
    for _ in range(3 if n * R <= 1e6 else 1):
        t0 = time.perf_counter()
        r = fit_all()
        runs.append(time.perf_counter() - t0)
    moe_s = min(runs)
    peak = _peak_bytes(compile_batch(models.fit_model, setting.estimator, options).lower(
        X, y, jnp.ones((R, n)), start, None).compile())

    Xn, yn, st = jax.device_get((X, y, start))
    eta0, s0 = frozen_of(setting)
    fits = min(R, BASELINE_FITS if n <= 100_000 else 1)
    seconds, gaps = [], []
    tracemalloc.start()
    for i in range(fits):
        t, ll = bfgs_fit(Xn[i], yn[i], st, i, eta0, s0, "analytic")
        seconds.append(t)
        gaps.append(abs(ll - float(r.loglik[i])))
    base_peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    base_one = float(np.mean(seconds))
    iters = np.asarray(r.n_iter)
    return {"n": n, "k": models.fit_model.n_components, "d": models.fit_model.n_features, "R": R,
            "mean_iterations": float(iters.mean()), "moestat_compile_s": first - moe_s,
            "moestat_s": moe_s, "moestat_fits_per_s": R / moe_s,
            "moestat_point_iters_per_s": n * float(iters.sum()) / moe_s,
            "baseline_fits_run": fits, "baseline_s": base_one * R,
            "baseline_fits_per_s": 1 / base_one, "ratio": base_one * R / moe_s,
            "moestat_peak_bytes": peak, "baseline_peak_bytes_per_replicate": int(base_peak),
            "max_loglik_gap_per_sample": float(max(gaps)),
            "device": jax.devices()[0].platform}


def run(quick: bool = False, on_result=None) -> list[dict]:
    out = []
    for c in configurations(quick):
        if c["model"] == "contaminated":
            rec = {"model": "contaminated", "dimension": c["dimension"],
                   **measure_contaminated(c["n"], c["R"])}
        else:
            rec = {"model": "softmax", "dimension": c["dimension"],
                   **measure(c["n"], c["k"], c["d"], c["R"])}
        out.append(rec)
        if on_result:
            on_result(rec)
    return out


def line(r: dict) -> str:
    """One progress line for a record of either model."""
    head = f"  {r['model']} {r['dimension']}: n={r['n']:g} k={r['k']} d={r['d']} R={r['R']}: "
    if r["model"] == "contaminated":
        return (head + f"moestat {r['moestat_fits_per_s']:.3g} vs SciPy BFGS "
                f"{r['baseline_fits_per_s']:.3g} fits/s ({r['ratio']:.1f}x), "
                f"compile {r['moestat_compile_s']:.2f} s")
    return (head + f"moestat {r['moestat_point_iters_per_s']:.3g} vs NumPy "
            f"{r['numpy_point_iters_per_s']:.3g} point-iter/s ({r['ratio']:.1f}x), "
            f"compile {r['moestat_compile_s']:.2f} s")


def _mb(b) -> str:
    return "" if b is None else f"{b / 1e6:.1f}"


def _markdown(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(map(str, row)) + " |" for row in rows])


def contaminated_table(records: list[dict]) -> str:
    """Markdown table of the contaminated model's records."""
    return _markdown(
        ["dimension", "n", "R", "moestat mean iterations", "compile s", "moestat fits/s",
         "SciPy BFGS fits/s", "ratio", "SciPy fits timed", "moestat point-iter/s",
         "moestat peak MB", "SciPy peak MB (1 replicate)", "max log-lik gap per sample"],
        [[r["dimension"], f"{r['n']:g}", r["R"], f"{r['mean_iterations']:.1f}",
          f"{r['moestat_compile_s']:.2f}", f"{r['moestat_fits_per_s']:.3g}",
          f"{r['baseline_fits_per_s']:.3g}", f"{r['ratio']:.1f}x", r["baseline_fits_run"],
          f"{r['moestat_point_iters_per_s']:.3g}", _mb(r["moestat_peak_bytes"]),
          _mb(r["baseline_peak_bytes_per_replicate"]), f"{r['max_loglik_gap_per_sample']:.1e}"]
         for r in records])


def table(records: list[dict]) -> str:
    """Markdown table of the softmax Gaussian MoE's records."""
    return _markdown(
        ["dimension", "n", "k", "d", "R", "iterations", "compile s", "moestat point-iter/s",
         "NumPy point-iter/s", "ratio", "moestat fits/s", "moestat peak MB",
         "NumPy peak MB (1 replicate)"],
        [[r["dimension"], f"{r['n']:g}", r["k"], r["d"], r["R"], r["iterations"],
          f"{r['moestat_compile_s']:.2f}", f"{r['moestat_point_iters_per_s']:.3g}",
          f"{r['numpy_point_iters_per_s']:.3g}", f"{r['ratio']:.1f}x",
          f"{r['moestat_fits_per_s']:.3g}", _mb(r["moestat_peak_bytes"]),
          _mb(r["numpy_peak_bytes_per_replicate"])] for r in records])


def figure(records: list[dict], dim: str, path: Path, model: str = "softmax") -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from moestat.files import write_atomic

    rs = [r for r in records if r["dimension"] == dim and r["model"] == model]
    x = [r[dim] for r in rs]
    if model == "softmax":
        key, base_key, ylabel = ("moestat_point_iters_per_s", "numpy_point_iters_per_s",
                                 "point-iterations per second")
        labels, title = ("moestat (JAX)", "NumPy EM"), f"EM throughput vs {dim}"
    else:
        key, base_key, ylabel = "moestat_fits_per_s", "baseline_fits_per_s", "fits per second"
        labels = ("moestat (JAX)", "SciPy BFGS (paper protocol)")
        title = f"contaminated model, fits/s vs {dim}"
    fig, ax = plt.subplots(figsize=(5, 3.6))
    ax.loglog(x, [r[key] for r in rs], "o-", label=labels[0])
    ax.loglog(x, [r[base_key] for r in rs], "s--", label=labels[1])
    for xi, r in zip(x, rs, strict=True):
        ax.annotate(f"{r['ratio']:.1f}x", (xi, r[key]),
                    textcoords="offset points", xytext=(0, 6), ha="center", fontsize=8)
    names = {"n": "n (samples)", "k": "k (experts)", "d": "d (features)",
             "R": "R (replicates fitted at once)"}
    ax.set_xlabel(names[dim])
    ax.set_ylabel(ylabel)
    base = ", ".join(f"{k} = {v:g}" for k, v in rs[0].items()
                     if k in ("n", "k", "d", "R") and k != dim)
    ax.set_title(f"{title} ({base})", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    write_atomic(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110))
    plt.close(fig)
    return path


def write_docs(records: list[dict], docs: Path) -> list[Path]:
    """Rewrite the Scaling section of DOCS/performance.md and its figures."""
    from moestat.files import write_text_atomic

    docs = Path(docs)
    soft = [r for r in records if r["model"] == "softmax"]
    cont = [r for r in records if r["model"] == "contaminated"]
    paths = [figure(soft, dim, docs / "figures" / f"scaling_{dim}.png")
             for dim in GRID if any(r["dimension"] == dim for r in soft)]
    paths += [figure(cont, dim, docs / "figures" / f"scaling_contaminated_{dim}.png",
                     "contaminated")
              for dim in CONTAMINATED_GRID if any(r["dimension"] == dim for r in cont)]
    page = docs / "performance.md"
    text = page.read_text()
    if BEGIN not in text or END not in text:
        raise ValueError(f"{page} has no {BEGIN} ... {END} section to rewrite")
    figs = "\n".join(f"![{p.stem.replace('_', ' ')}](figures/{p.name})" for p in paths)
    body = (f"{BEGIN}\nGenerated by `moestat bench --scaling --docs docs` "
            f"({time.strftime('%Y-%m-%d')}, device {records[0]['device']}).\n\n"
            f"Softmax Gaussian MoE, linear experts, EM vs the NumPy EM:\n\n{table(soft)}\n\n"
            f"Contaminated model (d = 8, tanh prompt expert), moestat vs SciPy BFGS with the "
            f"analytic gradient:\n\n{contaminated_table(cont)}\n\n{figs}\n{END}")
    head, rest = text.split(BEGIN, 1)
    write_text_atomic(page, head + body + rest.split(END, 1)[1])
    return [page, *paths]
