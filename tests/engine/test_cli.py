"""The `neural-style` command line, run in-process on the synthetic weights and tiny images."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine.cli import main
from engine.weights import VGGWeights, default_cache_path
from tests.engine.conftest import smooth_image
from tests.engine.weight_files import torch_state_dict, write_mat_new, write_torch_legacy
from tests.timing import scaled


def write_image(path: Path, height: int, width: int, seed: int) -> Path:
    Image.fromarray(smooth_image(height, width, seed).astype(np.uint8), "RGB").save(path)
    return path


@pytest.fixture
def images(tmp_path: Path) -> tuple[Path, Path]:
    """A landscape content (24×40) and a square style (20×20) PNG."""
    return write_image(tmp_path / "content.png", 24, 40, 1), write_image(tmp_path / "style.png", 20, 20, 2)


@pytest.fixture(scope="module")
def precision_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache folder for the module: `auto` is measured once with the tiny network, then read."""
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(autouse=True)
def own_precision_cache(precision_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI settles `auto` precision in this process: in the module's cache, and forgotten after the test,
    so that neither the user's cache nor the other tests' `auto` see a decision of the tiny network."""
    from engine import precision

    monkeypatch.setenv("XDG_CACHE_HOME", str(precision_cache))
    monkeypatch.setattr(precision, "_settled", None)


def run(*args: str | Path) -> int:
    return main([str(a) for a in args])


@pytest.mark.parametrize(
    ("size_args", "expected"),
    [([], (40, 24)), (["--max-size", "32"], (32, 19))],
    ids=["kept", "scaled"],
)
def test_writes_output_with_the_contents_aspect(
    tmp_path: Path,
    images: tuple[Path, Path],
    tiny_weights_file: Path,
    capsys: pytest.CaptureFixture[str],
    size_args: list[str],
    expected: tuple[int, int],
) -> None:
    content, style = images
    out = tmp_path / "out" / "result.jpg"

    code = run(content, style, "-o", out, "--network", tiny_weights_file, "--iterations", "3", *size_args)

    assert code == 0
    with Image.open(out) as result:
        assert (result.format, result.mode, result.size) == ("JPEG", "RGB", expected)
    assert capsys.readouterr().out.startswith(f"wrote {out} (loss ")


def test_precision_is_chosen_on_the_command_line(
    tmp_path: Path, images: tuple[Path, Path], tiny_weights_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    content, style = images
    outputs = {}
    for precision in ("float32", "bfloat16"):
        out = tmp_path / f"{precision}.png"
        args = ("-o", out, "--network", tiny_weights_file, "--iterations", "3", "--seed", "0")
        assert run(content, style, *args, "--precision", precision) == 0
        with Image.open(out) as result:
            outputs[precision] = np.asarray(result, dtype=np.float32)

    difference = np.abs(outputs["float32"] - outputs["bfloat16"])
    assert 0.0 < difference.mean() < 8.0  # each ran in its own format, to nearly the same picture
    with pytest.raises(SystemExit) as exit_info:
        run(content, style, "-o", tmp_path / "x.png", "--precision", "half")
    assert exit_info.value.code == 2
    assert "argument --precision: invalid choice: 'half'" in capsys.readouterr().err


def test_checkpoints_are_written_every_n_iterations(
    tmp_path: Path, images: tuple[Path, Path], tiny_weights_file: Path
) -> None:
    content, style = images
    out = tmp_path / "final.png"
    pattern = tmp_path / "out_%d.png"

    code = run(
        content, style, "-o", out, "--network", tiny_weights_file, "--iterations", "5",
        "--checkpoint-output", pattern, "--checkpoint-iterations", "2",
    )  # fmt: skip

    assert code == 0
    assert sorted(p.name for p in tmp_path.glob("out_*.png")) == ["out_2.png", "out_4.png"]
    for path in (tmp_path / "out_2.png", tmp_path / "out_4.png", out):
        with Image.open(path) as image:
            assert image.size == (40, 24)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"content": "missing.jpg"}, "missing.jpg does not exist"),
        ({"style": "missing.jpg"}, "missing.jpg does not exist"),
        ({"content": "notes.txt"}, "notes.txt is not an image that can be read"),
        ({"output": "out.gif"}, "out.gif: output must end in .png, .jpg, .jpeg or .webp"),
        ({"extra": ["--content-weight-blend", "2"]}, "content_weight_blend must be within [0, 1]"),
        ({"extra": ["--iterations", "0"]}, "iterations must be at least 1"),
        ({"extra": ["--max-size", "8"]}, "max_size must be at least 16 pixels"),
        ({"extra": ["--learning-rate", "-1"]}, "learning_rate must be positive"),
        ({"extra": ["--multiscale-levels", "-1"]}, "multiscale_levels must not be negative"),
    ],
    ids=[
        "no-content",
        "no-style",
        "not-an-image",
        "bad-suffix",
        "blend",
        "iterations",
        "size",
        "lr",
        "levels",
    ],
)
def test_bad_input_is_one_clear_error_with_exit_code_2(
    tmp_path: Path,
    images: tuple[Path, Path],
    tiny_weights_file: Path,
    capsys: pytest.CaptureFixture[str],
    change: dict[str, str | list[str]],
    message: str,
) -> None:
    (tmp_path / "notes.txt").write_text("not a picture\n")
    content, style = images
    content = tmp_path / change["content"] if "content" in change else content
    style = tmp_path / change["style"] if "style" in change else style
    out = tmp_path / str(change.get("output", "out.png"))
    extra = list(change.get("extra", []))

    code = run(content, style, "-o", out, "--network", tiny_weights_file, *extra)

    captured = capsys.readouterr()
    assert code == 2
    assert captured.err.strip().splitlines() == [captured.err.strip()]
    assert captured.err.startswith("neural-style: ")
    assert message in captured.err
    assert "Traceback" not in captured.err
    assert not out.exists()


def test_unparseable_flag_exits_2_with_usage(
    images: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    content, style = images

    with pytest.raises(SystemExit) as exit_info:
        run(content, style, "-o", tmp_path / "out.png", "--iterations", "many")

    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: neural-style")
    assert "argument --iterations: invalid int value: 'many'" in err


def test_missing_weights_name_the_fetch_command(
    tmp_path: Path,
    images: tuple[Path, Path],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    absent = tmp_path / "absent" / "vgg19.npz"
    monkeypatch.setenv("VGG_WEIGHTS", str(absent))
    content, style = images
    out = tmp_path / "out.png"

    code = run(content, style, "-o", out)

    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.splitlines() == [err]
    assert f"No VGG-19 weights at {absent}" in err
    assert "`neural-style weights fetch`" in err
    assert not out.exists()


def test_corrupt_weights_are_refused_naming_the_fetch_command(
    tmp_path: Path, images: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "vgg19.npz"
    bad.write_bytes(b"PK\x03\x04 this is not a zip archive")
    content, style = images

    code = run(content, style, "-o", tmp_path / "out.png", "--network", bad)

    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.splitlines() == [err]
    assert "not a valid weights file" in err
    assert "`neural-style weights fetch`" in err


def test_weights_where_prints_the_env_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    chosen = tmp_path / "mine.npz"
    monkeypatch.setenv("VGG_WEIGHTS", str(chosen))

    assert main(["weights", "where"]) == 0
    assert capsys.readouterr().out == f"{chosen}\n"


def test_weights_where_prints_the_cache_path_by_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("VGG_WEIGHTS", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))

    assert main(["weights", "where"]) == 0
    out = capsys.readouterr().out
    assert out == f"{tmp_path / 'cache' / 'neural-style-bot' / 'vgg19.npz'}\n"
    assert out == f"{default_cache_path()}\n"


def test_console_script_help_lists_the_options() -> None:
    script = shutil.which("neural-style", path=str(Path(sys.executable).parent))
    command = [script] if script else [sys.executable, "-m", "engine.cli"]

    result = subprocess.run(
        [*command, "--help"], capture_output=True, text=True, timeout=scaled(60), check=False
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: neural-style")
    for option in ("--content-weight-blend", "--style-layer-weight-exp", "--checkpoint-output", "--pooling"):
        assert option in result.stdout


@pytest.fixture
def tiny_decoder_file(tmp_path: Path) -> Path:
    from engine.weights import synthetic_decoder

    path = tmp_path / "adain-decoder.npz"
    synthetic_decoder(channels=4).save(path)
    return path


def test_fast_writes_the_adain_result_at_the_contents_size(
    tmp_path: Path,
    images: tuple[Path, Path],
    tiny_weights_file: Path,
    tiny_decoder_file: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    content, style = images
    out = tmp_path / "fast.png"
    weights = ("--network", tiny_weights_file, "--decoder", tiny_decoder_file)

    code = run(content, style, "-o", out, *weights, "--fast", "--alpha", "0.5", "--max-size", "32")

    assert code == 0
    assert capsys.readouterr().out == f"wrote {out} (AdaIN, alpha 0.5)\n"
    with Image.open(out) as result:
        assert result.size == (32, 19)
        pixels = np.asarray(result, dtype=np.float32)
    assert pixels.std() > 1.0


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--alpha", "1.5"], "alpha must be within [0, 1]"),
        (["--style-blend-weights", "1 2"], "2 style blend"),
    ],
    ids=["alpha", "blend"],
)
def test_fast_bad_options_are_one_clear_error(
    tmp_path: Path,
    images: tuple[Path, Path],
    tiny_weights_file: Path,
    tiny_decoder_file: Path,
    capsys: pytest.CaptureFixture[str],
    extra: list[str],
    message: str,
) -> None:
    content, style = images
    out = tmp_path / "fast.png"

    code = run(
        content,
        style,
        "-o",
        out,
        "--network",
        tiny_weights_file,
        "--decoder",
        tiny_decoder_file,
        "--fast",
        *extra,
    )

    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.splitlines() == [err]
    assert err.startswith("neural-style: ")
    assert message in err
    assert not out.exists()


def test_fast_without_a_decoder_names_the_fetch_command(
    tmp_path: Path,
    images: tuple[Path, Path],
    tiny_weights_file: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    absent = tmp_path / "absent" / "adain-decoder.npz"
    monkeypatch.setenv("ADAIN_DECODER", str(absent))
    content, style = images

    code = run(content, style, "-o", tmp_path / "fast.png", "--network", tiny_weights_file, "--fast")

    err = capsys.readouterr().err.strip()
    assert code == 2
    assert f"No AdaIN decoder at {absent}" in err
    assert "`neural-style weights fetch`" in err


def test_initial_adain_starts_from_the_preview(
    tmp_path: Path,
    images: tuple[Path, Path],
    tiny_weights_file: Path,
    tiny_decoder_file: Path,
) -> None:
    content, style = images
    weights = ("--network", tiny_weights_file, "--decoder", tiny_decoder_file, "--max-size", "32")
    fast, started = tmp_path / "fast.png", tmp_path / "started.png"
    assert run(content, style, "-o", fast, *weights, "--fast") == 0
    # One Adam step at a tiny learning rate barely moves the start image: that start is the preview.
    step = ("--iterations", "1", "--learning-rate", "1e-6")
    assert run(content, style, "-o", started, *weights, *step, "--initial", "adain") == 0
    with Image.open(fast) as a, Image.open(started) as b:
        difference = np.abs(np.asarray(a, dtype=np.float32) - np.asarray(b, dtype=np.float32))
    assert difference.max() <= 1.0


@pytest.mark.parametrize("name", ["vgg.mat", "vgg.pth"])
def test_the_original_weights_files_work_as_the_network(
    tmp_path: Path, images: tuple[Path, Path], tiny_weights: VGGWeights, name: str
) -> None:
    network = tmp_path / name
    if name.endswith(".mat"):
        write_mat_new(tiny_weights, network)
    else:
        write_torch_legacy(network, torch_state_dict(tiny_weights))
    content, style = images
    out = tmp_path / "out.png"
    assert run(content, style, "-o", out, "--network", network, "--iterations", "2") == 0
    with Image.open(out) as result:
        assert result.size == (40, 24)


def test_a_big_painting_takes_the_bots_schedule_and_says_how_long(
    tmp_path: Path, images: tuple[Path, Path], tiny_weights_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    content, style = images  # 40 px wide: above a 24-px base it is painted coarse to fine
    out = tmp_path / "big.png"

    code = run(
        content,
        style,
        "-o",
        out,
        "--network",
        tiny_weights_file,
        "--max-size",
        "40",
        "--multiscale-base",
        "24",
    )

    assert code == 0
    err = capsys.readouterr().err
    assert "40 px: lbfgs, 100 iterations at 24 px and fewer at each finer scale" in err
    assert re.search(r"about \d+ min \([0-9.]+ s per iteration at 512 px here\)", err), err
    with Image.open(out) as result:
        assert result.size == (40, 24)
    chosen = run(
        content,
        style,
        "-o",
        out,
        "--network",
        tiny_weights_file,
        "--iterations",
        "3",
        "--multiscale-base",
        "24",
    )
    assert chosen == 0
    assert "lbfgs, 100 iterations" not in capsys.readouterr().err  # the user chose: the library's defaults


def test_doctor_prints_every_section_measured_by_a_worker(
    tiny_weights_file: Path, tiny_decoder_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    weights = ("--network", tiny_weights_file, "--decoder", tiny_decoder_file)

    code = run("doctor", *weights, "--target-seconds", "1e9", "--max-size", "1024")

    out = capsys.readouterr().out
    assert code == 0, out
    headings = [line for line in out.splitlines() if not line.startswith(" ")]
    assert headings[:5] == [
        "Devices",
        "Weights",
        "Pace (a worker started as the bot starts its painters)",
        "Painting time, 100 iterations (coarse to fine above 512 px)",
        "Default size: 1024 px, the largest painted within 1e+09 s (BOT_TARGET_SECONDS)",
    ]
    assert headings[5:] == ["Memory and disk"]
    assert "CPU: " in out
    assert f"VGG-19: {tiny_weights_file} (synthetic), read and verified" in out
    assert "AdaIN decoder: synthetic, read and verified with the VGG-19" in out
    # The worker settled `auto` (measured or cached) and timed the bot's kind of job.
    assert re.search(r"precision auto: (float32|bfloat16) \(", out), out
    assert re.search(r"[0-9.]+ s per iteration at 512 px \(L-BFGS, margin 16\)", out), out
    assert re.findall(r"^ +(\d+) px  \d", out, re.MULTILINE) == ["512", "768", "1024"]


def test_doctor_without_weights_says_what_to_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = run("doctor", "--network", tmp_path / "absent.npz")

    out = capsys.readouterr().out
    assert code == 1
    assert "neural-style weights fetch" in out
    assert "Pace" not in out  # no worker is started without weights
