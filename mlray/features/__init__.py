"""Feature store (Feast): definitions, training data, online enrichment, materialization."""
