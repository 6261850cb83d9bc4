"""Benchmarks: they print figures and never assert them (see README, Benchmarks)."""
