"""Building blocks of the M-step and of the generic optimisers.

Each block increases (never decreases) its objective, so EM built from them is a generalised
EM whose log-likelihood is monotone:

* `newton_gate_update`: Newton (IRLS) steps with step-halving on
  Q_gate = sum_t w_t sum_i r_ti log w_i(x_t) for gates whose logits are linear in the parameters
  (logits = Phi(x) @ coef.T);
* `wls_expert_update`: closed-form weighted least squares for experts linear in their
  parameters;
* `gauss_newton_expert_update`: damped Gauss-Newton steps of the same weighted least squares
  for experts non-linear in their parameters (ridge / single-index experts);
* `autodiff_newton_maximize`: damped (saddle-free) Newton steps with an autodiff Hessian for
  smooth objectives of few parameters whose logits are not linear in them (activation gate);
* `lbfgs_maximize`: a few projected L-BFGS iterations (optax, zoom line search) of any smooth
  objective in unconstrained coordinates, accepted only if the objective did not decrease.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from moestat import component_reductions as reductions
from moestat.fit.bounds import project

MAX_HALVINGS = 20  # the smallest fraction of a Newton step tried is 2^-20
RESOLVABLE = 1e-13  # a failed step is halved only while its predicted gain per sample (from
# the quadratic model) exceeds this: below it the acceptance test compares rounding noise


def ridge_solve(A, b, ridge):
    """Solve (A + lam I) x = b with lam = ridge * mean(diag A) for symmetric positive
    semi-definite A (..., m, m) and b (..., m): a Tikhonov term relative to A's scale keeps
    the solve well posed when A is (nearly) singular. Batched over leading axes."""
    m = A.shape[-1]
    lam = ridge * (jnp.trace(A, axis1=-2, axis2=-1) / m) + 1e-300
    A = A + lam[..., None, None] * jnp.eye(m)
    if A.ndim == 2:
        return jnp.linalg.solve(A, b)
    return jnp.linalg.solve(A, b[..., None])[..., 0]


def backtrack(value, passes, max_halvings: int, *, keep_trying=None, steps=None):
    """Step-halving line search. Steps t start at 1 (a scalar, or `steps` of them, one per row
    of a batch of independent problems); while some value(t) fails `passes` (and, with
    `keep_trying`, its step may still resolve the test) and fewer than max_halvings halvings
    were made, the failing steps are halved. Returns (t, value(t), ok) with ok = passes and
    finite: a caller keeps its old point where not ok."""
    t0 = jnp.ones(steps) if steps is not None else jnp.asarray(1.0)

    def going(t, v):
        fail = ~passes(v)
        return fail if keep_trying is None else fail & keep_trying(t)

    def cond(c):
        t, v, i = c
        return jnp.any(going(t, v)) & (i < max_halvings)

    def body(c):
        t, v, i = c
        t = jnp.where(passes(v), t, t / 2)
        return t, value(t), i + 1

    t, v, _ = jax.lax.while_loop(cond, body, (t0, value(t0), 0))
    return t, v, passes(v) & jnp.isfinite(v)


def newton_gate_move(gate, params, coef, G, H, gain, bounds, ridge: float,
                     max_halvings: int, resolvable_floor=None):
    """One damped Newton step of a gate whose logits are linear in coef (K, m) (last row
    pinned): G (f, m) and H (f m, f m) are the gradient and minus the Hessian of the objective
    in the f = K - 1 free rows. The step coef + s delta, delta = H^-1 G (ridge_solve), is
    projected into the box and halved until gain(candidate) >= 0 — with `resolvable_floor`,
    only while its predicted gain s G.d - s^2 d^T H d / 2 exceeds that floor (below it the
    test compares rounding noise). A step that never passes is not taken."""
    f, m = G.shape
    delta = ridge_solve(H, G.reshape(-1), ridge).reshape(f, m)

    def candidate(s):
        return project(gate.from_coef(coef.at[:f].add(s * delta), params), bounds)

    keep_trying = None
    if resolvable_floor is not None:
        gd, dHd = jnp.sum(G * delta), delta.reshape(-1) @ H @ delta.reshape(-1)
        keep_trying = lambda s: s * gd - 0.5 * s * s * dHd > resolvable_floor  # noqa: E731
    s, _, ok = backtrack(lambda s: gain(candidate(s)), lambda g: g >= 0, max_halvings,
                         keep_trying=keep_trying)
    return jax.tree_util.tree_map(lambda a, b: jnp.where(ok, a, b), candidate(s), params)


def newton_gate_update(gate, params, X, resp, weights, bounds, n_steps: int, ridge: float,
                       log_w=None, accept=None, features=None):
    """Damped Newton ascent of Q_gate for a linear-logit normalised gate.

    logits z = Phi(x) @ coef.T with coef (K, m); resp (n_samples, K) with rows summing to 1, so
    Q_gate = sum_t w_t (r_t . z_t - logsumexp(z_t)). The last coefficient row is pinned to 0
    (gauge / frozen logit); the K - 1 first rows are free. Gradient G = (R - W)^T diag(w) Phi;
    Hessian -sum_t w_t W_ti (delta_ij - W_tj) phi_t phi_t^T, formed as one matrix product
    Phi^T (n, m) x (n, f^2 m) (no (n, m^2) outer products: memory traffic stays O(n f^2 m)).
    Step-halving (down to 2^-20) on the projected candidate guarantees ascent: the test is the
    exact change of Q_gate, sum_t w_t (r_t . dz_t - log1p(sum_j W_tj expm1(dz_tj))) >= 0 with
    dz = Phi dc^T the change of the free logits (no cancellation of Q_new - Q_old; the same
    test as fit/em_statistics.py). A failed step is halved only while its predicted gain
    s G.d - s^2 d^T H d / 2 exceeds RESOLVABLE per sample (below that the test compares
    rounding noise and the step is not taken). `log_w` (n, K), the E-step's log-weights at
    `params`, saves recomputing them.

    Sparse (top-K) gates: `features` gives Phi, the weights are the gate's masked ones
    (inactive: W = 0, r = 0), so G and H are those of Q_gate with the active sets held fixed;
    the step is then accepted on `accept(gate params)` (the observed log-likelihood, which sees
    the active sets move) instead of Q — an ECME step at the cost of a Newton step (at most 6
    halvings; a step that still lowers the likelihood is not taken).
    """
    Phi = (features or gate.logit_features)(X)  # (n, m)
    n, m = Phi.shape
    K = resp.shape[1]
    f = K - 1

    # a Newton step of the concave Q is almost always accepted at once; an ECME step near
    # convergence is often not (active sets jump), so give it up after 6 halvings
    halvings = 6 if accept is not None else MAX_HALVINGS
    total_w = jnp.sum(weights)

    def one_step(p, log_w):
        coef = gate.to_coef(p)
        if log_w is None:
            log_w = (gate.log_weights(p, X) if accept is not None
                     else jax.nn.log_softmax(Phi @ coef.T, axis=1))
        W = jnp.exp(log_w)
        C = W[:, :f, None] * (jnp.eye(f) - W[:, None, :f]) * weights[:, None, None]
        CPhi = (C.reshape(n, f * f, 1) * Phi[:, None, :]).reshape(n, f * f * m)
        # gradient and Hessian in one pass: Phi^T [(R - W) w | C Phi] (one tall-skinny
        # product; two separate ones cost ~1.6x on CPU, benchmarks/em_throughput.py)
        GH = Phi.T @ jnp.concatenate([(resp[:, :f] - W[:, :f]) * weights[:, None], CPhi],
                                     axis=1)  # (m, f + f f m)
        G = GH[:, :f].T  # (f, m)
        H = GH[:, f:].reshape(m, f, f, m).transpose(1, 0, 2, 3)  # (f, m, f, m)
        if accept is not None:  # ECME: the objective itself, against its value at p
            q0 = accept(p)

            def gain(candidate):
                return accept(candidate) - q0
        else:  # the exact change of Q_gate (see docstring)
            def gain(candidate):
                dc = gate.to_coef(candidate)[:f] - coef[:f]
                if f == 1:
                    dz = Phi @ dc[0]
                    change = resp[:, 0] * dz - jnp.log1p(W[:, 0] * jnp.expm1(dz))
                else:
                    dz = Phi @ dc.T  # (n, f)
                    change = (reductions.total(resp[:, :f] * dz)
                              - jnp.log1p(reductions.total(W[:, :f] * jnp.expm1(dz))))
                return jnp.sum(weights * change)

        return newton_gate_move(gate, p, coef, G, H.reshape(f * m, f * m), gain, bounds,
                                ridge, halvings,
                                None if accept is not None else RESOLVABLE * total_w)

    if n_steps < 1:
        return params
    if n_steps == 1:
        return one_step(params, log_w)
    # several steps as one loop: unrolled, each step's code (its line search's while loop
    # included) would be repeated in the program; a first step apart only to reuse log_w
    first = 0 if log_w is None else 1
    if first:
        params = one_step(params, log_w)
    return jax.lax.fori_loop(first, n_steps, lambda _, p: one_step(p, None), params)


def projected_lbfgs(loss, lo, hi):
    """One projected L-BFGS iteration (optax, zoom line search) of `loss(free)`, clipping the
    iterate into [lo, hi]. Returns (init(free) -> state, step(free, state) -> (free, state,
    loss at the input point)). Non-finite gradient entries are zeroed."""
    import optax  # here: `moestat fit`'s EM does not load it (docs/design.md, cold start)

    opt = optax.lbfgs()
    value_and_grad = optax.value_and_grad_from_state(loss)

    def step(free, state):
        value, grad = value_and_grad(free, state=state)
        grad = jax.tree_util.tree_map(lambda g: jnp.where(jnp.isfinite(g), g, 0.0), grad)
        updates, state = opt.update(grad, state, free, value=value, grad=grad, value_fn=loss)
        free = jax.tree_util.tree_map(jnp.clip, optax.apply_updates(free, updates), lo, hi)
        return free, state, value

    return opt.init, step


def autodiff_newton_maximize(objective, params, to_free, from_free, bounds, n_steps: int,
                             ridge: float):
    """Damped Newton ascent of a smooth `objective(params)` with few parameters (p <= ~100).

    In unconstrained coordinates u = to_free(params) (flattened, p entries): gradient g and
    Hessian H by autodiff (forward-over-reverse: p passes over the data). The step solves
    |H| delta = g with |H| = V |Lambda| V^T (eigenvalues' absolute values, floored at
    max(ridge, 1e-12) * max|Lambda|): the Newton step where the objective is concave, an ascent
    direction where it is not (saddle-free Newton). The candidate is clipped into
    to_free(bounds) and halved (down to 2^-20) until the objective does not decrease; a step
    that never succeeds is not taken.
    """
    new, _, _, _ = newton_ascent(objective, params, to_free, from_free, bounds, n_steps, ridge)
    return new


def newton_ascent(objective, params, to_free, from_free, bounds, n_steps: int, ridge: float,
                  blocks=None):
    """`autodiff_newton_maximize`, also returning whether its last step found a point that
    does not decrease the objective (False: no step along the direction passed, as at a kink
    of a non-smooth objective or against a face of the box, and the parameters were left),
    the objective at `params` (computed by the first step anyway) and the last step's
    predicted gain g . delta / 2 (the quadratic model's: a step that fails with a predicted
    gain at rounding level stands at the optimum). `blocks = (part, data)` with
    objective(params) = sum_b part(params, data_b) (data: arrays with a leading block axis)
    forms the Hessian block by block (one `lax.scan`): the peak memory of one block's
    forward-over-reverse pass (p tangents of every intermediate) instead of all rows'."""
    u0, unravel = ravel_pytree(to_free(params))
    lo, _ = ravel_pytree(to_free(bounds[0]))
    hi, _ = ravel_pytree(to_free(bounds[1]))

    def f(u):
        return objective(from_free(unravel(u)))

    def finite(a):
        return jnp.where(jnp.isfinite(a), a, 0.0)

    def blocked_hessian(u):
        part, data = blocks

        def add(H, block):
            return H + jax.hessian(lambda v: part(from_free(unravel(v)), block))(u), None

        return jax.lax.scan(add, jnp.zeros((u.size, u.size)), data)[0]

    def one_step(u):
        q0 = f(u)
        g = finite(jax.grad(f)(u))
        H = finite(jax.hessian(f)(u) if blocks is None else blocked_hessian(u))
        lam, V = jnp.linalg.eigh(-0.5 * (H + H.T))
        mag = jnp.abs(lam)
        mag = jnp.maximum(mag, jnp.maximum(ridge, 1e-12) * jnp.max(mag) + 1e-300)
        delta = V @ ((V.T @ g) / mag)

        s, _, ok = backtrack(lambda s: f(jnp.clip(u + s * delta, lo, hi)),
                             lambda q: q >= q0, MAX_HALVINGS)
        return jnp.where(ok, jnp.clip(u + s * delta, lo, hi), u), ok, q0, 0.5 * g @ delta

    u, ok, start_value, predicted = u0, jnp.asarray(True), None, None
    for _ in range(n_steps):  # a few steps (default 1): unrolled
        u, ok, q0, predicted = one_step(u)
        start_value = q0 if start_value is None else start_value
    return from_free(unravel(u)), ok, start_value, predicted


def lbfgs_maximize(objective, params, to_free, from_free, bounds, n_steps: int):
    """Projected L-BFGS ascent of `objective(params)` for `n_steps` iterations.

    Works in unconstrained coordinates `to_free(params)`, clipped into `to_free(bounds)` (the
    transforms are monotone). Returns the new parameters if the objective did not decrease,
    else the old ones.
    """
    init, step = projected_lbfgs(lambda free: -objective(from_free(free)),
                                 to_free(bounds[0]), to_free(bounds[1]))

    def body(_, carry):
        free, state = carry
        free, state, _ = step(free, state)
        return free, state

    free0 = to_free(params)
    free, _ = jax.lax.fori_loop(0, n_steps, body, (free0, init(free0)))
    new = from_free(free)
    old_val, new_val = objective(params), objective(new)
    ok = jnp.isfinite(new_val) & (new_val >= old_val)
    return jax.tree_util.tree_map(lambda a, b: jnp.where(ok, a, b), new, params)


def wls_expert_update(expert, params, X, y, R, expert_bounds, ridge: float):
    """Weighted least squares per expert: coef_i = argmin sum_t R_ti (y_t - phi_t^T c)^2.

    R (n, k) weighted responsibilities. An expert whose mass sum_t R_ti is ~0 keeps its
    parameters.
    """
    Phi = expert.design(X)  # (n, m)
    n, m = Phi.shape
    # normal equations of every expert in one product: R^T [phi phi^T | y phi]  (k, m m + m)
    AB = R.T @ jnp.concatenate([(Phi[:, :, None] * Phi[:, None, :]).reshape(n, m * m),
                                y[:, None] * Phi], axis=1)
    A, B = AB[:, : m * m].reshape(-1, m, m), AB[:, m * m:]
    coef = ridge_solve(A, B, ridge)
    old = expert.to_coef(params)
    ok = (R.sum(axis=0) > 1e-10 * R.sum()) & jnp.all(jnp.isfinite(coef), axis=1)
    coef = jnp.where(ok[:, None], coef, old)
    return project(expert.from_coef(coef, params), expert_bounds)


def gauss_newton_expert_update(expert, params, X, y, W, expert_bounds, n_steps: int,
                               ridge: float, max_halvings: int = 12):
    """Damped Gauss-Newton on S_i(theta_i) = sum_t W_ti (y_t - h_i(x_t; theta_i))^2, each
    expert i separately, in the expert's unconstrained coordinates theta (p per expert):

        J_i = dh_i / dtheta_i (n, p);  delta_i = (J_i^T W_i J_i + lam I)^-1 J_i^T W_i r_i,

    step t * delta_i with t halved until S_i decreases (an expert whose S_i cannot decrease
    keeps its parameters), iterates clipped into the box. W (n, k) non-negative weights.
    One step costs one Jacobian pass over the data; near the optimum it converges
    quadratically, where L-BFGS spends many line-search passes.
    """
    free = expert.to_free(params)
    lo, hi = expert.to_free(expert_bounds[0]), expert.to_free(expert_bounds[1])
    row = lambda tree, i: jax.tree_util.tree_map(lambda a: a[i], tree)  # noqa: E731
    _, unravel = ravel_pytree(row(free, 0))
    k = W.shape[1]
    flat = lambda tree: jax.vmap(lambda i: ravel_pytree(row(tree, i))[0])(jnp.arange(k))  # noqa: E731
    F, F_lo, F_hi = flat(free), flat(lo), flat(hi)  # (k, p)

    rows = jnp.arange(k)

    def h(f, i):  # expert i's mean, (p,) -> (n,)
        one = jax.tree_util.tree_map(lambda a: a[None], unravel(f))
        return expert.row_mean(expert.from_free(one), X, i)

    def sse(F):  # (k, p) -> (k,); +inf where not finite
        s = jnp.sum(W.T * (y[None, :] - jax.vmap(h)(F, rows)) ** 2, axis=1)
        return jnp.where(jnp.isfinite(s), s, jnp.inf)

    def step(_, F):
        J = jax.vmap(jax.jacfwd(h))(F, rows)  # (k, n, p)
        r = y[None, :] - jax.vmap(h)(F, rows)  # (k, n)
        A = jnp.einsum("knp,nk,knq->kpq", J, W, J)
        b = jnp.einsum("knp,nk,kn->kp", J, W, r)
        delta = ridge_solve(A, b, ridge)
        return halved_step(F, delta, sse, sse(F), F_lo, F_hi, max_halvings)

    F = jax.lax.fori_loop(0, n_steps, step, F)
    new = jax.vmap(unravel)(F)
    return expert.from_free(new)


def halved_step(F, delta, sse, s0, lo, hi, max_halvings: int):
    """Per row i of F (k, p): F_i + t_i delta_i clipped into [lo, hi], with t_i halved from 1
    (at most max_halvings times) until sse(.)_i < s0_i; a row that never decreases (or whose
    step is not finite) keeps F_i. sse maps (k, p) -> (k,)."""
    def cand(t):
        return jnp.clip(F + t[:, None] * delta, lo, hi)

    t, _, ok = backtrack(lambda t: sse(cand(t)), lambda s: s < s0, max_halvings,
                         steps=F.shape[0])
    ok = ok & jnp.all(jnp.isfinite(delta), axis=1)
    return jnp.where(ok[:, None], cand(t), F)
