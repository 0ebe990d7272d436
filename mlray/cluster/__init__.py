"""Ray clusters: a local head for development, and the driver-side connection."""

from mlray.cluster.runtime import init_ray

__all__ = ["init_ray"]
