"""How a painting looks at 100 %: its 256-px crops against the style's, at the pixels the painting used.

The arm's-length distance (bench/bench_big.py's HeldOut) shrinks a painting to 512 px, where a fine
mosaic of dabs averages away. Here the painting is cut into CROP-px windows at full size, on a grid that
covers it (neighbours overlap where the size is not a multiple of CROP), and so is the style sized as the
painting's last scale used it (`style_at`). Three numbers per painting, each the mean over its crops:

- gram: per layer of HELD_OUT (VGG-19 layers the objective does not use), ‖G(crop) − Ḡ‖² / ‖Ḡ‖², Ḡ the
  mean Gram of the style's crops: the style's local texture statistics at that zoom.
- sliced: per layer of HELD_OUT, the crop's features projected on DIRECTIONS random unit vectors (drawn
  once, seed SEED, never the engine's) and sorted, against the style crops' pooled projections at the
  same quantiles; the mean squared difference over the style's mean square. It sees the distributions
  (contrast, rare bright strokes) that a Gram matrix averages away.
- regularity: the highest off-centre peak of the autocorrelation of the crop's fine detail (luminance
  less a σ = 4 px Gaussian blur), at lags of 4–32 px, as a fraction of the zero-lag value. A mosaic of
  one cell repeated scores high; brushwork, whose marks vary, scores low. The style's crops give a
  painting's own level.

The first two are distances (lower: closer to the style); each favours the loss of its own kind, so read
them together, and with the sheet.

    python bench/upclose.py [--images DIR] score FOLDER ...         # bench/bench_style_loss.py's paintings
    python bench/upclose.py [--images DIR] sheet FOLDER ... --to docs/images/benchmarks/style_loss.jpg
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.bench_big import HELD_OUT  # noqa: E402

CROP = 256
DIRECTIONS = 64  # per layer; the held-out layers have 64–512 channels
SEED = 20261207
DETAIL_SIGMA = 4.0  # px: the blur subtracted to leave the fine detail whose repeats `regularity` finds
LAGS = (4, 32)  # px: the shortest and longest repeat looked for


def windows(image: np.ndarray, size: int = CROP) -> list[np.ndarray]:
    """size × size crops on a grid covering `image` (H, W, …), ⌈H/size⌉ × ⌈W/size⌉ of them, evenly
    spaced from edge to edge; an image smaller than `size` on a side gives that side whole."""
    height, width = image.shape[:2]
    ys = np.linspace(0, max(0, height - size), max(1, -(-height // size))).round().astype(int)
    xs = np.linspace(0, max(0, width - size), max(1, -(-width // size))).round().astype(int)
    return [image[y : y + size, x : x + size] for y in ys for x in xs]


def regularity(crop: np.ndarray) -> float:
    """The highest local maximum of the fine detail's normalised autocorrelation at LAGS px (0: none)."""
    from scipy import ndimage

    luminance = crop[..., :3].astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    detail = luminance - ndimage.gaussian_filter(luminance, DETAIL_SIGMA)
    detail -= detail.mean()
    power = np.abs(np.fft.fft2(detail)) ** 2
    correlation = np.fft.ifft2(power).real
    if correlation[0, 0] <= 0:
        return 0.0
    correlation = np.fft.fftshift(correlation / correlation[0, 0])
    cy, cx = correlation.shape[0] // 2, correlation.shape[1] // 2
    yy, xx = np.mgrid[: correlation.shape[0], : correlation.shape[1]]
    radius = np.hypot(yy - cy, xx - cx)
    peaks = (
        (correlation == ndimage.maximum_filter(correlation, size=3))
        & (radius >= LAGS[0])
        & (radius <= LAGS[1])
    )
    return float(correlation[peaks].max()) if peaks.any() else 0.0


def style_at(style: np.ndarray, painting: tuple[int, ...], multiscale: bool = True) -> np.ndarray:
    """The style as a painting of shape `painting` used it at its last scale: at the painting's width
    (brush medium), but, coarse to fine, never beyond its own pixels (engine.stylize.size_styles)."""
    from engine.multiscale import sides
    from engine.params import StyleParams
    from engine.stylize import size_styles

    params = StyleParams(max_size=max(painting[:2]), style_scales=(1.0,))
    single = not multiscale or len(sides(max(painting[:2]), params.multiscale_base)) == 1
    return size_styles([style], painting, params, enlarge=single)[0]


class UpClose:
    """The up-close distances of paintings against one style, sized as the paintings use it."""

    def __init__(self, network: Any, style: np.ndarray) -> None:
        self.network = network
        rng = np.random.default_rng(SEED)
        crops = windows(style)
        features = [self.features(c) for c in crops]
        self.directions: dict[str, np.ndarray] = {}
        self.grams: dict[str, np.ndarray] = {}
        self.projections: dict[str, np.ndarray] = {}
        for layer in HELD_OUT:
            channels = features[0][layer].shape[1]
            d = rng.standard_normal((channels, DIRECTIONS))
            self.directions[layer] = d / np.linalg.norm(d, axis=0)
            self.grams[layer] = np.mean([f[layer].T @ f[layer] / f[layer].size for f in features], axis=0)
            pooled = np.concatenate([f[layer] @ self.directions[layer] for f in features])
            self.projections[layer] = np.sort(pooled, axis=0)
        self.style_regularity = float(np.mean([regularity(c) for c in crops]))

    def features(self, crop: np.ndarray) -> dict[str, np.ndarray]:
        """(positions, channels) float64 activations of HELD_OUT for an (H, W, 3) crop."""
        import tensorflow as tf

        out = self.network.features(tf.constant(self.network.preprocess(crop.astype(np.float32))), HELD_OUT)
        return {k: v.numpy().reshape(-1, v.shape[-1]).astype(np.float64) for k, v in out.items()}

    def distances(self, painting: np.ndarray) -> dict[str, Any]:
        """{"gram": [per layer], "sliced": [per layer], "regularity": float, "crops": n} for `painting`."""
        crops = windows(painting)
        gram = {layer: [] for layer in HELD_OUT}
        sliced = {layer: [] for layer in HELD_OUT}
        for crop in crops:
            for layer, f in self.features(crop).items():
                target = self.grams[layer]
                gram[layer].append(np.sum((f.T @ f / f.size - target) ** 2) / np.sum(target**2))
                own = np.sort(f @ self.directions[layer], axis=0)
                style = self.projections[layer]
                quantiles = (np.arange(len(own)) + 0.5) / len(own) * len(style) - 0.5
                matched = np.stack(
                    [np.interp(quantiles, np.arange(len(style)), style[:, k]) for k in range(style.shape[1])],
                    1,
                )
                sliced[layer].append(np.mean((own - matched) ** 2) / np.mean(style**2))
        return {
            "gram": [float(np.mean(gram[k])) for k in HELD_OUT],
            "sliced": [float(np.mean(sliced[k])) for k in HELD_OUT],
            "regularity": float(np.mean([regularity(c) for c in crops])),
            "style_regularity": self.style_regularity,
            "crops": len(crops),
        }


# Where a sheet's 100 % crop is taken, as shares of the painting's width and height (its centre): upper
# middle, where the shared photos have sky over roofs, the flat area where a mosaic shows first.
CROP_AT = (0.5, 0.3)
SHEET_HEIGHT = 240  # px: each whole painting is shrunk to this height


def paintings(folder: Path) -> dict[tuple[int, str], dict[str, Path]]:
    """{(size, "content-style"): {loss: path}} for the SIZE_CONTENT-STYLE_LOSS.png files in `folder` (LOSS:
    gram, sliced, or mixedK, bench/bench_style_loss.py's sliced with K Gram layers)."""
    found: dict[tuple[int, str], dict[str, Path]] = {}
    for path in sorted(folder.glob("*.png")):
        size, _, rest = path.stem.partition("_")
        pair, _, loss = rest.rpartition("_")
        if size.isdigit() and (loss in ("gram", "sliced") or loss.startswith("mixed")):
            found.setdefault((int(size), pair), {})[loss] = path
    return found


def score(args: argparse.Namespace) -> None:
    """Arm's-length and up-close distances of every painting in the folders, into SIZE_PAIR_LOSS.scores.json
    beside it, and one markdown row each (seconds and memory from the run's .json when there is one)."""
    from bench.bench_big import HeldOut
    from engine.images import load_image
    from engine.vgg import VGG19
    from engine.weights import load_vgg

    network = VGG19(load_vgg(None))
    for folder in args.folders:
        for (size, pair), runs in paintings(folder).items():
            content_name, style_name = pair.split("-", 1)  # the shared photos' names have no "-"
            content = load_image(args.images / f"{content_name}.jpg")
            style = load_image(args.images / f"{style_name}.jpg")
            held_out = HeldOut(network, content, style)
            for loss, path in runs.items():
                image = load_image(path)
                up_close = UpClose(network, style_at(style, image.shape)).distances(image)
                scores = {"held_out": held_out.distances(image), **up_close}
                path.with_suffix(".scores.json").write_text(json.dumps(scores, indent=1))
                run = path.with_suffix(".json")
                facts = json.loads(run.read_text()) if run.exists() else {}
                seconds, memory = facts.get("seconds", float("nan")), facts.get("peak_rss_mb", float("nan"))
                print(
                    f"| {size} | {pair} | {loss} | {np.mean(scores['held_out']):.3f} | "
                    f"{np.mean(scores['gram']):.3f} | {np.mean(scores['sliced']):.3f} | "
                    f"{scores['regularity']:.3f} ({scores['style_regularity']:.3f}) | "
                    f"{seconds:.0f} | {memory:.0f} |",
                    flush=True,
                )


def sheet(args: argparse.Namespace) -> None:
    """One row per (size, pair) found in the folders: each loss's painting whole (shrunk to SHEET_HEIGHT)
    and then each one's `args.crop`-px square at 100 % from CROP_AT, labelled; saved as `args.to`."""
    from PIL import Image, ImageDraw

    rows = []
    for folder in args.folders:
        for (size, pair), runs in paintings(folder).items():
            if {"gram", "sliced"} <= set(runs):
                losses = sorted(runs, key=lambda k: (k != "gram", k != "sliced", k))  # gram, sliced, mixedK
                images = [Image.open(runs[k]).convert("RGB") for k in losses]
                rows.append((f"{pair}, {size} px: {', '.join(losses)}", images))
    c, h = args.crop, SHEET_HEIGHT
    label = 18
    wholes = [[round(i.width * h / i.height) for i in images] for _, images in rows]
    width = max(sum(w) + len(w) * (c + 12) for w in wholes)
    row = max(c, h) + label + 6
    canvas = Image.new("RGB", (width, len(rows) * row), "white")
    draw = ImageDraw.Draw(canvas)
    for n, ((title, images), sizes) in enumerate(zip(rows, wholes, strict=True)):
        top = n * row
        x = 0
        draw.text((2, top + 2), title + " (whole, then 100 % crops)", fill="black")
        for image, w in zip(images, sizes, strict=True):
            canvas.paste(image.resize((w, h), Image.Resampling.LANCZOS), (x, top + label))
            x += w + 6
        for image in images:
            left = min(max(0, round(image.width * CROP_AT[0]) - c // 2), image.width - c)
            upper = min(max(0, round(image.height * CROP_AT[1]) - c // 2), image.height - c)
            canvas.paste(image.crop((left, upper, left + c, upper + c)), (x, top + label))
            x += c + 6
    canvas.save(args.to, quality=88)
    print("sheet", args.to, canvas.size)


def main(argv: list[str] | None = None) -> None:
    from bench.images import IMAGES

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--images", type=Path, default=IMAGES)
    parts = p.add_subparsers(dest="part", required=True)
    scoring = parts.add_parser("score", help="distances of every SIZE_CONTENT-STYLE_LOSS.png in the folders")
    scoring.add_argument("folders", nargs="+", type=Path)
    sheets = parts.add_parser("sheet", help="Gram and sliced paintings side by side, whole and at 100 %")
    sheets.add_argument("folders", nargs="+", type=Path)
    sheets.add_argument("--to", type=Path, required=True)
    sheets.add_argument("--crop", type=int, default=SHEET_HEIGHT, help="side of the 100 %% crops, px")
    args = p.parse_args(argv)
    {"score": score, "sheet": sheet}[args.part](args)


if __name__ == "__main__":
    main()
