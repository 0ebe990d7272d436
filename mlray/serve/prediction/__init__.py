"""Making a prediction in a replica: the two deployments (``service``) and what they share (``core``), call
coalescing for the batched one (``coalesce``), model versions (``versions``), feature enrichment of request
instances (``features``), sampled prediction logging (``log``) and the replica's periodic chores
(``background``)."""
