"""Every knob of a stylisation, in one frozen dataclass (defaults chosen for the Gatys-normalised VGG-19)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Literal

Pooling = Literal["max", "avg"]
Initial = Literal["content", "noise", "adain"]
Optimizer = Literal["adam", "lbfgs"]
Precision = Literal["auto", "float32", "bfloat16"]
StyleLoss = Literal["gram", "sliced"]

CONTENT_LAYERS: tuple[str, ...] = ("relu4_2", "relu5_2")
STYLE_LAYERS: tuple[str, ...] = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")


@dataclass(frozen=True)
class StyleParams:
    """The options of anishathalye/neural-style, same names and meaning, plus the engine's own few."""

    # Optimisation steps, each one evaluation of the loss and its gradient (L-BFGS's line searches count
    # every evaluation); the bot's admins change this. Coarse to fine, these are the base scale's, and
    # each finer scale adds fewer (engine.multiscale); a run's `Progress.total` counts them all.
    iterations: int = 300
    # Long side of the output in pixels; a larger content image is scaled down, a smaller one kept as is.
    max_size: int = 512
    # Weight of the content loss. The normalised network's activations are ~1 per channel, so its losses
    # are ~1e4 times smaller than the .mat network's; these three weights are tuned for it by eye.
    content_weight: float = 5.0
    # Share of the content loss taken at relu4_2; relu5_2 gets 1 - blend (1.0 = relu4_2 only, as
    # anishathalye/neural-style).
    content_weight_blend: float = 1.0
    # Weight of the style loss (the bot's "style strength" multiplies it).
    style_weight: float = 1e6
    # How the style is matched at each style layer: "gram", anishathalye/neural-style's Gram matrices
    # (second moments), or "sliced", the sliced Wasserstein distance of the features' whole distribution
    # (Heitz et al. 2021; engine.sliced), weighted so that `style_weight` means about the same.
    style_loss: StyleLoss = "gram"
    # With the sliced loss, the shallowest this many style layers are matched by Gram instead: their sorts
    # see the fewest positions (engine.sliced.SORT_BUDGET), a Gram sees them all. 0: every layer sliced.
    # 2 (relu1_1, relu2_1) was closest to the style on every pair measured (BENCHMARKS.md, "Style loss").
    gram_layers: int = 2
    # Style layer l gets weight exp**l before normalisation; > 1 favours coarse features, < 1 fine ones.
    style_layer_weight_exp: float = 1.0
    # Relative weight of each style image; None = equal. Normalised to sum to 1.
    style_blend_weights: tuple[float, ...] | None = None
    # Each style image is resized to scale × the content's width before its Grams are taken; None = 1.0 each.
    style_scales: tuple[float, ...] | None = None
    # Weight of the total-variation (smoothness) loss.
    tv_weight: float = 0.1
    # "adam" as anishathalye/neural-style (the settings below), or "lbfgs": L-BFGS bounded to valid pixels,
    # on the device, after two Adam steps; it reaches Adam's loss in a fraction of the time (BENCHMARKS.md);
    # the bot's.
    optimizer: Optimizer = "adam"
    # Coarse to fine above `multiscale_base`: paint at that long side first, then refine at sizes √2 apart
    # up to `max_size`, each scale starting from the previous result (engine.multiscale). At or below
    # the base it changes nothing; off, a big painting is optimised at its full size only.
    multiscale: bool = True
    # The coarsest scale's long side: where the style's features span the picture's large shapes.
    multiscale_base: int = 512
    # Coarse to fine, at each scale above the base: weight (× the style's) of matching the style also on
    # the image shrunk to the coarser levels (engine.multiscale.levels), so a big painting keeps the base's
    # large strokes instead of only the finest scale's grain. 0 = off; no effect on a single-scale job.
    multiscale_levels: float = 1.0
    # Adam's settings, as tf.compat.v1.train.AdamOptimizer takes them; pixels are in 0..255.
    learning_rate: float = 10.0
    beta1: float = 0.9
    beta2: float = 0.999
    epsilon: float = 1e-8
    # Pooling between VGG blocks: "max" as in VGG, or "avg" as Gatys et al. suggest for smoother results.
    pooling: Pooling = "max"
    # Keep the content's colours: only the luminance of the result is kept (YCbCr transfer).
    preserve_colors: bool = False
    # Where the optimisation starts: the content image, noise, or the AdaIN feed-forward result (the
    # caller computes that one and passes it to `iterate` as `start`).
    initial: Initial = "content"
    # Fraction of noise blended into the start image (0 = pure content or AdaIN image, 1 = pure noise).
    initial_noiseblend: float = 0.0
    # Seed of the start noise; the same seed, inputs and device give the same output. None = random.
    seed: int | None = None
    # Emit a preview image every this many iterations (0 = only the final image).
    preview_every: int = 0
    # The result of each scale is an exponential moving average of its iterates with this decay,
    # bias-corrected, as crowsonkb/style-transfer-pytorch returns: of the start image and the image after
    # every Adam step, or L-BFGS's lowest-loss image after every evaluation. It smooths the noise the last
    # steps leave. 0 = off: the lowest-loss image.
    average_decay: float = 0.0
    # Pixels of mirrored image optimised around the picture and cropped off the result (at the output
    # size; scaled with coarser scales). The network zero-pads, which paints dark, ragged borders within
    # a few pixels of the edge; a margin takes them off with the crop. 0 = none, as anishathalye/neural-style.
    margin: int = 0
    # Number format of the network's convolutions: "bfloat16" (faster with AMX or AVX512-BF16, the same
    # picture), "float32", or "auto": bfloat16 where it measured clearly faster on this CPU (once per
    # machine, cached) or on GPUs of compute capability ≥ 8.0 (see engine.precision). The image, Grams,
    # losses and optimiser state are float32 whatever this says.
    precision: Precision = "auto"
    # Early stopping, per scale: a scale ends once its lowest objective has fallen by less than this share
    # over the last `engine.stylize.STOP_WINDOW` iterations; `iterations` is then the most a painting
    # takes. 0 = off (every iteration runs); None = the optimizer's default (engine.stylize.STOP_TOLERANCE
    # for L-BFGS, off for Adam, which stays anishathalye/neural-style's).
    stop_tolerance: float | None = None
    # A clip's frames after the first (engine.animate): each starts from the previous painted frame warped
    # by the optical flow and runs this many iterations (the first frame runs `iterations`). At 256 px
    # 10 flickered no more than 20 and scored 1.8 % higher, in half the time (bench/notes/animations.md).
    frame_iterations: int = 10
    # Weight of the temporal term on those frames: the mean squared distance, in pixel units, to the
    # previous painted frame warped to this one, where the flow is reliable (Ruder et al. 2016). 0.2 took
    # 39 % off the flicker for 2.4 % more objective; higher weights cost more than they steady.
    temporal_weight: float = 0.2

    def __post_init__(self) -> None:
        problems = _problems(self)
        if problems:
            raise ValueError("; ".join(problems))

    def with_overrides(self, **changes: Any) -> StyleParams:
        """A copy with some fields changed (validated like the original)."""
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Plain values only, for JSON and for crossing process boundaries."""
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> StyleParams:
        """The inverse of `to_dict`; unknown keys are refused so typos are not silently ignored."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown parameters: {', '.join(unknown)}")
        converted = dict(values)
        for key in ("style_blend_weights", "style_scales"):
            if converted.get(key) is not None:
                converted[key] = tuple(float(x) for x in converted[key])
        return cls(**converted)


@dataclass(frozen=True)
class Losses:
    """The weighted parts of the objective and their sum, as a run reports them; on a clip's frames after
    the first the total also counts the temporal term (engine.animate), which has no part of its own."""

    content: float
    style: float
    tv: float
    total: float


def _problems(p: StyleParams) -> list[str]:
    problems = []
    if p.iterations < 1:
        problems.append("iterations must be at least 1")
    if p.frame_iterations < 1:
        problems.append("frame_iterations must be at least 1")
    if p.max_size < 16:
        problems.append("max_size must be at least 16 pixels")
    if p.multiscale_base < 16:
        problems.append("multiscale_base must be at least 16 pixels")
    if not 0.0 <= p.content_weight_blend <= 1.0:
        problems.append("content_weight_blend must be within [0, 1]")
    if not 0.0 <= p.initial_noiseblend <= 1.0:
        problems.append("initial_noiseblend must be within [0, 1]")
    names = ("content_weight", "style_weight", "tv_weight", "style_layer_weight_exp", "epsilon")
    for name in (*names, "multiscale_levels", "temporal_weight"):
        if getattr(p, name) < 0:
            problems.append(f"{name} must not be negative")
    if p.learning_rate <= 0:
        problems.append("learning_rate must be positive")
    if not (0.0 <= p.beta1 < 1.0 and 0.0 <= p.beta2 < 1.0):
        problems.append("beta1 and beta2 must be within [0, 1)")
    if p.pooling not in ("max", "avg"):
        problems.append("pooling must be 'max' or 'avg'")
    if p.optimizer not in ("adam", "lbfgs"):
        problems.append("optimizer must be 'adam' or 'lbfgs'")
    if p.initial not in ("content", "noise", "adain"):
        problems.append("initial must be 'content', 'noise' or 'adain'")
    if p.style_blend_weights is not None and (
        any(w < 0 for w in p.style_blend_weights) or sum(p.style_blend_weights) <= 0
    ):
        problems.append("style_blend_weights must be non-negative with a positive sum")
    if p.style_scales is not None and any(s <= 0 for s in p.style_scales):
        problems.append("style_scales must be positive")
    if p.preview_every < 0:
        problems.append("preview_every must not be negative")
    if p.precision not in ("auto", "float32", "bfloat16"):
        problems.append("precision must be 'auto', 'float32' or 'bfloat16'")
    if p.stop_tolerance is not None and not 0.0 <= p.stop_tolerance < 1.0:
        problems.append("stop_tolerance must be within [0, 1)")
    if p.style_loss not in ("gram", "sliced"):
        problems.append("style_loss must be 'gram' or 'sliced'")
    if not 0 <= p.gram_layers <= 5:
        problems.append("gram_layers must be within 0..5 (the style layers)")
    if not 0.0 <= p.average_decay < 1.0:
        problems.append("average_decay must be within [0, 1)")
    if not 0 <= p.margin <= 256:
        problems.append("margin must be within [0, 256] pixels")
    return problems
