"""Benchmarks and crash injection against the real runtime (see docs/benchmarks.md)."""
