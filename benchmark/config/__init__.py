"""Suites and their schema-checked records."""
