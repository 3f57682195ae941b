"""Stop 20 probe: the E-step's responsibilities from shared exponentials
(components.normalize_log: exp(a - m) / sum, one exp per entry) against the two-exp form
(logsumexp, then exp(a - logsumexp)), in one process: both fit programs of a contaminated full
preset block (20 replicates, n rows, the sweep's lanes, its options), alternating ROUNDS runs;
seconds min / median, and how far the results differ. (A third form, the E-step from the
softmax gate's logits with one log per sample, was measured with this probe's version at
commit d49e552, where it was fit/em.py's e_step; not kept.)

Run from the project root:
    .venv/bin/python experiments/probes/stop20/estep_ab.py N [ROUNDS]"""

import sys

import jax.numpy as jnp
from ab import alternate, fit_variants, report

from moestat import components
from moestat.fit import em

sys.path.insert(0, "experiments/probes/stop19")
from block import contaminated_block  # noqa: E402

n = int(sys.argv[1])
rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 10
setting, built, truth, X, y, w, s0, _ = contaminated_block(n)


def two_exp(model, params, X, y, weights):
    log_w = model.log_gate_weights(params, X)
    log_joint = log_w + model.component_log_density(params, X, y)
    ll = components.logsumexp(log_joint)
    resp = jnp.exp(log_joint - ll[:, None])
    return resp, jnp.sum(weights * ll) / jnp.sum(weights), log_w


args = (X, y, w, s0, None)
programs = fit_variants(em, "e_step", {"two exps": two_exp, "shared": em.e_step}, built,
                        setting, args)
report(n, *alternate(programs, args, rounds), "two exps")
