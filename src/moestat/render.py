"""How the command line shows results: rich tables of rates, accuracies and fitted models."""

from __future__ import annotations

import contextlib
import functools
import time

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn
from rich.table import Table as RichTable


def _fmt(v) -> str:
    """Scalars to 6 significant digits, arrays to 4 (a slope of 3e-6 on a feature of scale
    1e6 is shown, not rounded to 0); non-finite entries as "-"."""
    a = np.asarray(v)
    if not a.ndim:
        return f"{float(a):.6g}"
    return np.array2string(a, separator=", ", formatter={
        "float_kind": lambda x: f"{x:.4g}" if np.isfinite(x) else "-"})


def rate_table(rep: dict) -> RichTable:
    t = RichTable("setting", "metric", "slope", "95% CI", "theory", "paper", "median slope",
                  "median 95% CI", "fits", "failed", "not conv.", "at max_iter",
                  "final/start", "law", title=f"{rep['experiment']}: empirical rates"
                  + partial_note(rep))
    for r in rep["rates"]:
        if "error" in r:
            t.add_row(r["setting"], r["metric"], r["error"], *[""] * 11)
            continue
        floor = r["init_floor"]
        t.add_row(r["setting"], r["metric"], f"{r['slope']:.3f}",
                  f"[{r['ci95'][0]:.3f}, {r['ci95'][1]:.3f}]",
                  "" if r["theory"] is None else f"{r['theory']:g}",
                  "" if r["paper"] is None else f"{r['paper']:g}",
                  f"{r['median_slope']:.3f}",
                  f"[{r['median_ci95'][0]:.2f}, {r['median_ci95'][1]:.2f}]",
                  str(r["n_fits"]), str(r["n_failed"]), str(r["n_not_converged"]),
                  str(r["n_at_max_iter"]), "" if floor is None else f"{floor['ratio']:.2g}",
                  "" if r["power_vs_log"] is None else r["power_vs_log"]["better"])
    return t


VERDICT_STYLE = {"holds": "green", "fails": "red", "inconclusive": "yellow",
                 "not estimated": "magenta"}


def claims_table(rep: dict) -> RichTable:
    """The declared claims, each with its verdict and the numbers behind it."""
    t = RichTable("claim", "verdict", "numbers", title=f"{rep['experiment']}: claims "
                  f"(judged on the {rep['headline']} over replicates)")
    for c in rep["claims"]:
        style = VERDICT_STYLE.get(c["verdict"], "white")
        t.add_row(claim_label(c), f"[{style}]{c['verdict']}[/{style}]", c["reason"])
    return t


def claim_label(c: dict) -> str:
    """A declared claim in words (`moestat report`'s claim column)."""
    if c["expect"] == "contrast":
        slower = c["slower"] + (f" ({c['slower_metric']})" if c.get("slower_metric") else "")
        what = f"{c['metric']}: {c['faster']} faster than {slower}"
        if c.get("paired") is not None:
            what += " (paired)" if c["paired"] else " (unpaired)"
        return what
    if c["expect"] == "slope":
        return f"{c['setting']} {c['metric']}: slope {c['value']:+g} +- {c['tol']:g}"
    return f"{c['setting']} {c['metric']}: slower than any polynomial"


def init_scales_table(rep: dict) -> RichTable:
    t = RichTable("setting", "metric", "init scales", "median final error", "ratio",
                  "moves with the start", title="final errors at the largest n under two "
                  "init scales (same data)")
    for e in rep["init_scales"]:
        t.add_row(e["setting"], e["metric"], f"{e['scales'][0]:g} / {e['scales'][1]:g}",
                  f"{e['final_median'][0]:.3g} / {e['final_median'][1]:.3g}",
                  f"{e['ratio']:.2f}", "yes" if e["moves"] else "no")
    return t


def accuracy_table(rep: dict) -> RichTable:
    t = RichTable("gate", "fraction", "n train", "accuracy mean", "sd", "min", "max", "seeds",
                  "s / epoch", title=f"{rep['experiment']}: test accuracy"
                  + partial_note(rep))
    for e in rep["accuracy"]:
        t.add_row(e["gate"], f"{100 * e['fraction']:g} %", str(e["n_train"]),
                  f"{e['mean']:.4f}", f"{e['sd']:.4f}", f"{e['min']:.4f}", f"{e['max']:.4f}",
                  str(e["seeds"]), f"{e['seconds_per_epoch']:.3f}")
    return t


def differences_table(rep: dict) -> RichTable:
    t = RichTable("arm", "minus", "fraction", "seeds", "mean difference", "95% CI", "verdict",
                  title=f"{rep['experiment']}: paired accuracy differences (same seeds)")
    for e in rep["differences"]:
        t.add_row(e["gate"], e["baseline"], f"{100 * e['fraction']:g} %", str(e["seeds"]),
                  f"{e['mean']:+.4f}", f"[{e['ci95'][0]:+.4f}, {e['ci95'][1]:+.4f}]",
                  e["verdict"])
    return t


def print_classification(console: Console, rep: dict) -> None:
    console.print(accuracy_table(rep))
    if rep.get("differences"):
        console.print(differences_table(rep))
    for gate, f in rep["smallest_fraction_reaching_target"].items():
        console.print(f"{gate}: " + (f"reaches {rep['target_accuracy']:g} from {100 * f:g} % of "
                                     "the training data" if f is not None else
                                     f"never reaches {rep['target_accuracy']:g}"))


def partial_note(rep: dict) -> str:
    """" (PARTIAL: done/total cells[, k failed])" for an incomplete run, else ""."""
    if rep["complete"]:
        return ""
    failed = f", {rep['cells_failed']} failed" if rep.get("cells_failed") else ""
    return f" (PARTIAL: {rep['cells_done']}/{rep['cells_total']} cells{failed})"


def print_report(console: Console, rep: dict) -> None:
    console.print(rate_table(rep))
    if rep.get("init_scales"):
        console.print(init_scales_table(rep))
    if rep.get("claims"):
        console.print(claims_table(rep))
    if rep.get("splits"):
        t = RichTable("setting", "n", "fits", "stuck (a true atom served by >= 2 active atoms)",
                      "escaped (one active atom per true atom)",
                      title=f"{rep['experiment']}: split starts, stuck or escaped")
        for r in rep["splits"]:
            t.add_row(r["setting"], str(r["n"]), str(r["fits"]), str(r["stuck"]),
                      str(r["escaped"]))
        console.print(t)
    for c in rep.get("claims", []):
        if c.get("note"):
            console.print(f"note: {claim_label(c)}: {c['note']}")
    for w in rep.get("warnings", []):
        console.print(f"[yellow]warning: {w}[/yellow]")


def print_asymptotic(console: Console, rep: dict) -> None:
    """`moestat report --asymptotic`: observed against asymptotic median errors."""
    t = RichTable("setting", "metric", "n", "asymptotic median", "observed median",
                  "observed / asymptotic", "null directions",
                  title=f"{rep['experiment']}: median errors under the asymptotic normal law "
                  f"at the truth ({rep['draws']} draws, information from {rep['n_info']} "
                  f"points) and in the run")
    for r in rep["rows"]:
        t.add_row(r["setting"], r["metric"], " / ".join(str(v) for v in r["n"]),
                  *(" / ".join(f"{v:.3g}" for v in r[k])
                    for k in ("asymptotic_median", "observed_median")),
                  " / ".join("" if v is None else f"{v:.2f}" for v in r["ratio"]),
                  str(r["null_directions"]))
    console.print(t)
    if not rep["rows"]:
        console.print("no exact-fit setting: no asymptotic normal law to compare with")


def print_fit(console: Console, out: dict) -> None:
    """A fitted model: its parameters, log-likelihood, BIC / AIC, restarts, convergence and
    flags (the dict of `TableFit.summary`)."""
    estimator, n, table_target = out["estimator"], out["n_samples"], out["target"]
    if out.get("selection"):
        sel = out["selection"]
        t = RichTable("k", "log-likelihood", "BIC", "ICL", "AIC", "parameters",
                      title=f"number of experts: selected k = {sel['selected_k']} by "
                            f"{sel['criterion'].upper()}")
        for r in sel["table"]:
            t.add_row(str(r["k"]), f"{r['loglik']:.6g}", f"{r['bic']:.6g}", _g(r["icl"]),
                      f"{r['aic']:.6g}", str(r["n_parameters"]))
        console.print(t)
    tree = (out.get("selection") or {}).get("dendrogram") or out.get("dendrogram")
    if tree:
        t = RichTable("atoms", "height of the next merge", "mean log-likelihood", "DIC",
                      title=f"dendrogram of mixing measures of the {tree['from_k']}-expert fit:"
                            f" DIC prefers {tree['selected_k']} (omega = log n = "
                            f"{tree['omega']:.3g})")
        for r in tree["levels"]:
            t.add_row(str(r["k"]), f"{r['height']:.4g}", f"{r['mean_loglik']:.6g}",
                      f"{r['dic']:.6g}")
        console.print(t)
    console.print(f"[bold]{out['model']}[/bold]  ({estimator}, {n} rows, target "
                  f"{table_target!r}, features {out['features']})")
    if out.get("classes"):
        console.print(f"classes 0..{len(out['classes']) - 1}: {', '.join(out['classes'])} "
                      "(the last is each expert's reference)")
    boot = out.get("bootstrap")
    t = RichTable("parameter", "value", "standard error",
                  *([f"bootstrap SE ({boot['used']} refits)"] if boot else []))
    se = out.get("standard_errors") or {}
    for k, v in out["parameters"].items():
        t.add_row(k, _fmt(np.asarray(v)),
                  _fmt(np.asarray(se[k], dtype=float)) if k in se else "",
                  *([_fmt(np.asarray(boot["standard_errors"][k], dtype=float))] if boot else []))
    console.print(t)
    console.print(f"log-likelihood {out['loglik']:.6g}   BIC {out['bic']:.6g}   "
                  f"AIC {out['aic']:.6g}   parameters {out['n_parameters']}")
    r = out["restarts"]
    status = "converged" if out["converged"] else "[red]NOT converged[/red]"
    if not out["converged"] and (out["estimator"], out.get("finish")) == ("em", "none"):
        status += " (--finish newton converges where EM crawls)"
    console.print(f"{status} after {out['n_iter']} iterations; {r['reached_best']} of "
                  f"{r['run_to_convergence']} restarts (best of {r['explored']} short runs) "
                  "reached the best optimum"
                  + ("; [yellow]some parameter on its bound[/yellow]" if out["at_bound"]
                     else ""))
    if se and not out["standard_errors_ok"]:
        console.print("[yellow]no standard errors: the observed information is singular "
                      "(a parameter on its bound, an empty or separated expert)[/yellow]")
    for w in out.get("warnings", []):
        console.print(f"[yellow]warning: {w}[/yellow]")
    if out["degenerate"]:
        from moestat.fit import REASONS

        console.print("[yellow]degenerate fit: " + ", ".join(REASONS[r] for r in out["degenerate"])
                      + "[/yellow]")


def print_identifiability(console: Console, report, threshold: float) -> None:
    """Each condition's numerical rank test and its verdict, then the rate class."""
    t = RichTable("condition", "functions", "s_min / s_max", "verdict",
                  title=f"{report.subject} (independent if s_min / s_max >= {threshold:g})")
    for c in report.checks:
        t.add_row(c.condition, str(c.n_functions), f"{c.min_ratio:.1e}",
                  "[green]holds[/green]" if c.holds else "[red]fails[/red]")
    console.print(t)
    console.print(report.rate_class)


def _g(v) -> str:
    return "" if v is None else f"{v:.4g}"


def print_per_n(console: Console, table: dict) -> None:
    """`moestat report --per-n`: one row per n, then the mean slopes."""
    t = RichTable("n", "fits", "not conv.", "at max_iter", "far out", "mean", "median",
                  "median at start", title=f"{table['setting']}: {table['metric']} per n")
    for r in table["per_n"]:
        t.add_row(str(r["n"]), str(r["fits"]), str(r["not_converged"]), str(r["at_max_iter"]),
                  str(r["far_out"]), _g(r["mean"]), _g(r["median"]), _g(r["start_median"]))
    console.print(t)
    for name, s in table["mean_slope"].items():
        text = s.get("error") or f"{s['slope']:.3f} [{s['ci95'][0]:.3f}, {s['ci95'][1]:.3f}]"
        console.print(f"mean slope, {name.replace('_', ' ')}: {text}")


def print_comparison(console: Console, result: dict) -> None:
    """`moestat compare`: equal columns and largest differences, or the paired table."""
    if "paired" in result:
        t = RichTable("n", "replicates", "B higher objective", "median objective B - A",
                      "mean A", "mean B", "median A", "median B", "on bound A", "on bound B",
                      "converged A", "converged B", "median iterations A",
                      "median iterations B", "fit s A", "fit s B")
        for r in result["paired"]:
            t.add_row(str(r["n"]), str(r["replicates"]), str(r["b_higher_objective"]),
                      _g(r["median_objective_b_minus_a"]),
                      _g(r["mean_a"]), _g(r["mean_b"]), _g(r["median_a"]), _g(r["median_b"]),
                      str(r["at_bound_a"]), str(r["at_bound_b"]), str(r["converged_a"]),
                      str(r["converged_b"]), f"{r['median_iterations_a']:g}",
                      f"{r['median_iterations_b']:g}", f"{r['fit_seconds_a']:.0f}",
                      f"{r['fit_seconds_b']:.0f}")
        console.print(t)
        return
    if not result["same_keys"]:
        console.print(f"the runs hold different fits (rows: {result['rows']})")
        return
    console.print(f"{result['rows'][0]} rows with the same (setting, n, replicate) keys")
    for k, equal in result["equal"].items():
        console.print(f"{k:14s} {'equal' if equal else '[red]DIFFERENT[/red]'}")
    for k, rel in result["largest_relative_difference"].items():
        console.print(f"{k:30s} largest relative difference "
                      + ("none (no values)" if rel is None else f"{rel:.2e}"))


@contextlib.contextmanager
def cell_progress(console: Console, name: str, total: int, then=None):
    """A transient progress bar over `total` cells, or on a console that is not a terminal (a
    sweep's output sent to a log file) one timestamped line per finished cell; yields
    advance(done, total), which also calls `then()` when given."""
    if not console.is_terminal:
        def advance(done, total_now):
            console.print(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {name}: {done}/{total_now} "
                          "cells done", highlight=False)
            console.file.flush()
            if then is not None:
                then()

        yield advance
        return
    with Progress("[progress.description]{task.description}", BarColumn(),
                  MofNCompleteColumn(), TimeRemainingColumn(), console=console,
                  transient=True) as progress:
        task = progress.add_task(f"{name} cells", total=total)

        def advance(done, _total):
            progress.update(task, completed=done)
            if then is not None:
                then()

        yield advance


@functools.cache
def import_plotting_meanwhile() -> None:
    """Import matplotlib (0.3-1 s) on a helper thread while the sweep computes (started once,
    when the first cell is done and the sweep's own tracing is past), so the figure does not
    wait for it."""
    import threading

    def load():
        try:
            import moestat.experiments.plot  # noqa: F401
        except Exception:  # noqa: BLE001 - the figure imports it again and reports the error
            pass

    threading.Thread(target=load, name="moestat-import", daemon=True).start()
