"""Thin wrapper: the benchmark is moestat.bench.contaminated_protocol (`moestat bench`)."""

from moestat.bench.contaminated_protocol import main

if __name__ == "__main__":
    main()
