"""Running a sweep in-process (the embedded default) with resume, and reporting its rates."""

from __future__ import annotations

from collections.abc import Callable, Collection
from pathlib import Path

import numpy as np
import tomli_w

from moestat import interrupts
from moestat.errors import InputError
from moestat.experiments import init_scales
from moestat.experiments.backends import InProcess
from moestat.experiments.claims import judge
from moestat.experiments.config import (
    RESOLVED,
    ExperimentConfig,
    load_for_run,
    parse_config,
    read_toml,
)
from moestat.experiments.grid import cells
from moestat.experiments.metric_runs import MetricRuns, metric_runs
from moestat.experiments.metrics import COUNTS, check_metrics
from moestat.experiments.store import (
    FAILED,
    cell_keys,
    config_hash,
    done_keys,
    failed_keys,
    quarantine_damaged,
    quarantine_foreign,
    read_rows,
    rekey,
    remove_temporaries,
    write_cell,
)
from moestat.experiments.validation import check_runnable
from moestat.files import strict_json, write_text_atomic
from moestat.fit import REASONS
from moestat.memory import budget
from moestat.rates import fit_rate, local_slope_intervals, local_slopes, power_vs_log


def resolve(config_path: str | Path, preset: str | None = None,
            seed: int | None = None) -> ExperimentConfig:
    config = init_scales.expand(load_for_run(config_path, preset, seed))
    check_runnable(config)  # before the metrics, whose check traces the losses
    check_metrics(config)
    return config


def prepare_out(config, out: Path, resume: bool, parse=parse_config,
                only: Collection[str] | None = None) -> None:
    """Write DIR/config.resolved.toml, refusing a directory made by a different config
    (`same_run`). `parse(data, source)` reads the config kind back (rate study by default).
    Without `resume` the finished cells are deleted: all of them, or with `only` those of
    the named settings."""
    if Path(out).exists() and not Path(out).is_dir():
        raise InputError(f"--out {out} is a file; name a directory")
    path = Path(out) / RESOLVED
    text = tomli_w.dumps(config.model_dump(mode="json", exclude_none=True))
    if path.exists():
        old = parse(read_toml(path), str(path))
        if not same_run(old, config):
            raise InputError(f"{out} holds results of a different config (or preset / seed); "
                             "use another --out or delete it")
        if not resume:
            mine = None
            if only is not None:
                chosen = [c for c in cells(config) if c.setting in only]
                mine = {k for pair in cell_keys(config, chosen) for k in pair}
            for p in (Path(out) / "cells").glob("*.parquet"):
                if mine is None or p.stem.removesuffix(FAILED) in mine:
                    p.unlink()
    write_text_atomic(path, text)


def same_run(old, new) -> bool:
    """May `new` continue the run directory of `old`? Attention studies: the same config.
    Rate studies: the same experiment, seed and grid; edited claims, added or changed settings
    continue it (a changed setting's cells are moved aside, store.quarantine_foreign)."""
    if not isinstance(new, ExperimentConfig):
        return config_hash(old) == config_hash(new)
    keep = ("name", "seed", "block", "replicates", "n")
    return all(getattr(old, f) == getattr(new, f) for f in keep)


def load_resolved(out: Path, parse=parse_config):
    path = Path(out) / RESOLVED
    if not path.is_file():
        raise InputError(f"{out} is not a moestat run directory (no {RESOLVED})")
    return parse(read_toml(path), str(path))


def selected_settings(config: ExperimentConfig, names: list[str] | None) -> set[str]:
    """The settings a run computes: `names` (each must be one of the config's), else all."""
    known = [s.name for s in config.settings]
    unknown = [n for n in names or [] if n not in known]
    if unknown:
        raise InputError(f"--setting {unknown[0]!r} is not a setting of {config.name}; "
                         f"its settings: {', '.join(known)}")
    return set(names or known)


def run_sweep(config: ExperimentConfig, out: Path, backend=None,
              on_cell: Callable[[int, int], None] | None = None,
              on_damaged: Callable[[list[str]], None] | None = None,
              on_note: Callable[[str], None] | None = None,
              only: Collection[str] | None = None) -> int:
    """Run every missing cell on `backend` (default in-process), writing each as it finishes;
    returns how many were computed. Damaged cell files (store.quarantine_damaged) are moved
    aside first, reported through `on_damaged(names)`, and recomputed; cell files of another
    config are moved to foreign/, and cells that failed before are computed again, each said
    through `on_note(text)`. `only`: the names of the settings whose cells run (default all;
    the others' cells stay as they are)."""
    budget()  # a bad MOESTAT_MEMORY_GB is refused here, not as failed cells
    remove_temporaries(out)
    damaged = quarantine_damaged(out)
    if damaged and on_damaged:
        on_damaged(damaged)
    backend = backend or InProcess()
    all_cells = cells(config)
    keys = dict(zip(all_cells, cell_keys(config, all_cells), strict=True))
    rekey(out, [(whole, key) for key, whole in keys.values()])  # directories written before
    foreign = quarantine_foreign(out, {k for pair in keys.values() for k in pair})
    done_already = done_keys(out)  # one directory listing, not one per cell
    mine = [c for c in all_cells if only is None or c.setting in only]
    todo = [c for c in mine if not set(keys[c]) & done_already]
    retried = len(failed_keys(out) & {k for c in mine for k in keys[c]})
    for text in ([f"moved {len(foreign)} cell file(s) of another config to {out}/foreign/"]
                 if foreign else []) + ([f"retrying {retried} cell(s) that failed before"]
                                        if retried else []):
        if on_note:
            on_note(text)
    total = len(mine)
    done = total - len(todo)
    for cell, rows in backend.map_cells(config, todo):
        failed = bool(rows["failed"]) and all(rows["failed"])  # rows.failed_rows
        write_cell(out, keys[cell][0], rows, failed=failed)
        done += 1
        if on_cell:
            on_cell(done, total)
    interrupts.check()  # Ctrl-C: the backend stopped early, its cells at hand written
    return len(todo)


def status(out: Path, table=None) -> dict:
    """Cells done / total and fit counts; `table` (the run's rows) saves re-reading them."""
    config = load_resolved(out)
    all_cells = cells(config)
    keys = cell_keys(config, all_cells)
    expected = {k for pair in keys for k in pair}
    finished, failing = done_keys(out), failed_keys(out)  # one listing each
    is_done = [bool(set(pair) & finished) for pair in keys]
    done = sum(is_done)
    failed = sum(bool(set(pair) & failing) and not set(pair) & finished for pair in keys)
    table = read_rows(out, expected) if table is None else table
    n_fits = 0 if table is None else table.num_rows
    nonconv = 0 if table is None else int(np.sum(~np.asarray(table["converged"])))
    by_setting = {s.name: [0, 0] for s in config.settings}  # [done, total]
    for c, d in zip(all_cells, is_done, strict=True):
        by_setting[c.setting][0] += d
        by_setting[c.setting][1] += 1
    return {"experiment": config.name, "cells_done": done, "cells_total": len(all_cells),
            "cells_failed": failed, "fits": n_fits, "nonconverged": nonconv,
            "complete": done == len(all_cells), "by_setting": by_setting}


def expected_keys(out: Path, config: ExperimentConfig | None = None) -> set[str]:
    """The cell keys of the run's config (what its reports may read)."""
    config = load_resolved(out) if config is None else config
    return {k for pair in cell_keys(config, cells(config)) for k in pair}


def report(out: Path, n_boot: int = 2000) -> dict:
    """The rate table (`moestat report`): one entry per (setting, metric), the declared
    claims' verdicts and contrasts (experiments/claims.py), and the init-scale effects."""
    config = load_resolved(out)
    table = read_rows(out, expected_keys(out, config))
    st = status(out, table)
    rates, runs = [], {}
    if table is not None:
        cols = table.to_pydict()
        setting = np.asarray(cols["setting"])
        bound = np.asarray(cols["at_bound"])
        for s in config.settings:
            sel = setting == s.name
            if np.unique(np.asarray(cols["n"])[sel]).size < 2:
                continue
            for metric in config.metrics_for(s.name):
                r = runs[(s.name, metric)] = metric_runs(cols, config, s.name, metric)
                if metric in COUNTS:
                    continue
                try:
                    entry = rate_entry(config, s.name, metric, r, n_boot)
                except InputError as e:
                    rates.append({"setting": s.name, "metric": metric, "error": str(e)})
                    continue
                entry["n_at_bound"] = int(np.sum(bound[sel]))
                rates.append(entry)
    claims, contrasts = judge(config, runs, n_boot)
    return {"experiment": config.name, "complete": st["complete"],
            "cells_done": st["cells_done"], "cells_total": st["cells_total"],
            "cells_failed": st["cells_failed"], "headline": config.headline, "rates": rates,
            "claims": claims,
            "contrasts": contrasts, "init_scales": init_scales.effects(config, runs),
            "splits": split_counts(runs),
            "warnings": [] if table is None else fit_warnings(config, cols)}


def split_counts(runs: dict) -> list[dict]:
    """Per setting with the `split_cells` count and per n: fits still serving a true atom
    with several active atoms ("stuck") and fits with one active atom per true atom
    ("escaped"; losses.split_cells)."""
    out = []
    for (setting, metric), r in runs.items():
        if metric != "split_cells":
            continue
        for n, row in zip(r.ns, r.losses, strict=True):
            row = row[np.isfinite(row)]
            out.append({"setting": setting, "n": int(n), "fits": int(row.size),
                        "stuck": int(np.sum(row >= 1)), "escaped": int(np.sum(row < 1))})
    return out


def rate_entry(config: ExperimentConfig, setting: str, metric: str, r: MetricRuns,
               n_boot: int) -> dict:
    """One row of the rate table: mean and median slopes with intervals, fit counts (failed,
    not converged, at max_iter), the init floor, power law vs log law and local slopes."""
    ns, L = r.ns, r.losses
    pending = int(np.sum(~r.ran))  # a partial run: not failed, just not run yet
    mean = fit_rate(ns, L, converged=r.converged, n_boot=n_boot, seed=config.seed)
    med = fit_rate(ns, L, n_boot=1000, seed=config.seed, statistic="median")
    entry = {
        "setting": setting, "metric": metric, "slope": mean.slope,
        "ci95": list(mean.ci95), "intercept": mean.intercept, "r2": mean.r2,
        "theory": config.expected("theory", setting, metric),
        "paper": config.expected("paper", setting, metric),
        "n_values": mean.n_values, "replicates": mean.replicates,
        "n_fits": mean.n_fits - pending, "n_failed": mean.n_failed - pending,
        "n_not_converged": int(np.sum(~r.converged & r.ran)),
        "n_at_max_iter": int(r.at_max_iter.sum()),
        "median_slope": med.slope, "median_ci95": list(med.ci95),
        "median_intercept": med.intercept,
        "n_far_out": far_out(L), "init_floor": r.floor(),
        "power_vs_log": laws(ns, L, config.seed),
    }
    if ns.size > config.local_window:
        stat = config.headline or "mean"
        centres, slopes = local_slopes(ns, L, config.local_window, statistic=stat)
        ci = local_slope_intervals(ns, L, config.local_window, statistic=stat,
                                   seed=config.seed)
        entry["local_slopes"] = {"n": centres.tolist(), "slope": slopes.tolist(),
                                 "ci95": ci.tolist(), "statistic": stat}
    return entry


def laws(ns, losses, seed: int) -> dict | None:
    """rates.power_vs_log, or None where it cannot tell (fewer than three n, no spread)."""
    try:
        return power_vs_log(ns, losses, seed=seed)
    except InputError:
        return None


def per_n_of(out: Path, spec: str) -> dict:
    """`per_n` of a "SETTING:METRIC" spec (`moestat report --per-n`)."""
    setting, _, metric = spec.partition(":")
    if not setting or not metric:
        raise InputError(f"--per-n takes SETTING:METRIC, got {spec!r}")
    return per_n(out, setting, metric)


def per_n(out: Path, setting: str, metric: str) -> dict:
    """Per-n statistics of one (setting, metric), for reading a noisy rate: mean and median
    loss, fits, non-converged and far-out fits at each n, and the mean slope over all fits and
    over converged fits only."""
    config = load_resolved(out)
    if setting not in [s.name for s in config.settings]:
        raise InputError(f"no setting {setting!r} in {out}; settings: "
                         f"{[s.name for s in config.settings]}")
    if metric not in config.metrics_for(setting):
        raise InputError(f"setting {setting!r} has no metric {metric!r}; metrics: "
                         f"{config.metrics_for(setting)}")
    table = read_rows(out, expected_keys(out, config))
    if table is None:
        raise InputError(f"{out} has no finished cells")
    runs = metric_runs(table.to_pydict(), config, setting, metric)
    ns, L, C = runs.ns, runs.losses, runs.converged

    def median(v):
        v = v[np.isfinite(v)]
        return float(np.median(v)) if v.size else None

    out_rows = []
    for i, n in enumerate(ns):
        row = L[i]
        out_rows.append({"n": int(n), "fits": int(np.isfinite(row).sum()),
                         "not_converged": int((~C[i]).sum()),
                         "at_max_iter": int(runs.at_max_iter[i].sum()),
                         "far_out": far_out(L[i:i + 1]),
                         "mean": float(np.nanmean(row)) if np.isfinite(row).any() else None,
                         "median": median(row), "start_median": median(runs.start[i])})
    slopes = {}
    for name, drop in (("all_fits", False), ("converged_fits", True)):
        try:
            r = fit_rate(ns, L, converged=C, drop_nonconverged=drop, seed=config.seed)
            slopes[name] = {"slope": r.slope, "ci95": list(r.ci95)}
        except InputError as e:
            slopes[name] = {"error": str(e)}
    return {"setting": setting, "metric": metric, "per_n": out_rows, "mean_slope": slopes}


def fit_warnings(config: ExperimentConfig, cols: dict[str, list]) -> list[str]:
    """One line per setting with failed or degenerate fits (fit/degeneracy.py), counting each
    reason. Cells written before the degeneracy flags existed count as not degenerate."""
    setting = np.asarray(cols["setting"])

    def flag(name):
        if name not in cols:
            return np.zeros(setting.size, bool)
        return np.asarray([bool(v) for v in cols[name]])  # null (older cells) -> False

    failed, degenerate = flag("failed"), flag("degenerate")
    reasons = {r: flag(r) for r in ("floored", "empty", "separated")}
    out = []
    for s in config.settings:
        sel = setting == s.name
        total = int(sel.sum())
        if failed[sel].any():
            out.append(f"{s.name}: {int(failed[sel].sum())} of {total} fits failed (their rows "
                       "are kept with failed = true and no values)")
        d = degenerate[sel]
        if d.any():
            parts = [f"{int((v[sel] & d).sum())} {REASONS[r]}" for r, v in reasons.items()
                     if (v[sel] & d).any()]
            other = d & ~np.any([v[sel] for v in reasons.values()], axis=0)
            if other.any():
                parts.append(f"{int(other.sum())} {REASONS['nonfinite']}")
            out.append(f"{s.name}: {int(d.sum())} of {total} fits degenerate "
                       f"({', '.join(parts)})")
    return out


def far_out(losses) -> int:
    """Fits far out above the rest at their n (Tukey: > Q3 + 3 IQR of log loss across
    replicates), e.g. an over-fitted atom with a tiny weight wandering in beta1; the median
    slope is robust to them, the mean slope is not."""
    logs = np.log(np.where(losses > 0, losses, np.nan))
    logs = logs[np.isfinite(logs).any(axis=1)]  # rows with no finite loss have no outliers
    if logs.size == 0:
        return 0
    q1, q3 = np.nanpercentile(logs, [25, 75], axis=1, keepdims=True)
    return int(np.sum(logs > q3 + 3 * (q3 - q1)))


def write_summary(out: Path) -> dict:
    summary = report(out)
    text = strict_json(summary, indent=2) + "\n"
    write_text_atomic(Path(out) / "summary.json", text)
    return summary
