"""The engine's process plumbing: job types, the pools that run jobs on workers, and the worker itself.

Read in this order; each module imports only those above it:

- `jobs`: what a job is (`JobSpec`), its progress (`ProgressEvent`), how it ended (`Outcome`), and what a
  backend offers (`EngineBackend`) and hands back (`JobHandle`). Imports no sibling.
- `queued`: `QueuedPool`, the queue and the one failure policy every pool shares.
- `runner`: `Runner`, which runs one job to its `Outcome` inside a worker (loads TensorFlow).
- `local`: `LocalPool`, worker processes on this machine.
- `ray_actor`, `ray_pool`: `RayPool`, Ray actors across a cluster.
- `scripted`: `ScriptedBackend`, jobs ended as a script says, in this process, for tests.

Importing this package loads neither TensorFlow nor Ray.
"""

from __future__ import annotations

from engine.workers.jobs import (
    EngineBackend,
    Failure,
    ImageRole,
    JobHandle,
    JobSpec,
    Outcome,
    Pace,
    ProgressCallback,
    ProgressEvent,
)
from engine.workers.local import LocalPool
from engine.workers.queued import START_BACKOFF, QueuedPool
from engine.workers.ray_pool import RayPool
from engine.workers.scripted import Scripted, ScriptedBackend

__all__ = [
    "START_BACKOFF",
    "EngineBackend",
    "Failure",
    "ImageRole",
    "JobHandle",
    "JobSpec",
    "LocalPool",
    "Outcome",
    "Pace",
    "ProgressCallback",
    "ProgressEvent",
    "QueuedPool",
    "RayPool",
    "Scripted",
    "ScriptedBackend",
]
