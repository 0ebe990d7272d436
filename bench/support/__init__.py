"""Tooling that bench/ and the tests share, kept out of the library: serving load clients (``load``), a
throwaway multi-node serving cluster on this machine (``serving_cluster``), and Ray's HAProxy on a shared
machine (``haproxy``). Not benchmarks: ``python -m bench`` runs only the modules directly in bench/."""
