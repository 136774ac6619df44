"""Benchmark scripts that print figures (``python -m bench.<name>``); not part of the package."""
