"""What every estimator returns, and the options they share."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import jax

from moestat.model import MoEParams


class FitResult(NamedTuple):
    """Outcome of one fit (leaves gain a leading replicate axis when vmapped).

    objective: the maximised quantity per sample — mean log-likelihood (em, mle) or minus the
        mean squared error (lse); loglik: mean log-likelihood in every case;
    history: objective after each iteration (NaN past `n_iter`), shape (max_iter,);
    at_bound: some parameter ended on its box bound; floored: some variance ended on its lower
        bound (docs/models.md); empty: some expert carries less than one sample's gate weight;
        separated: some gate coefficient ended on its box; degenerate: floored, empty,
        separated or a non-finite value (fit/degeneracy.py).
    """

    params: MoEParams
    objective: jax.Array
    loglik: jax.Array
    n_iter: jax.Array
    converged: jax.Array
    at_bound: jax.Array
    floored: jax.Array
    empty: jax.Array
    separated: jax.Array
    degenerate: jax.Array
    history: jax.Array


FINISHES = ("none", "newton")  # what runs after EM: nothing, or Newton steps (fit/em_newton.py)


@dataclass(frozen=True)
class FitOptions:
    """Stopping and inner-solver settings (hashable: part of the compiled function's key).

    Stop when |obj_t - obj_{t-1}| <= tol * max(|obj_{t-1}|, 1) or after `max_iter` iterations
    (the objective is per sample, so the floor at 1 only matters when it is near zero).
    gate_newton_steps: Newton (IRLS) steps per EM gate update; expert_newton_steps: Gauss-Newton
    steps per EM update of experts non-linear in their parameters; inner_steps: L-BFGS iterations
    per generic M-step; ridge: relative Tikhonov term keeping linear solves well posed;
    em_path: "auto" runs EM by sufficient statistics (fit/em_statistics.py) where the model allows
    it, "generic" always runs the per-sample EM of fit/em.py (the same algorithm; for
    comparisons); accelerate: "squarem" extrapolates along the EM path (fit/acceleration.py;
    one iteration = three EM steps), "none" runs plain EM; learning_rate, batch_size: minibatch
    SGD (fit/sgd.py, one iteration = one epoch); lse_solver: least squares by
    Levenberg-Marquardt or L-BFGS (fit/lse.py); finish: "newton" runs EM only until its
    relative change is below `handover_tol`, then Newton steps on the log-likelihood until
    `tol` (fit/em_newton.py; EM only), "none" runs EM to `tol`.
    """

    max_iter: int = 500
    tol: float = 1e-8
    gate_newton_steps: int = 1
    expert_newton_steps: int = 1
    inner_steps: int = 10
    ridge: float = 1e-10
    expert_bound: float | None = None  # |expert coefficient| <= this (a compact parameter
    # space, as the theory assumes); None: experts unbounded
    em_path: str = "auto"  # or "generic"
    accelerate: str = "none"  # or "squarem" (EM only)
    learning_rate: float = 0.1  # sgd: step size
    batch_size: int = 32  # sgd: rows per minibatch
    lse_solver: str = "auto"  # "lm", "lbfgs", or "auto": lm up to LM_MAX_PARAMETERS
    finish: str = "none"  # or "newton" (EM only)
    handover_tol: float = 1e-6  # finish = "newton": EM's stopping tolerance before Newton

    def __post_init__(self):
        if self.em_path not in ("auto", "generic"):
            raise ValueError(f"em_path must be 'auto' or 'generic', got {self.em_path!r}")
        if self.accelerate not in ("none", "squarem"):
            raise ValueError(f"accelerate must be 'none' or 'squarem', got {self.accelerate!r}")
        if self.finish not in FINISHES:
            raise ValueError(f"finish must be 'none' or 'newton', got {self.finish!r}")
        if self.lse_solver not in ("auto", "lm", "lbfgs"):
            raise ValueError(f"lse_solver must be 'auto', 'lm' or 'lbfgs', got "
                             f"{self.lse_solver!r}")
