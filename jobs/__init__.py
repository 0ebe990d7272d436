"""Entry points: ``python -m jobs.X --config configs/X.yaml`` (locally or via ``ray job submit``)."""
