"""Log-log rate figure of a run: one panel per setting (one series per metric) and one per
declared contrast (both settings in one panel); optionally slopes by setting and local slopes.

Each series: the run's headline statistic over replicates at each n with its error bars, the
fitted OLS line (dashed) labelled with its slope, and the theory's slope (dotted, anchored at
the fitted line's value at the smallest n) where the config gives one.
"""

from __future__ import annotations

import functools
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from moestat.errors import InputError  # noqa: E402
from moestat.experiments.config import ContrastClaim  # noqa: E402
from moestat.experiments.metrics import COUNTS  # noqa: E402
from moestat.experiments.runner import expected_keys, load_resolved, report  # noqa: E402
from moestat.experiments.store import read_rows  # noqa: E402

SUFFIXES = (".png", ".svg", ".pdf")


def rate_figure(out: Path, local: bool = False, summary: dict | None = None,
                slopes: bool = False):
    """Build the figure of run directory `out`; returns a matplotlib Figure.

    Panels, four to a row: one per setting (every metric), one per declared contrast (the
    metric in both settings, fitted to the same data when paired), with `slopes` one per
    metric with each setting's headline slope and interval (e.g. slope against a separation
    constant that the settings step through), and with `local` one per setting with each
    metric's local slopes (report's `local_slopes`, with intervals) against n, next to the
    theory's exponent — a rate slower than any polynomial shows as local slopes drifting
    toward 0. Series show the run's headline statistic (mean +- 2 s.e., or median +- its
    notch half-width 1.57 IQR / sqrt(R)). `summary`: the run's report when the caller has it,
    else computed here."""
    config = load_resolved(out)
    table = read_rows(out, expected_keys(out, config))
    if table is None:
        raise InputError(f"{out} has no finished cells to plot")
    summary = report(out, n_boot=1000) if summary is None else summary
    rep = {(r["setting"], r["metric"]): r for r in summary["rates"] if "slope" in r}
    cols = table.to_pydict()
    stat = config.headline or "mean"
    names = [s.name for s in config.settings]
    panels = [functools.partial(_setting_panel, sname=s) for s in names]
    panels += [functools.partial(_contrast_panel, claim=c) for c in config.claims
               if isinstance(c, ContrastClaim)]
    if slopes:
        panels += [functools.partial(_slopes_panel, metric=m) for m in config.all_metrics()]
    if local:
        panels += [functools.partial(_local_panel, sname=s) for s in names]
    ncols = min(4, len(panels))
    nrows = -(-len(panels) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(5.5 * ncols, 4.2 * nrows), squeeze=False)
    context = {"config": config, "cols": cols, "rep": rep, "stat": stat, "summary": summary}
    for ax, draw in zip(axes.flat, panels, strict=False):
        draw(ax, **context)
    for ax in list(axes.flat)[len(panels):]:
        ax.set_visible(False)
    if not summary["complete"]:
        failed = summary.get("cells_failed", 0)
        fig.suptitle(f"PARTIAL RUN: {summary['cells_done']}/{summary['cells_total']} cells"
                     + (f", {failed} failed" if failed else ""), color="red")
    fig.tight_layout()
    return fig


COLOURS = plt.rcParams["axes.prop_cycle"].by_key()["color"]


def _series(ax, cols, sname, metric, stat, colour, label, r, marker="o"):
    """One (setting, metric): the statistic at each n with its bars, the fitted line (dashed)
    and the theory's slope (dotted, anchored at the fitted line's value at the smallest n)."""
    if f"metric.{metric}" not in cols:  # no finished cell records it yet
        return
    setting, n = np.asarray(cols["setting"]), np.asarray(cols["n"])
    sel = setting == sname
    ns = np.unique(n[sel])
    vals = np.asarray([np.nan if v is None else v for v in cols[f"metric.{metric}"]], float)
    centre, bar = [], []
    for nv in ns:
        v = vals[sel & (n == nv)]
        v = v[np.isfinite(v)]
        if v.size == 0:
            centre.append(np.nan)
            bar.append(0.0)
        elif stat == "median":
            q1, q3 = np.percentile(v, [25, 75])
            centre.append(np.median(v))
            bar.append(1.57 * (q3 - q1) / np.sqrt(v.size))
        else:
            centre.append(v.mean())
            bar.append(2 * v.std(ddof=1) / np.sqrt(v.size) if v.size > 1 else 0.0)
    centre, bar = np.asarray(centre), np.asarray(bar)
    if not np.any(centre > 0):  # e.g. an error fixed at 0 by the gauge: no log scale
        return
    lower = np.minimum(bar, 0.999 * centre)  # keep the bar above 0 on a log axis
    if r is not None:
        slope, icpt = ((r["median_slope"], r["median_intercept"]) if stat == "median"
                       else (r["slope"], r["intercept"]))
        label = f"{label}: slope {slope:.2f}"
    ax.errorbar(ns, centre, yerr=[lower, bar], fmt=marker, ms=3.5, color=colour, capsize=2,
                label=label)
    if r is not None:
        fit = np.exp(icpt) * ns ** slope
        ax.plot(ns, fit, "--", color=colour, lw=1)
        if r["theory"] is not None:
            ax.plot(ns, fit[0] * (ns / ns[0]) ** r["theory"], ":", color=colour, lw=1.2)


def _log_axes(ax, title, stat):
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("sample size n")
    ax.set_ylabel("error (mean, ±2 s.e.)" if stat == "mean" else "error (median, notch)")
    ax.set_title(title, fontsize=10)
    ax.grid(True, which="both", alpha=0.25)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8, title="dashed: fit, dotted: theory", title_fontsize=7)


def _setting_panel(ax, sname, config, cols, rep, stat, **_):
    if sname not in cols["setting"]:
        ax.text(0.5, 0.5, "no finished cells", transform=ax.transAxes, ha="center")
    for i, metric in enumerate(m for m in config.metrics_for(sname) if m not in COUNTS):
        _series(ax, cols, sname, metric, stat, COLOURS[i % len(COLOURS)], metric,
                rep.get((sname, metric)))
    _log_axes(ax, f"{config.name}: {sname}", stat)


def _contrast_panel(ax, claim, config, cols, rep, stat, summary, **_):
    for i, (sname, marker) in enumerate(((claim.faster, "o"), (claim.slower, "s"))):
        metric = claim.metric_of(sname)
        _series(ax, cols, sname, metric, stat, COLOURS[i], f"{sname} ({metric})"
                if claim.slower_metric else sname, rep.get((sname, metric)), marker)
    verdict = next((c for c in summary.get("claims", []) if c["expect"] == "contrast"
                    and (c["faster"], c["slower"], c["metric"]) ==
                    (claim.faster, claim.slower, claim.metric)), None)
    title = f"contrast {claim.metric}: {claim.faster} vs {claim.slower}"
    if verdict is not None:
        title += f"\n{verdict['verdict']}"
        if verdict.get("slope_difference") is not None:
            lo, hi = verdict["ci95"]
            title += (f": difference {verdict['slope_difference']:+.2f} [{lo:+.2f}, {hi:+.2f}]"
                      + (", paired" if verdict["paired"] else ""))
    _log_axes(ax, title, stat)


def _slopes_panel(ax, metric, config, rep, stat, **_):
    """Each setting's headline slope of `metric` with its 95 % interval, settings in config
    order on the x axis, the theory's slope as a short dotted mark."""
    names = [s.name for s in config.settings if (s.name, metric) in rep]
    for i, sname in enumerate(names):
        r = rep[(sname, metric)]
        slope, ci = ((r["median_slope"], r["median_ci95"]) if stat == "median"
                     else (r["slope"], r["ci95"]))
        ax.errorbar([i], [slope], yerr=[[slope - ci[0]], [ci[1] - slope]], fmt="o",
                    color=COLOURS[0], capsize=3)
        if r["theory"] is not None:
            ax.plot([i - 0.3, i + 0.3], [r["theory"]] * 2, ":", color="k", lw=1.2)
    ax.axhline(0.0, color="k", lw=0.6)
    ax.set_xticks(range(len(names)), names, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel(f"{stat} slope (95 % CI); dotted: theory")
    ax.set_title(f"{config.name}: slope of {metric} by setting", fontsize=10)
    ax.grid(True, axis="y", alpha=0.25)


def _local_panel(ax, sname, config, rep, **_):
    for i, metric in enumerate(config.metrics_for(sname)):
        r = rep.get((sname, metric))
        if r is None or "local_slopes" not in r:
            continue
        c = COLOURS[i % len(COLOURS)]
        loc = r["local_slopes"]
        ci = np.asarray(loc.get("ci95") or [[np.nan, np.nan]] * len(loc["n"]))
        slope = np.asarray(loc["slope"])
        ax.errorbar(loc["n"], slope, yerr=[slope - ci[:, 0], ci[:, 1] - slope], fmt="o-",
                    ms=3, color=c, capsize=2, label=metric)
        if r["theory"] is not None:
            ax.axhline(r["theory"], color=c, ls=":", lw=1.2)
    ax.axhline(0.0, color="k", lw=0.8)
    ax.set_xscale("log")
    ax.set_xlabel(f"sample size n (centre of {config.local_window} consecutive n)")
    ax.set_ylabel("local slope (95 % CI)")
    ax.set_title(f"{sname}: local slopes (dotted: theory)", fontsize=10)
    ax.grid(True, which="both", alpha=0.25)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)
    else:
        ax.text(0.5, 0.5, f"fewer than {config.local_window + 1} n values",
                transform=ax.transAxes, ha="center")


def save_rate_figure(out: Path, path: Path, local: bool = False,
                     summary: dict | None = None, slopes: bool = False) -> Path:
    path = Path(path)
    if path.suffix.lower() not in SUFFIXES:
        raise InputError(f"figure file must end in {', '.join(SUFFIXES)}, got {path.name!r}")
    from moestat.files import save_figure_atomic

    fig = rate_figure(out, local, summary, slopes)
    try:
        save_figure_atomic(fig, path, dpi=130)
    finally:
        plt.close(fig)
    return path
