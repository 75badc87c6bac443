"""A worker's job runner turns every failure into an Outcome the bot can show."""

from __future__ import annotations

import errno
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pytest

import engine.workers.runner
from engine.images import MIN_SIDE, ImageProblem, load_image, save_image
from engine.params import StyleParams
from engine.stylize import Progress
from engine.weights import VGGWeights, WeightsError, synthetic_decoder
from engine.workers import Failure, JobSpec
from engine.workers.runner import Runner, out_of_memory
from tests.engine.conftest import smooth_image
from tests.engine.weight_files import (
    assert_same_weights,
    torch_state_dict,
    write_mat_new,
    write_mat_old,
    write_torch_legacy,
)


@pytest.fixture(scope="module")
def runner(tiny_weights_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Runner:
    decoder = tmp_path_factory.mktemp("decoder") / "decoder.npz"
    synthetic_decoder(channels=4).save(decoder)
    return Runner(tiny_weights_file, threads=1, decoder_path=decoder)


@pytest.fixture
def spec(tmp_path: Path) -> JobSpec:
    save_image(smooth_image(24, 24, 1), tmp_path / "c.png")
    save_image(smooth_image(24, 24, 2), tmp_path / "s.png")
    return JobSpec(
        "7", tmp_path / "c.png", (tmp_path / "s.png",), tmp_path / "out.png", StyleParams(iterations=3)
    )


def test_the_probe_settles_auto_precision_for_the_jobs_that_follow(
    runner: Runner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from engine import precision

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))  # this test's own cache: nothing measured yet
    monkeypatch.setattr(precision, "_settled", None)

    pace = runner.probe(StyleParams(optimizer="lbfgs", margin=16))

    decided = precision.read_cached(
        precision.host_key(), None, tmp_path / "neural-style-bot" / "precision.json"
    )
    assert decided is not None
    assert (pace.precision, pace.why) == (decided.dtype, decided.why.removesuffix(" (cached)"))
    assert precision.resolve("auto").name == pace.precision  # the worker's jobs run as its probe did
    assert pace.seconds > 0.0
    as_set = runner.probe(StyleParams(optimizer="lbfgs", precision="float32"))
    assert (as_set.precision, as_set.why) == ("float32", "as configured")


def test_done_job_writes_its_output(runner: Runner, spec: JobSpec) -> None:
    outcome = runner.run(spec, lambda event: None, lambda: False)
    assert (outcome.status, outcome.output) == ("done", spec.output)
    assert spec.output.is_file()


def test_full_disk_is_a_clear_failure_and_leaves_no_file(
    runner: Runner, spec: JobSpec, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full_disk(image: np.ndarray, path: Path) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(engine.workers.runner, "save_image", full_disk)
    outcome = runner.run(spec, lambda event: None, lambda: False)
    assert (outcome.status, outcome.failure, outcome.crashed) == ("failed", Failure.NO_DISK_SPACE, False)
    assert "No space left on device" in (outcome.detail or "")
    assert not spec.output.exists()


def test_unreadable_input_says_which_picture_and_why(runner: Runner, spec: JobSpec) -> None:
    spec.styles[0].write_bytes(b"\x89PNG\r\n\x1a\n broken")
    outcome = runner.run(spec, lambda event: None, lambda: False)
    assert (outcome.status, outcome.failure) == ("failed", Failure.BAD_IMAGE)
    assert (outcome.problem, outcome.image) == (ImageProblem.UNREADABLE, "style")
    assert outcome.detail == "the style picture is not an image that can be read"


def test_too_small_content_carries_its_size_and_the_limit(runner: Runner, spec: JobSpec) -> None:
    save_image(smooth_image(12, 40, 3), spec.content)
    outcome = runner.run(spec, lambda event: None, lambda: False)
    assert (outcome.failure, outcome.problem, outcome.image) == (
        Failure.BAD_IMAGE,
        ImageProblem.TOO_SMALL,
        "content",
    )
    assert (outcome.width, outcome.height, outcome.limit) == (40, 12, MIN_SIDE)


def test_preview_job_writes_a_feed_forward_image_without_iterating(runner: Runner, spec: JobSpec) -> None:
    events: list[object] = []
    preview = replace(spec, mode="preview", params=StyleParams(iterations=10_000, max_size=20))
    outcome = runner.run(preview, events.append, lambda: False)
    assert (outcome.status, outcome.output, events) == ("done", spec.output, [])
    assert load_image(spec.output).shape == (20, 20, 3)


def test_preview_without_a_decoder_fails_clearly(tiny_weights_file: Path, spec: JobSpec) -> None:
    outcome = Runner(tiny_weights_file, threads=1).run(replace(spec, mode="preview"), print, lambda: False)
    assert outcome.status == "failed"
    assert "decoder" in (outcome.detail or "")


def test_adain_start_begins_from_the_preview(runner: Runner, spec: JobSpec, tmp_path: Path) -> None:
    preview = replace(spec, mode="preview", output=tmp_path / "preview.png", params=StyleParams(max_size=20))
    assert runner.run(preview, print, lambda: False).status == "done"
    params = StyleParams(max_size=20, iterations=1, initial="adain", learning_rate=1e-6)
    outcome = runner.run(replace(spec, params=params), lambda event: None, lambda: False)
    assert outcome.status == "done"
    difference = np.abs(load_image(spec.output) - load_image(preview.output))
    assert difference.max() <= 1.0


@pytest.mark.parametrize("fmt", ["old.mat", "new.mat", "w.pth"])
def test_a_runner_reads_the_original_weights_files(
    tiny_weights: VGGWeights, spec: JobSpec, tmp_path: Path, fmt: str
) -> None:
    path = tmp_path / fmt
    if fmt == "w.pth":
        write_torch_legacy(path, torch_state_dict(tiny_weights))
    else:
        (write_mat_old if fmt == "old.mat" else write_mat_new)(tiny_weights, path)
    runner = Runner(path, threads=1)
    assert_same_weights(runner.weights, tiny_weights)
    outcome = runner.run(spec, lambda event: None, lambda: False)
    assert (outcome.status, outcome.output) == ("done", spec.output)
    assert load_image(spec.output).shape == (24, 24, 3)


def test_a_runner_refuses_a_file_that_is_not_weights(tmp_path: Path) -> None:
    (tmp_path / "vgg19.mat").write_text("not weights")
    with pytest.raises(WeightsError, match=r"vgg19\.mat: not a weights file"):
        Runner(tmp_path / "vgg19.mat", threads=1)


def test_a_large_photo_and_a_tall_style_run_at_the_job_size(runner: Runner, spec: JobSpec) -> None:
    save_image(smooth_image(100, 1000, 3), spec.content)  # 10:1, far above the output size
    save_image(smooth_image(1000, 100, 4), spec.styles[0])  # 1:10: at the photo's width, 100× its area
    params = StyleParams(iterations=1, max_size=200, margin=2)
    outcome = runner.run(replace(spec, params=params), lambda event: None, lambda: False)
    assert outcome.status == "done"
    assert load_image(spec.output).shape == (20, 200, 3)


def tf_error(kind: str, message: str) -> BaseException:
    import tensorflow as tf

    error: type[BaseException] = getattr(tf.errors, kind)
    return error(None, None, message)


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("ResourceExhaustedError", "OOM when allocating tensor with shape[1,64,2048,2048] and type float"),
        ("InternalError", "Dst tensor is not initialized."),
        (
            "UnknownError",
            "Failed to get convolution algorithm. This is probably because cuDNN failed to initialize, "
            "so try looking to see if a warning log message was printed above. [Op:Conv2D]",
        ),
        ("InternalError", "Could not create cudnn handle: CUDNN_STATUS_ALLOC_FAILED"),
        ("UnknownError", "cuDNN launch failure : CUDNN_STATUS_NOT_INITIALIZED"),
        ("InternalError", "failed to allocate memory [Op:Mul]"),
        ("InternalError", "CUDA_ERROR_OUT_OF_MEMORY: out of memory"),
        ("InternalError", "Blas xGEMM launch failed: CUBLAS_STATUS_ALLOC_FAILED"),
    ],
)
def test_every_allocation_failure_is_out_of_memory(kind: str, message: str) -> None:
    assert out_of_memory(tf_error(kind, message))


def test_other_errors_are_not_out_of_memory() -> None:
    assert out_of_memory(MemoryError())
    assert not out_of_memory(tf_error("InvalidArgumentError", "Incompatible shapes: [1,2] vs. [1,3]"))
    assert not out_of_memory(tf_error("InternalError", "cuDNN launch failure: CUDNN_STATUS_EXECUTION_FAILED"))
    assert not out_of_memory(ValueError("out of memory"))  # only TensorFlow's errors are read


@dataclass
class GpuMemory:
    """Paintings with a long side above `limit` run out of it; `painted` lists the sides asked for."""

    limit: int
    painted: list[int] = field(default_factory=list)


@pytest.fixture
def gpu(monkeypatch: pytest.MonkeyPatch) -> GpuMemory:
    """The optimisation fails as TensorFlow does on a GPU out of memory, above `limit` px."""
    real = engine.workers.runner.iterate
    memory = GpuMemory(limit=0)

    def iterate(network, content, styles, params: StyleParams, *args, **kwargs) -> Iterator[Progress]:  # type: ignore[no-untyped-def]
        memory.painted.append(params.max_size)
        if params.max_size > memory.limit:
            raise tf_error("InternalError", "Dst tensor is not initialized.")
        yield from real(network, content, styles, params, *args, **kwargs)

    monkeypatch.setattr(engine.workers.runner, "iterate", iterate)
    return memory


def test_a_painting_out_of_gpu_memory_is_painted_again_with_half_the_pixels(
    runner: Runner, spec: JobSpec, gpu: GpuMemory
) -> None:
    save_image(smooth_image(300, 400, 3), spec.content)
    gpu.limit = 300
    outcome = runner.run(replace(spec, params=StyleParams(iterations=1, max_size=400)), print, lambda: False)
    assert (outcome.status, outcome.shrunk_to, gpu.painted) == ("done", 282, [400, 282])  # 400 / √2
    assert load_image(spec.output).shape == (212, 282, 3)


@pytest.mark.parametrize(("side", "painted"), [(400, [400, 282]), (300, [300])])
def test_out_of_memory_again_or_below_the_floor_fails_as_out_of_memory(
    runner: Runner, spec: JobSpec, gpu: GpuMemory, side: int, painted: list[int]
) -> None:
    save_image(smooth_image(side, side, 3), spec.content)
    gpu.limit = 100
    outcome = runner.run(replace(spec, params=StyleParams(iterations=1, max_size=side)), print, lambda: False)
    assert (outcome.status, outcome.failure, outcome.crashed) == ("failed", Failure.OUT_OF_MEMORY, False)
    assert "Dst tensor is not initialized" in (outcome.detail or "")
    assert gpu.painted == painted  # once smaller at most, and never below 256 px (300 / √2 = 212)
    assert not spec.output.exists()
