"""Stopping rules shared by training and optimization, after PyVRP's ``pyvrp.stop``.

A rule is a ``StoppingCriterion``: called with the best value so far, it says
whether to stop; its ``name`` says which rule it is, so a job maps the one that
fired to its own status (training: ``StopReason``; optimization: the solve's
status string). ``FirstOf`` composes them. Time comes from an injectable clock,
so tests need no sleeping. Each job builds its rules from its own config
section (``mlray.train.stopping``, ``mlray.optimize.stopping``).
"""

from mlray.stop.criterion import Clock, StoppingCriterion
from mlray.stop.first_of import FirstOf
from mlray.stop.max_iterations import MaxIterations
from mlray.stop.max_runtime import MaxRuntime
from mlray.stop.no_improvement import NoImprovement

__all__ = ["Clock", "FirstOf", "MaxIterations", "MaxRuntime", "NoImprovement", "StoppingCriterion"]
