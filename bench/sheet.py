"""The contents × styles quality sheet: every photo painted in every style, to judge settings by eye.

(Not the sheet of preset styles the bot sends for /styles.)

    python bench/sheet.py [--images DIR] [--size 256] [--iterations N] [--optimizer adam|lbfgs]
                          [--multiscale | --no-multiscale] [--diagonal] [--output /tmp/sheet.png]

Row headers are the content images, column headers the style images, each cell the stylised content with
the default StyleParams (only `max_size`, `iterations`, `optimizer` and `multiscale` set from the flags).
`--diagonal` renders only the pairs (content i, style i), to compare settings where a full sheet is too
slow. Prints each cell's losses and time.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from PIL import Image, ImageDraw

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.images import IMAGES, need  # noqa: E402

CONTENTS = ("golden_gate.jpg", "tubingen.jpg", "hoovertowernight.jpg")
STYLES = ("starry_night.jpg", "the_scream.jpg", "woman-with-hat-matisse.jpg")
LABEL = 16  # pixels under each tile for its caption
GAP = 4


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    from engine.params import StyleParams

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--images", type=Path, default=IMAGES, help="folder with the images")
    p.add_argument("--contents", nargs="+", default=list(CONTENTS))
    p.add_argument("--styles", nargs="+", default=list(STYLES))
    p.add_argument("--size", type=int, default=256, help="long side of each output")
    p.add_argument("--iterations", type=int, default=StyleParams().iterations)
    p.add_argument("--optimizer", choices=("adam", "lbfgs"), default=StyleParams().optimizer)
    p.add_argument("--multiscale", action=argparse.BooleanOptionalAction, default=StyleParams().multiscale)
    p.add_argument(
        "--initial", choices=("content", "adain"), default="content", help="adain: start as the bot's jobs do"
    )
    p.add_argument("--margin", type=int, default=StyleParams().margin, help="mirrored frame, cropped off")
    p.add_argument("--diagonal", action="store_true", help="only content i with style i")
    p.add_argument("--output", type=Path, default=Path("/tmp/sheet.png"), help="PNG to write")
    p.add_argument("--weights", type=Path, help="weights file (default: $VGG_WEIGHTS, else the cache)")
    return p.parse_args(argv)


def tile(image: Image.Image, size: int, caption: str) -> Image.Image:
    """`image` fitted into a size × size white square, with `caption` underneath."""
    fitted = image.copy()
    fitted.thumbnail((size, size), Image.Resampling.LANCZOS)
    out = Image.new("RGB", (size, size + LABEL), "white")
    out.paste(fitted, ((size - fitted.width) // 2, (size - fitted.height) // 2))
    ImageDraw.Draw(out).text((2, size + 2), caption, fill="black")
    return out


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    args = parse_args(argv)
    need(args.images, [*args.contents, *args.styles])
    from engine.adain import AdaIN, initial_from_adain
    from engine.images import load_image, to_uint8
    from engine.params import StyleParams
    from engine.stylize import Progress, stylize
    from engine.vgg import VGG19
    from engine.weights import WeightsError, load_decoder, load_vgg

    try:
        weights = load_vgg(args.weights)
        network = VGG19(weights)
        adain = AdaIN(weights, load_decoder()) if args.initial == "adain" else None
        contents = {name: load_image(args.images / name) for name in args.contents}
        styles = {name: load_image(args.images / name) for name in args.styles}
    except (WeightsError, ValueError) as exc:
        print(f"sheet: {exc}", file=sys.stderr)
        return 2
    params = StyleParams(
        max_size=args.size,
        iterations=args.iterations,
        optimizer=args.optimizer,
        multiscale=args.multiscale,
        initial=args.initial,
        margin=args.margin,
    )
    size = args.size
    step = size + GAP
    sheet = Image.new("RGB", (step * (len(styles) + 1), (size + LABEL + GAP) * (len(contents) + 1)), "white")
    for col, (name, style) in enumerate(styles.items(), start=1):
        sheet.paste(tile(Image.fromarray(to_uint8(style)), size, name), (col * step, 0))
    for row, (cname, content) in enumerate(contents.items(), start=1):
        y = row * (size + LABEL + GAP)
        sheet.paste(tile(Image.fromarray(to_uint8(content)), size, cname), (0, y))
        for col, (sname, style) in enumerate(styles.items(), start=1):
            if args.diagonal and col != row:
                continue
            first: list[Progress] = []

            def keep_first(progress: Progress, first: list[Progress] = first) -> None:
                if not first:
                    first.append(progress)

            started = time.perf_counter()
            start = initial_from_adain(adain, content, [style], params) if adain is not None else None
            result = stylize(network, content, [style], params, progress=keep_first, start=start)
            l0, l1 = first[0].losses, result.losses
            print(
                f"{cname} × {sname}: {result.image.shape[1]}×{result.image.shape[0]} px, "
                f"{time.perf_counter() - started:.0f} s; style loss {l0.style:.4g} → {l1.style:.4g}, "
                f"content {l0.content:.4g} → {l1.content:.4g}, tv {l0.tv:.4g} → {l1.tv:.4g}",
                flush=True,
            )
            cell = tile(Image.fromarray(to_uint8(result.image)), size, f"{cname[:-4]} x {sname[:-4]}")
            sheet.paste(cell, (col * step, y))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(args.output, format="PNG")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
