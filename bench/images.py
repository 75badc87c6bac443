"""The benchmark images: fetched into bench/images/ (git-ignored) and checked against their SHA-256.

    python bench/images.py               # download every image from its public source
    python bench/images.py --from DIR    # copy them from a local folder instead (same checksums)

The images are the example inputs of jcjohnson/neural-style (`examples/inputs/`, pinned to one commit),
the pictures most Gatys-style implementations are shown with. The paintings are public domain; the
photos are as that repository distributes them. Nothing here is copied into this repository: the bench
scripts read bench/images/ by default (`--images DIR` elsewhere) and say to run this script when a file
is missing.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import sys
import tempfile
import urllib.request
from collections.abc import Iterable
from pathlib import Path

IMAGES = Path(__file__).resolve().parent / "images"
COMMIT = "07c4b8299f8fbdafec0c514fc820ff1d7ff62e46"
SOURCE = f"https://raw.githubusercontent.com/jcjohnson/neural-style/{COMMIT}/examples/inputs/"

# file name → (what it is, SHA-256 of the file as served from SOURCE)
MANIFEST: dict[str, tuple[str, str]] = {
    "tubingen.jpg": (
        "photo: Tübingen, the Neckarfront (1024×768)",
        "e67d1869f01fd805385c681a80d9ebcf0f70ea4a5fe6127f0606bb1c7f4bf506",
    ),
    "golden_gate.jpg": (
        "photo: the Golden Gate Bridge",
        "f8476ac216e0d409af2e52bf82ad2cdc3433e23d7895e6f9b2048fc014ed57ba",
    ),
    "hoovertowernight.jpg": (
        "photo: Hoover Tower at night",
        "8852910ed1594af535c3dee012b020b9ee4045798645885d20a9445d12e98093",
    ),
    "starry_night.jpg": (
        "style: Vincent van Gogh, The Starry Night (1889), public domain",
        "0592ab0f7b51b3ce72608a95e53880bd93971e5b48f93a0ce8dfd3cbccf3d098",
    ),
    "the_scream.jpg": (
        "style: Edvard Munch, The Scream (1893), public domain",
        "f3075cddeb974a9ee1d6418f7f33fd05185a7ac7dcb4288bd2805d499a9dcaee",
    ),
    "shipwreck.jpg": (
        "style: J. M. W. Turner, The Shipwreck (1805), public domain",
        "4f7cf34e3cd4a5daaf3f421f059ca9a01aaa2a3afd7243d6670c9c8bc001a213",
    ),
    "woman-with-hat-matisse.jpg": (
        "style: Henri Matisse, Woman with a Hat (1905), public domain in the US",
        "6a8b2383d9c110354a97a42c74bdcc5341be879cbb842ddb7ab5843dbdf56d53",
    ),
}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def need(folder: Path, names: Iterable[str]) -> None:
    """Exit with a message saying how to get the images when one of `names` is not in `folder`."""
    missing = [name for name in names if not (folder / name).is_file()]
    if missing:
        command = "python bench/images.py" + ("" if folder == IMAGES else f" --out {folder}")
        sys.exit(f"Missing in {folder}: {', '.join(missing)}. Fetch the benchmark images with `{command}`.")


def fetch(name: str, source: Path | None, folder: Path) -> None:
    """Put `name` into `folder` from `source` (a folder) or its URL, only if its checksum is right."""
    expected = MANIFEST[name][1]
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        part = Path(tmp) / name
        if source is None:
            with urllib.request.urlopen(SOURCE + name, timeout=60) as response, part.open("wb") as out:
                shutil.copyfileobj(response, out)
        else:
            shutil.copyfile(source / name, part)
        actual = sha256(part)
        if actual != expected:
            raise ValueError(f"SHA-256 {actual}, expected {expected}")
        part.replace(folder / name)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--from", dest="source", type=Path, help="copy from this folder instead of downloading")
    p.add_argument("--out", type=Path, default=IMAGES, help="where to put them (default: bench/images)")
    args = p.parse_args(argv)
    failed = 0
    for name in MANIFEST:
        target = args.out / name
        if target.is_file() and sha256(target) == MANIFEST[name][1]:
            print(f"{name}: present")
            continue
        try:
            fetch(name, args.source, args.out)
        except (OSError, ValueError) as error:
            print(f"{name}: {error}", file=sys.stderr)
            failed += 1
        else:
            print(f"{name}: ok")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
