"""Two start scales in one run: `init_scales = [s1, s2]` fits every near-truth setting again
from starts at the other scale, on its own data, and the report says which errors move with the
start.

The copies are written out when the config is resolved (`expand`): "<name>.init<scale>" with
`data` = the original's stream, so a run directory's resolved config reads back as itself and
the copies' cells resume like any others.
"""

from __future__ import annotations

from moestat.experiments.config import ExperimentConfig, base_setting, parse_config
from moestat.experiments.metric_runs import MetricRuns

FLOOR_MOVES = 1.5  # final errors differing by more than this factor "move with the start"


def expand(config: ExperimentConfig) -> ExperimentConfig:
    """Each near-truth setting once more per scale in `init_scales` other than its own. The
    result has the settings written out and no `init_scales` (it expands to itself)."""
    if not config.init_scales:
        return config
    extra = []
    for s in config.settings:
        if s.init.kind != "near_truth":
            continue
        for scale in config.init_scales:
            if scale != s.init.scale:
                extra.append(s.model_copy(update={
                    "name": f"{s.name}.init{scale:g}", "data": s.data_stream,
                    "init": s.init.model_copy(update={"scale": scale})}))
    data = config.model_dump(mode="json", exclude_none=True)
    data["settings"] += [e.model_dump(mode="json", exclude_none=True) for e in extra]
    data["init_scales"] = []
    return parse_config(data, "config (init_scales)")


def effects(config: ExperimentConfig, runs: dict[tuple[str, str], MetricRuns]) -> list[dict]:
    """For each setting fitted again from another init scale (same data): per metric the
    median final errors at the largest n both ran, their ratio (larger scale over smaller) and
    whether the metric moves with the start (ratio above FLOOR_MOVES)."""
    by_name = {s.name: s for s in config.settings}
    out = []
    for s in config.settings:
        base = base_setting(s.name)
        if base == s.name or base not in by_name:
            continue
        b = by_name[base]
        (small, big) = sorted([(b.init.scale, base), (s.init.scale, s.name)])
        for metric in config.metrics_for(base):
            lo, hi = runs.get((small[1], metric)), runs.get((big[1], metric))
            common = [] if lo is None or hi is None else sorted(
                set(lo.ns[lo.finite_rows()]) & set(hi.ns[hi.finite_rows()]))
            if not common:
                continue
            n = common[-1]
            a, c = lo.final_median(n), hi.final_median(n)
            ratio = c / a if a > 0 else float("inf")
            out.append({"setting": base, "scales": [small[0], big[0]], "metric": metric,
                        "n": int(n), "final_median": [a, c], "ratio": ratio,
                        "moves": bool(ratio > FLOOR_MOVES)})
    return out
