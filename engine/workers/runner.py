"""The in-process runner: set TensorFlow up once, hold the network, and run jobs to an `Outcome`.

Every worker runs jobs through it: a process of `LocalPool`, an actor of `RayPool`, or a test calling it.
A clip's content (engine.clips) with an .mp4 output is painted frame by frame (engine.animate), its
frames decoded and written one at a time; with a picture output, its first frame is painted as a picture.
"""

from __future__ import annotations

import logging
import math
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from engine.clips import ClipError, ClipLimits, ClipWriter, first_frame, inspect_clip, is_clip, read_frames
from engine.descent import Cancelled
from engine.host.devices import configure_tensorflow
from engine.images import ImageError, save_image
from engine.inputs import load_inputs, load_styles
from engine.memory import LEAST_SIDE, fitting_side, free_memory
from engine.params import Losses, StyleParams
from engine.precision import resolve
from engine.stylize import iterate
from engine.weights import WeightsError, read_decoder, read_vgg
from engine.workers.jobs import Failure, ImageRole, JobSpec, Outcome, Pace, ProgressEvent, failure_of

if TYPE_CHECKING:
    from engine.adain import AdaIN

logger = logging.getLogger(__name__)

# What an `ImageError` calls a job's images, and so which one it was about.
CONTENT_NAME = "the photo"
STYLE_NAME = "the style picture"
IMAGE_ROLES: dict[str, ImageRole] = {CONTENT_NAME: "content", STYLE_NAME: "style"}

# A clip job's limits were checked by the bot before it was queued; the worker reads its header for its
# frame rate and count only.
UNLIMITED = ClipLimits(max_seconds=math.inf, max_side=2**31, min_side=1)
# A fast clip's progress events: a feed-forward frame has no objective.
NO_LOSSES = Losses(0.0, 0.0, 0.0, 0.0)

# Words in TensorFlow's errors (any case) that mean an allocation failed on the device. Only
# ResourceExhaustedError says so by its type; the others come as InternalError or UnknownError.
OUT_OF_MEMORY_SIGNS = (
    "out of memory",  # CUDA_ERROR_OUT_OF_MEMORY; the allocator's "ran out of memory trying to allocate"
    "oom when allocating",  # ResourceExhaustedError's own words
    "failed to allocate",  # "failed to allocate memory", a kernel's scratch space
    "dst tensor is not initialized",  # a copy to the GPU whose destination could not be allocated
    "cudnn_status_alloc_failed",
    # cuDNN's handle or workspace could not be had: in a worker that has already run, memory is short.
    "cudnn_status_not_initialized",
    "cudnn failed to initialize",  # "Failed to get convolution algorithm. This is probably because cuDNN …"
    "cublas_status_alloc_failed",
)


def out_of_memory(exc: BaseException) -> bool:
    """Whether `exc` says the machine or the GPU ran out of memory, whatever TensorFlow's type for it."""
    import tensorflow as tf

    if isinstance(exc, MemoryError | tf.errors.ResourceExhaustedError):
        return True
    if isinstance(exc, tf.errors.OpError):
        text = str(exc).lower()
        return any(sign in text for sign in OUT_OF_MEMORY_SIGNS)
    return False


class Runner:
    """Loads the weights once and runs any number of jobs with them."""

    def __init__(self, weights_path: Path, threads: int, decoder_path: Path | None = None) -> None:
        configure_tensorflow(threads)
        from engine.vgg import VGG19

        self.weights = read_vgg(weights_path)  # any format the README names, as the CLI reads them
        self.network = VGG19(self.weights)
        self.decoder_path = decoder_path
        self._adain: AdaIN | None = None

    def adain(self) -> AdaIN:
        """The feed-forward network, built on the first preview job (most workers never need it)."""
        if self._adain is None:
            from engine.adain import AdaIN

            if self.decoder_path is None:
                raise WeightsError("previews need the AdaIN decoder, and none was given")
            self._adain = AdaIN(self.weights, read_decoder(self.decoder_path))
        return self._adain

    def probe(self, params: StyleParams) -> Pace | None:
        """How fast this worker paints jobs like `params` (engine.pace), measured through the code jobs run
        through; `auto` precision is settled first, so the jobs that follow run as the probe did. None if
        the probe failed: the worker takes jobs all the same, and estimates wait for the first one."""
        from engine.pace import probe

        try:
            seconds, choice = probe(self.network, params)
        except Exception:
            logger.exception("the pace probe failed")
            return None
        return Pace(seconds, choice.dtype, choice.why)

    def run(
        self,
        spec: JobSpec,
        report: Callable[[ProgressEvent], None],
        should_cancel: Callable[[], bool],
    ) -> Outcome:
        """Run one job; every failure becomes an `Outcome`, never an exception.

        A painting that runs out of memory (on a GPU, whose free memory is not known beforehand) is painted
        once more with about half the pixels, unless that is below `LEAST_SIDE`; `shrunk_to` says so.
        """
        started = time.perf_counter()
        try:
            # Decoded straight to the sizes the run uses (a 40-megapixel photo is never held at full size
            # in float), and named as the user knows them: these messages reach the log, paths need not.
            content, styles = _inputs(spec)
            params, shrunk_to = _fit(spec, content.shape)
            if shrunk_to is not None and shrunk_to < LEAST_SIDE:
                detail = f"{content.shape[1]}×{content.shape[0]} would need more memory than is free"
                return Outcome.failed(spec.job_id, Failure.OUT_OF_MEMORY, detail)
            job = _Job(spec, content, styles, report, should_cancel)
            losses, shrunk_to = self._paint_in_memory(job, params, shrunk_to)
        except Exception as exc:
            return _ended_by(spec, exc, time.perf_counter() - started)
        seconds = time.perf_counter() - started
        return Outcome(spec.job_id, "done", spec.output, losses, seconds, shrunk_to=shrunk_to)

    def _paint_in_memory(
        self, job: _Job, params: StyleParams, shrunk_to: int | None
    ) -> tuple[Losses | None, int | None]:
        """Paint the job, and once more with about half the pixels if the first try ran out of memory;
        its losses and the long side it was shrunk to (None: as asked)."""
        try:
            return self._paint(job, params), shrunk_to
        except Exception as exc:
            side = _smaller(params, job.content.shape) if out_of_memory(exc) else None
            if side is None:
                raise
            logger.warning(
                "job %s: out of memory (%s); painting it again at %d px", job.spec.job_id, exc, side
            )
        # Outside the handler: the failed attempt's tensors, held by its traceback, are freed.
        return self._paint(job, params.with_overrides(max_size=side)), side

    def _paint(self, job: _Job, params: StyleParams) -> Losses | None:
        """Paint the job's content as `params` say and save it to its output; the final losses of an
        optimisation, None for a feed-forward preview."""
        if _whole_clip(job.spec):
            return self._animate(job, params)
        if job.spec.mode == "preview":
            self._preview(job, params)
            return None
        return self._optimise(job, params)

    def _preview(self, job: _Job, params: StyleParams) -> None:
        """One AdaIN feed-forward pass, saved as the job's output."""
        save_image(self._feed_forward(job, params)(job.content), job.spec.output)

    def _feed_forward(self, job: _Job, params: StyleParams) -> Callable[[np.ndarray], np.ndarray]:
        """Pictures (a clip's frames) painted in one AdaIN pass each with the job's styles and strength."""
        return self.adain().frames_painter(job.styles, job.spec.alpha, params)

    def _animate(self, job: _Job, params: StyleParams) -> Losses | None:
        """Paint the whole clip to the job's .mp4 at its painted frame rate: fast (AdaIN per frame) for a
        preview job, else the optimisation; the last frame's losses (None if fast). Frames are decoded
        and written one at a time; on any error, cancellation included, no output is left."""
        from engine.animate import fast, paint

        spec = job.spec
        info = inspect_clip(spec.content, UNLIMITED)
        frames = read_frames(spec.content, params.max_size)
        if spec.mode == "preview":
            steps = fast(
                frames,
                info.frames,
                self._feed_forward(job, params),
                params.max_size,
                job.should_cancel,
            )
        else:
            start = None
            if params.initial == "adain":
                from engine.adain import initial_from_adain

                start = partial(
                    initial_from_adain, self.adain(), styles=job.styles, params=params, alpha=spec.alpha
                )
            steps = paint(self.network, frames, info.frames, job.styles, params, job.should_cancel, start)
        losses = None
        side = max(job.content.shape[:2])
        try:
            with ClipWriter(spec.output, info.painted_fps()) as writer:
                for step in steps:
                    if step.image is not None:
                        writer.write(step.image)
                    losses = step.losses or losses
                    event = ProgressEvent(
                        spec.job_id,
                        step.iteration,
                        step.total,
                        step.losses or losses or NO_LOSSES,
                        side=side,
                        frame=step.frame,
                        frames=step.frames,
                    )
                    job.report(event)
        finally:
            frames.close()
        logger.info("job %s: painted %d frames at %d px", spec.job_id, step.frame, side)
        return losses

    def _optimise(self, job: _Job, params: StyleParams) -> Losses:
        """The optimisation, from an AdaIN start if `params` ask for one, reporting every iteration; the last
        event has iteration == total, also when the painting stopped early (its bar ends at 100 %). The
        result is saved as the job's output and its final losses returned."""
        start = None
        if params.initial == "adain":
            from engine.adain import initial_from_adain

            start = initial_from_adain(self.adain(), job.content, job.styles, params, job.spec.alpha)
        for step in iterate(self.network, job.content, job.styles, params, job.should_cancel, start=start):
            job.report(
                ProgressEvent(
                    job.spec.job_id,
                    step.iteration,
                    step.total,
                    step.losses,
                    scale=step.scale,
                    scales=step.scales,
                    side=step.side,
                )
            )
        assert step.image is not None
        if step.ran < step.total:
            logger.info("job %s: converged after %d of %d iterations", job.spec.job_id, step.ran, step.total)
        save_image(step.image, job.spec.output)
        return step.losses


@dataclass(frozen=True)
class _Job:
    """A job as the runner paints it: its spec, its decoded images and its caller's callbacks."""

    spec: JobSpec
    content: np.ndarray  # (H, W, 3) float32 RGB 0..255
    styles: list[np.ndarray]
    report: Callable[[ProgressEvent], None]
    should_cancel: Callable[[], bool]


def _whole_clip(spec: JobSpec) -> bool:
    """Whether the job paints a whole clip (else a picture: a photo, or a clip's first frame)."""
    return is_clip(spec.content) and spec.output.suffix.lower() == ".mp4"


def _inputs(spec: JobSpec) -> tuple[np.ndarray, list[np.ndarray]]:
    """The content (a clip's first frame) and the styles, decoded no larger than the run uses them."""
    if not is_clip(spec.content):
        return load_inputs(spec.content, spec.styles, spec.params, CONTENT_NAME, STYLE_NAME)
    frame = first_frame(spec.content, spec.params.max_size)
    return frame, load_styles(spec.styles, frame.shape, spec.params, STYLE_NAME)


def _ended_by(spec: JobSpec, exc: Exception, seconds: float) -> Outcome:
    """The outcome of a job stopped by `exc`: cancelled, a bad image or clip, or a failure named for the
    caller."""
    if isinstance(exc, Cancelled):
        return Outcome(spec.job_id, "cancelled", seconds=seconds)
    if isinstance(exc, ClipError):
        logger.warning("job %s: the clip could not be read: %s", spec.job_id, exc)
        return Outcome.failed(spec.job_id, Failure.BAD_CLIP, str(exc), seconds=seconds)
    if isinstance(exc, ImageError):
        return Outcome.bad_image(spec.job_id, exc, IMAGE_ROLES.get(exc.name, "output"))
    failure = Failure.OUT_OF_MEMORY if out_of_memory(exc) else failure_of(exc)
    if failure is Failure.INTERNAL:
        logger.error("job %s: failed", spec.job_id, exc_info=exc)
    return Outcome.failed(spec.job_id, failure, "".join(traceback.format_exception_only(exc)).strip())


def _fit(spec: JobSpec, shape: tuple[int, ...]) -> tuple[StyleParams, int | None]:
    """The job's params for a painting that fits in free memory, and the long side it was shrunk to (None:
    as asked). Previews are one pass and are left as asked."""
    if spec.mode != "stylize":
        return spec.params, None
    params, shrunk_to = _fitting(spec.params, shape)
    if shrunk_to is not None and shrunk_to >= LEAST_SIDE:
        logger.info("job %s: painted at %d px, the most that fits in free memory", spec.job_id, shrunk_to)
    return params, shrunk_to


def _fitting(params: StyleParams, shape: tuple[int, ...]) -> tuple[StyleParams, int | None]:
    """`params` for a painting that fits in free memory, and the long side it was shrunk to (None: as
    asked). On a GPU, whose free memory is not known here, the painting is left as asked."""
    import tensorflow as tf

    free = free_memory()
    if free is None or tf.config.list_logical_devices("GPU"):
        return params, None
    height, width = shape[:2]
    side = fitting_side(height, width, params.margin, resolve(params.precision).name, free)
    if side >= max(height, width):
        return params, None
    return params.with_overrides(max_size=max(side, 16)), side


def _smaller(params: StyleParams, shape: tuple[int, ...]) -> int | None:
    """The long side of a painting with about half the pixels of the one `params` make of an image of
    `shape`; None if that is below `LEAST_SIDE`, where a painting is not worth making."""
    side = math.floor(min(params.max_size, max(shape[:2])) / math.sqrt(2))
    return side if side >= LEAST_SIDE else None
