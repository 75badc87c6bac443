"""The Ray actor behind `RayPool`: it lives in a Ray worker process, holds the network and runs one job at a
time, from image bytes to result bytes, so that no host needs a shared filesystem.

Its files (the weights as they arrived, the decoder, each job's images) live in one folder, `actor_folder`,
which the actor removes on every exit it sees: a failed start, `stop`, its process ending. An actor killed
outright cannot; the pool removes the folder then, where it is on the pool's own host.
"""

from __future__ import annotations

import os
import queue
import shutil
import socket
import tempfile
import threading
import weakref
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from engine.host.files import write_atomic
from engine.params import StyleParams
from engine.workers.jobs import JobSpec, Outcome, Pace, ProgressEvent, failure_of

if TYPE_CHECKING:
    from engine.workers.runner import Runner

__all__ = ["ActorItem", "RayActor", "actor_folder"]

# What an actor's `run` yields: the progress events since the last yield, then the outcome and result bytes.
ActorItem = list[ProgressEvent] | tuple[Outcome, bytes | None]


def actor_folder(token: str) -> Path:
    """The folder of the actor the pool named `token`, in the temporary folder of the host it runs on."""
    return Path(tempfile.gettempdir()) / f"neural-style-actor-{token}"


class RayActor:
    """Lives in a Ray worker process: holds the network and runs one job at a time, `cancel` beside it."""

    def __init__(
        self,
        weights: bytes,
        decoder: bytes | None,
        threads: int,
        token: str,
        probe: StyleParams | None = None,
    ) -> None:
        import ray

        if not ray.get_gpu_ids():
            os.environ["CUDA_VISIBLE_DEVICES"] = "-1"  # a CPU actor must not take a GPU another actor owns
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        from engine.workers.runner import Runner

        # Files for as long as the actor lives (the decoder is only read on the first preview job); none
        # outlives the actor, so none is synced to disk.
        self._folder = actor_folder(token)
        self._folder.mkdir(parents=True, exist_ok=True)
        # Removed when the actor is collected or its process exits normally (Ray's exit_actor, a shutdown).
        self._cleanup = weakref.finalize(self, shutil.rmtree, self._folder, ignore_errors=True)
        self._cancel = 0
        self._runner: Runner | None = None
        self._failure: str | None = None
        self._pace: Pace | None = None
        try:
            folder = self._folder
            weights_path = write_atomic(folder / "vgg19.npz", weights, False)
            decoder_path = None if decoder is None else write_atomic(folder / "decoder.npz", decoder, False)
            self._runner = Runner(weights_path, threads, decoder_path)  # checks the sha256 of what arrived
            weights_path.unlink()
            self._pace = None if probe is None else self._runner.probe(probe)
        except Exception as exc:  # told to the pool by `ready`, in a line fit for its log
            self._failure = f"{type(exc).__name__}: {exc}"
        finally:
            if self._runner is None:  # it will never run a job: nothing in the folder is needed
                self._cleanup()

    def ready(self) -> tuple[str, str, int, str | None, Pace | None]:
        """Where the actor runs (host name, Ray node id, process id), why it cannot work if so, and its
        pace if it probed one."""
        import ray

        node = ray.get_runtime_context().get_node_id()
        return socket.gethostname(), node, os.getpid(), self._failure, self._pace

    def cancel(self, seq: int) -> None:
        """Stop the job `seq` if it runs now or starts later."""
        self._cancel = seq

    def stop(self) -> None:
        """Remove the actor's files and end its process (the pool calls it before it kills the actor)."""
        import ray

        try:
            self._cleanup()
        finally:
            ray.actor.exit_actor()

    def run(self, seq: int, spec: JobSpec, content: bytes, styles: list[bytes]) -> Iterator[ActorItem]:
        """Run a job from image bytes; yield its progress in batches, then its `Outcome` and result bytes."""
        runner = self._runner
        assert runner is not None, "the pool runs jobs only on actors that started"
        with tempfile.TemporaryDirectory(prefix=f"job-{spec.job_id}-", dir=self._folder) as name:
            folder = Path(name)
            try:
                local = replace(
                    spec,
                    content=write_atomic(folder / f"content{spec.content.suffix}", content, False),
                    styles=tuple(
                        write_atomic(folder / f"style{i}{path.suffix}", data, False)
                        for i, (path, data) in enumerate(zip(spec.styles, styles, strict=True))
                    ),
                    output=folder / f"result{spec.output.suffix}",
                )
            except OSError as exc:
                yield (
                    Outcome.failed(spec.job_id, failure_of(exc), f"the job's files cannot be written: {exc}"),
                    None,
                )
                return
            # `Runner.run` reports through a callback; it runs on its own thread so that this generator
            # can hand each batch of events to Ray as they come.
            items: queue.SimpleQueue[ProgressEvent | Outcome] = queue.SimpleQueue()
            worker = threading.Thread(
                target=lambda: items.put(runner.run(local, items.put, lambda: self._cancel == seq)),
                name=f"job-{spec.job_id}",
            )
            worker.start()
            outcome: Outcome | None = None
            while outcome is None:
                batch: list[ProgressEvent] = []
                item: ProgressEvent | Outcome | None = items.get()
                while isinstance(item, ProgressEvent):
                    batch.append(item)
                    try:
                        item = items.get_nowait()
                    except queue.Empty:
                        item = None
                        break
                if batch:
                    yield batch
                if isinstance(item, Outcome):
                    outcome = item
            worker.join()
            result = local.output.read_bytes() if outcome.status == "done" else None
            yield outcome, result
