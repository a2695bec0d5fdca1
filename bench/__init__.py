"""Benchmarks (`make bench`): they print figures and write bench/results/<date>.md; never tests."""
