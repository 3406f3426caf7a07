"""Benchmarks; see bench/RESULTS.md."""
