"""Thin wrapper: the benchmark lives in moestat.bench.em_throughput (also `moestat bench`)."""

from moestat.bench.em_throughput import main

if __name__ == "__main__":
    main()
