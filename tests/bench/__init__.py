"""Benchmarks (`make bench`); only test_smoke.py runs in `make test`."""
