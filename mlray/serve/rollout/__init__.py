"""Canary rollouts: the state machine and weighted version choice (``canary``), the controller deployment that
holds the state for every replica (``controller``), a replica's side of it (``client``), the per-version
figures replicas report and windows judge (``figures``) and the state kept in storage across restarts
(``store``)."""
