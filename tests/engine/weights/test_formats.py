"""One loader for every weights format: what the CLI, the workers and the bot all read the weights with."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest

from engine.weights import VGGWeights, WeightsError, read_decoder, read_vgg, synthetic, synthetic_decoder
from tests.engine.weight_files import (
    assert_same_decoder,
    assert_same_weights,
    decoder_state_dict,
    torch_state_dict,
    write_mat_new,
    write_mat_old,
    write_torch_legacy,
)


@pytest.fixture(scope="module")
def weights() -> VGGWeights:
    return synthetic(channels=4, source="test:synthetic")


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory, weights: VGGWeights) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("formats")
    paths = {name: folder / name for name in ("w.npz", "old.mat", "new.mat", "w.pth")}
    weights.save(paths["w.npz"])
    write_mat_old(weights, paths["old.mat"])
    write_mat_new(weights, paths["new.mat"])
    write_torch_legacy(paths["w.pth"], torch_state_dict(weights))
    return paths


@pytest.mark.parametrize("name", ["w.npz", "old.mat", "new.mat", "w.pth"])
def test_every_format_loads_to_the_same_weights(
    files: dict[str, Path], weights: VGGWeights, name: str
) -> None:
    assert_same_weights(read_vgg(files[name]), weights)


@pytest.mark.parametrize("name", ["w.npz", "old.mat", "w.pth"])
def test_the_format_is_told_by_the_content_not_the_name(
    files: dict[str, Path], weights: VGGWeights, name: str, tmp_path: Path
) -> None:
    renamed = tmp_path / "vgg19.npz"  # as Ray's workers receive every weights file
    shutil.copyfile(files[name], renamed)
    assert_same_weights(read_vgg(renamed), weights)


def test_sources_record_where_the_numbers_came_from(files: dict[str, Path]) -> None:
    pth = files["w.pth"]
    assert read_vgg(files["old.mat"]).source == "matconvnet:old.mat"
    assert read_vgg(pth).source == f"file:w.pth sha256={hashlib.sha256(pth.read_bytes()).hexdigest()}"


def test_the_decoder_loads_from_npz_and_pth(tmp_path: Path) -> None:
    decoder = synthetic_decoder(channels=4, source="test:decoder")
    decoder.save(tmp_path / "d.npz")
    write_torch_legacy(tmp_path / "d.pth", decoder_state_dict(decoder))
    assert_same_decoder(read_decoder(tmp_path / "d.npz"), decoder)
    assert_same_decoder(read_decoder(tmp_path / "d.pth"), decoder)


def _refusal(path: Path) -> str:
    with pytest.raises(WeightsError) as info:
        read_vgg(path)
    message = str(info.value)
    assert "\n" not in message
    assert str(path) in message
    return message


def test_missing_and_unreadable_files_are_refused_on_one_line(tmp_path: Path) -> None:
    assert "no such file" in _refusal(tmp_path / "nothing.mat")
    assert "a folder" in _refusal(tmp_path)
    (tmp_path / "notes.txt").write_text("hello")
    assert "not a weights file the engine reads" in _refusal(tmp_path / "notes.txt")
    (tmp_path / "empty.npz").write_bytes(b"")
    assert "not a weights file the engine reads" in _refusal(tmp_path / "empty.npz")


def test_damaged_files_of_each_format_are_refused(files: dict[str, Path], tmp_path: Path) -> None:
    for name, path in files.items():
        cut = tmp_path / name
        cut.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
        _refusal(cut)


def test_a_network_that_is_not_vgg19_is_refused(tmp_path: Path) -> None:
    decoder = synthetic_decoder(channels=4)
    write_torch_legacy(tmp_path / "decoder.pth", decoder_state_dict(decoder))
    assert "not the normalised VGG-19" in _refusal(tmp_path / "decoder.pth")
    decoder.save(tmp_path / "decoder.npz")
    assert "not a valid weights file" in _refusal(tmp_path / "decoder.npz")


def test_a_mat_file_holds_no_decoder(files: dict[str, Path]) -> None:
    with pytest.raises(WeightsError, match="holds no AdaIN decoder"):
        read_decoder(files["new.mat"])
