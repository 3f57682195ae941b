"""The `moestat` command line (Typer; output via rich). Thin: parse, call the library,
render. Exit codes: 0 success, 2 invalid input (one line on stderr), 1 a failure of the
environment (e.g. a full disk; one line naming the file) or an unexpected error."""

from __future__ import annotations

import functools
import os
import sys
import warnings
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table as RichTable
from typer.exceptions import TyperException

from moestat.errors import InputError
from moestat.files import strict_json, write_text_atomic

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Statistics of mixture-of-experts models.",
                  pretty_exceptions_enable=False)
console = Console(width=None if sys.stdout.isatty() else 170)


@app.callback()
def _options(
    device: Annotated[str, typer.Option(help="auto (a GPU when JAX sees one), cpu or gpu; "
                                        "also $MOESTAT_DEVICE")] = "",
):
    """Statistics of mixture-of-experts models."""
    from moestat.device import select_device

    select_device(device or None)


def _fmt(v) -> str:
    import numpy as np

    a = np.asarray(v)
    return np.array2string(a, precision=4, suppress_small=True, separator=", ") if a.ndim \
        else f"{float(a):.6g}"


@app.command()
def fit(
    data: Annotated[Path, typer.Argument(help="CSV file with a header row")],
    target: Annotated[str, typer.Option(help="response column")],
    experts: Annotated[int, typer.Option(help="number of experts k")] = 2,
    features: Annotated[str | None, typer.Option(help="comma-separated feature columns "
                                                 "(default: all others)")] = None,
    gate: Annotated[str, typer.Option(help="gate, e.g. softmax, topk_softmax:2")] = "softmax",
    expert: Annotated[str, typer.Option(help="expert, e.g. linear, ridge:tanh")] = "linear",
    noise: Annotated[str, typer.Option(help="gaussian or laplace")] = "gaussian",
    estimator: Annotated[str, typer.Option(help="em, mle or lse")] = "em",
    n_init: Annotated[int, typer.Option(help="random restarts")] = 5,
    max_iter: Annotated[int, typer.Option(help="iteration limit")] = 500,
    tol: Annotated[float, typer.Option(help="relative objective tolerance")] = 1e-8,
    seed: Annotated[int, typer.Option(help="random seed")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False,
    save: Annotated[Path | None, typer.Option(help="write the fitted model as JSON")] = None,
):
    """Fit one MoE model to a user's table; print parameters, log-likelihood, BIC."""
    import numpy as np
    from sklearn.exceptions import ConvergenceWarning

    from moestat.data import read_table
    from moestat.estimator import MixtureOfExpertsRegressor
    from moestat.fit.degeneracy import REASONS, DegenerateFitWarning

    feats = None if features is None else [f.strip() for f in features.split(",") if f.strip()]
    table = read_table(data, target, feats)
    est = MixtureOfExpertsRegressor(n_experts=experts, gate=gate, expert=expert, noise=noise,
                                    estimator=estimator, n_init=n_init, max_iter=max_iter,
                                    tol=tol, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # both reported below
        warnings.simplefilter("ignore", DegenerateFitWarning)
        est.fit(table.X, table.y)
    n = len(table.y)
    out = {
        "data": str(data), "target": table.target, "features": list(table.features),
        "n_samples": n, "model": est.model_.describe(), "estimator": estimator,
        "parameters": {k: np.asarray(v).tolist() for k, v in est.params_.items()},
        "loglik": est.loglik_, "bic": est.bic(table.X, table.y), "aic": est.aic(table.X, table.y),
        "n_parameters": est.n_parameters_, "converged": est.converged_, "n_iter": est.n_iter_,
        "at_bound": est.at_bound_, "degenerate": est.degenerate_, "seed": seed,
        "n_init": n_init,
    }
    if save is not None:
        write_text_atomic(save, strict_json(out, indent=2) + "\n")
    if as_json:
        print(strict_json(out))
        return
    console.print(f"[bold]{out['model']}[/bold]  ({estimator}, {n} rows, target "
                  f"{table.target!r}, features {list(table.features)})")
    t = RichTable("parameter", "value")
    for k, v in est.params_.items():
        t.add_row(k, _fmt(v))
    console.print(t)
    console.print(f"log-likelihood {out['loglik']:.6g}   BIC {out['bic']:.6g}   "
                  f"AIC {out['aic']:.6g}   parameters {out['n_parameters']}")
    status = "converged" if est.converged_ else "[red]NOT converged[/red]"
    console.print(f"{status} after {est.n_iter_} iterations (best of {n_init} restarts)"
                  + ("; [yellow]some parameter on its bound[/yellow]" if est.at_bound_ else ""))
    if est.degenerate_:
        console.print("[yellow]degenerate fit: " + ", ".join(REASONS[r] for r in est.degenerate_)
                      + "[/yellow]")
    if save is not None:
        console.print(f"saved to {save}")


def _rate_table(rep: dict) -> RichTable:
    t = RichTable("setting", "metric", "slope", "95% CI", "theory", "paper", "median slope",
                  "median 95% CI", "fits", "failed", "not conv.", "far out",
                  title=f"{rep['experiment']}: empirical rates"
                  + ("" if rep["complete"] else
                     f" (PARTIAL: {rep['cells_done']}/{rep['cells_total']} cells)"))
    for r in rep["rates"]:
        if "error" in r:
            t.add_row(r["setting"], r["metric"], r["error"], *[""] * 9)
            continue
        t.add_row(r["setting"], r["metric"], f"{r['slope']:.3f}",
                  f"[{r['ci95'][0]:.3f}, {r['ci95'][1]:.3f}]",
                  "" if r["theory"] is None else f"{r['theory']:g}",
                  "" if r["paper"] is None else f"{r['paper']:g}",
                  f"{r['median_slope']:.3f}",
                  f"[{r['median_ci95'][0]:.2f}, {r['median_ci95'][1]:.2f}]",
                  str(r["n_fits"]), str(r["n_failed"]),
                  str(r["n_nonconverged"]), str(r["n_far_out"]))
    return t


def _is_classification(data: dict) -> bool:
    from moestat.experiments.config import CLASSIFICATION_KIND

    return data.get("kind") == CLASSIFICATION_KIND


def _classification_dir(directory: Path) -> bool:
    import tomllib

    from moestat.experiments.runner import RESOLVED

    path = Path(directory) / RESOLVED
    try:
        return path.is_file() and _is_classification(tomllib.loads(path.read_text()))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError):
        return False


def _accuracy_table(rep: dict) -> RichTable:
    t = RichTable("gate", "fraction", "n train", "accuracy mean", "sd", "min", "max", "seeds",
                  "s / epoch", title=f"{rep['experiment']}: test accuracy"
                  + ("" if rep["complete"] else
                     f" (PARTIAL: {rep['cells_done']}/{rep['cells_total']} cells)"))
    for e in rep["accuracy"]:
        t.add_row(e["gate"], f"{100 * e['fraction']:g} %", str(e["n_train"]),
                  f"{e['mean']:.4f}", f"{e['sd']:.4f}", f"{e['min']:.4f}", f"{e['max']:.4f}",
                  str(e["seeds"]), f"{e['seconds_per_epoch']:.3f}")
    return t


def _print_classification(rep: dict) -> None:
    console.print(_accuracy_table(rep))
    for gate, f in rep["smallest_fraction_reaching_target"].items():
        console.print(f"{gate}: " + (f"reaches {rep['target_accuracy']:g} from {100 * f:g} % of "
                                     "the training data" if f is not None else
                                     f"never reaches {rep['target_accuracy']:g}"))


def _run_classification(config: Path, out: Path | None, preset: str | None,
                        resume: bool) -> None:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    from moestat.attention import experiment as ex

    cfg = ex.resolve(config, preset)
    out = out or Path("runs") / cfg.name
    ex.prepare_out(cfg, out, resume)
    with Progress("[progress.description]{task.description}", BarColumn(),
                  MofNCompleteColumn(), TimeRemainingColumn(), console=console,
                  transient=True) as progress:
        task = progress.add_task(f"{cfg.name} cells", total=len(cfg.gates) * len(cfg.fractions))
        ex.run(cfg, out, lambda done, total: progress.update(task, completed=done))
    rep = ex.write_summary(out)
    figure = ex.save_figure(out)
    _print_classification(rep)
    console.print(f"results: {out}/cells  summary: {out}/summary.json  figure: {figure}")


def _print_report(rep: dict) -> None:
    console.print(_rate_table(rep))
    for w in rep.get("warnings", []):
        console.print(f"[yellow]warning: {w}[/yellow]")


@functools.cache
def _import_plotting_meanwhile() -> None:
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


@app.command(name="run")
def run_sweep(
    config: Annotated[Path, typer.Argument(help="experiment TOML file")],
    out: Annotated[Path | None, typer.Option(help="output directory (default runs/NAME)")] = None,
    preset: Annotated[str | None, typer.Option(help="quick or full")] = None,
    resume: Annotated[bool, typer.Option("--resume/--no-resume",
                                         help="skip finished cells")] = True,
    seed: Annotated[int | None, typer.Option(help="override the root seed")] = None,
    workers: Annotated[int, typer.Option(help="local worker processes (0: in-process)")] = 0,
    scheduler: Annotated[str | None, typer.Option(
        help="Dask scheduler tcp://HOST:PORT, or 'local' to start a LocalCluster of "
             "--workers processes (default 2)")] = None,
):
    """Run a sweep (in-process, on --workers N local processes, or on a Dask cluster with
    --scheduler); writes cells, summary.json and rates.png, and prints the rate table."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    from moestat.experiments.backends import DaskCluster, InProcess, ProcessPool
    from moestat.experiments.runner import prepare_out, resolve, run_sweep, write_summary
    from moestat.experiments.sweep import cells

    if workers < 0:
        raise InputError(f"--workers must be >= 0, got {workers}")
    from moestat.experiments.config import read_toml

    if _is_classification(read_toml(config)):
        if workers or scheduler:
            raise InputError("--workers / --scheduler apply to rate studies; a classification "
                             "experiment runs in-process")
        return _run_classification(config, out, preset, resume)
    if scheduler is None:
        backend = ProcessPool(workers) if workers > 0 else InProcess()
    elif scheduler == "local":
        backend = DaskCluster("local", workers or 2)
    elif workers:
        raise InputError("--workers applies to local runs; a remote --scheduler has its own "
                         "workers")
    else:
        backend = DaskCluster(scheduler)
    cfg = resolve(config, preset, seed)
    out = out or Path("runs") / cfg.name
    prepare_out(cfg, out, resume)
    with Progress("[progress.description]{task.description}", BarColumn(),
                  MofNCompleteColumn(), TimeRemainingColumn(), console=console,
                  transient=True) as progress:
        task = progress.add_task(f"{cfg.name} cells", total=len(cells(cfg)))

        def advance(done, total):
            progress.update(task, completed=done)
            _import_plotting_meanwhile()

        run_sweep(cfg, out, backend, advance,
                  lambda names: console.print(
                      f"[yellow]moved {len(names)} damaged cell file(s) to {out}/corrupt/ "
                      f"(failed checksum or unreadable); recomputing them[/yellow]"))
    rep = write_summary(out)
    from moestat.experiments.plot import save_rate_figure

    figure = save_rate_figure(out, out / "rates.png", summary=rep)
    _print_report(rep)
    console.print(f"results: {out}/cells  summary: {out}/summary.json  figure: {figure}")


@app.command()
def report(
    directory: Annotated[Path, typer.Argument(help="run directory")],
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False,
):
    """Rate table of a run: slope, 95% CI, theory, paper, fits, failed."""
    if _classification_dir(directory):
        from moestat.attention.experiment import report as accuracy_report

        rep = accuracy_report(directory)
        if as_json:
            print(strict_json(rep))
        else:
            _print_classification(rep)
        return
    from moestat.experiments.runner import report as make_report

    rep = make_report(directory)
    if as_json:
        print(strict_json(rep))
    else:
        _print_report(rep)


@app.command()
def plot(
    directory: Annotated[Path, typer.Argument(help="run directory")],
    output: Annotated[Path | None, typer.Option("-o", "--output",
                                                help="figure file (.png, .svg, .pdf)")] = None,
    local_slopes: Annotated[bool, typer.Option(
        "--local-slopes", help="add a row of local slopes against n")] = False,
):
    """Log-log figure of a run: mean +/- 2 s.e., fitted and theory lines per metric (a
    classification run: accuracy against the training fraction)."""
    if _classification_dir(directory):
        from moestat.attention.experiment import save_figure

        console.print(f"figure: {save_figure(directory, output)}")
        return
    from moestat.experiments.plot import save_rate_figure

    path = save_rate_figure(directory, output or Path(directory) / "rates.png", local_slopes)
    console.print(f"figure: {path}")


@app.command()
def status(directory: Annotated[Path, typer.Argument(help="run directory")]):
    """Cells done / total and non-converged fits."""
    if _classification_dir(directory):
        from moestat.attention.experiment import report as accuracy_report

        rep = accuracy_report(directory)
        console.print(f"{rep['experiment']}: {rep['cells_done']}/{rep['cells_total']} cells"
                      + ("" if rep["complete"] else " (incomplete: run again to resume)"))
        return
    from moestat.experiments.runner import status as run_status

    st = run_status(directory)
    console.print(f"{st['experiment']}: {st['cells_done']}/{st['cells_total']} cells, "
                  f"{st['fits']} fits, {st['nonconverged']} not converged"
                  + ("" if st["complete"] else " (incomplete: run again to resume)"))


@app.command()
def identifiability(
    expert: Annotated[str | None, typer.Option(help="expert to check, e.g. ridge:tanh")] = None,
    activation: Annotated[str | None, typer.Option(help="activation of the activation gate, "
                                                   "e.g. tanh")] = None,
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
    from moestat.identifiability import (
        THRESHOLD,
        check_activation,
        check_distinguishable,
        check_expert,
    )

    if (expert is None) == (activation is None):
        raise InputError("give exactly one of --expert or --activation")
    if frozen_noise is not None:
        if expert is None:
            raise InputError("--frozen-noise needs --expert (the prompt expert)")
        if n_features < 1:
            raise InputError(f"--n-features must be >= 1, got {n_features}")
        import numpy as np

        from moestat.model import FrozenExpert
        from moestat.registry import make_expert

        fe = make_expert(frozen_expert or expert)
        rng = np.random.default_rng(seed)
        params = {f: rng.standard_normal(s[1:]) for f, s in fe.shapes(1, n_features).items()}
        frozen = FrozenExpert.create(fe.label, frozen_noise, params, 1.0)
        report = check_distinguishable(frozen, expert, noise, seed=seed)
    elif expert:
        report = check_expert(expert, seed=seed)
    else:
        report = check_activation(activation, seed=seed)
    if as_json:
        print(strict_json({**report.as_dict(), "threshold": THRESHOLD}))
        return
    t = RichTable("condition", "functions", "s_min / s_max", "verdict",
                  title=f"{report.subject} (independent if s_min / s_max >= {THRESHOLD:g})")
    for c in report.checks:
        t.add_row(c.condition, str(c.n_functions), f"{c.min_ratio:.1e}",
                  "[green]holds[/green]" if c.holds else "[red]fails[/red]")
    console.print(t)
    console.print(report.rate_class)


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
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False,
):
    """Benchmarks against baselines run in the same process: EM vs vectorised NumPy,
    (--scaling) along each workload dimension, and (--contaminated) the contaminated rate study
    vs the SciPy/BFGS paper protocol."""
    if n < 100 or iters < 1:
        raise InputError(f"--n must be >= 100 and --iters >= 1, got {n} and {iters}")
    if preset not in ("quick", "full"):
        raise InputError(f"--preset must be quick or full, got {preset!r}")
    if baseline_replicates < 1:
        raise InputError(f"--baseline-replicates must be >= 1, got {baseline_replicates}")
    if docs is not None and not scaling:
        raise InputError("--docs needs --scaling")
    if docs is not None and not (Path(docs) / "performance.md").is_file():
        raise InputError(f"--docs {docs}: no performance.md there")
    from moestat.bench import contaminated_protocol, em_throughput

    out = {"em_throughput": em_throughput.run(n, iters)}
    if not as_json:
        for line in em_throughput.lines(out["em_throughput"]):
            console.print(line)
    if scaling:
        from moestat.bench import scaling as sc

        out["scaling"] = sc.run(on_result=None if as_json else lambda r: console.print(
            sc.line(r)))
        if docs is not None:
            for path in sc.write_docs(out["scaling"], docs):
                if not as_json:
                    console.print(f"wrote {path}")
    if contaminated:
        out["contaminated"] = contaminated_protocol.run(preset, baseline_replicates)
        if not as_json:
            for line in contaminated_protocol.lines(out["contaminated"]):
                console.print(line)
    if as_json:
        print(strict_json(out))


@app.command(name="list")
def list_parts():
    """Registered gates, experts, noises and estimators."""
    from moestat.registry import catalogue

    for group, names in catalogue().items():
        console.print(f"[bold]{group}[/bold]: {', '.join(names)}")


def main(argv: list[str] | None = None) -> int:
    """Entry point: one-line errors, exit 2 for invalid input, 1 for a failing environment
    (OSError: a full disk) or an unexpected failure."""
    from moestat.cache import enable_compilation_cache

    enable_compilation_cache()
    try:
        app(args=argv, standalone_mode=False)
        return 0
    except InputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except typer.Exit as e:
        return e.exit_code
    except typer.Abort:
        print("error: aborted", file=sys.stderr)
        return 1
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
    sys.exit(main())
