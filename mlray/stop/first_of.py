"""Several rules as one: the first that fires ends the job."""

from __future__ import annotations

from mlray.stop.criterion import StoppingCriterion


class FirstOf:
    """Stop when any of ``criteria`` does; ``fired``: the first of them, in order, that fired last call.

    Every rule is asked on every call, not only up to the first that fires, so a rule that
    keeps state (``NoImprovement``'s clock, ``MaxIterations``' count) sees every value.
    """

    name = "first_of"

    def __init__(self, *criteria: StoppingCriterion) -> None:
        self.criteria = criteria
        self.fired: StoppingCriterion | None = None

    def __call__(self, best: float | None = None) -> bool:
        fired = [criterion for criterion in self.criteria if criterion(best)]
        self.fired = fired[0] if fired else None
        return self.fired is not None

    def reason(self, best: float | None = None) -> str | None:
        """The name of the rule that fires now, or None: what a job reports as its stop reason."""
        return self.fired.name if self(best) and self.fired is not None else None
