"""Log-log rate figure of a run: one panel per setting, one series per metric.

Each series: the mean over replicates at each n with error bars of +/- 2 standard errors
(across replicates), the fitted OLS line (dashed) labelled with its slope, and the theory's
slope (dotted, anchored at the fitted line's value at the smallest n) where the config gives
one.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from moestat.errors import InputError  # noqa: E402
from moestat.experiments.runner import load_resolved, report  # noqa: E402
from moestat.experiments.store import read_rows  # noqa: E402

SUFFIXES = (".png", ".svg", ".pdf")


def rate_figure(out: Path, local: bool = False, summary: dict | None = None):
    """Build the figure of run directory `out`; returns a matplotlib Figure. With `local`, a
    second row shows each metric's local slopes (report's `local_slopes`: OLS over windows of
    `local_window` consecutive n) against n, next to the theory's exponent — a rate slower
    than any polynomial shows as local slopes drifting toward 0. `summary`: the run's report
    when the caller has it (the figure draws only its slopes, intercepts and local slopes,
    which do not depend on the bootstrap), else computed here."""
    config = load_resolved(out)
    table = read_rows(out)
    if table is None:
        raise InputError(f"{out} has no finished cells to plot")
    summary = report(out, n_boot=1000) if summary is None else summary
    rep = {(r["setting"], r["metric"]): r for r in summary["rates"] if "slope" in r}
    cols = table.to_pydict()
    setting, n = np.asarray(cols["setting"]), np.asarray(cols["n"])
    names = [s.name for s in config.settings]
    rows = 2 if local else 1
    fig, axes = plt.subplots(rows, len(names), figsize=(5.5 * len(names), 4.2 * rows),
                             squeeze=False)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    if local:
        for ax, sname in zip(axes[1], names, strict=True):
            _local_panel(ax, config, sname, rep, colours)
    for ax, sname in zip(axes[0], names, strict=True):
        sel = setting == sname
        ns = np.unique(n[sel])
        for i, metric in enumerate(config.metrics_for(sname)):
            c = colours[i % len(colours)]
            vals = np.asarray(cols[f"metric.{metric}"], float)
            means, ses = [], []
            for nv in ns:
                v = vals[sel & (n == nv)]
                v = v[np.isfinite(v)]
                means.append(v.mean() if v.size else np.nan)
                ses.append(v.std(ddof=1) / np.sqrt(v.size) if v.size > 1 else 0.0)
            means, ses = np.asarray(means), np.asarray(ses)
            if not np.any(means > 0):  # e.g. an error fixed at 0 by the gauge: no log scale
                continue
            lower = np.minimum(2 * ses, 0.999 * means)  # keep the bar above 0 on a log axis
            r = rep.get((sname, metric))
            label = metric if r is None else f"{metric}: slope {r['slope']:.2f}"
            ax.errorbar(ns, means, yerr=[lower, 2 * ses], fmt="o", ms=3.5, color=c,
                        capsize=2, label=label)
            if r is not None:
                fit = np.exp(r["intercept"]) * ns ** r["slope"]
                ax.plot(ns, fit, "--", color=c, lw=1)
                if r["theory"] is not None:
                    ax.plot(ns, fit[0] * (ns / ns[0]) ** r["theory"], ":", color=c, lw=1.2)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("sample size n")
        ax.set_ylabel("error (mean over replicates, ±2 s.e.)")
        ax.set_title(f"{config.name}: {sname}", fontsize=10)
        ax.grid(True, which="both", alpha=0.25)
        ax.legend(fontsize=8, title="dashed: fit, dotted: theory", title_fontsize=7)
    fig.tight_layout()
    return fig


def _local_panel(ax, config, sname, rep, colours):
    for i, metric in enumerate(config.metrics_for(sname)):
        r = rep.get((sname, metric))
        if r is None or "local_slopes" not in r:
            continue
        c = colours[i % len(colours)]
        ax.plot(r["local_slopes"]["n"], r["local_slopes"]["slope"], "o-", ms=3, color=c,
                label=metric)
        if r["theory"] is not None:
            ax.axhline(r["theory"], color=c, ls=":", lw=1.2)
    ax.axhline(0.0, color="k", lw=0.8)
    ax.set_xscale("log")
    ax.set_xlabel(f"sample size n (centre of {config.local_window} consecutive n)")
    ax.set_ylabel("local slope")
    ax.set_title(f"{sname}: local slopes (dotted: theory)", fontsize=10)
    ax.grid(True, which="both", alpha=0.25)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)
    else:
        ax.text(0.5, 0.5, f"fewer than {config.local_window + 1} n values",
                transform=ax.transAxes, ha="center")


def save_rate_figure(out: Path, path: Path, local: bool = False,
                     summary: dict | None = None) -> Path:
    path = Path(path)
    if path.suffix.lower() not in SUFFIXES:
        raise InputError(f"figure file must end in {', '.join(SUFFIXES)}, got {path.name!r}")
    from moestat.files import write_atomic

    fig = rate_figure(out, local, summary)
    try:
        write_atomic(path, lambda tmp: fig.savefig(tmp, format=path.suffix[1:],
                                                          dpi=130))
    finally:
        plt.close(fig)
    return path
