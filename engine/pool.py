"""Old path, kept until bot/ imports the new one: `engine.workers`."""

from engine.workers.jobs import EngineBackend, JobHandle, JobSpec, Outcome, ProgressCallback, ProgressEvent
from engine.workers.local import EnginePool

__all__ = [
    "EngineBackend",
    "EnginePool",
    "JobHandle",
    "JobSpec",
    "Outcome",
    "ProgressCallback",
    "ProgressEvent",
]
