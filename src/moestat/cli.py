"""The `moestat` command line (Typer; output via rich). Thin: parse, call the library,
render. Exit codes: 0 success, 2 invalid input (one line on stderr), 1 a failure of the
environment (e.g. a full disk; one line naming the file) or an unexpected error."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from typer.exceptions import TyperException

from moestat import interrupts
from moestat.errors import InputError
from moestat.files import strict_json
from moestat.lazy import lazy_module

render = lazy_module("moestat.render")  # tables and progress (rich): loaded at first use

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Statistics of mixture-of-experts models.")
console = Console(width=None if sys.stdout.isatty() else 170)


def _emit(result: dict, as_json: bool, show) -> None:
    """One JSON object on stdout, or `show(console, result)`."""
    if as_json:
        print(strict_json(result))
    else:
        show(console, result)


@app.callback()
def _options(
    device: Annotated[str, typer.Option(help="auto (a GPU when JAX sees one), cpu or gpu; "
                                        "also $MOESTAT_DEVICE")] = "",
):
    """Statistics of mixture-of-experts models."""
    from moestat.device import select_device

    select_device(device or None)


@app.command()
def fit(
    data: Annotated[Path, typer.Argument(help="CSV file with a header row")],
    target: Annotated[str, typer.Option(help="response column")],
    experts: Annotated[str, typer.Option(
        help="number of experts k, or a range such as 1..6: fit each, keep the one "
             "--criterion prefers")] = "2",
    criterion: Annotated[str, typer.Option(help="with a range of --experts: bic, icl, aic, "
                                                 "or dic (the dendrogram's)")] = "bic",
    features: Annotated[str | None, typer.Option(help="comma-separated feature columns "
                                                 "(default: all others)")] = None,
    gate: Annotated[str, typer.Option(help="gate, e.g. softmax, topk_softmax:2")] = "softmax",
    expert: Annotated[str, typer.Option(help="expert, e.g. linear, ridge:tanh")] = "linear",
    noise: Annotated[str, typer.Option(help="gaussian or laplace")] = "gaussian",
    estimator: Annotated[str, typer.Option(help="em, mle, newton or lse")] = "em",
    finish: Annotated[str, typer.Option(help="none, or newton: EM to 1e-6, then Newton + EM "
                                        "steps (where EM crawls; <= 64 parameters)")] = "none",
    kind: Annotated[str, typer.Option(help="auto, mixture, regression, or classification "
                                      "(the target holds labels)")] = "auto",
    n_init: Annotated[int, typer.Option(help="restarts run to convergence (chosen from 5x as "
                                        "many short runs of four kinds of start)")] = 20,
    max_iter: Annotated[int, typer.Option(help="iteration limit")] = 500,
    tol: Annotated[float, typer.Option(help="relative objective tolerance")] = 1e-8,
    seed: Annotated[int, typer.Option(help="random seed")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False,
    save: Annotated[Path | None, typer.Option(help="write the fitted model as JSON")] = None,
    plot: Annotated[Path | None, typer.Option(
        help="draw the fit (.png, .pdf or .svg): data, expert means and gate weights")] = None,
    bootstrap: Annotated[int, typer.Option(
        help="also standard errors by the parametric bootstrap with this many refits "
             "(0: off)")] = 0,
    dendrogram: Annotated[Path | None, typer.Option(
        help="draw the dendrogram of mixing measures of the (largest) fit and its DIC "
             "(.png, .pdf or .svg; softmax gate)")] = None,
):
    """Fit one MoE model to a user's table; print parameters, log-likelihood, BIC."""
    from moestat.fit_command import run_fit

    out = run_fit(data, target, experts=experts, criterion=criterion, features=features, gate=gate,
                  expert=expert, noise=noise, estimator=estimator, finish=finish, n_init=n_init,
                  max_iter=max_iter, tol=tol, seed=seed, save=save, plot=plot, kind=kind,
                  dendrogram=dendrogram, bootstrap=bootstrap)
    _emit(out, as_json, lambda c, r: render.print_fit(c, r))  # (render: imported if drawn)
    for label, path in (("saved to", save), ("figure:", plot), ("figure:", dendrogram)):
        if path is not None and not as_json:
            console.print(f"{label} {path}")


def _run_classification(config: Path, out: Path | None, preset: str | None,
                        resume: bool) -> None:
    from moestat.attention import experiment as ex

    cfg = ex.resolve(config, preset)
    out = out or Path("runs") / cfg.name
    ex.prepare_out(cfg, out, resume)
    n_cells = len(cfg.gates) * len(cfg.fractions)
    with render.cell_progress(console, cfg.name, n_cells) as advance:
        ex.run(cfg, out, advance)
    rep = ex.write_summary(out)
    figure = ex.save_figure(out)
    render.print_classification(console, rep)
    console.print(f"results: {out}/cells  summary: {out}/summary.json  figure: {figure}")


@app.command(name="run")
def run_sweep(
    config: Annotated[Path, typer.Argument(
        help="experiment TOML file, or the name of a shipped experiment (moestat list)")],
    out: Annotated[Path | None, typer.Option(help="output directory (default runs/NAME)")] = None,
    preset: Annotated[str | None, typer.Option(help="quick or full")] = None,
    resume: Annotated[bool, typer.Option("--resume/--no-resume",
                                         help="skip finished cells")] = True,
    seed: Annotated[int | None, typer.Option(help="override the root seed")] = None,
    workers: Annotated[int, typer.Option(help="local worker processes (0: in-process)")] = 0,
    scheduler: Annotated[str | None, typer.Option(
        help="Dask scheduler tcp://HOST:PORT, or 'local' to start a LocalCluster of "
             "--workers processes (default 2)")] = None,
    setting: Annotated[list[str] | None, typer.Option(
        help="run only this setting's cells (repeatable); the report covers them all")] = None,
):
    """Run a sweep (in-process, on --workers N local processes, or on a Dask cluster with
    --scheduler); writes cells, summary.json and rates.png, and prints the rate table."""
    from moestat.experiments.config import is_classification, load_for_run, read_toml
    from moestat.shipped import config_path

    if workers < 0:
        raise InputError(f"--workers must be >= 0, got {workers}")
    config = config_path(config)
    if is_classification(read_toml(config)):
        if workers or scheduler:
            raise InputError("--workers / --scheduler apply to rate studies; a classification "
                             "experiment runs in-process")
        return _run_classification(config, out, preset, resume)
    load_for_run(config, preset, seed)  # the checks that need no JAX, before importing it
    from moestat.experiments import runner
    from moestat.experiments.backends import choose_backend
    from moestat.experiments.grid import cells

    backend = choose_backend(workers, scheduler)
    cfg = runner.resolve(config, preset, seed)
    only = runner.selected_settings(cfg, setting)
    out = out or Path("runs") / cfg.name
    runner.prepare_out(cfg, out, resume, only=only)
    interrupts.stop_between_cells()
    with render.cell_progress(console, cfg.name, sum(c.setting in only for c in cells(cfg)),
                              then=render.import_plotting_meanwhile) as advance:
        runner.run_sweep(cfg, out, backend, advance,
                         lambda names: console.print(
                             f"[yellow]moved {len(names)} damaged cell file(s) to {out}/corrupt/ "
                             f"(failed checksum or unreadable); recomputing them[/yellow]"),
                         lambda text: console.print(f"[yellow]{text}[/yellow]"), only=only)
    rep = runner.write_summary(out)
    from moestat.experiments.plot import save_rate_figure

    figure = save_rate_figure(out, out / "rates.png", summary=rep)
    render.print_report(console, rep)
    console.print(f"results: {out}/cells  summary: {out}/summary.json  figure: {figure}")


@app.command()
def report(
    directory: Annotated[Path, typer.Argument(help="run directory")],
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False,
    per_n: Annotated[str | None, typer.Option(
        "--per-n", help="SETTING:METRIC: mean, median, non-converged and far-out fits at "
        "each n, and the slope with and without non-converged fits")] = None,
    asymptotic: Annotated[bool, typer.Option("--asymptotic", help="exact fits: median errors "
                          "under the normal law at the truth, and the run's")] = False,
):
    """Rate table of a run: slope, 95% CI, theory, paper, fits, failed."""
    if asymptotic:
        from moestat.experiments.asymptotics import asymptotic_report
        return _emit(asymptotic_report(directory), as_json, render.print_asymptotic)
    if per_n is not None:
        from moestat.experiments.runner import per_n_of

        return _emit(per_n_of(directory, per_n), as_json, render.print_per_n)
    from moestat.experiments.config import holds_classification

    if holds_classification(directory):
        from moestat.attention.experiment import report as accuracy_report

        return _emit(accuracy_report(directory), as_json, render.print_classification)
    from moestat.experiments.runner import report as make_report

    _emit(make_report(directory), as_json, render.print_report)


@app.command()
def compare(
    run_a: Annotated[Path, typer.Argument(help="run directory A")],
    run_b: Annotated[Path, typer.Argument(help="run directory B")],
    setting: Annotated[str | None, typer.Option(
        help="with --metric: compare this setting's fits on the same data, per n; A:B pairs "
             "setting A of run A with setting B of run B")] = None,
    metric: Annotated[str | None, typer.Option(help="the metric for --setting")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False,
):
    """Two runs replicate by replicate: the same rows (to rounding)? Or, with --setting and
    --metric, one setting fitted two ways to the same data."""
    from moestat.experiments import compare as cmp

    if (setting is None) != (metric is None):
        raise InputError("give --setting and --metric together")
    setting_a, _, setting_b = (setting or "").partition(":")
    _emit(cmp.same_rows(run_a, run_b) if setting is None
          else {"paired": cmp.paired(run_a, run_b, setting_a, metric, setting_b or None)},
          as_json, render.print_comparison)


@app.command()
def plot(
    directory: Annotated[Path, typer.Argument(help="run directory (with --profile: or a "
                                                   "config)")],
    output: Annotated[Path | None, typer.Option("-o", "--output",
                                                help="figure file (.png, .svg, .pdf)")] = None,
    local_slopes: Annotated[bool, typer.Option(
        "--local-slopes", help="add each setting's local slopes against n")] = False,
    slopes: Annotated[bool, typer.Option(
        "--slopes", help="add each metric's slope by setting (e.g. against a constant the "
        "settings step through)")] = False,
    profile: Annotated[list[str] | None, typer.Option(
        "--profile", help="instead: the least-squares profile along SETTING's split atom's "
        "amplitude (repeatable; experiments/flat_profile.py)")] = None,
):
    """Log-log figure of a run: the headline statistic, fitted and theory lines per metric,
    each declared contrast in one panel (a classification run: accuracy against the training
    fraction)."""
    from moestat.experiments.config import holds_classification

    if profile:
        from moestat.experiments.flat_profile import profile_command

        out, rows = profile_command(directory, profile, output)
        for r in rows:
            console.print(strict_json({k: v for k, v in r.items() if k not in ("t", "excess")}))
        console.print(f"figure: {out}")
        return

    if holds_classification(directory):
        from moestat.attention.experiment import save_figure

        console.print(f"figure: {save_figure(directory, output)}")
        return
    from moestat.experiments.plot import save_rate_figure

    path = save_rate_figure(directory, output or Path(directory) / "rates.png", local_slopes,
                            slopes=slopes)
    console.print(f"figure: {path}")


@app.command()
def status(directory: Annotated[Path, typer.Argument(help="run directory")]):
    """Cells done / total and non-converged fits."""
    from moestat.experiments.config import holds_classification

    if holds_classification(directory):
        from moestat.attention.experiment import report as accuracy_report

        rep = accuracy_report(directory)
        console.print(f"{rep['experiment']}: {rep['cells_done']}/{rep['cells_total']} cells"
                      + ("" if rep["complete"] else " (incomplete: run again to resume)"))
        return
    from moestat.experiments.runner import status as run_status

    st = run_status(directory)
    failed = (f", {st['cells_failed']} cell(s) failed (a rerun retries them)"
              if st["cells_failed"] else "")
    console.print(f"{st['experiment']}: {st['cells_done']}/{st['cells_total']} cells, "
                  f"{st['fits']} fits, {st['nonconverged']} not converged{failed}"
                  + ("" if st["complete"] else " (incomplete: run again to resume)"))
    if not st["complete"]:
        console.print("by setting: " + ", ".join(f"{name} {d}/{t}" for name, (d, t)
                                                 in st["by_setting"].items()))


@app.command()
def identifiability(
    expert: Annotated[str | None, typer.Option(help="expert to check, e.g. ridge:tanh")] = None,
    activation: Annotated[str | None, typer.Option(help="activation of the activation gate, "
                                                   "e.g. tanh")] = None,
    gate: Annotated[str | None, typer.Option(help="gate to check with Gaussian linear experts, "
                                             "e.g. laplace")] = None,
    frozen_noise: Annotated[str | None, typer.Option(
        help="check distinguishability of a frozen expert with this noise (e.g. laplace) "
             "from the prompt family --expert / --noise")] = None,
    frozen_expert: Annotated[str | None, typer.Option(
        help="frozen expert family (default: --expert)")] = None,
    noise: Annotated[str, typer.Option(help="prompt noise for --frozen-noise")] = "gaussian",
    n_features: Annotated[int, typer.Option(help="input dimension for --frozen-noise")] = 2,
    seed: Annotated[int, typer.Option(help="random seed of the atoms")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False,
):
    """Check the papers' identifiability conditions numerically and print the rate class.
    With --frozen-noise: is a frozen expert distinguishable from the prompt family?"""
    from moestat.identifiability import THRESHOLD, check_from_options

    report = check_from_options(expert, activation, frozen_noise, frozen_expert, noise,
                                n_features, seed, gate)
    if as_json:
        print(strict_json({**report.as_dict(), "threshold": THRESHOLD}))
        return
    render.print_identifiability(console, report, THRESHOLD)


@app.command()
def bench(
    n: Annotated[int, typer.Option(help="EM benchmark sample size")] = 200_000,
    iters: Annotated[int, typer.Option(help="EM iterations")] = 100,
    contaminated: Annotated[bool, typer.Option(
        "--contaminated", help="also time the contaminated sweep against SciPy BFGS "
        "(minutes)")] = False,
    preset: Annotated[str, typer.Option(help="contaminated preset: quick or full")] = "quick",
    baseline_replicates: Annotated[int, typer.Option(
        help="SciPy fits per n (time scaled to all replicates)")] = 2,
    scaling: Annotated[bool, typer.Option(
        "--scaling", help="EM vs NumPy along n, k, d and replicates (minutes)")] = False,
    docs: Annotated[Path | None, typer.Option(
        help="with --scaling: rewrite DOCS/performance.md's scaling section and figures")] = None,
    peer: Annotated[bool, typer.Option(
        "--peer", help="only: moestat fit vs R's flexmix on users' data, cold processes "
        "(minutes; needs Rscript and r-cran-flexmix)")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False,
):
    """Benchmarks against baselines run in the same process: EM vs vectorised NumPy,
    (--scaling) along each workload dimension, and (--contaminated) the contaminated rate study
    vs the SciPy/BFGS paper protocol."""
    from moestat.bench import run_benchmarks

    out = run_benchmarks(n, iters, contaminated=contaminated, preset=preset,
                         baseline_replicates=baseline_replicates, scaling=scaling, docs=docs,
                         peer=peer, emit=None if as_json else console.print)
    if as_json:
        print(strict_json(out))


@app.command(name="list")
def list_parts():
    """Registered gates, experts, noises and estimators."""
    from rich.markup import escape

    from moestat.registry import catalogue

    for group, names in catalogue().items():
        console.print(f"[bold]{group}[/bold]: {escape(', '.join(names))}")


INTERRUPTED = interrupts.STOP_NOW_EXIT  # 128 + SIGINT


def main(argv: list[str] | None = None) -> int:
    """Entry point: one-line errors, exit 2 for invalid input, 1 for a failing environment
    (OSError: a full disk) or an unexpected failure, 130 for an interrupt (Ctrl-C)."""
    from moestat.cache import enable_compilation_cache

    enable_compilation_cache()
    try:
        code = app(args=argv, standalone_mode=False)  # typer returns 130 for Ctrl-C
        if code == INTERRUPTED:
            raise KeyboardInterrupt
        return code if isinstance(code, int) else 0
    except InputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except typer.Exit as e:
        return e.exit_code
    except (typer.Abort, KeyboardInterrupt):
        print("interrupted: finished cells are kept; run the same command again to resume",
              file=sys.stderr)
        return INTERRUPTED
    except TyperException as e:  # usage errors: bad or missing options and arguments
        msg = e.format_message()
        if msg:
            print(f"error: {msg}", file=sys.stderr)
        return 2
    except OSError as e:  # the environment failed (a full disk, a lost mount): not bad input
        if os.environ.get("MOESTAT_DEBUG"):
            raise
        what = f"{e.strerror or e}" + (f": {e.filename}" if e.filename else "")
        print(f"error: {what} (files already written are complete and kept; fix the cause "
              "and run the command again: a sweep resumes)", file=sys.stderr)
        return 1
    except Exception as e:  # unexpected: one line, traceback only on request
        if os.environ.get("MOESTAT_DEBUG"):
            raise
        print(f"internal error: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
              " (set MOESTAT_DEBUG=1 for a traceback)", file=sys.stderr)
        return 1


def run() -> None:
    from moestat.process_exit import exit_process

    exit_process(main())
