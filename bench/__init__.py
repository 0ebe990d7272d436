"""Benchmarks: ``make bench`` runs every ``bench/<name>.py`` and collects their tables."""
