"""Verdicts of declared claims: fixed rules, the same for every experiment (docs/losses.md,
"Claims and verdicts").

A claim is judged on a run's numbers, the rules in this order:

1. `not estimated` — the fits started near the truth and, at the largest n, the median over
   replicates of (final error / start error) lies between FLOOR_RATIO and 1 / FLOOR_RATIO: the
   error is the start's perturbation, not a rate; or it is above 1 / FLOOR_RATIO and the median
   error grows from the smallest n to the largest: the fits move away from the truth as n
   grows (diverging along a flat direction), not a rate. A ratio above 1 / FLOOR_RATIO with an
   error that shrinks with n means the fits moved well away from a start that was closer to the
   truth than their statistical error (a tiny start perturbation): that error is the
   estimator's own, and the slope judges it.
2. `inconclusive` — more than MAX_AT_MAX_ITER of the claim's fits stopped at max_iter: the
   estimator was not reached, whatever the slope.
3. the interval rule of the claim's kind, on 95 % intervals:
   - slope, value +- tol: `holds` when the slope's interval lies inside [value - tol,
     value + tol], `fails` when it does not meet that band, else `inconclusive`;
   - contrast, d = slope(faster) - slope(slower) with a declared margin >= 0: `holds` when
     d's interval lies below -margin, `fails` when it lies above -margin, else `inconclusive`;
   - slower than polynomial: `holds` when the log law's likelihood advantage over the power
     law (rates.power_vs_log) has an interval above 0, `fails` below 0, else `inconclusive`.

A `not estimated` of rule 1's band reads the largest n only. When the ratio at the smallest n
was at or above 1 / FLOOR_RATIO, the fits left their starts by far and their error comes back
to the start's level at the largest n: `crossing_note` says so next to the verdict
(which stands), and that starts at a second scale would decide.

An `inconclusive` interval verdict says what would decide it: an interval's half-width shrinks
as 1/sqrt(replicates) and about as 1/(decades of n), so it names the replicates (or decades)
that bring the half-width down to the distance between the estimate and the band's edge (or
says that more than 100 times the replicates would be needed).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

FLOOR_RATIO = 0.5  # median final / start error in (FLOOR_RATIO, 1 / FLOOR_RATIO) at the
# largest n: the error is the start's perturbation (rule 1)
MAX_AT_MAX_ITER = 0.05  # more than this fraction of fits at max_iter: inconclusive
MAX_DECIDING_FACTOR = 10.0  # an interval to shrink more than this: "no practical data decides"

HOLDS, FAILS, INCONCLUSIVE, NOT_ESTIMATED = "holds", "fails", "inconclusive", "not estimated"


@dataclass(frozen=True)
class Verdict:
    verdict: str
    reason: str


@dataclass(frozen=True)
class Evidence:
    """What the gates look at for one (setting, metric): fits, fits at max_iter, the median
    final / start error ratio at the largest n (None: no near-truth start recorded), the
    replicates per n, the decades of n spanned, and whether the median error at the largest n
    exceeds that at the smallest."""

    n_fits: int
    n_at_max_iter: int
    floor_ratio: float | None
    replicates: int
    decades: float
    grows: bool = False


def gate(evidence: Evidence, label: str = "") -> Verdict | None:
    """Rules 1 and 2 for one side of a claim; None when both pass."""
    e = evidence
    where = f"{label}: " if label else ""
    r = e.floor_ratio
    if r is not None and not (r <= FLOOR_RATIO or (r >= 1 / FLOOR_RATIO and not e.grows)):
        what = ("the fits move away from the truth as n grows" if r >= 1 / FLOOR_RATIO else
                "the error stays at the start's perturbation")
        return Verdict(NOT_ESTIMATED, f"{where}median final / start error {r:.2f} at the "
                       f"largest n: {what}")
    if e.n_at_max_iter > MAX_AT_MAX_ITER * e.n_fits:
        return Verdict(INCONCLUSIVE, f"{where}{e.n_at_max_iter} of {e.n_fits} fits stopped at "
                       f"max_iter (> {MAX_AT_MAX_ITER:.0%}): the estimator was not reached")
    return None


def _gates(sides: list[tuple[Evidence, str]]) -> Verdict | None:
    """The first side's gate verdict (not estimated before inconclusive), or None."""
    verdicts = [v for v in (gate(e, label) for e, label in sides) if v is not None]
    for kind in (NOT_ESTIMATED, INCONCLUSIVE):
        for v in verdicts:
            if v.verdict == kind:
                return v
    return None


def _what_decides(ci, edge: float, evidence: Evidence) -> str:
    """Replicates (or decades of n) that shrink the half-width of `ci` to |centre - edge|."""
    half = (ci[1] - ci[0]) / 2
    gap = abs((ci[0] + ci[1]) / 2 - edge)
    if gap <= 0 or half <= 0:
        return "the estimate sits on the edge: no amount of data decides at this resolution"
    factor = half / gap
    if factor > MAX_DECIDING_FACTOR:
        return (f"the estimate lies within {gap:.3f} of that edge: more than "
                f"{MAX_DECIDING_FACTOR**2:.0f}x the replicates would be needed to decide")
    reps = math.ceil(evidence.replicates * factor**2)
    decades = evidence.decades * factor
    return (f"about {reps} replicates per n (now {evidence.replicates}), or n over "
            f"{decades:.1f} decades (now {evidence.decades:.1f}), would decide")


def slope_verdict(slope: float, ci, value: float, tol: float, evidence: Evidence) -> Verdict:
    """A declared slope value +- tol against the slope's 95 % interval `ci`."""
    g = gate(evidence)
    if g is not None:
        return g
    lo, hi = value - tol, value + tol
    numbers = f"slope {slope:+.3f} [{ci[0]:+.3f}, {ci[1]:+.3f}] vs {value:+.3f} +- {tol:.3f}"
    if lo <= ci[0] and ci[1] <= hi:
        return Verdict(HOLDS, f"{numbers}: interval inside the band")
    if ci[1] < lo or ci[0] > hi:
        return Verdict(FAILS, f"{numbers}: interval outside the band")
    edge = lo if abs(slope - lo) < abs(slope - hi) else hi
    return Verdict(INCONCLUSIVE, f"{numbers}: interval crosses the band's edge; "
                   f"{_what_decides(ci, edge, evidence)}")


def contrast_verdict(difference: float, ci, margin: float, faster: Evidence,
                     slower: Evidence) -> Verdict:
    """slope(faster) - slope(slower) = `difference` with interval `ci`, against -margin."""
    g = _gates([(faster, "faster"), (slower, "slower")])
    if g is not None:
        return g
    numbers = (f"slope difference {difference:+.3f} [{ci[0]:+.3f}, {ci[1]:+.3f}] vs "
               f"-{margin:.3f}")
    if ci[1] < -margin:
        return Verdict(HOLDS, f"{numbers}: faster by more than the margin")
    if ci[0] > -margin:
        return Verdict(FAILS, f"{numbers}: not faster by the margin")
    smaller = faster if faster.replicates <= slower.replicates else slower
    return Verdict(INCONCLUSIVE, f"{numbers}: interval contains -margin; "
                   f"{_what_decides(ci, -margin, smaller)}")


def polynomial_verdict(delta: float, ci, evidence: Evidence) -> Verdict:
    """Slower than any polynomial: the log law's log-likelihood advantage `delta` (interval
    `ci`) over the power law."""
    g = gate(evidence)
    if g is not None:
        return g
    numbers = f"log-law advantage {delta:+.1f} nats [{ci[0]:+.1f}, {ci[1]:+.1f}]"
    if ci[0] > 0:
        return Verdict(HOLDS, f"{numbers}: the log law fits better")
    if ci[1] < 0:
        return Verdict(FAILS, f"{numbers}: the power law fits better")
    return Verdict(INCONCLUSIVE, f"{numbers}: neither law fits better; "
                   f"{_what_decides(ci, 0.0, evidence)}")


def crossing_note(first_ratio: float | None, floor_ratio: float | None) -> str | None:
    """For rule 1's band (floor_ratio at the largest n between FLOOR_RATIO and 1 / FLOOR_RATIO):
    a note when the ratio at the smallest n (first_ratio) was at or above 1 / FLOOR_RATIO —
    fits that left their starts and cross the start's level — else None."""
    if first_ratio is None or floor_ratio is None or not (
            FLOOR_RATIO < floor_ratio < 1 / FLOOR_RATIO and first_ratio >= 1 / FLOOR_RATIO):
        return None
    return (f"the fits left their starts ({first_ratio:.3g}x the start's error at the smallest "
            f"n) and are back near that level at the largest ({floor_ratio:.2f}x): starts at a "
            f"second scale would decide")
