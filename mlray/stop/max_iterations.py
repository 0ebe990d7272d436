"""A limit on iterations (epochs, rounds...)."""

from __future__ import annotations


class MaxIterations:
    """Stop after ``n`` iterations: each call counts one, so call it once after each iteration."""

    def __init__(self, n: int, *, name: str = "max_iterations") -> None:
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        self.n, self.name, self.count = n, name, 0

    def __call__(self, best: float | None = None) -> bool:
        self.count += 1
        return self.count >= self.n
