"""Performance benchmarks, each against a baseline run in the same process (`moestat bench`).

em_throughput          moestat's EM vs a vectorised NumPy EM (softmax Gaussian MoE, linear
                       experts): point-iterations per second and their ratio.
contaminated_protocol  the contaminated_distinguishable sweep vs the paper's protocol written
                       with SciPy BFGS (numeric and analytic gradients).
"""
