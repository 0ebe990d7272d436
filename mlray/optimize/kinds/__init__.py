"""Problem kinds: one module per kind holding its ``ProblemKind`` entry (``base.py``); the registry
(``mlray.optimize.registry``) registers the built-in ones (``jobshop.py``, ``routing.py``)."""
