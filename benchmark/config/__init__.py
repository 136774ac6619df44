"""Suites and their schema-checked records (``suites``), and the edit spec of editing suites
(``edits``). Config imports nothing from the layers above it (sources, stages, ...)."""
