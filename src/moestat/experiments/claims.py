"""Judging a run's declared claims (config `[[claims]]`) by the fixed rules of
moestat/verdicts.py, on the statistic the config chose before the run (`headline`).

    slope                   the headline slope of (setting, metric) and its 95 % interval
    contrast                slope(faster) - slope(slower) with a bootstrap interval that
                            resamples the replicates jointly when both settings were fitted to
                            the same simulated data (one data stream: paired)
    slower_than_polynomial  rates.power_vs_log on the replicates' losses
"""

from __future__ import annotations

from moestat.errors import InputError
from moestat.experiments.config import (
    ContrastClaim,
    ExperimentConfig,
    PolynomialClaim,
    SlopeClaim,
)
from moestat.experiments.metric_runs import MetricRuns
from moestat.rates import fit_rate, power_vs_log, slope_difference
from moestat.verdicts import (
    INCONCLUSIVE,
    NOT_ESTIMATED,
    contrast_verdict,
    crossing_note,
    polynomial_verdict,
    slope_verdict,
)


def judge(config: ExperimentConfig, runs: dict[tuple[str, str], MetricRuns],
          n_boot: int = 2000) -> tuple[list[dict], list[dict]]:
    """(claims, contrasts): one entry per declared claim with its verdict and the numbers
    behind it; the contrast claims again in the `contrasts` form of `moestat report --json`."""
    claims, contrasts = [], []
    for claim in config.claims:
        entry = claim.model_dump()
        entry["statistic"] = config.headline
        try:
            entry.update(_judge_one(config, claim, runs, n_boot))
        except (InputError, KeyError) as e:
            reason = (f"{' '.join(e.args[0])}: fewer than two sample sizes finished"
                      if isinstance(e, KeyError) else str(e))
            entry.update({"verdict": INCONCLUSIVE, "reason": reason})
        if entry["verdict"] == NOT_ESTIMATED:
            entry["note"] = _crossing(entry)
        claims.append(entry)
        if isinstance(claim, ContrastClaim):
            contrasts.append({k: entry.get(k) for k in (
                "faster", "slower", "metric", "slower_metric", "slope_difference", "ci95",
                "paired", "verdict", "reason")})
    return claims, contrasts


def _judge_one(config, claim, runs, n_boot) -> dict:
    stat, seed = config.headline, config.seed
    if isinstance(claim, SlopeClaim):
        r = runs[(claim.setting, claim.metric)]
        rate = fit_rate(r.ns, r.losses, n_boot=n_boot, seed=seed, statistic=stat)
        v = slope_verdict(rate.slope, rate.ci95, claim.value, claim.tol, r.evidence())
        return {"slope": rate.slope, "ci95": list(rate.ci95), **_gate_numbers(r),
                "verdict": v.verdict, "reason": v.reason}
    if isinstance(claim, ContrastClaim):
        fast, slow = (runs[(name, claim.metric_of(name))] for name in claim.settings)
        if fast.ns.shape != slow.ns.shape or (fast.ns != slow.ns).any():
            raise InputError(f"{claim.faster} and {claim.slower} were not run at the same n")
        paired = (_stream(config, claim.faster) == _stream(config, claim.slower)
                  and fast.losses.shape == slow.losses.shape)
        diff, ci = slope_difference(fast.ns, fast.losses, slow.losses, paired=paired,
                                    statistic=stat, n_boot=n_boot, seed=seed)
        v = contrast_verdict(diff, ci, claim.margin, fast.evidence(), slow.evidence())
        return {"slope_difference": diff, "ci95": list(ci), "paired": paired,
                "faster_gates": _gate_numbers(fast), "slower_gates": _gate_numbers(slow),
                "verdict": v.verdict, "reason": v.reason}
    assert isinstance(claim, PolynomialClaim)
    r = runs[(claim.setting, claim.metric)]
    laws = power_vs_log(r.ns, r.losses, seed=seed)
    v = polynomial_verdict(laws["delta"], laws["delta_ci95"], r.evidence())
    return {**laws, **_gate_numbers(r), "verdict": v.verdict, "reason": v.reason}


def _stream(config: ExperimentConfig, name: str) -> str:
    return next(s.data_stream for s in config.settings if s.name == name)


def _gate_numbers(r: MetricRuns) -> dict:
    floor, first = r.floor(), r.floor(largest=False)
    return {"n_fits": r.n_fits, "n_at_max_iter": int(r.at_max_iter.sum()),
            "floor_ratio": None if floor is None else floor["ratio"],
            "first_ratio": None if first is None else first["ratio"]}


def _crossing(entry: dict) -> str | None:
    """verdicts.crossing_note of a not-estimated claim (of each side of a contrast)."""
    sides = ([("", entry)] if "floor_ratio" in entry else
             [(f"{k}: ", entry.get(f"{k}_gates") or {}) for k in ("faster", "slower")])
    notes = [where + n for where, g in sides
             if (n := crossing_note(g.get("first_ratio"), g.get("floor_ratio"))) is not None]
    return "; ".join(notes) or None
