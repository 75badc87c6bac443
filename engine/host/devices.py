"""TensorFlow's threads and devices for this process, set once before its first op."""

from __future__ import annotations

import logging

__all__ = ["configure_tensorflow"]

logger = logging.getLogger(__name__)


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
