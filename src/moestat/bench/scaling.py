"""EM throughput against the NumPy baseline along each workload dimension (issue 8).

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

`write_docs(records, docs)` rewrites the "Scaling" section of docs/performance.md between its
markers and draws one figure per dimension (docs/figures/scaling_<dim>.png).
"""

from __future__ import annotations

import time
import tracemalloc
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from moestat.bench.em_throughput import numpy_em, numpy_start
from moestat.fit import FitOptions, near_truth
from moestat.fit.api import _compiled
from moestat.model import MixtureOfExperts

BASE = {"n": 100_000, "k": 3, "d": 1, "R": 1}
GRID = {"n": [1_000, 10_000, 100_000, 1_000_000], "k": [2, 3, 4, 6, 8],
        "d": [1, 2, 4, 8, 16, 32], "R": [1, 4, 16, 64, 256]}
POINT_BUDGET = 2e7
BEGIN, END = "<!-- scaling:begin -->", "<!-- scaling:end -->"


def configurations(quick: bool = False) -> list[dict]:
    """(dimension, n, k, d, R) records, one dimension varying at a time."""
    out = []
    for dim, values in GRID.items():
        if quick:
            values = values[:2]
        for v in values:
            c = dict(BASE, **({"n": 10_000} if dim == "R" else {}))
            c[dim] = v
            out.append({"dimension": dim, **c})
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
    fn = _compiled(model, "em", FitOptions(max_iter=iters, tol=-1.0), True)
    t0 = time.perf_counter()
    compiled = fn.lower(X, y, w, start, None).compile()
    compile_s = time.perf_counter() - t0
    mem = compiled.memory_analysis()
    peak = None if mem is None else int(mem.argument_size_in_bytes + mem.temp_size_in_bytes
                                         + mem.output_size_in_bytes)
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


def run(quick: bool = False, on_result=None) -> list[dict]:
    out = []
    for c in configurations(quick):
        rec = {"dimension": c["dimension"], **measure(c["n"], c["k"], c["d"], c["R"])}
        out.append(rec)
        if on_result:
            on_result(rec)
    return out


def table(records: list[dict]) -> str:
    """Markdown table of the records."""
    rows = ["| dimension | n | k | d | R | iterations | compile s | moestat point-iter/s | "
            "NumPy point-iter/s | ratio | moestat fits/s | moestat peak MB | NumPy peak MB "
            "(1 replicate) |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in records:
        peak = "" if r["moestat_peak_bytes"] is None else f"{r['moestat_peak_bytes'] / 1e6:.1f}"
        rows.append(
            f"| {r['dimension']} | {r['n']:g} | {r['k']} | {r['d']} | {r['R']} | "
            f"{r['iterations']} | {r['moestat_compile_s']:.2f} | "
            f"{r['moestat_point_iters_per_s']:.3g} | {r['numpy_point_iters_per_s']:.3g} | "
            f"{r['ratio']:.1f}x | {r['moestat_fits_per_s']:.3g} | {peak} | "
            f"{r['numpy_peak_bytes_per_replicate'] / 1e6:.1f} |")
    return "\n".join(rows)


def figure(records: list[dict], dim: str, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from moestat.files import write_atomic

    rs = [r for r in records if r["dimension"] == dim]
    x = [r[dim] for r in rs]
    fig, ax = plt.subplots(figsize=(5, 3.6))
    ax.loglog(x, [r["moestat_point_iters_per_s"] for r in rs], "o-", label="moestat (JAX)")
    ax.loglog(x, [r["numpy_point_iters_per_s"] for r in rs], "s--", label="NumPy EM")
    for xi, r in zip(x, rs, strict=True):
        ax.annotate(f"{r['ratio']:.1f}x", (xi, r["moestat_point_iters_per_s"]),
                    textcoords="offset points", xytext=(0, 6), ha="center", fontsize=8)
    names = {"n": "n (samples)", "k": "k (experts)", "d": "d (features)",
             "R": "R (replicates fitted at once)"}
    ax.set_xlabel(names[dim])
    ax.set_ylabel("point-iterations per second")
    base = ", ".join(f"{key} = {v:g}" for key, v in rs[0].items()
                     if key in ("n", "k", "d", "R") and key != dim)
    ax.set_title(f"EM throughput vs {dim} ({base})", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    write_atomic(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110))
    plt.close(fig)
    return path


def write_docs(records: list[dict], docs: Path) -> list[Path]:
    """Rewrite the Scaling section of DOCS/performance.md and its figures."""
    from moestat.files import write_text_atomic

    docs = Path(docs)
    paths = [figure(records, dim, docs / "figures" / f"scaling_{dim}.png")
             for dim in GRID if any(r["dimension"] == dim for r in records)]
    page = docs / "performance.md"
    text = page.read_text()
    if BEGIN not in text or END not in text:
        raise ValueError(f"{page} has no {BEGIN} ... {END} section to rewrite")
    figs = "\n".join(f"![scaling {p.stem[8:]}](figures/{p.name})" for p in paths)
    body = (f"{BEGIN}\nGenerated by `moestat bench --scaling --docs docs` "
            f"({time.strftime('%Y-%m-%d')}, device {records[0]['device']}):\n\n"
            f"{table(records)}\n\n{figs}\n{END}")
    head, rest = text.split(BEGIN, 1)
    write_text_atomic(page, head + body + rest.split(END, 1)[1])
    return [page, *paths]
