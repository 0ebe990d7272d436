"""mlray: training, optimization, serving and features on Ray."""

__version__ = "0.1.0"
