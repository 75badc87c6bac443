"""The in-process runner: set TensorFlow up once, hold the network, and run jobs to an `Outcome`.

Every worker runs jobs through it: a process of `EnginePool`, an actor of `RayPool`, or a test calling it.
"""

from __future__ import annotations

import io
import logging
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from engine.images import ImageError, save_image, to_uint8
from engine.inputs import load_inputs
from engine.memory import LEAST_SIDE, fitting_side, free_memory
from engine.params import StyleParams
from engine.precision import resolve
from engine.stylize import Cancelled, iterate
from engine.weights import WeightsError, load_decoder, load_vgg
from engine.workers.jobs import Failure, ImageRole, JobSpec, Outcome, ProgressEvent, failure_of

if TYPE_CHECKING:
    from engine.adain import AdaIN

logger = logging.getLogger(__name__)

# What an `ImageError` calls a job's images, and so which one it was about.
CONTENT_NAME = "the photo"
STYLE_NAME = "the style picture"
IMAGE_ROLES: dict[str, ImageRole] = {CONTENT_NAME: "content", STYLE_NAME: "style"}


def configure_tensorflow(threads: int) -> None:
    """Thread counts for the CPU and memory growth for GPUs; must run before TensorFlow's first op."""
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(min(2, threads))
        for gpu in tf.config.list_physical_devices("GPU"):
            tf.config.experimental.set_memory_growth(gpu, True)
    except RuntimeError:
        # TensorFlow already ran an op in this process (a notebook, a test run): keep its settings.
        logger.info("TensorFlow is already initialised; thread and GPU settings left as they are")


class Runner:
    """Loads the weights once and runs any number of jobs with them."""

    def __init__(self, weights_path: Path, threads: int, decoder_path: Path | None = None) -> None:
        configure_tensorflow(threads)
        from engine.vgg import VGG19

        self.weights = load_vgg(weights_path)  # any format the README names, as the CLI reads them
        self.network = VGG19(self.weights)
        self.decoder_path = decoder_path
        self._adain: AdaIN | None = None

    def adain(self) -> AdaIN:
        """The feed-forward network, built on the first preview job (most workers never need it)."""
        if self._adain is None:
            from engine.adain import AdaIN

            if self.decoder_path is None:
                raise WeightsError("previews need the AdaIN decoder, and none was given")
            self._adain = AdaIN(self.weights, load_decoder(self.decoder_path))
        return self._adain

    def run(
        self,
        spec: JobSpec,
        report: Callable[[ProgressEvent], None],
        should_cancel: Callable[[], bool],
    ) -> Outcome:
        """Run one job; every failure becomes an `Outcome`, never an exception."""
        import tensorflow as tf

        started = time.perf_counter()
        try:
            # Decoded straight to the sizes the run uses (a 40-megapixel photo is never held at full size
            # in float), and named as the user knows them: these messages reach the log, paths need not.
            content, styles = load_inputs(spec.content, spec.styles, spec.params, CONTENT_NAME, STYLE_NAME)
            if spec.mode == "preview":
                p = spec.params
                image = self.adain().preview(
                    content,
                    styles,
                    alpha=spec.alpha,
                    blend_weights=p.style_blend_weights,
                    preserve_colors=p.preserve_colors,
                    max_size=p.max_size,
                    style_scales=p.style_scales,
                    precision=p.precision,
                )
                save_image(image, spec.output)
                return Outcome(spec.job_id, "done", spec.output, seconds=time.perf_counter() - started)
            params, shrunk_to = _fitting(spec.params, content.shape)
            if shrunk_to is not None and shrunk_to < LEAST_SIDE:
                detail = f"{content.shape[1]}×{content.shape[0]} would need more memory than is free"
                return Outcome.failed(spec.job_id, Failure.OUT_OF_MEMORY, detail)
            if shrunk_to is not None:
                logger.info(
                    "job %s: painted at %d px, the most that fits in free memory", spec.job_id, shrunk_to
                )
            start = None
            if params.initial == "adain":
                from engine.adain import initial_from_adain

                start = initial_from_adain(self.adain(), content, styles, params, spec.alpha)
            for step in iterate(self.network, content, styles, params, should_cancel, start=start):
                if step.iteration < step.total:
                    preview = _jpeg(step.image) if step.image is not None else None
                    report(
                        ProgressEvent(
                            spec.job_id,
                            step.iteration,
                            step.total,
                            step.losses,
                            preview,
                            scale=step.scale,
                            scales=step.scales,
                            side=step.side,
                        )
                    )
            assert step.image is not None
            save_image(step.image, spec.output)
        except Cancelled:
            return Outcome(spec.job_id, "cancelled", seconds=time.perf_counter() - started)
        except ImageError as exc:
            return Outcome.bad_image(spec.job_id, exc, IMAGE_ROLES.get(exc.name, "output"))
        except (MemoryError, tf.errors.ResourceExhaustedError) as exc:
            return Outcome.failed(spec.job_id, Failure.OUT_OF_MEMORY, f"{type(exc).__name__}: {exc}")
        except Exception as exc:
            failure = failure_of(exc)
            if failure is Failure.INTERNAL:
                logger.exception("job %s: failed", spec.job_id)
            return Outcome.failed(spec.job_id, failure, "".join(traceback.format_exception_only(exc)).strip())
        seconds = time.perf_counter() - started
        return Outcome(spec.job_id, "done", spec.output, step.losses, seconds, shrunk_to=shrunk_to)


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


def _jpeg(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(to_uint8(image), "RGB").save(buffer, format="JPEG", quality=80)
    return buffer.getvalue()
