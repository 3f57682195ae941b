"""Numerical checks of the papers' identifiability conditions (our reconstruction; the papers'
full texts were not available — see docs/design.md).

Each condition asks that a family of functions of x be linearly independent for distinct
parameters eta_1 .. eta_l. We sample x on [-3, 3] (d = 1: the structural identities that break
these conditions, such as x dh/db = dh/da for an expert with a bias, already hold in one
dimension), draw l = 2 random atoms, evaluate every function of the family, normalise the
columns and compute the singular values of the (n_points, n_functions) matrix. The family is
declared dependent when s_min / s_max < THRESHOLD in every one of `n_trials` independent draws
(an exact identity gives ~1e-15; genuinely independent families here give > 1e-6). This is the
numerical rank of the Gram matrix F^T F (its eigenvalues are the squared singular values),
computed from F directly, which keeps the precision that squaring would lose.

Conditions
  expert (LSE, strong identifiability):  {d^alpha h / d eta^alpha (x, eta_j): 1 <= |alpha| <= 2}
      first order = |alpha| = 1 only. Holds for ridge sigmoid / tanh / gelu; ReLU fails at
      second order (h'' = 0); linear and polynomial experts fail at second order.
  gate x expert (contaminated prompt condition):
      {x^nu d^alpha h / d eta^alpha: nu + |alpha| <= 2}; the gate's slope derivatives bring
      powers of x. tanh(eta x) passes; with a bias, x dh/db = dh/da (the PDE
      d2u/(d beta1 d b) = du/da) breaks it, as for linear experts.
  activation gate, first-order independence:  {1, sigma(beta_j x), x sigma'(beta_j x)}
      (derivatives of sigma(beta x)/tau + beta0 in beta0, tau, beta); second order adds
      x^2 sigma''(beta_j x). The identity activation fails (sigma(beta x) = beta x sigma'),
      tanh passes.
  gate x Gaussian linear expert (over-fitted cells):  for u = exp(s(x; g)) N(y | a x + b, v),
      {u, du/dg, du/da, du/db, du/dv, d2u/(dg db)} with g the atom's gate parameters but its
      intercept, on (x, y) points. The softmax gate fails (d2u/(d beta1 d b) = du/da: beta1
      and a then converge at rates set by the cell's size); the Laplace gate passes (its
      du/dW = sign(x - W) u brings no power of x).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import jax
import jax.flatten_util
import jax.numpy as jnp
import numpy as np

from moestat.activations import get_activation
from moestat.registry import make_expert

THRESHOLD = 1e-8


@dataclass(frozen=True)
class Check:
    condition: str
    holds: bool
    min_ratio: float  # largest over trials of s_min / s_max
    n_functions: int


@dataclass(frozen=True)
class Report:
    subject: str
    checks: list[Check] = field(default_factory=list)
    rate_class: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


def _ratio(columns: np.ndarray) -> float:
    norms = np.linalg.norm(columns, axis=0)
    if np.any(norms < 1e-12):  # a function that vanishes identically
        return 0.0
    s = np.linalg.svd(columns / norms, compute_uv=False)
    return float(s[-1] / s[0])


def _check(name, family, n_trials, seed) -> Check:
    ratios, p = [], 0
    for t in range(n_trials):
        cols = family(np.random.default_rng(seed + t))
        p = cols.shape[1]
        ratios.append(_ratio(cols))
    best = max(ratios)
    return Check(name, bool(best >= THRESHOLD), best, p)


def _points(n_points: int) -> jnp.ndarray:
    return jnp.linspace(-3.0, 3.0, n_points)[:, None]


def _expert_fn(expert):
    """h(eta_flat, x) for one expert in d = 1, and the number of parameters."""
    shapes = expert.shapes(1, 1)
    sizes = {f: int(np.prod(s)) for f, s in shapes.items()}

    def h(eta, x):
        vals, i = {}, 0
        for f, s in shapes.items():
            vals[f] = eta[i : i + sizes[f]].reshape(s)
            i += sizes[f]
        return expert.mean(expert.Params(**vals), x[None, :])[0, 0]

    return h, sum(sizes.values())


def _expert_columns(expert, rng, n_points, n_atoms, max_order, gate_powers):
    h, q = _expert_fn(expert)
    X = _points(n_points)
    grad = jax.vmap(jax.grad(h), in_axes=(None, 0))
    hess = jax.vmap(jax.hessian(h), in_axes=(None, 0))
    value = jax.vmap(h, in_axes=(None, 0))
    x = np.asarray(X[:, 0])
    iu = np.triu_indices(q)
    cols = []
    for _ in range(n_atoms):
        eta = jnp.asarray(rng.choice([-1, 1], q) * rng.uniform(0.5, 1.5, q))
        by_order = {0: [np.asarray(value(eta, X))[:, None]],
                    1: [np.asarray(grad(eta, X))],
                    2: [np.asarray(hess(eta, X))[:, iu[0], iu[1]]]}
        for order in range(max_order + 1):
            if order == 0 and not gate_powers:
                continue
            for nu in range((max_order - order + 1) if gate_powers else 1):
                cols.extend(x[:, None] ** nu * b for b in by_order[order])
    return np.concatenate(cols, axis=1)


def check_expert(spec: str, *, n_points: int = 2000, n_atoms: int = 2, n_trials: int = 3,
                 seed: int = 0) -> Report:
    """Strong identifiability of an expert (first and second order) and the gate x expert
    condition, with the rate class they imply."""
    expert = make_expert(spec)

    def fam(order, gate):
        return lambda rng: _expert_columns(expert, rng, n_points, n_atoms, order, gate)

    first = _check("expert derivatives, order 1", fam(1, False), n_trials, seed)
    second = _check("expert derivatives, order <= 2 (strong identifiability)", fam(2, False),
                    n_trials, seed)
    gate = _check("gate x expert, nu + |alpha| <= 2 (contaminated prompt condition)",
                  fam(2, True), n_trials, seed)
    if second.holds:
        rate = ("strongly identifiable: least squares reaches n^-1/2 for singleton atoms and "
                "n^-1/4 in over-fitted cells (D_LSE)")
    elif first.holds:
        rate = ("first-order identifiable only: exact-specified n^-1/2 is possible, over-fitted "
                "cells have no polynomial-rate guarantee")
    else:
        rate = "not identifiable to first order: no polynomial rate is guaranteed"
    rate += (". As a prompt expert of a contaminated model (with a distinguishable frozen "
             "expert): all parameters at n^-1/2" if gate.holds else
             ". As a prompt expert of a contaminated model: the gate x expert condition fails "
             "(an interaction such as x dh/db = dh/da), so rates are slower")
    return Report(expert.label, [first, second, gate], rate)


def check_activation(name: str, *, n_points: int = 2000, n_atoms: int = 2, n_trials: int = 3,
                     seed: int = 0) -> Report:
    """First- and second-order independence of an activation for the activation gate."""
    act = get_activation(name)
    d1 = jax.vmap(jax.grad(act))
    d2 = jax.vmap(jax.grad(jax.grad(act)))
    x = _points(n_points)[:, 0]

    def family(order):
        def cols(rng):
            out = [np.ones(n_points)]
            for _ in range(n_atoms):
                beta = rng.choice([-1, 1]) * rng.uniform(0.5, 1.5)
                z = beta * x
                out += [np.asarray(act(z)), np.asarray(x * d1(z))]
                if order == 2:
                    out.append(np.asarray(x**2 * d2(z)))
            return np.stack(out, axis=1)

        return cols

    first = _check("first-order independence {1, s(bx), x s'(bx)}", family(1), n_trials, seed)
    second = _check("second-order independence (+ x^2 s''(bx))", family(2), n_trials, seed)
    if first.holds:
        rate = ("activation dense-to-sparse gate: polynomial rates (exact-specified n^-1/2)"
                + ("" if second.holds else "; second order fails: over-specified cells slower"))
    else:
        rate = ("first-order independence fails: as with the plain temperature gate, rates "
                "can be slower than any polynomial")
    return Report(f"activation {name}", [first, second], rate)


def check_gate(spec: str, *, n_points: int = 4000, n_atoms: int = 2, n_trials: int = 3,
               seed: int = 0) -> Report:
    """The gate x Gaussian linear expert condition (module docstring) of a normalised gate,
    d = 1; s(x; g) is the log-odds of an atom against a reference atom with zero parameters
    (a positive factor common to every column, which leaves the rank unchanged)."""
    from moestat.errors import InputError
    from moestat.registry import make_gate

    named = make_gate(spec)
    gate = getattr(named, "inner", named)  # shared + routed experts: the routed gate's condition
    if not gate.normalized or gate.frozen_expert:
        raise InputError(f"--gate checks a normalised gate of k experts, got {gate.label}")
    gate.check(2)
    shapes = gate.shapes(2, 1)
    fields = [f for f, sh in shapes.items() if f != "beta0" and sh and sh[0] == 2]
    if not fields:
        raise InputError(f"gate {gate.label} has no per-expert parameters besides beta0")
    sizes = [int(np.prod(shapes[f][1:])) for f in fields]
    q = sum(sizes)

    def u(theta, x, y):  # theta = [g (q), a, b, log v]
        vals, i = {}, 0
        for f, sh in shapes.items():
            if f in fields:
                row = theta[i : i + int(np.prod(sh[1:]))].reshape(sh[1:])
                i += row.size
                vals[f] = jnp.stack([row, jnp.zeros_like(row)])
            else:
                vals[f] = jnp.zeros(sh)
        lw = gate.log_weights(gate.Params(**vals), x[None, None])[0]
        a, b, v = theta[q], theta[q + 1], jnp.exp(theta[q + 2])
        return jnp.exp(lw[0] - lw[1] - 0.5 * (y - a * x - b) ** 2 / v) / jnp.sqrt(v)

    grad = jax.jit(jax.vmap(jax.grad(u), in_axes=(None, 0, 0)))
    hess = jax.jit(jax.vmap(jax.hessian(u), in_axes=(None, 0, 0)))
    value = jax.jit(jax.vmap(u, in_axes=(None, 0, 0)))

    def family(rng):
        x = jnp.asarray(rng.uniform(-3, 3, n_points))
        y = jnp.asarray(rng.uniform(-4, 4, n_points))
        cols = []
        for _ in range(n_atoms):
            theta = rng.choice([-1, 1], q + 3) * rng.uniform(0.5, 1.5, q + 3)
            theta[q + 2] = rng.uniform(-0.5, 0.5)
            theta = jnp.asarray(theta)
            h = np.asarray(hess(theta, x, y))
            cols += [np.asarray(value(theta, x, y))[:, None], np.asarray(grad(theta, x, y)),
                     h[:, :q, q + 1]]
        return np.concatenate(cols, axis=1)

    c = _check("gate x Gaussian linear expert: {u, du/dg, du/da, du/db, du/dv, d2u/(dg db)}",
               family, n_trials, seed)
    rate = ("no gate-expert interaction: in an over-fitted cell the gate's parameters and the "
            "expert slopes are not slowed by the cell's size (Laplace gate: W and a at n^-1/4)"
            if c.holds else
            "the gate's parameters interact with the expert's (a PDE such as d2u/(d beta1 d b) "
            "= du/da): in an over-fitted cell they converge at rates set by the cell's size "
            "(softmax: beta1 at n^-1/(2 rbar), a at n^-1/rbar)")
    label = named.label if gate is named else f"{named.label} (its routed gate {gate.label})"
    return Report(f"gate {label}", [c], rate)


# ---- distinguishability of a frozen expert from the prompt family ---------------------------
def _density_columns(frozen, expert, noise, atom, X, y):
    """Columns [f0, f(eta, v), df/d eta_j, df/d log v] at the points (X, y)."""
    flat0, unravel = jax.flatten_util.ravel_pytree(atom)

    def f(theta):
        params = unravel(theta[:-1])
        one = jax.tree_util.tree_map(lambda a: jnp.asarray(a)[None], params)
        mean = expert.mean(one, X)[:, 0]
        return jnp.exp(noise.log_density(y, mean, jnp.exp(theta[-1])))

    return f, flat0


def check_distinguishable(frozen, expert_spec: str, noise_spec: str, *, n_points: int = 4000,
                          n_atoms: int = 8, seed: int = 0) -> Report:
    """Is the frozen f0(y | h0(x), v0) distinguishable from the prompt family
    {noise(y | h(x, eta), v)}? For each candidate prompt atom (eta, v) the functions of (x, y)
    {f0, f, df/d eta_j, df/d log v} must be linearly independent (else the prompt can merge
    with f0 and the paper's slow rates apply). Candidates: the frozen atom itself when the
    prompt expert has the frozen expert's parameter shapes, atoms near it, and random atoms;
    the condition must hold at every one (the reported ratio is the smallest).
    Points: x ~ N(0, I_d), y = h0(x) + sqrt(v0) u, u ~ Uniform[-6, 6]."""
    from moestat.parts import thaw
    from moestat.registry import make_noise

    expert, noise = make_expert(expert_spec), make_noise(noise_spec)
    rng = np.random.default_rng(seed)
    ep0 = thaw(frozen.expert_params)
    d = next(iter(ep0)).shape[-1] if next(iter(ep0)).ndim > 1 else 1
    v0 = float(np.asarray(thaw(frozen.noise_params).var)[0])
    X = jnp.asarray(rng.standard_normal((n_points, d)))
    y = frozen.mean(X) + np.sqrt(v0) * jnp.asarray(rng.uniform(-6, 6, n_points))
    f0 = np.asarray(jnp.exp(frozen.log_density(X, y)))[:, None]
    shapes = expert.shapes(1, d)
    same = frozen.expert.shapes(1, d) == shapes
    atoms = []
    for j in range(n_atoms):
        if same and j < n_atoms // 2:  # the frozen atom, then atoms near it
            scale = 0.0 if j == 0 else 0.3
            p = {f: np.asarray(getattr(ep0, f))[0] + scale * rng.standard_normal(s[1:])
                 for f, s in shapes.items()}
            v = v0 * np.exp(scale * rng.standard_normal())
        else:
            p = {f: rng.standard_normal(s[1:]) for f, s in shapes.items()}
            v = v0 * np.exp(rng.standard_normal())
        atoms.append((expert.Params(**{f: jnp.asarray(a) for f, a in p.items()}), v))
    at_frozen, elsewhere = [], []
    for j, (atom, v) in enumerate(atoms):
        f, flat = _density_columns(frozen, expert, noise, atom, X, y)
        theta = jnp.concatenate([flat, jnp.log(jnp.asarray([v]))])
        cols = np.concatenate([f0, np.asarray(f(theta))[:, None],
                               np.asarray(jax.jacfwd(f)(theta))], axis=1)
        (at_frozen if same and j < n_atoms // 2 else elsewhere).append(_ratio(cols))
    checks = []
    if at_frozen:
        r = min(at_frozen)
        checks.append(Check("{f0, f, df} independent at and near the frozen atom",
                            bool(r >= THRESHOLD), r, 2 + len(flat) + 1))
    r = min(elsewhere)
    checks.append(Check("{f0, f, df} independent at random prompt atoms", bool(r >= THRESHOLD),
                        r, 2 + len(flat) + 1))
    holds = all(c.holds for c in checks)
    subject = (f"frozen {frozen.noise.name}({frozen.expert.label}) vs prompt "
               f"{noise.name}({expert.label})")
    rate = ("distinguishable: with the prompt condition on the expert, every parameter "
            "converges at n^-1/2" if holds else
            "not distinguishable: the prompt can merge with the frozen expert; when it "
            "approaches f0 at n^-1/8, exp(tau) slows to n^-1/4 and the other parameters to "
            "n^-3/8 (arXiv 2505.18455)")
    return Report(subject, checks, rate)


def check_random_frozen(frozen_expert: str, frozen_noise: str, expert_spec: str,
                        noise_spec: str, n_features: int, seed: int = 0) -> Report:
    """check_distinguishable for a frozen expert of family `frozen_expert` with standard
    normal parameters (seeded) in dimension n_features, noise `frozen_noise` of variance 1."""
    from moestat.model import FrozenExpert
    from moestat.registry import make_expert

    fe = make_expert(frozen_expert)
    rng = np.random.default_rng(seed)
    params = {f: rng.standard_normal(s[1:]) for f, s in fe.shapes(1, n_features).items()}
    frozen = FrozenExpert.create(fe.label, frozen_noise, params, 1.0)
    return check_distinguishable(frozen, expert_spec, noise_spec, seed=seed)


def check_from_options(expert: str | None, activation: str | None, frozen_noise: str | None,
                       frozen_expert: str | None, noise: str, n_features: int, seed: int,
                       gate: str | None = None):
    """The check `moestat identifiability` asks for: exactly one of expert / activation /
    gate; with frozen_noise, the frozen expert's distinguishability from the prompt family."""
    from moestat.errors import InputError

    if sum(v is not None for v in (expert, activation, gate)) != 1:
        raise InputError("give exactly one of --expert, --activation or --gate")
    if gate is not None:
        if frozen_noise is not None:
            raise InputError("--frozen-noise needs --expert (the prompt expert), not --gate")
        return check_gate(gate, seed=seed)
    if frozen_noise is not None:
        if expert is None:
            raise InputError("--frozen-noise needs --expert (the prompt expert)")
        if n_features < 1:
            raise InputError(f"--n-features must be >= 1, got {n_features}")
        return check_random_frozen(frozen_expert or expert, frozen_noise, expert, noise,
                                   n_features, seed)
    if expert:
        return check_expert(expert, seed=seed)
    return check_activation(activation, seed=seed)
