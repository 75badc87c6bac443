"""Old path, kept until bot/ imports the new one: `engine.workers`."""

from engine.workers.ray_pool import RayPool

__all__ = ["RayPool"]
