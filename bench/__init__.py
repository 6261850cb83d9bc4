"""Benchmarks: they print figures and never assert them (see docs/benchmarks.md)."""
