"""Performance benchmarks, each against a baseline run in the same process (`moestat bench`).

em_throughput          moestat's EM vs a vectorised NumPy EM (softmax Gaussian MoE, linear
                       experts): point-iterations per second and their ratio.
peer                   `moestat fit` vs R's flexmix on users' data (cold processes): best
                       log-likelihood and wall time of each.
contaminated_protocol  the contaminated_distinguishable sweep vs the paper's protocol written
                       with SciPy BFGS (numeric and analytic gradients).
"""


def run_benchmarks(n: int, iters: int, *, contaminated: bool = False, preset: str = "quick",
                   baseline_replicates: int = 2, scaling: bool = False, docs=None,
                   peer: bool = False, emit=None) -> dict:
    """`moestat bench`: EM throughput, then (optionally) the scaling sweep and the
    contaminated protocol; with `peer`, only the users'-data comparison with R's flexmix.
    `emit(line)` shows each result as it comes. Returns every figure."""
    from pathlib import Path

    from moestat.bench import contaminated_protocol, em_throughput
    from moestat.errors import InputError

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
    show = emit or (lambda line: None)
    if peer:
        from moestat.bench import peer as pr

        result = pr.run(on_result=lambda row: show(pr.line(row)))
        if result["note"]:
            show(result["note"])
        show(str(result["totals"]))
        return {"peer": result}
    out = {"em_throughput": em_throughput.run(n, iters)}
    for line in em_throughput.lines(out["em_throughput"]):
        show(line)
    if scaling:
        from moestat.bench import scaling as sc

        out["scaling"] = sc.run(on_result=None if emit is None else lambda r: emit(sc.line(r)))
        if docs is not None:
            for path in sc.write_docs(out["scaling"], docs):
                show(f"wrote {path}")
    if contaminated:
        out["contaminated"] = contaminated_protocol.run(preset, baseline_replicates)
        for line in contaminated_protocol.lines(out["contaminated"]):
            show(line)
    return out
