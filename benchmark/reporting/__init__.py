"""Aggregate runs into tables (md, tex, csv), plots and the report."""
