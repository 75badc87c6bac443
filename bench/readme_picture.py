"""The README's picture: a photo, a style and the bot's default painting of the two, side by side.

    python bench/readme_picture.py [--content tubingen.jpg] [--style starry_night.jpg]
                                   [--output docs/images/example.jpg]

The painting is the bot's default job (L-BFGS 100 iterations from the AdaIN image, 16 px margin, precision
"auto"; bot/config.py and docs/engine.md) at 512 px, with the real weights. The three pictures are scaled
to one height so that the strip is `--width` pixels wide, with a caption under each, and saved as a JPEG.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from PIL import Image, ImageDraw, ImageFont

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.images import IMAGES, need  # noqa: E402

if TYPE_CHECKING:
    import numpy as np

MARGIN = 16  # the bot's (bot/requests.py)
GAP = 12  # white pixels between two pictures and around the strip
CAPTION = 30  # white pixels under the pictures for the captions


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--images", type=Path, default=IMAGES, help="folder with the two images")
    p.add_argument("--content", default="tubingen.jpg")
    p.add_argument("--style", default="starry_night.jpg")
    p.add_argument("--size", type=int, default=512, help="long side of the painting")
    p.add_argument("--width", type=int, default=1200, help="width of the strip")
    p.add_argument("--quality", type=int, default=85, help="JPEG quality")
    p.add_argument("--output", type=Path, default=REPO / "docs" / "images" / "example.jpg")
    p.add_argument("--weights", type=Path, help="weights file (default: $VGG_WEIGHTS, else the cache)")
    p.add_argument(
        "--painting",
        type=Path,
        help="use this painting of the pair (e.g. bench_big.py job's PNG) instead of painting",
    )
    args = p.parse_args(argv)
    need(args.images, [args.content, args.style])
    return args


def strip(pictures: list[tuple[Image.Image, str]], width: int) -> Image.Image:
    """The pictures at one height, side by side in `width` pixels, each captioned underneath."""
    ratios = [picture.width / picture.height for picture, _ in pictures]
    height = round((width - GAP * (len(pictures) + 1)) / sum(ratios))
    out = Image.new("RGB", (width, height + 2 * GAP + CAPTION), "white")
    draw = ImageDraw.Draw(out)
    font = ImageFont.load_default(size=18)
    x = GAP
    for (picture, caption), ratio in zip(pictures, ratios, strict=True):
        scaled = picture.resize((round(height * ratio), height), Image.Resampling.LANCZOS)
        out.paste(scaled, (x, GAP))
        draw.text((x + scaled.width / 2, GAP + height + 6), caption, fill="black", font=font, anchor="ma")
        x += scaled.width + GAP
    return out


def paint(args: argparse.Namespace, content: np.ndarray, style: np.ndarray) -> np.ndarray:
    """The bot's default job on the pair, at `args.size`."""
    from engine.adain import AdaIN, initial_from_adain
    from engine.params import StyleParams
    from engine.stylize import stylize
    from engine.vgg import VGG19
    from engine.weights import load_adain_decoder, load_weights

    weights = load_weights(args.weights)
    network, model = VGG19(weights), AdaIN(weights, load_adain_decoder())
    params = StyleParams(
        iterations=100,
        max_size=args.size,
        optimizer="lbfgs",
        initial="adain",
        margin=MARGIN,
        precision="auto",
    )
    began = time.perf_counter()
    start = initial_from_adain(model, content, [style], params)
    result = stylize(network, content, [style], params, start=start)
    print(f"painted {result.image.shape[1]}×{result.image.shape[0]} in {time.perf_counter() - began:.0f} s")
    return result.image


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from engine.images import load_image, to_uint8

    content, style = load_image(args.images / args.content), load_image(args.images / args.style)
    painting = load_image(args.painting) if args.painting else paint(args, content, style)
    pictures = [
        (Image.fromarray(to_uint8(content)), "photo"),
        (Image.fromarray(to_uint8(style)), "style"),
        (Image.fromarray(to_uint8(painting)), "painting"),
    ]
    args.output.parent.mkdir(parents=True, exist_ok=True)
    strip(pictures, args.width).save(args.output, quality=args.quality, optimize=True, progressive=True)
    print(f"{args.output}: {args.output.stat().st_size // 1024} KB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
