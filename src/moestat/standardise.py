"""Fits on standardised data, reported on the user's scale.

A user's features may have any scale (1e3, 1e-6): the gate's coefficient box (|beta| <= 50),
the variance floor and the inner solvers' tolerances are all set for data of unit scale. So a
fit of a user's table runs on

    x' = (x - x_shift) / x_scale      (per feature: weighted mean, standard deviation)
    y' = (y - y_shift) / y_scale

and maps the fitted parameters back, exactly: a part that sees x through slopes . x +
intercept (`Part.x_fields`) gets

    slopes = slopes' / x_scale,   intercept = intercept' - slopes' . (x_shift / x_scale)

(the gauge row 0 stays 0), an expert whose mean follows y -> c y + m (`Expert.y_fields`) gets
its scaled fields times c and m added to its intercept, and every noise variance is multiplied
by c^2. The log-likelihood on the user's scale is the standardised one minus sum(w) log c (the
density of y = c y' + m is that of y' divided by c); a least-squares objective (minus the mean
squared error) is multiplied by c^2. The fitted model is the same function of the user's data
up to rounding, but the box applies to the standardised problem.

A model with a part that cannot follow (a quadratic or cosine gate, a polynomial expert,
ridge experts for the response, a frozen expert fixed on the user's scale) keeps that scale:
its `Scaling` is the identity on x, on y, or on both, and a kept column whose standard
deviation lies outside UNIT_SCALE is named in `Scaling.off_scale` (the fit reports it: the box
and the solvers assume unit scale, so such a fit may be poor; at 1e-2 a logit change of one
already needs |beta| = 100, beyond the box).

Standard deviations are computed on columns divided by their largest deviation first, so a
feature of scale 1e-300 (whose squares underflow) is standardised like any other.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from moestat.model import MixtureOfExperts, MoEParams

UNIT_SCALE = (1e-2, 1e2)  # standard deviations a column kept on the user's scale may have


class DataScaleWarning(UserWarning):
    """Issued by the estimator for a column kept far from unit scale (`Scaling.off_scale`)."""


@dataclass(frozen=True)
class Scaling:
    """x' = (x - x_shift) / x_scale (arrays (d,)), y' = (y - y_shift) / y_scale."""

    x_shift: np.ndarray
    x_scale: np.ndarray
    y_shift: float = 0.0
    y_scale: float = 1.0
    off_scale: tuple = ()  # (column, sd): kept on the user's scale, sd outside UNIT_SCALE;
    # column j for feature j, None for the target

    def warnings(self, features, target: str) -> list[str]:
        """One line per `off_scale` column, named by `features` / `target`."""
        return [f"{target if j is None else features[j]!r} keeps its scale (standard "
                f"deviation {sd:.3g}) because the model cannot be fitted on standardised "
                f"{'targets' if j is None else 'features'}; the coefficient box and the solvers "
                "assume unit scale: rescale it for a reliable fit" for j, sd in self.off_scale]

    @property
    def identity(self) -> bool:
        return (not np.any(self.x_shift) and bool(np.all(self.x_scale == 1))
                and self.y_shift == 0 and self.y_scale == 1)

    def apply(self, X, y):
        """(X', y') on the standardised scale (NumPy)."""
        return (X - self.x_shift) / self.x_scale, (y - self.y_shift) / self.y_scale


def follows_x(model: MixtureOfExperts) -> bool:
    return model.frozen is None and all(p.x_fields is not None for p in model.parts())


def follows_y(model: MixtureOfExperts) -> bool:
    return model.frozen is None and model.expert.y_fields is not None


def spread(a: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Weighted mean and standard deviation of each column of `a` (n, ...) (weights summing
    to 1), computed on deviations divided by their largest, so tiny scales do not underflow."""
    mean = w @ a
    dev = a - mean
    top = np.max(np.abs(dev), axis=0)
    unit = np.where(top > 0, top, 1.0)
    return mean, top * np.sqrt(w @ (dev / unit) ** 2)


def scaling_for(model: MixtureOfExperts, X, y, weights) -> Scaling:
    """Weighted means and standard deviations of the columns the model can follow (a constant
    column keeps scale 1); the kept columns whose scale is far from 1 in `off_scale`."""
    X, y, w = (np.asarray(a, dtype=np.float64) for a in (X, y, weights))
    w = w / w.sum()
    d = X.shape[1]
    x_shift, x_scale, y_shift, y_scale = np.zeros(d), np.ones(d), 0.0, 1.0
    x_mean, x_sd = spread(X, w)
    y_mean, y_sd = spread(y, w)
    if follows_x(model):
        x_shift, x_scale = x_mean, np.where(x_sd > 0, x_sd, 1.0)
    if follows_y(model):
        y_shift, y_scale = float(y_mean), float(y_sd) if y_sd > 0 else 1.0
    lo, hi = UNIT_SCALE
    off = [(j, float(v)) for j, v in enumerate(x_sd) if v > 0 and not lo <= v <= hi
           and not follows_x(model)]
    if y_sd > 0 and not lo <= y_sd <= hi and not follows_y(model) and \
            model.kind != "classification":  # labels: their spread is no scale
        off.append((None, float(y_sd)))
    return Scaling(x_shift, x_scale, y_shift, y_scale, tuple(off))


def to_user_scale(model: MixtureOfExperts, params: MoEParams, s: Scaling) -> MoEParams:
    """Parameters fitted on the standardised data -> the same model on the user's scale
    (affine in the parameters; NumPy or traced arrays alike)."""
    out = []
    for part, p in zip(model.parts(), params, strict=True):
        if part.x_fields:
            slopes_f, intercept_f = part.x_fields
            slopes = getattr(p, slopes_f)
            p = p._replace(**{slopes_f: slopes / s.x_scale,
                              intercept_f: getattr(p, intercept_f)
                              - slopes @ (s.x_shift / s.x_scale)})
        out.append(p)
    gate, expert, noise = out
    if follows_y(model):
        scaled, shifted = model.expert.y_fields
        expert = expert._replace(**{f: getattr(expert, f) * s.y_scale for f in scaled})
        expert = expert._replace(**{shifted: getattr(expert, shifted) + s.y_shift})
        noise = noise._replace(var=noise.var * s.y_scale**2)
    return MoEParams(gate, expert, noise)


def loglik_to_user_scale(loglik: float, total_weight: float, s: Scaling) -> float:
    """Log-likelihood of the user's y from that of the standardised y'."""
    return loglik - total_weight * float(np.log(s.y_scale))
