"""moestat against R's flexmix on users' data: the best log-likelihood each finds and the wall
time of each, cold, in one run (`moestat bench --peer`, benchmarks/peer_flexmix.py).

The model is the same on both sides: k Gaussian linear experts with their own variances under a
softmax (multinomial-logit) gate in the same features — flexmix's
`stepFlexmix(y ~ x, k = k, nrep = 20, concomitant = FLXPmultinom(~ x))` against
`moestat fit DATA --experts k --n-init 20`. Each side runs as a fresh process per case (R
loading flexmix; Python importing moestat and JAX), timed from outside. moestat runs twice per
case: with its compilation cache empty (a first-ever fit: every program traced and compiled)
and warm (the cache a previous fit of the same shape left).

Cases: the regression data sets flexmix and mixtools ship (NPreg linear and quadratic,
CO2data, tonedata with k = 2 and 3, NOdata; exported from R, so they exist only when R does)
and synthetic ones written here with fixed seeds (crossing lines, a nested quadratic, a feature
on the scale 1e3, k = 4, n = 1e4 and 1e5).

flexmix needs R and the Debian package r-cran-flexmix (r-cran-mixtools for its data sets):
`apt-get install r-cran-flexmix r-cran-mixtools`. Without `Rscript` the benchmark runs moestat
alone on the synthetic cases and says so.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

R_EXPORT = """
suppressMessages({library(flexmix); library(mixtools)})
out <- commandArgs(TRUE)[1]
data(NPreg); write.csv(data.frame(x = NPreg$x, x2 = NPreg$x^2, y = NPreg$yn),
                       file.path(out, "npreg.csv"), row.names = FALSE)
data(CO2data); write.csv(CO2data[, c("GNP", "CO2")], file.path(out, "co2.csv"), row.names = FALSE)
data(tonedata); write.csv(tonedata, file.path(out, "tone.csv"), row.names = FALSE)
data(NOdata); write.csv(NOdata, file.path(out, "no.csv"), row.names = FALSE)
"""

R_FIT = """
args <- commandArgs(TRUE)  # csv target features k nrep seed
suppressMessages(library(flexmix))
d <- read.csv(args[1]); feats <- strsplit(args[3], ",")[[1]]
f <- as.formula(paste(args[2], "~", paste(feats, collapse = "+")))
g <- as.formula(paste("~", paste(feats, collapse = "+")))
set.seed(as.integer(args[6]))
m <- stepFlexmix(f, data = d, k = as.integer(args[4]), nrep = as.integer(args[5]),
                 concomitant = FLXPmultinom(g), verbose = FALSE)
cat(sprintf("loglik %.6f k %d\\n", logLik(m), m@k))
"""


@dataclass(frozen=True)
class Case:
    name: str
    csv: str
    target: str
    features: str
    k: int
    source: str  # "R" (a data set flexmix or mixtools ships) or "synthetic"


R_CASES = [
    Case("NPreg, linear", "npreg.csv", "y", "x", 2, "R"),
    Case("NPreg, quadratic", "npreg.csv", "y", "x,x2", 2, "R"),
    Case("CO2data", "co2.csv", "CO2", "GNP", 2, "R"),
    Case("tonedata, k = 2", "tone.csv", "tuned", "stretchratio", 2, "R"),
    Case("tonedata, k = 3", "tone.csv", "tuned", "stretchratio", 3, "R"),
    Case("NOdata", "no.csv", "Equivalence", "NO", 2, "R"),
]
SYNTHETIC_CASES = [
    Case("crossing lines, n = 200", "crossing.csv", "y", "x", 2, "synthetic"),
    Case("nested quadratic, n = 500", "quadratic.csv", "y", "x,x2", 2, "synthetic"),
    Case("feature on scale 1e3, n = 300", "unscaled.csv", "y", "x", 2, "synthetic"),
    Case("four lines, k = 4, n = 1000", "four.csv", "y", "x", 4, "synthetic"),
    Case("crossing lines, n = 1e4", "crossing_1e4.csv", "y", "x", 2, "synthetic"),
    Case("three lines, k = 3, n = 1e5", "three_1e5.csv", "y", "x", 3, "synthetic"),
]


def _lines(rng, n, slopes, intercepts, gate_slopes, sd, x_scale=1.0, x_shift=0.0):
    """n rows of a softmax-gated mixture of lines in x ~ U(-1, 1) (then scaled and shifted)."""
    x = rng.uniform(-1, 1, n)
    logits = np.outer(x, gate_slopes)
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    z = (rng.uniform(size=n)[:, None] > np.cumsum(p, axis=1)).sum(axis=1)
    y = np.asarray(slopes)[z] * x + np.asarray(intercepts)[z] + sd * rng.normal(size=n)
    return x * x_scale + x_shift, y


def write_synthetic(directory: Path) -> None:
    """The synthetic cases' tables (fixed seeds)."""
    rng = np.random.default_rng(2025)

    def save(name, columns):
        header = ",".join(columns)
        np.savetxt(directory / name, np.column_stack(list(columns.values())), delimiter=",",
                   header=header, comments="", fmt="%.10g")

    x, y = _lines(rng, 200, [1.5, -1.5], [0.0, 0.0], [0.0, 0.0], 0.3)
    save("crossing.csv", {"x": x, "y": y})
    x = rng.uniform(0, 10, 500)
    z = rng.uniform(size=500) < 0.5
    y = np.where(z, 5 * x, 15 + 10 * x - x**2) + 3 * rng.normal(size=500)  # NPreg's recipe
    save("quadratic.csv", {"x": x, "x2": x**2, "y": y})
    x, y = _lines(rng, 300, [2.0, -1.0], [1.0, -0.5], [4.0, 0.0], 0.3, 1e3, 1e4)
    save("unscaled.csv", {"x": x, "y": y})
    x, y = _lines(rng, 1000, [3, 1, -1, -3], [0, 2, -2, 0.5], [0, 0, 0, 0], 0.3)
    save("four.csv", {"x": x, "y": y})
    x, y = _lines(rng, 10_000, [1.5, -1.5], [0.0, 0.0], [2.0, 0.0], 0.5)
    save("crossing_1e4.csv", {"x": x, "y": y})
    x, y = _lines(rng, 100_000, [2, 0, -2], [0, 1, 0], [3, 0, -3], 0.5)
    save("three_1e5.csv", {"x": x, "y": y})


FLEXMIX_TIMEOUT = 900.0  # seconds: flexmix's fit is recorded as unfinished beyond this


def _timed(cmd, env=None, timeout=None) -> tuple[float, str]:
    t = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False,
                          timeout=timeout)
    seconds = time.perf_counter() - t
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, cmd))} exited {done.returncode}: "
                           f"{done.stderr.strip()[-300:]}")
    return seconds, done.stdout


def moestat_fit(case: Case, directory: Path, cache: Path, n_init: int, seed: int) -> dict:
    env = {**os.environ, "MOESTAT_CACHE_DIR": str(cache)}
    cmd = [sys.executable, "-m", "moestat", "fit", str(directory / case.csv), "--target",
           case.target, "--features", case.features, "--experts", str(case.k), "--n-init",
           str(n_init), "--seed", str(seed), "--json"]
    seconds, out = _timed(cmd, env)
    fit = json.loads(out)
    return {"loglik": fit["loglik"], "seconds": seconds, "converged": fit["converged"],
            "degenerate": fit["degenerate"], "reached_best": fit["restarts"]["reached_best"]}


def flexmix_fit(case: Case, directory: Path, script: Path, nrep: int, seed: int,
                timeout: float = FLEXMIX_TIMEOUT) -> dict:
    """flexmix's best of `nrep` restarts; loglik None when it did not finish in `timeout` s."""
    try:
        seconds, out = _timed(["Rscript", str(script), str(directory / case.csv), case.target,
                               case.features, str(case.k), str(nrep), str(seed)],
                              timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"loglik": None, "k": None, "seconds": timeout, "finished": False}
    m = re.search(r"loglik (\S+) k (\d+)", out)
    return {"loglik": float(m.group(1)), "k": int(m.group(2)), "seconds": seconds,
            "finished": True}


def run(n_init: int = 20, seed: int = 1, on_result=None, large: bool = True) -> dict:
    """Every case, both peers; `on_result(row)` as each case finishes."""
    have_r = shutil.which("Rscript") is not None
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        write_synthetic(tmp)
        cases = list(SYNTHETIC_CASES if large else SYNTHETIC_CASES[:-2])
        if have_r:
            (tmp / "export.R").write_text(R_EXPORT)
            (tmp / "fit.R").write_text(R_FIT)
            _timed(["Rscript", str(tmp / "export.R"), str(tmp)])
            cases = R_CASES + cases
        cache = tmp / "cache"
        for case in cases:
            row = {"case": case.name, "source": case.source, "k": case.k,
                   "moestat_empty_cache": moestat_fit(case, tmp, cache, n_init, seed)}
            row["moestat"] = moestat_fit(case, tmp, cache, n_init, seed)  # warm cache
            row["flexmix"] = (flexmix_fit(case, tmp, tmp / "fit.R", n_init, seed) if have_r
                              else None)
            rows.append(row)
            if on_result is not None:
                on_result(row)
    return {"n_init": n_init, "flexmix": have_r, "rows": rows, "totals": totals(rows),
            "note": None if have_r else "Rscript not found: flexmix not run (apt-get install "
                                        "r-cran-flexmix r-cran-mixtools)"}


def totals(rows) -> dict:
    both = [r for r in rows if r["flexmix"] is not None]
    return {"cases": len(both),
            "flexmix_unfinished": sum(not r["flexmix"]["finished"] for r in both),
            "moestat_at_least_flexmix": sum(r["flexmix"]["finished"] and r["moestat"]["loglik"]
                                            >= r["flexmix"]["loglik"] - 0.05 for r in both),
            "moestat_seconds_warm": sum(r["moestat"]["seconds"] for r in both),
            "moestat_seconds_empty_cache": sum(r["moestat_empty_cache"]["seconds"]
                                               for r in both),
            "flexmix_seconds": sum(r["flexmix"]["seconds"] for r in both)}


def line(row) -> str:
    m, e, f = row["moestat"], row["moestat_empty_cache"], row["flexmix"]
    text = (f"{row['case']:<32} moestat loglik {m['loglik']:12.4f} "
            f"({m['reached_best']} restarts at it) {m['seconds']:6.2f} s warm, "
            f"{e['seconds']:6.2f} s empty cache")
    if f is not None and not f["finished"]:
        text += f" | flexmix did not finish in {f['seconds']:.0f} s"
    elif f is not None:
        text += (f" | flexmix {f['loglik']:12.4f} (k {f['k']}) {f['seconds']:6.2f} s | "
                 f"difference {m['loglik'] - f['loglik']:+.4f}")
    return text


def markdown(out: dict) -> str:
    """The table of docs/performance.md's peer section."""
    head = ("| case | k | moestat log-lik | restarts at it | flexmix log-lik (k found) | "
            "difference | moestat s (warm cache) | moestat s (empty cache) | flexmix s |\n"
            "|---|---|---|---|---|---|---|---|---|\n")
    body = ""
    for r in out["rows"]:
        m, e, f = r["moestat"], r["moestat_empty_cache"], r["flexmix"]
        done = f is not None and f["finished"]
        fl = f"{f['loglik']:.3f} ({f['k']})" if done else "—"
        diff = f"{m['loglik'] - f['loglik']:+.3f}" if done else "—"
        fs = "—" if f is None else f"{f['seconds']:.2f}" if done else f"> {f['seconds']:.0f}"
        body += (f"| {r['case']} | {r['k']} | {m['loglik']:.3f} | {m['reached_best']} / "
                 f"{out['n_init']} | {fl} | {diff} | {m['seconds']:.2f} | {e['seconds']:.2f} | "
                 f"{fs} |\n")
    return head + body
